"""``annotate.windows`` against references computed here: NumPy's own linear interpolation (``np.interp``) of a
random signal at the grid the docstring states, the PR levels averaged by hand over the documented 60-20 ms before a
window's start and end, flags at the documented RR limits, and parabolas whose minima sit at known positions.

Fast (no model, no detector): part of the mutation tier (docs/mutation.md)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.annotate.windows import QRS_POSITION, beat_windows, qrs_positions

RNG = np.random.default_rng(7)
SIGNAL = np.cumsum(RNG.standard_normal(6000))  # a random walk: no two neighbours alike, a wandering baseline


def _grid(positions, length):
    """The documented sampling points: R_i + (k - q) * (RR_i - 1) / (length - 1), q = 3.35 scaled to the length."""
    r, rr = positions[:-1].astype(float), np.diff(positions).astype(float)
    q = 3.35 * (length - 1) / 139
    k = np.arange(length)
    return r[:, None] + (k[None, :] - q) * ((rr - 1) / (length - 1))[:, None]


def _pr_level(signal, fs, at):
    """Mean of the samples from 60 ms to 20 ms before ``round(at)`` (both ends included)."""
    first, last = round(0.06 * fs), max(round(0.02 * fs), 1)
    return np.array([signal[int(round(a)) - first:int(round(a)) - last + 1].mean() for a in at])


def _expected(signal, fs, positions, sign, length, smoothed=None):
    grid = _grid(positions, length)
    source = signal if smoothed is None else smoothed
    values = sign * np.interp(grid, np.arange(len(signal)), source)
    start = grid[:, 0]
    end = start + np.diff(positions)
    level_start, level_end = sign * _pr_level(signal, fs, start), sign * _pr_level(signal, fs, end)
    ramp = np.arange(length) / (length - 1)
    return values - level_start[:, None] - (level_end - level_start)[:, None] * ramp[None, :]


POSITIONS = np.array([400, 610, 790, 1010, 1222, 1400, 1650])  # RR 0.7-1.0 s at 250 Hz


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("length", [140, 96, 187])
def test_windows_are_the_signal_interpolated_at_the_documented_grid_less_the_pr_baseline(sign, length):
    windows, flags = beat_windows(SIGNAL, 250.0, POSITIONS, sign, length=length)
    assert windows.shape == (len(POSITIONS) - 1, length) and windows.dtype == np.float32
    assert list(flags) == [""] * (len(POSITIONS) - 1)
    np.testing.assert_allclose(windows, _expected(SIGNAL, 250.0, POSITIONS, sign, length), rtol=0, atol=1e-4)


def test_the_first_sample_sits_qrs_position_steps_before_the_r_peak():
    # a signal that is its own sample index: the window's values are the positions it sampled (less the baseline,
    # which for a straight line is the line through the two PR levels: removed here by taking differences)
    line = np.arange(4000, dtype=float)
    windows, _ = beat_windows(line, 250.0, np.array([1000, 1200]), 1.0)
    raw = windows[0].astype(float)
    step = (200 - 1) / 139
    # baseline: levels at round(start) and round(start + rr), averaged over 15..5 samples before: a straight ramp
    start = 1000 - QRS_POSITION * step
    level_start = np.mean(np.arange(round(start) - 15, round(start) - 4))
    level_end = np.mean(np.arange(round(start + 200) - 15, round(start + 200) - 4))
    sampled = raw + level_start + (level_end - level_start) * np.arange(140) / 139
    np.testing.assert_allclose(sampled[0], 1000 - 3.35 * step, atol=1e-3)
    np.testing.assert_allclose(np.diff(sampled), step, atol=1e-3)


@pytest.mark.parametrize("fs, k", [(500.0, 2), (1000.0, 4), (375.0, 1), (360.0, 1), (376.0, 2)])
def test_above_one_and_a_half_times_250_hz_points_are_boxcar_means_first(fs, k):
    scale = fs / 250.0
    positions = np.round(POSITIONS * scale).astype(int)
    signal = np.cumsum(RNG.standard_normal(int(6000 * scale) + 100))
    # mean of k neighbours at offsets -k//2 .. k-1-k//2, computed with a plain loop
    smoothed = signal.copy()
    if k > 1:
        for i in range(k // 2, len(signal) - k):
            smoothed[i] = signal[i - k // 2:i - k // 2 + k].mean()
    windows, _ = beat_windows(signal, fs, positions, 1.0)
    expected = _expected(signal, fs, positions, 1.0, 140, smoothed=smoothed)
    np.testing.assert_allclose(windows, expected, rtol=0, atol=1e-4)


def test_rr_limits_start_and_flat_windows_are_flagged_in_that_order():
    fs = 250.0
    # RR: 0.248 s (short), 0.252 s, 2.496 s, 2.504 s (long), 1 s
    positions = np.array([100, 162, 225, 849, 1475, 1725])
    windows, flags = beat_windows(SIGNAL, fs, positions, 1.0)
    assert list(flags) == ["rr_short", "", "", "rr_long", ""]
    assert windows.shape == (5, 140)
    # a window starting before the recording; an RR flag takes precedence over it
    _, flags = beat_windows(SIGNAL, fs, np.array([2, 200, 210]), 1.0)
    assert list(flags) == ["before_start", "rr_short"]
    _, flags = beat_windows(SIGNAL, fs, np.array([3, 700]), 1.0)
    assert list(flags) == ["rr_long"]
    # constant stretch of the recording: flat; a tiny wobble relative to the level is flat too
    flat = SIGNAL.copy()
    flat[900:1300] = 5.0
    flat[1100] = 5.0 + 1e-12
    _, flags = beat_windows(flat, fs, np.array([400, 600, 1000, 1200]), 1.0)
    assert list(flags) == ["", "", "flat"]
    flat[1100] = 5.0 + 1e-6
    _, flags = beat_windows(flat, fs, np.array([1000, 1200]), 1.0)
    assert list(flags) == [""]


def test_fewer_than_two_positions_give_no_windows():
    for positions in (np.array([], dtype=int), np.array([500])):
        windows, flags = beat_windows(SIGNAL, 250.0, positions, 1.0, length=96)
        assert windows.shape == (0, 96) and windows.dtype == np.float32
        assert flags.shape == (0,) and flags.dtype == object  # the same type as a recording's flags


def test_limits_are_exclusive():
    # at 200 Hz an RR of 50 samples is 0.25 s and one of 500 samples 2.5 s exactly: both inside the range
    _, flags = beat_windows(SIGNAL, 200.0, np.array([300, 350, 850]), 1.0)
    assert list(flags) == ["", ""]
    # RR 140 samples: one step is one sample, so R at 3.35 starts the window at 0 (inside), at 3.85 at 0.5
    for first in (3.35, 3.85):
        _, flags = beat_windows(SIGNAL, 250.0, np.array([first, first + 140]), 1.0)
        assert list(flags) == [""], first
    _, flags = beat_windows(SIGNAL, 250.0, np.array([3.3, 143.3]), 1.0)
    assert list(flags) == ["before_start"]


def test_pr_levels_at_a_low_rate_use_at_least_one_sample():
    # at 50 Hz the documented 60-20 ms are samples 3 to 1 before the window: 3 samples
    positions = np.array([100, 140, 185, 222])
    windows, _ = beat_windows(SIGNAL, 50.0, positions, 1.0)
    np.testing.assert_allclose(windows, _expected(SIGNAL, 50.0, positions, 1.0, 140), rtol=0, atol=1e-4)


def test_qrs_positions_finds_known_minima_within_the_search_window():
    true = np.array([3.35, 7.0, 10.6, 1.2, 17.5])
    n = np.arange(140, dtype=float)
    beats = (n[None, :] - true[:, None]) ** 2  # parabolas: the vertex is the answer exactly
    beats[:, 25:] = -100.0  # deeper points beyond the search window are ignored
    np.testing.assert_allclose(qrs_positions(beats), true, atol=1e-9)
    # a minimum at the window's edge: the search keeps one neighbour on each side
    edge = (n - 0.0) ** 2
    edge[25:] = 1e6
    assert qrs_positions(edge[None, :])[0] == pytest.approx(0.0, abs=1e-9)
    # a narrower search finds the minimum within it only: a V falling through the search window ends at its
    # last sample but one (a straight line has no vertex to refine)
    late = np.abs(n - 12.0)
    late[25:] = 1e6
    assert qrs_positions(late[None, :], search=10)[0] == 8.0
    # the default search is 20 samples (the V's vertex at 20 is outside it); a minimum at sample 1 is kept at 1
    far = np.abs(n - 20.0)
    far[25:] = 1e6
    assert qrs_positions(far[None, :])[0] == 18.0
    assert qrs_positions(np.abs(n - 1.0)[None, :])[0] == 1.0
