"""The novelty score: beats unlike the training beats are flagged, ordinary ones almost never.

Oracles: a family of beats that lies in a known low-dimensional subspace (so the residual of a member is known to be
~0 and that of an orthogonal shape is known to be large), and the official ECG5000 beats against a reference fitted
on the training beats (the flag rate on test beats of the same recording is measured, and must stay near the
quantile the threshold was set at).
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.annotate.pipeline import annotate_signal
from ecgcnn.core.novelty import fit_novelty, novelty_scores, unfamiliar
from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.evaluation.recut import stitch


def test_residual_is_the_distance_to_the_subspace():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 140)
    shapes = np.stack([np.sin(2 * np.pi * k * t) for k in (1, 2, 3)])
    beats = rng.standard_normal((400, 3)) @ shapes + 1e-3 * rng.standard_normal((400, 140))
    reference = fit_novelty(beats, components=3)
    member = np.array([0.5, -1.0, 2.0]) @ shapes
    stranger = np.cos(2 * np.pi * 17 * t)  # orthogonal to the three shapes
    residual, leverage = novelty_scores(np.stack([member, stranger]), reference)
    # independent: the stranger is orthogonal to the three shapes, so its residual is all of it (the mean is ~0)
    assert residual[1] == pytest.approx(np.mean(stranger ** 2), rel=0.05)
    assert residual[0] < 1e-4
    # leverage: the member's coordinates (0.5, -1, 2) against unit-variance training coordinates, in the shapes'
    # own scale (each shape has squared norm 70): T^2 = sum(c^2) up to the sampling of the variances
    assert leverage[0] == pytest.approx(0.25 + 1 + 4, rel=0.25)
    assert unfamiliar(np.stack([member, stranger]), reference).tolist() == [False, True]
    assert not unfamiliar(np.stack([member]), None).any()


def test_ordinary_beats_are_rarely_flagged(dataset):
    reference = fit_novelty(normalize_beats(dataset.x_train))
    rate = unfamiliar(normalize_beats(dataset.x_test), reference).mean()
    assert rate < 0.01  # the threshold is the training beats' 99.9th percentile; test beats: same patient
    flipped = unfamiliar(normalize_beats(-dataset.x_test[:200]), reference).mean()
    assert flipped > 0.9  # an inverted lead is nothing like the training beats


class Constant:
    """A predictor that always says class 0, with a novelty reference in its metadata."""

    labels = [1, 2]
    input_length = 140

    def __init__(self, reference):
        self.metadata = {"class_names": ["a", "b"], "novelty": reference}

    def predict_proba(self, beats):
        return np.tile(np.array([[1.0, 0.0]], np.float32), (len(beats), 1))


def test_annotate_flags_unfamiliar_beats_and_still_labels_them(dataset):
    """A recording of ordinary beats with ten ST-depressed beats among them: those come back
    labelled and flagged 'unfamiliar', the others unflagged (but for the ~0.1 % the threshold allows)."""
    x = dataset.x_train[dataset.index_train == 0][:60]
    n = np.arange(140)
    plateau = np.clip(np.minimum(n - 15, 105 - n) / 12.0, 0, 1)  # a deep, smooth ST depression
    strange = np.stack([-4 * np.exp(-0.5 * ((n - 3.35) / 1.5) ** 2) - 2.5 * np.sin(np.pi / 2 * plateau) ** 2
                        for _ in range(10)])
    beats = np.concatenate([x[:30], strange, x[30:]])
    reference = fit_novelty(normalize_beats(dataset.x_train))
    signal, r_peaks, order = stitch(beats, 250.0, (0.7, 0.9), seed=0)
    result = annotate_signal(signal, 250.0, Constant(reference))
    nearest = np.abs(result.positions[:, None] - r_peaks[None, :]).argmin(axis=1)
    source = order[nearest]
    is_strange = (source >= 30) & (source < 40)
    flags = result.flags
    classified = result.class_index >= 0
    assert (flags[is_strange & classified] == "unfamiliar").mean() >= 0.8
    assert (flags[~is_strange & classified] == "unfamiliar").mean() < 0.05
    assert (result.class_index[flags == "unfamiliar"] == 0).all()  # still labelled
    summary = result.summary()
    assert summary["unfamiliar"] == int((flags == "unfamiliar").sum())
    assert "unfamiliar" not in summary["rejected_by_reason"]
