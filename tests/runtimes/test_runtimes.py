"""Every runtime behind the one Predictor: same constructor, preprocessing inside, labels out."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

from ecgcnn.core.errors import EcgcnnError
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.loader import load_backend

from ..conftest import run_subprocess

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


def test_litert_does_not_announce_its_delegate_to_users(tmp_path, dataset):
    csv = tmp_path / "beats.csv"
    csv.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in dataset.x_test[:3]) + "\n")
    result = run_subprocess("predict", "pretrained:edge.tflite", "--input", csv)
    assert result.returncode == 0, result.stderr
    assert "XNNPACK" not in result.stderr and result.stderr.strip() == ""


def test_onnx_and_tflite_files_work_without_torch(dataset, tmp_path):
    """A runtime-only environment: torch made unimportable; the shipped .tflite and .onnx files still predict."""

    np.save(tmp_path / "beats.npy", dataset.x_test[:20])
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from ecgcnn import load_predictor\n"
        f"beats = np.load({str(tmp_path / 'beats.npy')!r})\n"
        "for spec in ('pretrained:edge.tflite', 'pretrained:edge.onnx'):\n"
        "    print(spec, load_predictor(spec).predict(beats).tolist())\n"
        "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = load_predictor("pretrained:edge.tflite").predict(dataset.x_test[:20]).tolist()
    assert f"pretrained:edge.tflite {expected}" in result.stdout
