"""The novelty score: beats unlike the training beats are flagged, ordinary ones almost never.

Oracles: a family of beats that lies in a known low-dimensional subspace (so the residual of a member is known to be
~0 and that of an orthogonal shape is known to be large), and the official ECG5000 beats against a reference fitted
on the training beats (the flag rate on test beats of the same recording is measured, and must stay near the
quantile the threshold was set at).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcnn.annotate.pipeline import annotate_signal
from ecgcnn.annotate.windows import beat_windows
from ecgcnn.core.novelty import fit_novelty, novelty_flags, novelty_scores, residual_ratio, unfamiliar
from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.evaluation.recut import recording_limit, recording_reference, recut_windows, stitch


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


def _bin_means(beats: np.ndarray, points: int) -> np.ndarray:
    """Sample i of L goes to bin floor(i * points / L); each bin's mean, by a loop."""
    length = beats.shape[1]
    bins = np.arange(length) * points // length
    return np.stack([beats[:, bins == j].mean(axis=1) for j in range(points)], axis=1)


@pytest.mark.parametrize("length", [560, 1639])
def test_long_beats_are_scored_on_140_points(length):
    """A reference of beats longer than 140 samples holds 140-point shapes (about as many numbers as ECG5000's), and
    its scores are those of a PCA of the bin means, computed here with NumPy's SVD."""
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, length)
    shapes = np.stack([np.sin(2 * np.pi * k * t) for k in (1, 2, 3)])
    beats = rng.standard_normal((300, 3)) @ shapes + 0.05 * rng.standard_normal((300, length))
    reference = fit_novelty(beats, components=3)
    assert len(reference["mean"]) == 140 and np.shape(reference["basis"]) == (3, 140)
    short = fit_novelty(_bin_means(beats, 140), components=3)
    assert len(json.dumps(reference)) <= len(json.dumps(short)) + 200
    binned = _bin_means(beats, 140)
    mean = binned.mean(axis=0)
    _, _, vt = np.linalg.svd(binned - mean, full_matrices=False)
    probes = np.stack([np.array([0.5, -1.0, 2.0]) @ shapes, np.cos(2 * np.pi * 9 * t), -beats[0]])
    centred = _bin_means(probes, 140) - mean
    coordinates = centred @ vt[:3].T
    expected = np.mean((centred - coordinates @ vt[:3]) ** 2, axis=1)
    residual, _ = novelty_scores(probes, reference)
    np.testing.assert_allclose(residual, expected, rtol=1e-3, atol=1e-6)  # the reference is rounded to 5 decimals
    assert unfamiliar(probes, reference).tolist() == [False, True, False]
    with pytest.raises(ValueError, match="beats of 100 samples cannot be scored against a reference of 140 points"):
        novelty_scores(beats[:, :100], reference)


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


def test_median_residual_and_the_recording_ratio():
    """The median residual is the training beats' median distance to the 3-D subspace, computed here by projecting
    on an orthonormal basis of the three known shapes; a recording's ratio is its beats' median over it."""
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, 140)
    shapes = np.stack([np.sin(2 * np.pi * k * t) for k in (1, 2, 3)])
    beats = rng.standard_normal((600, 3)) @ shapes + 0.05 * rng.standard_normal((600, 140))
    beats[:60] += 0.5 * rng.standard_normal((60, 140))  # a tenth of the beats far out: the mean would follow them
    reference = fit_novelty(beats, components=3)
    centred = beats - beats.mean(axis=0)
    basis, _ = np.linalg.qr(shapes.T)  # the known subspace, orthonormal (140, 3)
    expected = np.median(np.mean((centred - centred @ basis @ basis.T) ** 2, axis=1))
    assert reference["median_residual"] == pytest.approx(expected, rel=0.05)  # the fitted subspace: near the true one
    assert expected == pytest.approx(0.05 ** 2, rel=0.1)  # white noise of std 0.05 outside a 3-D subspace
    noisier = rng.standard_normal((200, 3)) @ shapes + 0.15 * rng.standard_normal((200, 140))
    flagged, residual = novelty_flags(noisier, reference)
    assert residual_ratio(residual, reference) == pytest.approx(9.0, rel=0.1)  # three times the noise: nine times Q
    # ... yet no single beat passes the per-beat threshold, which the far-out tenth of the training beats set: the
    # recording's ratio sees what the per-beat flag cannot
    assert not flagged.any()
    assert residual_ratio(np.r_[residual, np.nan], reference) == residual_ratio(residual, reference)  # NaN: no beat
    assert residual_ratio(residual, None) is None
    assert residual_ratio(residual, {k: v for k, v in reference.items() if k != "median_residual"}) is None
    assert residual_ratio(np.array([np.nan]), reference) is None
    none_flagged, none_residual = novelty_flags(noisier, None)
    assert not none_flagged.any() and np.isnan(none_residual).all()


def test_recording_limit_is_the_largest_ratio_of_the_training_beats_recut(dataset):
    """The limit, recomputed here from its definition: each rate's recording re-cut, scored, the largest ratio."""
    x = dataset.x_train[:200]
    reference = fit_novelty(normalize_beats(x))
    ratios = []
    for k, fs in enumerate((250.0, 360.0, 500.0)):
        windows, _ = recut_windows(x, fs, (0.5, 1.5), seed=7 + k)
        residual, _ = novelty_scores(normalize_beats(windows), reference)
        ratios.append(np.median(residual) / reference["median_residual"])
    assert recording_limit(x, reference, seed=7) == pytest.approx(max(ratios), rel=1e-12)
    assert 1.0 < max(ratios) < 6.0  # re-cutting moves the beats a little: not 1, but far from another patient's 7
    assert recording_limit(x, reference, seed=8) == pytest.approx(max(ratios), rel=0.15)  # not a lucky draw
    assert recording_limit(x[:1], reference) is None  # one beat: no window to score


def test_a_reference_fitted_on_noisy_copies_still_judges_the_clean_training_beats_familiar(dataset):
    """A recipe that trains on noisy re-cut copies fits its reference on them too; the recording-level median must
    come from the dataset's own beats, or the limit falls below 1 and the training patient's clean beats, re-cut
    from a recording, would be called unlike."""
    x = dataset.x_train[:300]
    noisy, _ = recut_windows(x, 250.0, (0.5, 1.5), seed=1, snr_db=8.0)
    reference = fit_novelty(normalize_beats(np.concatenate([x, noisy, noisy])))
    completed = recording_reference(reference, x, seed=0)
    clean_median = np.median(novelty_scores(normalize_beats(x), reference)[0])
    assert completed["median_residual"] == pytest.approx(clean_median, rel=1e-12)
    assert completed["median_residual"] < 0.5 * reference["median_residual"]  # the copies had raised it
    assert completed["recording_limit"] > 1.0
    windows, _ = recut_windows(dataset.x_test[:300], 250.0, (0.68, 0.92), seed=5)
    ratio = residual_ratio(novelty_scores(normalize_beats(windows), completed)[0], completed)
    assert ratio <= completed["recording_limit"]  # the training patient's test beats, re-cut: familiar
    assert "recording_limit" not in recording_reference(reference, x, recut=False)


def test_annotate_judges_a_whole_recording_against_the_training_beats(dataset):
    """Beats of the training patient re-cut from a recording stay under the limit; the same beats with their QRS
    and waves smeared over 60 ms (another morphology, as another patient or lead would give) go beyond it, and the
    summary says so."""
    reference = fit_novelty(normalize_beats(dataset.x_train))
    reference["recording_limit"] = recording_limit(dataset.x_train, reference)
    beats = dataset.x_test[:300]
    smeared = np.stack([np.convolve(b, np.ones(15) / 15, mode="same") for b in beats])
    judged = {}
    for name, x in (("same", beats), ("smeared", smeared)):
        signal, _, _ = stitch(x, 250.0, (0.7, 0.9), seed=3)
        result = annotate_signal(signal, 250.0, Constant(reference), chunk_seconds=7.0)  # ~35 chunks: indexing
        familiarity = result.summary()["familiarity"]
        classified = result.class_index >= 0
        # independent of the summary: the windows' residuals recomputed from annotate's own windows
        windows = annotate_windows(signal, result)
        residual = novelty_scores(normalize_beats(windows[classified[:-1]]), reference)[0]
        np.testing.assert_allclose(result.residual[classified], residual, rtol=1e-9)  # beat by beat
        assert np.isnan(result.residual[~classified]).all()
        expected = np.median(residual) / reference["median_residual"]
        assert familiarity["residual_ratio"] == pytest.approx(expected, abs=0.006)
        assert familiarity["limit"] == round(reference["recording_limit"], 2)
        judged[name] = familiarity["familiar"]
    assert judged == {"same": True, "smeared": False}
    plain = annotate_signal(stitch(beats, 250.0, (0.7, 0.9), seed=3)[0], 250.0, Constant(None))
    assert plain.summary()["familiarity"] is None  # no reference: nothing to judge by
    no_limit = {k: v for k, v in reference.items() if k != "recording_limit"}
    unjudged = annotate_signal(stitch(beats, 250.0, (0.7, 0.9), seed=3)[0], 250.0, Constant(no_limit))
    assert unjudged.summary()["familiarity"]["limit"] is None and unjudged.summary()["familiarity"]["familiar"] is None


def annotate_windows(signal: np.ndarray, result) -> np.ndarray:
    windows, _ = beat_windows(signal, result.fs, result.positions, -1.0 if result.polarity["negated"] else 1.0)
    return windows
