"""Every runtime behind the one Predictor: same constructor, preprocessing inside, labels out."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from ecgcnn.errors import EcgcnnError
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.loader import load_backend

SHIPPED = ["pretrained:edge", "pretrained:edge.onnx", "pretrained:edge.tflite", "pretrained:best.onnx",
           "pretrained:best.tflite"]


@pytest.fixture(scope="module")
def reference(dataset):
    """PyTorch's predictions on the official (already z-normalised) test beats, per shipped model."""
    return {name: load_predictor(f"pretrained:{name}").predict_indices(dataset.x_test) for name in ("best", "edge")}


@pytest.mark.parametrize("spec", SHIPPED)
def test_every_runtime_normalises_beats_itself(spec, dataset, reference):
    """Beats at another gain and offset (x3 + 1) must get the classes PyTorch gives the original beats:
    a runtime that skipped z-normalisation agrees on ~43 % only."""
    predictor = load_predictor(spec)
    name = spec.split(":")[1].split(".")[0]
    agreement = (predictor.predict_indices(dataset.x_test * 3 + 1) == reference[name]).mean()
    assert agreement >= (0.97 if spec.endswith(".tflite") else 0.999), agreement


@pytest.mark.parametrize("spec", SHIPPED)
def test_predict_returns_dataset_labels(spec, dataset):
    predictor = load_predictor(spec)
    beats = dataset.x_test[:50]
    indices = predictor.predict_indices(beats)
    assert predictor.labels == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(predictor.predict(beats), np.asarray(predictor.labels)[indices])
    np.testing.assert_array_equal(indices, predictor.predict_proba(beats).argmax(1))


def test_every_backend_has_the_same_constructor():
    signatures = {runtime: inspect.signature(load_backend(runtime).PREDICTOR.__init__)
                  for runtime in ("torch", "onnx", "tflite")}
    assert {str(s) for s in signatures.values()} == {
        "(self, path: 'str | os.PathLike', device: 'str' = 'cpu', threads: 'int | None' = None)"}


@pytest.mark.parametrize("bad, fragment", [(np.zeros((2, 139)), "expected beats of shape (N, 140)"),
                                           (np.full((2, 140), np.nan), "NaN or infinite values")])
def test_bad_beats_are_one_sentence(bad, fragment):
    with pytest.raises(EcgcnnError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        load_predictor("pretrained:edge.tflite").predict_proba(bad)
