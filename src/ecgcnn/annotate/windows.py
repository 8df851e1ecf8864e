"""ECG5000-style windows cut from a recording at given R-peaks: one RR interval each, the QRS at
:data:`QRS_POSITION`, interpolated to the model's length, baseline removed through the PR levels (why:
docs/annotate.md)."""

from __future__ import annotations

import numpy as np

from .detection import gather, parabolic_offset

QRS_POSITION = 3.35  # median QRS-minimum position in ECG5000's normal training beats (docs/annotate.md)
ECG5000_LENGTH = 140
RR_RANGE_S = (0.25, 2.5)  # physiological RR range; outside it a window is not classified
BASELINE_S = (0.06, 0.02)  # PR-level window: from 60 ms to 20 ms before the window's start (and its end)
SOURCE_FS = 250.0  # ECG5000's source rate: above 1.5x this, points are averaged over round(fs / 250) samples


def beat_windows(signal: np.ndarray, fs: float, positions: np.ndarray, sign: float, length: int = ECG5000_LENGTH,
                 qrs_position: float = QRS_POSITION) -> tuple[np.ndarray, np.ndarray]:
    """Windows for beats ``0..len(positions)-2`` in ECG5000's convention, and a flag per window ("" if usable).

    Window i samples ``sign * signal`` at ``R_i + (k - q) * (RR_i - 1) / (length - 1)``, k = 0..length-1, with
    ``q = qrs_position`` scaled to ``length``: one RR interval, starting just before the QRS. A straight baseline
    through the PR levels before its start and its end is subtracted.
    """
    count = len(positions) - 1
    if count <= 0:
        return np.zeros((0, length), np.float32), np.zeros(0, dtype=object)
    r, rr = positions[:-1], np.diff(positions)
    q = qrs_position * (length - 1) / (ECG5000_LENGTH - 1)
    step = (rr - 1.0) / (length - 1)
    start = r - q * step
    end = start + rr  # the next window's start (for equal RR)
    grid = start[:, None] + np.arange(length)[None, :] * step[:, None]
    values = sign * _sample(signal, fs, grid)
    level_start, level_end = _pr_level(signal, fs, start, sign), _pr_level(signal, fs, end, sign)
    ramp = np.arange(length)[None, :] / (length - 1)
    values -= level_start[:, None] + (level_end - level_start)[:, None] * ramp
    flags = np.full(count, "", dtype=object)
    rr_s = rr / fs
    flags[rr_s < RR_RANGE_S[0]] = "rr_short"
    flags[rr_s > RR_RANGE_S[1]] = "rr_long"
    flags[(flags == "") & (start < 0)] = "before_start"
    spread = values.max(axis=1) - values.min(axis=1)
    flags[(flags == "") & (spread <= 1e-9 * (1.0 + np.abs(values).max(axis=1)))] = "flat"
    return values.astype(np.float32), flags


def _sample(signal: np.ndarray, fs: float, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of the signal at fractional sample positions; above 1.5x the ECG5000 source rate each
    sample is first replaced by the mean of ``round(fs / 250)`` neighbours (an anti-alias boxcar)."""
    i0 = np.floor(grid).astype(np.int64)
    frac = grid - i0
    k = int(round(fs / SOURCE_FS)) if fs > 1.5 * SOURCE_FS else 1
    if k <= 1:
        v0, v1 = gather(signal, i0), gather(signal, i0 + 1)
    else:
        offsets = np.arange(k) - k // 2
        v0 = sum(gather(signal, i0 + o) for o in offsets) / k
        v1 = sum(gather(signal, i0 + 1 + o) for o in offsets) / k
    return v0 + frac * (v1 - v0)


def _pr_level(signal: np.ndarray, fs: float, at: np.ndarray, sign: float) -> np.ndarray:
    first, last = int(round(BASELINE_S[0] * fs)), max(int(round(BASELINE_S[1] * fs)), 1)
    offsets = np.arange(-first, -last + 1)
    index = np.round(at).astype(np.int64)[:, None] + offsets
    return sign * gather(signal, index).mean(axis=1)


def qrs_positions(beats: np.ndarray, search: int = 20) -> np.ndarray:
    """Sub-sample position of each beat's QRS minimum within its first ``search`` samples (parabolic refinement):
    how :data:`QRS_POSITION` was measured, as the median over ECG5000's normal training beats."""
    x = np.asarray(beats, dtype=np.float64)
    k = np.clip(x[:, :search].argmin(axis=1), 1, search - 2)
    rows = np.arange(len(x))
    return k + parabolic_offset(x[rows, k - 1], x[rows, k], x[rows, k + 1])
