"""Training on re-cut copies: the copies reach the fit, the novelty reference reaches the model file.

Oracles: the row counts a split must have (every beat, plus each recording's beats but its last, or the first as well
where its window would start before sample 0), and the checkpoint read back from disk."""

from __future__ import annotations

import numpy as np
import torch

from ecgcnn.runtimes.checkpoint import read_checkpoint
from ecgcnn.training import fit_on_subset, train
from ecgcnn.training import run as run_mod
from ecgcnn.training.config import TrainConfig


def _spy_on_fit_member(monkeypatch) -> dict:
    """What the training loop hands each member: its training and validation rows and all rows, filled in on the run."""
    seen = {}
    original = run_mod.fit_member

    def spy(job):
        seen["train"], seen["val"], seen["rows"] = len(job.train_idx), len(job.val_idx), len(job.labels)
        return original(job)

    monkeypatch.setattr(run_mod, "fit_member", spy)
    return seen


def test_train_with_recut_fits_on_the_copies_and_stores_a_novelty_reference(tmp_path, monkeypatch, dataset):
    seen = _spy_on_fit_member(monkeypatch)
    cfg = TrainConfig(model="base-cnn-small", epochs=1, seed=0, progress=False, recut=2, recut_noise=6.0,
                      output_dir=str(tmp_path))
    metrics = train(cfg)
    n_train, n_val = metrics["split"]["train"], metrics["split"]["val"]
    assert n_train + n_val == 500 and abs(n_val - 100) <= 2  # the dataset's beats, a 20 % validation split
    assert metrics["recut_rows"] == {"train": seen["train"] - n_train, "val": seen["val"] - n_val}
    # each side stitched twice: every beat but the last of a recording (and maybe the first) comes back
    assert n_train + 2 * (n_train - 2) <= seen["train"] <= n_train + 2 * (n_train - 1)
    assert n_val + 2 * (n_val - 2) <= seen["val"] <= n_val + 2 * (n_val - 1)
    assert seen["rows"] == seen["train"] + seen["val"]
    metadata = read_checkpoint(tmp_path / "base-cnn-small" / "base-cnn-small_best.pth")["metadata"]
    novelty = metadata["novelty"]
    assert novelty["beats"] == seen["rows"] and len(novelty["mean"]) == 140
    assert metadata["config"]["recut"] == 2 and metadata["config"]["recut_noise"] == 6.0


def test_nested_cv_inner_fit_recuts_only_its_subset(dataset):
    """fit_on_subset (the inner loop of nested CV) adds copies of the subset's beats only: the held-out fold's beats,
    made NaN here, never reach it, as copies or as neighbours in a stitched recording."""
    x = dataset.x_train.astype(np.float32).copy()
    subset = np.arange(0, 500, 2)
    x[1::2] = np.nan  # the held-out fold
    beats, labels = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(dataset.index_train)
    captured = {}
    original = run_mod.fit_member

    def spy(job):
        captured["rows"] = job.beats[np.concatenate([job.train_idx, job.val_idx])][:, 0].numpy()
        return original(job)

    run_mod.fit_member = spy
    try:
        fit_on_subset(TrainConfig(model="base-cnn-small", epochs=1, seed=0, progress=False, recut=1), beats, labels,
                      subset, None, torch.device("cpu"))
    finally:
        run_mod.fit_member = original
    rows = captured["rows"]
    assert len(rows) >= 250 + 246 and np.isfinite(rows).all()  # 200 + 50 beats, each side's copy minus 1-2


def test_train_with_tail_swaps_fits_on_the_copies_but_the_novelty_reference_holds_real_beats(tmp_path, monkeypatch,
                                                                                           dataset):
    seen = _spy_on_fit_member(monkeypatch)
    cfg = TrainConfig(model="base-cnn-small", epochs=1, seed=0, progress=False, recut=1, tail_swap=30,
                      output_dir=str(tmp_path))
    metrics = train(cfg)
    n_train, n_val = metrics["split"]["train"], metrics["split"]["val"]
    recut = metrics["recut_rows"]
    assert n_train + n_val == 500 and n_train - 2 <= recut["train"] <= n_train - 1  # one re-cut copy per side
    # one tail-swapped copy of every training row (the beats and their re-cut copies), none of validation rows
    assert metrics["tail_swap_rows"] == {"train": n_train + recut["train"], "val": 0}
    assert seen["train"] == 2 * (n_train + recut["train"]) and seen["val"] == n_val + recut["val"]
    metadata = read_checkpoint(tmp_path / "base-cnn-small" / "base-cnn-small_best.pth")["metadata"]
    assert metadata["novelty"]["beats"] == seen["rows"] - metrics["tail_swap_rows"]["train"]
    assert metadata["config"]["tail_swap"] == 30
