"""The full-INT8 export's held-out twin (ecgcnn.workflows.held_out): which models get one, on which beats it is
fitted, and that ``ecgcnn export tflite --quantize int8-full`` runs it.

Expected values: per-class counts of the stratified rule worked out here, a Hydra fitted here on exactly the beats the
twin says it was fitted on (its logits against the twin's ONNX file's), whole groups on one side, and the written
file's own agreement with ONNX Runtime on the held-out beats, counted here."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.models import build_model
from ecgcnn.runtimes.checkpoint import save_checkpoint
from ecgcnn.runtimes.metadata import build_metadata
from ecgcnn.runtimes.onnx import OnnxPredictor
from ecgcnn.runtimes.tflite import TFLitePredictor
from ecgcnn.training.config import run_config
from ecgcnn.training.run import model_kwargs_for
from ecgcnn.workflows.held_out import TWIN_FRACTION, held_out_check, twin_config, twin_split

BEATS = 250


@pytest.fixture(scope="module")
def small(dataset):
    """Every other ECG5000 training beat (the file is sorted by class: all five classes) as a dataset of its own."""
    small = dataclasses.replace(dataset, x_train=dataset.x_train[::2], index_train=dataset.index_train[::2])
    assert len(small.x_train) == BEATS and len(set(small.index_train.tolist())) == 5
    return small


def _checkpoint(path, data, recipe: str = "best", **settings):
    """A ``best`` checkpoint as ``ecgcnn train --recipe best`` writes it: Hydra fitted on every beat of ``data``."""
    cfg = dataclasses.replace(run_config(recipe, 0, str(path.parent)), **settings)
    kwargs = model_kwargs_for(cfg, data.num_classes, data.length)
    model = build_model(cfg.model, **kwargs).eval()
    if hasattr(model, "fit_closed_form"):
        model.fit_closed_form(torch.from_numpy(normalize_beats(data.x_train)).unsqueeze(1),
                              torch.from_numpy(data.index_train))
    metadata = build_metadata(cfg.model, kwargs, cfg.as_dict(), None, data.model_fields())
    return save_checkpoint(path, model, metadata)


@pytest.mark.fast
def test_only_a_closed_form_model_refit_on_every_beat_gets_a_twin(tmp_path, small):
    best = _checkpoint(tmp_path / "best.pth", small)
    metadata = torch.load(best, weights_only=True)["metadata"]
    assert twin_config(metadata).model == "hydra"
    assert twin_config({**metadata, "config": {**metadata["config"], "folds": 5}}) is None  # every beat in a member
    assert twin_config({**metadata, "config": {**metadata["config"], "refit": False}}) is None  # has validation beats
    edge = run_config("edge", 0, str(tmp_path)).as_dict()
    assert twin_config({"model": "base-cnn-small", "model_kwargs": {"num_classes": 5}, "config": edge}) is None


@pytest.mark.fast
def test_the_split_holds_out_a_fifth_of_each_class_or_whole_groups(small):
    fitted, held, _ = twin_split(small, seed=0)
    assert sorted(np.concatenate([fitted, held]).tolist()) == list(range(BEATS))
    for c, n in enumerate(np.bincount(small.index_train)):
        if n:
            assert np.sum(small.index_train[held] == c) == min(round(TWIN_FRACTION * n), n - 1)
    groups = np.repeat(np.array([f"r{i}" for i in range(10)]), BEATS // 10)
    fitted, held, how = twin_split(dataclasses.replace(small, groups_train=groups), seed=0)
    assert not set(groups[fitted]) & set(groups[held]) and len(held) >= TWIN_FRACTION * BEATS and "groups" in how


def test_the_twin_is_the_recipe_fitted_on_its_beats_only(tmp_path, small):
    checkpoint = _checkpoint(tmp_path / "best.pth", small)
    with held_out_check(checkpoint, small, log=lambda message: None) as twin:
        assert twin is not None and len(twin.fit_beats) + len(twin.beats) == BEATS
        fitted = np.flatnonzero([any(np.array_equal(b, f) for f in twin.fit_beats) for b in small.x_train])
        held = np.setdiff1d(np.arange(BEATS), fitted)
        assert len(fitted) == len(twin.fit_beats) and np.array_equal(small.x_train[held], twin.beats)
        reference = build_model("hydra", **model_kwargs_for(twin_config(torch.load(
            checkpoint, weights_only=True)["metadata"]), small.num_classes, small.length))
        reference.fit_closed_form(torch.from_numpy(normalize_beats(small.x_train[fitted])).unsqueeze(1),
                                  torch.from_numpy(small.index_train[fitted]))
        with torch.no_grad():
            expected = reference.eval()(torch.from_numpy(normalize_beats(twin.beats)).unsqueeze(1)).numpy()
        actual = OnnxPredictor(twin.onnx).logits(normalize_beats(twin.beats))
        np.testing.assert_allclose(actual, expected, atol=1e-3 * max(1.0, np.abs(expected).max()))
        onnx_file = twin.onnx
    assert not onnx_file.exists()  # the twin lives while the context does


def test_a_network_is_checked_on_its_own_validation_beats(tmp_path, small):
    checkpoint = _checkpoint(tmp_path / "edge.pth", small, recipe="edge")
    logs: list[str] = []
    with held_out_check(checkpoint, small, log=logs.append) as held_out:
        assert held_out is not None and held_out.onnx is None  # no twin: the file itself is gated
        held = np.flatnonzero([any(np.array_equal(b, h) for h in held_out.beats) for b in small.x_train])
        assert len(held) == len(held_out.beats) and len(held_out.fit_beats) + len(held) == BEATS
        for c, n in enumerate(np.bincount(small.index_train)):  # the run's 20 % validation split, per class
            assert np.sum(small.index_train[held] == c) == min(round(0.2 * n), n - 1)
        assert held_out.how.startswith(f"its validation beats, {len(held)} of the {BEATS} training beats")
    # other data than the model was trained on: its validation beats are unknown there
    other = dataclasses.replace(small, x_train=small.x_train[:-5], index_train=small.index_train[:-5])
    with held_out_check(checkpoint, other, log=logs.append) as held_out:
        assert held_out is None
    # refit on every beat after the epoch choice: its validation beats are in its weights
    with held_out_check(_checkpoint(tmp_path / "refit.pth", small, recipe="edge", refit=True), small,
                        log=logs.append) as held_out:
        assert held_out is None
    assert logs == ["full INT8 held-out check: skipped (its validation beats are known only on the data it was "
                    "trained on)", "full INT8 held-out check: skipped (refit on every training beat after its epoch "
                                   "was chosen)"]


@pytest.mark.slow
def test_export_tflite_int8_full_runs_the_held_out_check(cli, tmp_path, small):
    pytest.importorskip("onnx2tf")
    checkpoint = _checkpoint(tmp_path / "best.pth", small)
    beats = tmp_path / "train.tsv"
    beats.write_text("\n".join("\t".join([str(int(y)), *(f"{v:.7g}" for v in x)])
                               for x, y in zip(small.x_train, small.y_train, strict=True)) + "\n")
    result = cli("export", "tflite", checkpoint, "--quantize", "int8-full", "--train", beats, "--test-fraction",
                 "0.01", "--output-dir", tmp_path / "out")
    assert result.code == 0, result.err[-2000:]
    assert "full INT8 held-out check: a twin (its recipe refit on" in result.out
    path = tmp_path / "out" / "best_int8_full.tflite"
    figures = TFLitePredictor(path).metadata["held_out"]
    trained_on = len(small.x_train) - round(0.01 * len(small.x_train))  # about: the stratified 1 % is per class
    assert abs(figures["beats"] - TWIN_FRACTION * trained_on) <= 5 and figures["agreement"] >= 0.95
    assert figures["how"].startswith("its recipe refit on") and "stratified by class, seed 0" in figures["how"]
