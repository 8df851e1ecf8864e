"""End-to-end: train each model briefly on the real data, then evaluate and predict from the checkpoint alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ecgcnn.core.errors import EcgcnnError
from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.data.dataset import DataSpec, load_dataset
from ecgcnn.models import build_model
from ecgcnn.runtimes.checkpoint import model_from_checkpoint, read_checkpoint
from ecgcnn.training import run as run_module
from ecgcnn.training import train
from ecgcnn.training.config import TrainConfig
from ecgcnn.training.loop import MemberJob, fit_member
from ecgcnn.training.run import model_kwargs_for

from ..conftest import assert_one_line_error, kill_after_checkpoint, run_subprocess, write_ucr

MODELS = ["base-cnn", "vgg", "inception", "tcn"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One-epoch runs of all four models (shared by the tests below)."""

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
    assert metrics["best_epoch"] == 1 and len(metrics["history"]) == 1
    assert metrics["split"] == {"train": 401, "val": 99, "folds": 1, "test": 4500}
    for part in ("val", "test"):
        assert 0.0 <= metrics[part]["accuracy"] <= 1.0 and 0.0 <= metrics[part]["macro_f1"] <= 1.0
    per_class = metrics["test"]["per_class"]
    assert [c["support"] for c in per_class] == [2627, 1590, 86, 175, 22]
    assert {"precision", "recall", "f1"} <= set(per_class[0])
    # atomic writes leave no temporary (".<name>.<random><suffix>") behind; only the run lock's files may remain
    assert [p.name for p in out.glob(".*") if not p.name.startswith(".ecgcnn.lock")] == []
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
    assert lines[0].split(",")[:4] == ["row", "line", "predicted_label", "predicted_class"]
    assert len(lines) == 8
    probabilities = np.array([[float(v) for v in line.split(",")[4:9]] for line in lines[1:]])
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-4)
    # the CSV says what the model itself says, beat by beat
    model, _ = model_from_checkpoint(checkpoint)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(normalize_beats(dataset.x_test[:7]))[:, None, :]), 1)
    np.testing.assert_allclose(probabilities, expected.numpy(), atol=1e-5)
    assert [int(line.split(",")[2]) for line in lines[1:]] == (expected.argmax(1).numpy() + 1).tolist()


def _state(path):
    return read_checkpoint(path)["state_dict"]


@pytest.mark.slow
def test_test_labels_cannot_influence_training(tmp_path, official_tables):
    """Same seed, test beats replaced by random values and test labels permuted: the chosen checkpoint, epoch and
    curves must be identical."""
    rng = np.random.default_rng(0)
    runs = {}
    for variant in ("original", "permuted"):
        data_dir = tmp_path / f"data_{variant}"
        data_dir.mkdir()
        train_table, test_table = official_tables["train"], official_tables["test"]
        write_ucr(data_dir / "ECG5000_TRAIN.txt", train_table[:, 1:], train_table[:, 0])
        labels = test_table[:, 0] if variant == "original" else rng.permutation(test_table[:, 0])
        beats = test_table[:, 1:] if variant == "original" else rng.standard_normal(test_table[:, 1:].shape)
        write_ucr(data_dir / "ECG5000_TEST.txt", beats, labels)

        out = tmp_path / f"out_{variant}"
        runs[variant] = train(TrainConfig(model="base-cnn", epochs=2, data=DataSpec(data_dir=str(data_dir)),
                                          output_dir=str(out), seed=7, progress=False))
        runs[variant]["state"] = _state(out / "base-cnn" / "base-cnn_best.pth")
    original, permuted = runs["original"], runs["permuted"]
    assert original["best_epoch"] == permuted["best_epoch"]
    for key, value in original["state"].items():
        assert torch.equal(value, permuted["state"][key]), key

    def curves(run):
        return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in run["history"]]

    assert curves(original) == curves(permuted)
    # the garbage did reach the scoring, and only the scoring
    assert original["test"]["confusion_matrix"] != permuted["test"]["confusion_matrix"]


@pytest.mark.slow
def test_second_training_on_the_same_directory_is_refused(tmp_path, cli):
    lock = tmp_path / "tcn" / ".ecgcnn.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", f"from ecgcnn.training.lock import RunLock; import time\n"
                               f"with RunLock({str(lock.parent)!r}):\n    time.sleep(60)"])
    try:
        for _ in range(200):  # wait until the holder owns the OS lock
            if (lock.parent / ".ecgcnn.lock.owner").exists():
                break
            time.sleep(0.05)
        result = cli("train", "--model", "tcn", "--epochs", "1", "--output-dir", tmp_path)
        assert_one_line_error(result, "another training", str(holder.pid))
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: an OS lock dies with its process, whatever files it left
    assert (lock.parent / ".ecgcnn.lock.owner").exists()
    result = cli("train", "--model", "tcn", "--epochs", "1", "--output-dir", tmp_path, "--no-progress")
    assert result.code == 0, result


@pytest.mark.slow
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    """Killed after epoch 1 and after epoch 3 of 4 (before and after the chosen epoch of the reference run): the
    resumed run gives the uninterrupted run's every epoch (losses, accuracies, learning rate) and its weights."""
    args = ["train", "--model", "tcn", "--epochs", "4", "--seed", "3", "--no-progress"]
    reference = run_subprocess(*args, "--output-dir", tmp_path / "ref")
    assert reference.returncode == 0, reference.stderr
    ref_metrics = json.loads((tmp_path / "ref" / "tcn" / "metrics.json").read_text())
    assert 1 < ref_metrics["best_epoch"] <= 3, ref_metrics["best_epoch"]  # the kills fall on both sides of it

    def epochs(metrics):
        return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in metrics["history"]]

    for killed_after in (1, 3):
        out = tmp_path / f"killed{killed_after}"
        kill_after_checkpoint(args, out, f"epoch   {killed_after}/4", out / "tcn" / "tcn_last.pth",
                              lambda state, after=killed_after: state["epoch"] == after)
        resumed = run_subprocess(*args, "--output-dir", out, "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert f"resuming after epoch {killed_after}" in resumed.stdout
        for key, value in _state(tmp_path / "ref" / "tcn" / "tcn_best.pth").items():
            assert torch.equal(value, _state(out / "tcn" / "tcn_best.pth")[key]), key
        new_metrics = json.loads((out / "tcn" / "metrics.json").read_text())
        assert len(epochs(new_metrics)) == 4 and epochs(new_metrics) == epochs(ref_metrics)
        for volatile in ("wall_time_s", "history", "config"):
            new_metrics.pop(volatile)
        assert new_metrics == {k: v for k, v in ref_metrics.items() if k not in ("wall_time_s", "history", "config")}


def test_resume_without_a_last_checkpoint(tmp_path, cli):
    result = cli("train", "--model", "tcn", "--epochs", "1", "--output-dir", tmp_path, "--resume")
    assert_one_line_error(result, "nothing to resume")


def _tiny_data(tmp_path, official_tables, test_text=None):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_ucr(data_dir / "ECG5000_TRAIN.txt", official_tables["train"][:, 1:], official_tables["train"][:, 0])
    if test_text is not None:
        (data_dir / "ECG5000_TEST.txt").write_text(test_text)
    return data_dir


@pytest.mark.parametrize("test_text, fragment", [(None, "missing ECG5000_TEST"),
                                                 ("1 0.5 x\n", "ECG5000_TEST.txt, line 1")])
def test_a_broken_test_file_fails_before_training(tmp_path, official_tables, cli, test_text, fragment):
    data_dir = _tiny_data(tmp_path, official_tables, test_text)
    result = cli("train", "--model", "base-cnn-small", "--epochs", "3", "--data-dir", data_dir, "--output-dir",
                 tmp_path / "out", "--no-progress")
    assert_one_line_error(result, fragment)
    assert "epoch" not in result.out  # not a single epoch ran
    assert not list((tmp_path / "out").rglob("*.pth"))


def test_test_beats_are_loaded_only_after_the_model_is_final(tmp_path, monkeypatch):
    """A spy on the dataset loader: the first load that returns test beats comes after the last member's fit."""

    events = []
    real_load, real_fit = run_module.data_mod.load_dataset, run_module.fit_member

    def spy_load(*args, **kwargs):
        dataset = real_load(*args, **kwargs)
        events.append("test beats" if len(dataset.index_test) else "train beats")
        return dataset

    def spy_fit(job):
        events.append("fit")
        return real_fit(job)

    monkeypatch.setattr(run_module.data_mod, "load_dataset", spy_load)
    monkeypatch.setattr(run_module, "fit_member", spy_fit)
    run_module.train(TrainConfig(model="base-cnn-small", epochs=1, folds=2, output_dir=str(tmp_path), seed=0,
                                 progress=False))
    assert events == ["train beats", "fit", "fit", "test beats"]


@pytest.mark.parametrize("setting", [{"class_balance": 0.5}, {"jitter": 0.03}, {"scale": 0.1}, {"shift": 5},
                                     {"label_smoothing": 0.1}])
def test_each_technique_reaches_the_training_loss(setting):
    """One epoch with a technique on vs off from the same seed: the training loss must differ."""

    dataset = load_dataset(load_test=False)
    beats = torch.from_numpy(normalize_beats(dataset.x_train[:120]))[:, None, :]
    labels = torch.from_numpy(dataset.index_train[:120])
    losses = []
    for cfg in (TrainConfig(model="base-cnn-small", epochs=1, seed=0, progress=False),
                TrainConfig(model="base-cnn-small", epochs=1, seed=0, progress=False, **setting)):
        job = MemberJob(cfg, 0, {"num_classes": 5, "in_channels": 1, "dropout": 0.3}, beats, labels,
                        np.arange(100), np.arange(100, 120), torch.device("cpu"))
        losses.append(fit_member(job)["history"][0]["train_loss"])
    assert losses[0] != losses[1]


def test_refit_trains_the_chosen_epoch_count_on_all_training_beats(tmp_path, monkeypatch):
    jobs, real_fit = [], run_module.fit_member

    def spy_fit(job):
        result = real_fit(job)
        jobs.append((len(job.train_idx), len(job.val_idx), job.refit_epochs, result["best_epoch"]))
        return result

    monkeypatch.setattr(run_module, "fit_member", spy_fit)
    metrics = run_module.train(TrainConfig(model="base-cnn-small", epochs=3, refit=True, output_dir=str(tmp_path),
                                           seed=0, progress=False))
    (chosen_train, chosen_val, none, best_epoch), (all_train, no_val, refit_epochs, last) = jobs
    assert (chosen_train + chosen_val, none) == (500, None)
    assert (all_train, no_val, refit_epochs, last) == (500, 0, best_epoch, best_epoch)
    assert metrics["best_epoch"] == best_epoch and metrics["config"]["refit"] is True
    with pytest.raises(EcgcnnError, match="--refit with --folds"):
        TrainConfig(refit=True, folds=5).validate()


def test_random_kernel_models_draw_their_kernels_from_the_run_seed():
    assert "seed" not in model_kwargs_for(TrainConfig(model="base-cnn", seed=3), 5)
    kwargs = [model_kwargs_for(TrainConfig(model="hydra", seed=seed), 5) for seed in (3, 4)]
    assert [k["seed"] for k in kwargs] == [3, 4]
    first, second = (build_model("hydra", **k).state_dict() for k in kwargs)
    kernels = [key for key in first if "feature" not in key and "head" not in key]
    assert kernels and any(not torch.equal(first[key], second[key]) for key in kernels)


@pytest.mark.slow
def test_a_seed_and_a_thread_count_give_the_same_network_bit_for_bit(tmp_path):
    """--threads N: the run trains on N PyTorch threads, records them, and gives the caller's count back; two runs
    with the same seed and count are equal to the last bit (what the ablation's reruns rely on)."""
    before = torch.get_num_threads()
    weights = {}
    for name, threads in (("a", 2), ("b", 2), ("c", 1)):
        metrics = train(TrainConfig(model="base-cnn-small", epochs=2, output_dir=str(tmp_path / name), progress=False,
                                    seed=0, threads=threads))
        assert metrics["torch_threads"] == threads and metrics["config"]["threads"] == threads
        assert torch.get_num_threads() == before
        weights[name] = read_checkpoint(tmp_path / name / "base-cnn-small" / "base-cnn-small_best.pth")["state_dict"]
    first, again = weights["a"], weights["b"]
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert train(TrainConfig(model="base-cnn-small", epochs=1, output_dir=str(tmp_path / "d"), progress=False,
                             seed=0))["torch_threads"] == before  # 0: PyTorch's own count, untouched
