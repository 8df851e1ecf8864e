"""Fast tier (mutation-tested, see docs/mutation.md): preprocessing, boundary checks, file writing, metadata, the
format table and the artifact layout."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.core import fileio, formats, layout, preprocess, validation
from ecgcnn.core.errors import EcgcnnError, ModelFileError
from ecgcnn.data.beats import flat_beats
from ecgcnn.runtimes import metadata

pytestmark = pytest.mark.fast  # the fast tier: make test-fast, pre-commit, mutation testing


def _raises(exc_type, call, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        call(*args, **kwargs)
    return str(info.value)


# ------------------------------------------------------------------------------------------------------ preprocess

def test_normalize_beats_z_normalises_each_beat():
    rng = np.random.default_rng(0)
    beats = rng.normal(size=(4, 140)) * np.array([[1], [3], [0.5], [10]]) + np.array([[0], [5], [-2], [100]])
    out = preprocess.normalize_beats(beats)
    assert out.dtype == np.float32 and out.shape == (4, 140)
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(out.astype(np.float64).std(axis=1, ddof=1), 1, atol=1e-6)
    expected = (beats - beats.mean(1, keepdims=True)) / beats.std(1, ddof=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_flat_and_near_flat_beats_are_not_blown_up():
    beats = np.array([[2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 4e-9], [0.0, 1.0, 0.0, 1.0]])
    out = preprocess.normalize_beats(beats)
    assert out[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(out[1], [-1e-9, -1e-9, -1e-9, 3e-9], rtol=1e-5)  # std <= 1e-8: centred only
    np.testing.assert_allclose(out[2], np.array([-1, 1, -1, 1]) * 0.8660254, rtol=1e-6)
    assert preprocess.PREPROCESSING["name"] == "znorm-per-beat" and preprocess.PREPROCESSING["ddof"] == 1


def test_normalisation_and_flat_beats_agree_at_the_threshold():
    """A beat whose std is exactly 1e-8 counts as flat (data_beats.flat_beats) and is therefore only centred."""

    beat = np.array([[-1.0, 1.0] * 70]) * (1e-8 * np.sqrt(139 / 140))
    assert beat.std(ddof=1) == 1e-8  # exactly on the threshold
    assert flat_beats(beat).tolist() == [True]
    np.testing.assert_allclose(preprocess.normalize_beats(beat), beat.astype(np.float32), rtol=1e-6)


# ------------------------------------------------------------------------------------------------------ validation

@pytest.mark.parametrize("kwargs, words", [
    (dict(kind=int, low=1), "a whole number >= 1"),
    (dict(kind=int, low=0, low_inclusive=False), "a whole number >= 1"),
    (dict(kind=float, low=0, low_inclusive=False), "a positive number"),
    (dict(kind=float, low=0), "a number >= 0"),
    (dict(kind=float, low=2.5, low_inclusive=False), "a number > 2.5"),
    (dict(kind=int, low=-1, low_inclusive=False), "a whole number > -1"),
    (dict(kind=float, high=1), "a number <= 1"),
    (dict(kind=int, high=7, high_inclusive=False), "a whole number < 7"),
    (dict(kind=float), "a number"),
    (dict(kind=int), "a whole number"),
    (dict(kind=float, low=0, high=1), "a value in [0, 1]"),
    (dict(kind=float, low=0, high=1, high_inclusive=False), "a value in [0, 1)"),
    (dict(kind=float, low=0, high=1, low_inclusive=False), "a value in (0, 1]"),
    (dict(kind=int, low=0, high=1, low_inclusive=False), "a value in (0, 1]"),
    (dict(kind=int, low=0, high=1, high_inclusive=False), "a value in [0, 1)"),
    (dict(kind=float, low=0, high=1, low_inclusive=False, high_inclusive=False), "a value strictly between 0 and 1"),
    (dict(kind=int, low=1, high=10), "a whole number from 1 to 10"),
    (dict(kind=float, low=0.25, high=1e6), "a value in [0.25, 1e+06]"),
])
def test_expectation_in_words(kwargs, words):
    assert validation.expectation(**kwargs) == words


def test_expectation_defaults_to_a_number():
    assert validation.expectation() == "a number"


@pytest.mark.parametrize("value, bounds, ok", [
    (0, dict(low=0), True), (-1e-9, dict(low=0), False), (0, dict(low=0, low_inclusive=False), False),
    (1e-9, dict(low=0, low_inclusive=False), True), (1, dict(high=1), True), (1.000001, dict(high=1), False),
    (1, dict(high=1, high_inclusive=False), False), (0.999, dict(high=1, high_inclusive=False), True),
    (5, dict(), True), (0.5, dict(low=0, high=1), True), (2, dict(low=0, high=1), False),
    (-1, dict(low=0, high=1), False),
])
def test_bounds(value, bounds, ok):
    full = dict(low=None, high=None, low_inclusive=True, high_inclusive=True) | bounds
    assert validation._in_bounds(value, **full) is ok


def test_check_number_returns_the_kind_or_a_one_line_error():
    assert validation.check_number("--epochs", np.int64(3), kind=int, low=1) == 3
    assert type(validation.check_number("--epochs", np.int64(3), kind=int, low=1)) is int
    value = validation.check_number("--lr", 1, low=0, low_inclusive=False)
    assert value == 1.0 and type(value) is float
    assert validation.check_number("--lr", np.float32(0.5)) == 0.5
    assert validation.check_number("--p", 1, low=0, high=1) == 1.0  # bounds are inclusive unless said otherwise
    assert validation.check_number("--p", 0, low=0, high=1) == 0.0
    assert _raises(EcgcnnError, validation.check_number, "--epochs", 0, kind=int, low=1) == \
        "--epochs 0: expected a whole number >= 1"
    assert _raises(EcgcnnError, validation.check_number, "--epochs", 2.0, kind=int, low=1) == \
        "--epochs 2.0: expected a whole number >= 1"
    assert _raises(EcgcnnError, validation.check_number, "--epochs", True, kind=int) == \
        "--epochs True: expected a whole number"
    assert _raises(EcgcnnError, validation.check_number, "--lr", True) == "--lr True: expected a number"
    assert _raises(EcgcnnError, validation.check_number, "--lr", "0.1") == "--lr '0.1': expected a number"
    assert _raises(EcgcnnError, validation.check_number, "--lr", float("nan")) == "--lr nan: expected a number"
    assert _raises(EcgcnnError, validation.check_number, "--lr", float("inf"), low=0) == \
        "--lr inf: expected a number >= 0"
    assert _raises(EcgcnnError, validation.check_number, "--p", 1.0, low=0, high=1, high_inclusive=False) == \
        "--p 1.0: expected a value in [0, 1)"
    assert _raises(EcgcnnError, validation.check_number, "--p", -0.5, low=0, high=1, low_inclusive=False,
                   high_inclusive=False) == "--p -0.5: expected a value strictly between 0 and 1"


def test_argparse_types():
    parse_int = validation.argparse_type(int, low=1, high=10)
    assert parse_int.__name__ == "int" and parse_int("3") == 3 and type(parse_int("3")) is int
    assert _raises(argparse.ArgumentTypeError, parse_int, "1.5") == "expected a whole number, got '1.5'"
    assert _raises(argparse.ArgumentTypeError, parse_int, "11") == "expected a whole number from 1 to 10, got 11"
    parse_float = validation.argparse_type(float, low=0, high=1, high_inclusive=False)
    assert parse_float.__name__ == "float" and parse_float("0.25") == 0.25
    assert _raises(argparse.ArgumentTypeError, parse_float, "x") == "expected a number, got 'x'"
    assert _raises(argparse.ArgumentTypeError, parse_float, "1") == "expected a value in [0, 1), got 1"
    assert _raises(argparse.ArgumentTypeError, parse_float, "nan") == "expected a value in [0, 1), got nan"
    assert validation.argparse_type()("-7.5") == -7.5


def test_check_beats_shapes_values_and_layout():
    beats = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    out = validation.check_beats(beats, 4)
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"] and out.tolist() == beats.tolist()
    assert validation.check_beats(beats[:, None, :], 4).shape == (3, 4)
    assert validation.check_beats([[1, 2]], 2).tolist() == [[1.0, 2.0]]
    assert _raises(EcgcnnError, validation.check_beats, beats, 5) == "expected beats of shape (N, 5), got (3, 4)"
    assert _raises(EcgcnnError, validation.check_beats, np.zeros((3, 2, 4)), 4) == \
        "expected beats of shape (N, 4), got (3, 2, 4)"
    assert _raises(EcgcnnError, validation.check_beats, np.zeros(4), 4) == "expected beats of shape (N, 4), got (4,)"
    bad = np.zeros((4, 3))
    bad[2, 1], bad[3, 0] = np.nan, np.inf
    assert _raises(EcgcnnError, validation.check_beats, bad, 3) == \
        "beats contain NaN or infinite values (first in beat 3)"
    bad[2, 1] = 0
    assert _raises(EcgcnnError, validation.check_beats, bad, 3) == \
        "beats contain NaN or infinite values (first in beat 4)"


# ---------------------------------------------------------------------------------------------------------- fileio

@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_atomic_writers_write_exact_content_with_usual_permissions(tmp_path, umask_027):
    target = tmp_path / "sub" / "dir" / "a.bin"
    fileio.write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and target.stat().st_mode & 0o777 == 0o640
    assert fileio._umask() == 0o027 and fileio._umask() == 0o027  # reading the mask leaves it unchanged
    fileio.write_text_atomic(tmp_path / "t.txt", "héllo\n")
    assert (tmp_path / "t.txt").read_bytes() == "héllo\n".encode()
    fileio.write_json_atomic(tmp_path / "m.json", {"z": np.float32(0.5), "a": np.arange(3), "n": np.int64(2)})
    assert (tmp_path / "m.json").read_text() == '{\n  "z": 0.5,\n  "a": [\n    0,\n    1,\n    2\n  ],\n  "n": 2\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "sub", "t.txt"]
    assert _raises(TypeError, fileio.write_json_atomic, tmp_path / "x.json", {"s": {1}}) == \
        "cannot serialise set to JSON"
    assert not (tmp_path / "x.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "sub",
                                                                                                 "t.txt"]


def test_atomic_path_keeps_the_suffix_or_the_one_asked_for(tmp_path):
    with fileio.atomic_path(tmp_path / "plot.png") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".plot.png.") and tmp.suffix == ".png"
        tmp.write_text("x")
    with fileio.atomic_path(tmp_path / "model", suffix=".onnx") as tmp:
        assert tmp.suffix == ".onnx"
        tmp.write_text("y")
    assert (tmp_path / "plot.png").read_text() == "x" and (tmp_path / "model").read_text() == "y"


def test_check_output_file(tmp_path, monkeypatch):
    assert fileio.check_output_file(tmp_path / "out.json", "--out") == tmp_path / "out.json"
    assert fileio.check_output_file(str(tmp_path / "a" / "b" / "out.json"), "--out") == tmp_path / "a" / "b" / \
        "out.json"
    assert _raises(EcgcnnError, fileio.check_output_file, tmp_path, "--out") == \
        f"--out {tmp_path}: is a directory; expected a file name"
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    deep = blocker / "sub" / "out.json"
    assert _raises(EcgcnnError, fileio.check_output_file, deep, "--report") == \
        f"--report {deep}: {blocker} is not a directory"
    shallow = blocker / "out.json"
    assert _raises(EcgcnnError, fileio.check_output_file, shallow, "--report") == \
        f"--report {shallow}: {blocker} is not a directory"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path / "ro" else real_access(p, mode))
    (tmp_path / "ro").mkdir()
    assert _raises(EcgcnnError, fileio.check_output_file, tmp_path / "ro" / "new" / "x.pth", "-o") == \
        f"-o {tmp_path / 'ro' / 'new' / 'x.pth'}: directory {tmp_path / 'ro'} is not writable"


# -------------------------------------------------------------------------------------------------------- metadata

GOOD = {"model": "tcn", "labels": [1, 2, 3, 4, 5], "input_length": 140, "model_kwargs": {}, "preprocessing": {}}


def test_build_metadata_describes_the_model():
    meta = metadata.build_metadata("tcn", {"num_classes": 5}, {"recipe": "edge"}, 7, quantize="fp16")
    assert meta["model"] == "tcn" and meta["model_kwargs"] == {"num_classes": 5}
    assert meta["labels"] == [1, 2, 3, 4, 5] and meta["input_length"] == 140
    assert meta["class_names"] == ["N (normal)", "R-on-T PVC", "PVC", "SP or EB", "UB"]
    assert meta["preprocessing"] == preprocess.PREPROCESSING and meta["preprocessing"] is not preprocess.PREPROCESSING
    assert meta["best_epoch"] == 7 and meta["data_source"] == "" and meta["config"] == {"recipe": "edge"}
    assert meta["quantize"] == "fp16" and {"numpy", "python"} <= set(meta["versions"])
    default = metadata.build_metadata("vgg", {})
    assert default["best_epoch"] is None and default["data_source"] == "" and default["config"] is None
    assert metadata.check_metadata("p", default, metadata.REQUIRED_CHECKPOINT) is default


def test_check_metadata_names_the_missing_field():
    assert metadata.check_metadata("m.onnx", dict(GOOD)) == GOOD
    assert _raises(ModelFileError, metadata.check_metadata, "m.onnx", [1]) == \
        "m.onnx: ecgcnn metadata is not a JSON object"
    for key, kind in (("model", "str"), ("labels", "list"), ("input_length", "int")):
        broken = {k: v for k, v in GOOD.items() if k != key}
        assert _raises(ModelFileError, metadata.check_metadata, "m.onnx", broken) == \
            f"m.onnx: ecgcnn metadata field {key!r} is missing or not a {kind}"
    for bad in (True, "140", 140.0):
        assert _raises(ModelFileError, metadata.check_metadata, "m", {**GOOD, "input_length": bad}) == \
            "m: ecgcnn metadata field 'input_length' is missing or not a int"
    assert _raises(ModelFileError, metadata.check_metadata, "m", {**GOOD, "model_kwargs": []},
                   metadata.REQUIRED_CHECKPOINT) == "m: ecgcnn metadata field 'model_kwargs' is missing or not a dict"


def test_parse_metadata_json():
    assert metadata.parse_metadata_json("m", json.dumps(GOOD)) == GOOD
    assert metadata.parse_metadata_json("m", json.dumps(GOOD).encode()) == GOOD
    for empty in (None, "", b""):
        assert _raises(ModelFileError, metadata.parse_metadata_json, "m", empty) == \
            "m: model has no ecgcnn metadata (export it with 'ecgcnn export')"
    for bad in ("{", b"\xff\xfe\x00"):
        assert _raises(ModelFileError, metadata.parse_metadata_json, "m", bad) == \
            "m: ecgcnn metadata is not valid JSON"
    assert _raises(ModelFileError, metadata.parse_metadata_json, "m", "[]") == \
        "m: ecgcnn metadata is not a JSON object"


def test_run_name():
    assert metadata.run_name({"model": "tcn", "config": {"recipe": "edge"}}) == "edge"
    assert metadata.run_name({"model": "tcn", "config": {"recipe": None}}) == "tcn"
    assert metadata.run_name({"model": "tcn", "config": None}) == "tcn"
    assert metadata.run_name({"model": "tcn"}) == "tcn"


# ---------------------------------------------------------------------------------------------- formats and layout

def test_runtime_for_extension():
    assert [formats.runtime_for(p) for p in ("a.pth", "b.PT", "c.onnx", Path("d.TFLite"))] == \
        ["torch", "torch", "onnx", "tflite"]
    assert _raises(ModelFileError, formats.runtime_for, "m.txt") == \
        "m.txt: unknown model format '.txt'; expected one of .onnx, .pt, .pth, .tflite"
    assert _raises(ModelFileError, formats.runtime_for, "dir/model") == \
        "dir/model: unknown model format '(no extension)'; expected one of .onnx, .pt, .pth, .tflite"


def test_tflite_formats_and_table_names():
    assert [formats.tflite_format(q).name for q in ("none", "fp16", "int8", "int8-full")] == \
        ["tflite-fp32", "tflite-fp16", "tflite-int8", "tflite-int8-full"]
    assert _raises(ModelFileError, formats.tflite_format, "int4") == \
        "unknown quantisation mode 'int4'; expected one of none, fp16, int8, int8-full"
    assert formats.format_name("tflite") == "tflite-fp32"
    assert formats.format_name("tflite", "int8-full") == "tflite-int8-full"
    assert formats.format_name("torch") == "pytorch" and formats.format_name("torch", "fp16") == "pytorch"
    assert formats.format_name("onnx") == "onnx"


def test_artifact_layout(tmp_path):
    root = tmp_path / "seed0"
    assert layout.run_dir(str(root), "best") == root / "best"
    assert layout.checkpoint_path(root, "best") == root / "best" / "best_best.pth"
    assert layout.checkpoint_path(root, "tcn", "last") == root / "tcn" / "tcn_last.pth"
    assert layout.metrics_path(root, "tcn") == root / "tcn" / "metrics.json"
    assert layout.figure_path(root, "tcn", "confusion_matrix") == root / "tcn" / "tcn_confusion_matrix.png"
    assert layout.onnx_path(str(root), "edge") == root / "edge.onnx"
    assert layout.tflite_path(str(root), "edge") == root / "edge.tflite"
    assert layout.tflite_path(root, "edge", "int8-full") == root / "edge_int8_full.tflite"
    assert layout.run_paths(str(root), "edge") == {
        "pytorch": root / "edge" / "edge_best.pth", "onnx": root / "onnx" / "edge.onnx",
        "tflite-fp32": root / "tflite" / "edge.tflite", "tflite-fp16": root / "tflite" / "edge_fp16.tflite",
        "tflite-int8": root / "tflite" / "edge_int8.tflite",
        "tflite-int8-full": root / "tflite" / "edge_int8_full.tflite"}
    assert [layout.shipped_file_name("edge", f) for f in ("pytorch", "onnx", "tflite-int8-full")] == \
        ["edge.pth", "edge.onnx", "edge_int8_full.tflite"]
    assert layout.seed_root(str(tmp_path), 3) == tmp_path / "seed3"
