"""The pretrained models shipped in the package: integrity, provenance, and their recorded test metrics."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ecgcnn.core.errors import EcgcnnError, ModelFileError
from ecgcnn.evaluation.metrics import evaluate_predictor
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.pretrained import MAX_TOTAL_BYTES, PRETRAINED_DIR, read_manifest, resolve_model_path

from ..conftest import assert_one_line_error

MANIFEST = read_manifest()
SPEC = {"pytorch": "", "onnx": ".onnx", "tflite-int8-full": ".tflite"}
FILES = [(name, fmt) for name, entry in MANIFEST["models"].items() for fmt in entry["files"]]


def test_both_models_ship_in_three_formats_within_the_size_budget():
    assert set(MANIFEST["models"]) == {"best", "edge"}
    total = 0
    for entry in MANIFEST["models"].values():
        assert set(entry["files"]) == set(SPEC)
        assert entry["recipe"] in ("best", "edge") and isinstance(entry["seed"], int)
        assert entry["command"].startswith("ecgcnn pipeline --models best edge --seeds ")
        total += sum((PRETRAINED_DIR / f["file"]).stat().st_size for f in entry["files"].values())
    assert total <= MAX_TOTAL_BYTES
    assert MANIFEST["commit"]
    # the edge model's deployable file is the full-INT8 TFLite model: at most 100 KB
    assert MANIFEST["models"]["edge"]["files"]["tflite-int8-full"]["bytes"] <= 100_000


@pytest.mark.parametrize("name, fmt", FILES)
def test_every_shipped_file_reproduces_its_recorded_test_metrics(name, fmt, dataset):
    entry = MANIFEST["models"][name]["files"][fmt]
    path = resolve_model_path(f"pretrained:{name}{SPEC[fmt]}")  # verifies the sha256
    assert path.name == entry["file"] and path.stat().st_size == entry["bytes"]
    metrics = evaluate_predictor(load_predictor(f"pretrained:{name}{SPEC[fmt]}"), dataset.x_test, dataset.index_test)
    # identical on the machine that packed them; another CPU may round one beat differently
    assert abs(metrics["accuracy"] - entry["test"]["accuracy"]) <= 2 / len(dataset.index_test)
    assert abs(metrics["macro_f1"] - entry["test"]["macro_f1"]) <= 0.01
    np.testing.assert_allclose([c["f1"] for c in metrics["per_class"]], entry["test"]["per_class_f1"], atol=0.02)


def test_predict_uses_the_edge_models_tflite_file_by_default(cli, tmp_path, dataset):
    beats = tmp_path / "beats.csv"
    beats.write_text("\n".join(",".join(f"{v:.8f}" for v in row) for row in dataset.x_test[:20]) + "\n")
    default = cli("predict", "--input", beats)
    explicit = cli("predict", "pretrained:edge.tflite", "--input", beats)
    assert default.code == 0 and explicit.code == 0, default
    assert default.out == explicit.out and len(default.out.strip().splitlines()) == 21
    other = cli("predict", "pretrained:best.onnx", "--input", beats)
    assert other.code == 0, other


def test_evaluate_accepts_a_pretrained_name(cli):
    result = cli("evaluate", "pretrained:best")
    assert result.code == 0, result
    assert f"accuracy {MANIFEST['models']['best']['files']['pytorch']['test']['accuracy']:.4f}" in result.out


def test_unknown_pretrained_names_are_one_line_errors(cli, tmp_path):
    beats = tmp_path / "b.csv"
    beats.write_text(",".join(["0.1"] * 140) + "\n")
    assert_one_line_error(cli("predict", "pretrained:huge", "--input", beats), "pretrained:huge",
                          "pretrained:best", "pretrained:edge")
    assert_one_line_error(cli("evaluate", "pretrained:edge.csv"), "unknown pretrained model")


SPECS = [(name, suffix) for name in ("best", "edge") for suffix in ("", ".onnx", ".tflite")]


@pytest.mark.parametrize("name, suffix", SPECS)
def test_every_damaged_shipped_file_is_refused(tmp_path, name, suffix):
    """One flipped byte in any shipped file (every format) fails its sha256 check; the other files still verify."""
    copy = tmp_path / "pretrained"
    shutil.copytree(PRETRAINED_DIR, copy)
    damaged = resolve_model_path(f"pretrained:{name}{suffix}", directory=copy)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256 does not match"):
        resolve_model_path(f"pretrained:{name}{suffix}", directory=copy)
    for other_name, other_suffix in SPECS:
        if (other_name, other_suffix) != (name, suffix):
            assert resolve_model_path(f"pretrained:{other_name}{other_suffix}", directory=copy).is_file()


def test_a_damaged_installation_is_refused(tmp_path):
    copy = tmp_path / "pretrained"
    shutil.copytree(PRETRAINED_DIR, copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ModelFileError, match="no pretrained models"):
        resolve_model_path("pretrained:edge", directory=copy)
    with pytest.raises(EcgcnnError):
        resolve_model_path("pretrained:", directory=PRETRAINED_DIR)
