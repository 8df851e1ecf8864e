"""CLI surface: nonsensical flags, the seed's spellings, bad model files, help."""

import numpy as np
import pytest

from ecgcnn.cli import normalize_argv

from .conftest import assert_one_line_error, run_subprocess


@pytest.mark.parametrize("flags, fragment", [
    (["--epochs", "0"], "--epochs: expected a whole number >= 1, got 0"),
    (["--epochs", "ten"], "--epochs: expected a whole number, got 'ten'"),
    (["--lr", "-1"], "--lr: expected a positive number, got -1"),
    (["--lr", "nan"], "--lr: expected a positive number"),
    (["--val-fraction", "1.5"], "--val-fraction: expected a value strictly between 0 and 1, got 1.5"),
    (["--val-fraction", "0"], "--val-fraction: expected a value strictly between 0 and 1"),
    (["--batch-size", "0"], "--batch-size: expected a whole number >= 1, got 0"),
    (["--dropout", "1"], "--dropout: expected a value in [0, 1)"),
    (["--seed", "-3"], "--seed: expected a whole number >= 0"),
    (["--model", "resnet"], "invalid choice: 'resnet'"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
])
def test_nonsensical_train_flags(cli, tmp_path, flags, fragment):
    result = cli("train", "--output-dir", tmp_path, *flags)
    assert_one_line_error(result, fragment)
    assert not any(tmp_path.iterdir())  # nothing written


def test_batch_size_one_is_refused_by_the_config(cli, tmp_path):
    result = cli("train", "--output-dir", tmp_path, "--batch-size", "1")
    assert_one_line_error(result, "--batch-size 1: expected an integer >= 2")


def test_seed_underscore_spellings_are_accepted():
    assert normalize_argv(["train", "--data_dir", "/d", "--output_dir=/o", "--batch_size", "8", "x_y"]) == [
        "train", "--data-dir", "/d", "--output-dir=/o", "--batch-size", "8", "x_y"]


@pytest.mark.parametrize("suffix", [".pth", ".onnx"])
@pytest.mark.parametrize("content", ["random", "truncated-empty"])
def test_corrupt_model_files_are_one_line_errors(cli, tmp_path, suffix, content):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(np.random.default_rng(1).bytes(2048) if content == "random" else b"")
    beats = tmp_path / "beats.csv"
    beats.write_text(",".join(["0.1"] * 140) + "\n")
    result = cli("predict", path, "--input", beats)
    assert_one_line_error(result, str(path))
    result = cli("evaluate", path)
    assert_one_line_error(result, str(path))


def test_unknown_model_extension_and_missing_file(cli, tmp_path):
    result = cli("evaluate", tmp_path / "model.h5")
    assert_one_line_error(result, "unknown model format '.h5'")
    result = cli("evaluate", tmp_path / "missing.onnx")
    assert_one_line_error(result, "missing.onnx: model file not found")


def test_debug_shows_the_traceback(tmp_path):
    result = run_subprocess("--debug", "evaluate", tmp_path / "missing.pth")
    assert result.returncode != 0 and "Traceback" in result.stderr
    result = run_subprocess("evaluate", tmp_path / "missing.pth")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"ecgcnn: error: {tmp_path / 'missing.pth'}: model file not found"


def test_help_lists_every_command():
    result = run_subprocess("--help")
    for command in ("train", "evaluate", "predict", "summary", "export", "data"):
        assert command in result.stdout
