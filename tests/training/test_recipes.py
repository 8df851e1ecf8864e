"""Recipes: k-fold ensembles, augmentation, class-balanced loss, distillation, the ablation command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ecgcnn.cli import main
from ecgcnn.data.dataset import stratified_folds, stratified_split
from ecgcnn.runtimes.checkpoint import read_checkpoint
from ecgcnn.training import train
from ecgcnn.training.augment import Augment, augment_batch
from ecgcnn.training.config import RECIPES, TrainConfig, recipe_settings, run_config, with_explicit
from ecgcnn.training.loop import class_weights as _class_weights
from ecgcnn.training.run import splits_for

from ..conftest import assert_one_line_error, kill_after_checkpoint, run_subprocess, write_ucr

# ----------------------------------------------------------------------------------------------------- fast units

@pytest.mark.parametrize("folds", [2, 5])
def test_stratified_folds_partition_every_beat_once(dataset, folds):
    y = dataset.index_train
    splits = stratified_folds(y, folds, seed=3)
    held = np.concatenate([val for _, val in splits])
    assert sorted(held.tolist()) == list(range(len(y)))
    for train_idx, val_idx in splits:
        assert not set(train_idx) & set(val_idx) and len(train_idx) + len(val_idx) == len(y)
        for cls, count in enumerate(np.bincount(y)):  # each class spread evenly over the folds
            assert abs((y[val_idx] == cls).sum() - count / folds) < 1
    assert [v.tolist() for _, v in splits] == [v.tolist() for _, v in stratified_folds(y, folds, seed=3)]
    assert [v.tolist() for _, v in splits] != [v.tolist() for _, v in stratified_folds(y, folds, seed=4)]


def test_augmentation_is_seeded_and_shape_preserving():
    x = torch.randn(8, 1, 140)
    assert augment_batch(x, Augment(), torch.Generator().manual_seed(0)) is x  # off: untouched, no draws
    aug = Augment(jitter=0.03, scale=0.1, shift=5, window=0.1)
    a = augment_batch(x, aug, torch.Generator().manual_seed(1))
    b = augment_batch(x, aug, torch.Generator().manual_seed(1))
    c = augment_batch(x, aug, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    # a pure integer shift moves the beat and repeats the edge sample
    ramp = torch.arange(140.0).repeat(4, 1, 1)
    shifted = augment_batch(ramp, Augment(shift=3), torch.Generator().manual_seed(5))
    offsets = (ramp - shifted)[:, 0, 70]
    for row, offset in zip(shifted[:, 0], offsets.round().long().tolist(), strict=True):
        assert abs(offset) <= 3
        expected = (torch.arange(140.0) - offset).clamp(0, 139)
        torch.testing.assert_close(row, expected)


def test_class_weights_follow_the_power():
    y = torch.tensor([0] * 90 + [1] * 9 + [2])
    assert _class_weights(y, 3, 0.0) is None
    w = _class_weights(y, 3, 1.0)
    assert torch.allclose(w[0] * 90, w[1] * 9) and torch.allclose(w[1] * 9, w[2] * 1)
    counts = torch.tensor([90.0, 9.0, 1.0])
    assert torch.isclose((w * counts).sum() / counts.sum(), torch.tensor(1.0))  # mean weight per beat is 1
    w = _class_weights(y, 3, 0.5)
    assert torch.isclose(w[2] / w[0], torch.tensor(90.0 ** 0.5))


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_is_a_valid_training_config(name):
    config = TrainConfig(**recipe_settings(name)).validate()
    assert config.run_name == (name if name != "seed" else config.model)
    for key, value in RECIPES[name].items():  # every declared setting reaches the configuration
        assert getattr(config, key) == value, key


def test_unknown_recipe_and_bad_recipe_flags(cli, tmp_path):
    result = cli("train", "--recipe", "fastest", "--output-dir", tmp_path)
    assert result.code == 2 and "invalid choice" in result.err
    result = cli("train", "--recipe", "best", "--folds", "11", "--output-dir", tmp_path)
    assert_one_line_error(result, "--folds", "from 1 to 10", "11")
    result = cli("train", "--recipe", "best", "--jitter", "-1", "--output-dir", tmp_path)
    assert result.code == 2 and "--jitter" in result.err
    result = cli("train", "--recipe", "edge", "--epochs", "1", "--teacher", tmp_path / "best_best.pth",
                 "--output-dir", tmp_path / "nothing")
    assert_one_line_error(result, "best_best.pth", "not found")
    assert not (tmp_path / "nothing" / "edge" / "edge_best.pth").exists()


# -------------------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def recipe_runs(tmp_path_factory):
    """The cnn-ensemble recipe (the former best) cut down (2 folds, 2 epochs), then the edge recipe with
    distillation from it added."""

    root = tmp_path_factory.mktemp("recipes")
    assert main(["train", "--recipe", "cnn-ensemble", "--folds", "2", "--epochs", "2", "--seed", "1", "--output-dir",
                 str(root), "--no-progress"]) == 0
    assert main(["train", "--recipe", "edge", "--epochs", "2", "--seed", "1", "--output-dir", str(root),
                 "--teacher", str(root / "cnn-ensemble" / "cnn-ensemble_best.pth"), "--no-progress"]) == 0
    return root


@pytest.mark.slow
def test_cnn_ensemble_recipe_writes_an_ensemble_with_out_of_fold_validation(recipe_runs, cli, tmp_path, dataset):
    metrics = json.loads((recipe_runs / "cnn-ensemble" / "metrics.json").read_text())
    assert metrics["model"] == "ensemble" and metrics["recipe"] == "cnn-ensemble" and metrics["split"]["folds"] == 2
    config = metrics["config"]
    assert config["folds"] == 2 and config["epochs"] == 2  # explicit flags override the recipe ...
    # ... the rest stays
    assert config["jitter"] == RECIPES["cnn-ensemble"]["jitter"] and config["class_balance"] == 0.5
    assert [m["fold"] for m in metrics["members"]] == [1, 2]
    assert all(1 <= m["best_epoch"] <= 2 and len(m["history"]) == 2 for m in metrics["members"])
    # out-of-fold validation covers all 500 training beats
    assert 0 < metrics["val"]["accuracy"] <= 1 and metrics["split"]["train"] + metrics["split"]["val"] == 500
    payload = read_checkpoint(recipe_runs / "cnn-ensemble" / "cnn-ensemble_best.pth")
    assert payload["metadata"]["model"] == "ensemble"
    assert payload["metadata"]["model_kwargs"]["members"] == ["base-cnn", "base-cnn"]
    result = cli("evaluate", recipe_runs / "cnn-ensemble" / "cnn-ensemble_best.pth", "--json", tmp_path / "e.json")
    assert result.code == 0, result
    assert json.loads((tmp_path / "e.json").read_text())["accuracy"] == metrics["test"]["accuracy"]
    # one ONNX graph for the whole ensemble, verified against PyTorch by the exporter, same test accuracy
    result = cli("export", "onnx", recipe_runs / "cnn-ensemble" / "cnn-ensemble_best.pth", "--output-dir", tmp_path)
    assert result.code == 0, result
    result = cli("evaluate", tmp_path / "cnn-ensemble.onnx", "--json", tmp_path / "o.json")
    assert result.code == 0, result
    assert json.loads((tmp_path / "o.json").read_text())["accuracy"] == metrics["test"]["accuracy"]


@pytest.mark.slow
def test_edge_recipe_with_a_teacher_from_the_ensemble_run(recipe_runs):
    metrics = json.loads((recipe_runs / "edge" / "metrics.json").read_text())
    assert metrics["model"] == "base-cnn-small" and metrics["recipe"] == "edge"
    assert metrics["config"]["teacher"] == str(recipe_runs / "cnn-ensemble" / "cnn-ensemble_best.pth")
    assert metrics["config"]["class_balance"] == RECIPES["edge"]["class_balance"]
    assert len(metrics["history"]) == 2


@pytest.mark.slow
def test_distillation_changes_training_and_only_through_the_teacher(recipe_runs, tmp_path):
    common = dict(model="base-cnn-small", epochs=1, seed=2, progress=False, jitter=0.03)
    plain = train(TrainConfig(**common, output_dir=str(tmp_path / "a")))
    taught = train(TrainConfig(**common, output_dir=str(tmp_path / "b"),
                               teacher=str(recipe_runs / "cnn-ensemble" / "cnn-ensemble_best.pth")))
    assert plain["history"][0]["train_loss"] != taught["history"][0]["train_loss"]
    again = train(TrainConfig(**common, output_dir=str(tmp_path / "c"),
                              teacher=str(recipe_runs / "cnn-ensemble" / "cnn-ensemble_best.pth")))
    assert again["history"][0]["val_loss"] == taught["history"][0]["val_loss"]  # deterministic


@pytest.mark.slow
def test_ensemble_training_resumes_inside_its_second_fold(tmp_path):
    args = ["train", "--model", "base-cnn-small", "--folds", "2", "--epochs", "3", "--seed", "4", "--jitter", "0.03",
            "--no-progress"]
    reference = run_subprocess(*args, "--output-dir", tmp_path / "ref")
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "killed"
    kill_after_checkpoint(args, out, "fold 2/2 epoch   1/3", out / "base-cnn-small" / "base-cnn-small_last.pth",
                          lambda state: state["member"] == 1 and state["epoch"] == 1)
    resumed = run_subprocess(*args, "--output-dir", out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 1 of fold 2" in resumed.stdout
    ref = read_checkpoint(tmp_path / "ref" / "base-cnn-small" / "base-cnn-small_best.pth")["state_dict"]
    new = read_checkpoint(out / "base-cnn-small" / "base-cnn-small_best.pth")["state_dict"]
    assert ref.keys() == new.keys() and all(torch.equal(ref[k], new[k]) for k in ref)
    ref_metrics = json.loads((tmp_path / "ref" / "base-cnn-small" / "metrics.json").read_text())
    new_metrics = json.loads((out / "base-cnn-small" / "metrics.json").read_text())
    assert ref_metrics["val"] == new_metrics["val"] and ref_metrics["test"] == new_metrics["test"]


@pytest.mark.slow
def test_ablation_reports_validation_then_test(cli, tmp_path):
    result = cli("ablation", "--variants", "plain", "balanced", "--epochs", "1", "--outer-folds", "2",
                 "--output-dir", tmp_path / "out", "--results-dir", tmp_path / "res")
    assert result.code == 0, result
    summary = json.loads((tmp_path / "res" / "ablation.json").read_text())
    assert [r["key"] for r in summary["rows"]] == ["plain", "balanced"]
    for row in summary["rows"]:
        for key in ("val_accuracy", "val_macro_f1", "test_accuracy", "test_macro_f1"):
            assert 0.0 <= row[key] <= 1.0
    assert (tmp_path / "out" / "balanced" / "balanced_best.pth").is_file()
    assert "| + class-balanced loss" in (tmp_path / "res" / "ablation.md").read_text()
    result = cli("ablation", "--variants", "distilled", "--epochs", "1", "--output-dir", tmp_path / "o2",
                 "--results-dir", tmp_path / "r2")
    assert_one_line_error(result, "distils from 'ensemble-augmented'")
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_validation_only_ablation_never_reads_the_test_split(cli, tmp_path, official_tables):
    data = tmp_path / "data"
    data.mkdir()
    table = official_tables["train"]
    write_ucr(data / "ECG5000_TRAIN.txt", table[:, 1:], table[:, 0])
    (data / "ECG5000_TEST.txt").write_text("this is not a test split\n")  # any read of it would fail loudly
    threads = torch.get_num_threads()
    result = cli("ablation", "--validation-only", "--variants", "plain", "--epochs", "1", "--outer-folds", "2",
                 "--data-dir", data, "--output-dir", tmp_path / "out", "--results-dir", tmp_path / "res",
                 "--threads", "1")
    assert result.code == 0, result
    assert "| base-cnn, plain cross-entropy" in result.out and "not run" in result.out
    # the thread count the rows were trained on is in the command and the table; the caller's count comes back
    assert "--threads 1`" in result.out and "PyTorch trained on 1 CPU threads" in result.out
    assert torch.get_num_threads() == threads
    assert not (tmp_path / "out").exists() and not (tmp_path / "res").exists()


def test_an_explicit_epoch_count_is_exact_and_the_recipe_keeps_its_minimum_otherwise():
    assert RECIPES["edge"]["min_steps"] > 0
    assert run_config("edge", 0, "out").min_steps == RECIPES["edge"]["min_steps"]
    assert run_config("edge", 0, "out", epochs=2).min_steps == 0
    assert run_config("edge", 0, "out", epochs=2, min_steps=5).min_steps == 5
    assert with_explicit({"epochs": 80, "min_steps": 400}, {"class_balance": 1.0})["min_steps"] == 400


def test_the_edge_minimum_leaves_every_ecg5000_schedule_as_it_was(dataset):
    """The recipe's 80 epochs already give >= min_steps on ECG5000's training side and on every inner training side
    of the ablation's nested CV (each outer fold's beats split again), so min_steps changes nothing there."""
    cfg = run_config("edge", 0, "out")
    y = dataset.index_train
    sides = [train for train, _ in splits_for(cfg, y)]
    for outer_seed in (0, 1):  # the ablation's outer folds (seed + 7919), each split as a run splits its beats
        for subset, _ in stratified_folds(y, 5, outer_seed + 7919):
            sides.append(subset[stratified_split(y[subset], cfg.val_fraction, cfg.seed)[0]])
    for side in sides:
        steps = sum(1 for _ in range(0, len(side), cfg.batch_size))  # every batch here has >= 2 beats
        assert steps * cfg.epochs >= cfg.min_steps and cfg.epochs_for(steps) == cfg.epochs, len(side)
