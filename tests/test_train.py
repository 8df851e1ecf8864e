"""End-to-end: train each model briefly on the real data, then evaluate and predict from the checkpoint alone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ecgcnn.checkpoint import read_checkpoint

from .conftest import assert_one_line_error, kill_after_checkpoint, run_subprocess, write_ucr

MODELS = ["base-cnn", "vgg", "inception", "tcn"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One-epoch runs of all four models (shared by the tests below)."""
    from ecgcnn.train import TrainConfig, train

    root = tmp_path_factory.mktemp("outputs")
    for name in MODELS:
        train(TrainConfig(model=name, epochs=1, output_dir=str(root), progress=False, seed=0))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_train_writes_the_four_artifacts(trained, name):
    out = trained / name
    for filename in (f"{name}_best.pth", f"{name}_training_curves.png", f"{name}_confusion_matrix.png",
                     "metrics.json"):
        assert (out / filename).is_file() and (out / filename).stat().st_size > 0, filename
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["seed"] == 0 and metrics["epochs"] == 1
    assert metrics["best_epoch"] == 1
    assert metrics["split"] == {"train": 401, "val": 99, "folds": 1, "test": 4500}
    for part in ("val", "test"):
        assert 0.0 <= metrics[part]["accuracy"] <= 1.0 and 0.0 <= metrics[part]["macro_f1"] <= 1.0
    per_class = metrics["test"]["per_class"]
    assert [c["support"] for c in per_class] == [2627, 1590, 86, 175, 22]
    assert {"precision", "recall", "f1"} <= set(per_class[0])
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".*pth*"))  # no temporaries left
    payload = read_checkpoint(out / f"{name}_best.pth")
    meta = payload["metadata"]
    assert meta["model"] == name and meta["labels"] == [1, 2, 3, 4, 5] and meta["input_length"] == 140
    assert meta["preprocessing"]["name"] == "znorm-per-beat"
    assert meta["metrics"]["test"]["accuracy"] == metrics["test"]["accuracy"]
    assert {"torch", "numpy", "ecgcnn", "python"} <= set(meta["versions"])


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_evaluate_and_predict_from_the_checkpoint_alone(trained, name, cli, tmp_path, dataset):
    checkpoint = trained / name / f"{name}_best.pth"
    metrics = json.loads((trained / name / "metrics.json").read_text())
    result = cli("evaluate", checkpoint, "--json", tmp_path / "eval.json")
    assert result.code == 0, result
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["accuracy"] == metrics["test"]["accuracy"]
    assert evaluated["confusion_matrix"] == metrics["test"]["confusion_matrix"]
    assert "macro avg" in result.out and "weighted avg" in result.out

    beats = tmp_path / "beats.csv"
    beats.write_text("\n".join(",".join(f"{v:.8f}" for v in row) for row in dataset.x_test[:7]) + "\n")
    result = cli("predict", checkpoint, "--input", beats, "--output", tmp_path / "pred.csv")
    assert result.code == 0, result
    lines = (tmp_path / "pred.csv").read_text().strip().splitlines()
    assert lines[0].split(",")[:3] == ["row", "predicted_label", "predicted_class"]
    assert len(lines) == 8
    probabilities = np.array([[float(v) for v in line.split(",")[-5:]] for line in lines[1:]])
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-4)


def _state(path):
    return read_checkpoint(path)["state_dict"]


@pytest.mark.slow
def test_test_labels_cannot_influence_training(tmp_path, official_tables):
    """Same seed, test labels permuted: the chosen checkpoint and epoch must be identical."""
    rng = np.random.default_rng(0)
    runs = {}
    for variant in ("original", "permuted"):
        data_dir = tmp_path / f"data_{variant}"
        data_dir.mkdir()
        train_table, test_table = official_tables["train"], official_tables["test"]
        write_ucr(data_dir / "ECG5000_TRAIN.txt", train_table[:, 1:], train_table[:, 0])
        labels = test_table[:, 0] if variant == "original" else rng.permutation(test_table[:, 0])
        write_ucr(data_dir / "ECG5000_TEST.txt", test_table[:, 1:], labels)
        from ecgcnn.train import TrainConfig, train

        out = tmp_path / f"out_{variant}"
        runs[variant] = train(TrainConfig(model="base-cnn", epochs=2, data_dir=str(data_dir), output_dir=str(out),
                                          seed=7, progress=False))
        runs[variant]["state"] = _state(out / "base-cnn" / "base-cnn_best.pth")
    original, permuted = runs["original"], runs["permuted"]
    assert original["best_epoch"] == permuted["best_epoch"]
    for key, value in original["state"].items():
        assert torch.equal(value, permuted["state"][key]), key

    def curves(run):
        return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in run["history"]]

    assert curves(original) == curves(permuted)
    # the permutation did reach the scoring: same predictions, different confusion matrices
    assert original["test"]["confusion_matrix"] != permuted["test"]["confusion_matrix"]


@pytest.mark.slow
def test_second_training_on_the_same_directory_is_refused(tmp_path, cli):
    lock = tmp_path / "tcn" / ".ecgcnn.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        result = cli("train", "--model", "tcn", "--epochs", "1", "--output-dir", tmp_path)
        assert_one_line_error(result, "another training", str(holder.pid))
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its stale lock is taken over
    result = cli("train", "--model", "tcn", "--epochs", "1", "--output-dir", tmp_path, "--no-progress")
    assert result.code == 0, result
    assert not lock.exists()


@pytest.mark.slow
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    args = ["train", "--model", "tcn", "--epochs", "4", "--seed", "3", "--no-progress"]
    reference = run_subprocess(*args, "--output-dir", tmp_path / "ref")
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    kill_after_checkpoint(args, out, "epoch   2/4", out / "tcn" / "tcn_last.pth", lambda state: state["epoch"] == 2)
    assert not (out / "tcn" / "tcn_best.pth").exists()
    resumed = run_subprocess(*args, "--output-dir", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 2" in resumed.stdout
    for key, value in _state(tmp_path / "ref" / "tcn" / "tcn_best.pth").items():
        assert torch.equal(value, _state(out / "tcn" / "tcn_best.pth")[key]), key
    ref_metrics = json.loads((tmp_path / "ref" / "tcn" / "metrics.json").read_text())
    new_metrics = json.loads((out / "tcn" / "metrics.json").read_text())
    for volatile in ("wall_time_s", "history", "config"):
        ref_metrics.pop(volatile), new_metrics.pop(volatile)
    assert ref_metrics == new_metrics


def test_resume_without_a_last_checkpoint(tmp_path, cli):
    result = cli("train", "--model", "tcn", "--epochs", "1", "--output-dir", tmp_path, "--resume")
    assert_one_line_error(result, "nothing to resume")
