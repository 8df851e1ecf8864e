"""R-peaks in a raw recording: SleepECG restarted on staggered blocks, the QRS polarity vote, and sub-sample
refinement to the QRS minimum (the choice of detector and its measurements: docs/annotate.md)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.errors import optional_import

REFRACTORY_S = 0.2  # two R-peaks closer than this are one beat
SEARCH_S = 0.12  # the QRS extremum is searched within +-120 ms of the detector's mark
POLARITY_BLOCK_S = 2.0  # polarity vote: one vote per 2 s block (its largest excursion from the block's median)
DETECT_BLOCK_S = 60.0  # the detector restarts every 60 s (two grids, staggered by 30 s; see the module docstring)
PAD_S = 10.0  # ... with 10 s of signal on each side of its block (its learning phase is the first 2 s)
DEFAULT_CHUNK_S = 600.0
REFINE_BATCH = 4096  # R-peaks refined per vectorised step (bounds memory; the result does not depend on it)

Progress = Callable[[str, int, int], None]


def detector_name() -> str:
    return f"sleepecg {optional_import('sleepecg', 'annotate').__version__} detect_heartbeats"


def _detect_segment(segment: np.ndarray, fs: float) -> np.ndarray:
    try:
        return np.asarray(optional_import("sleepecg", "annotate").detect_heartbeats(segment, fs), dtype=np.int64)
    except ValueError as exc:
        if "flat" in str(exc).lower():  # a flat stretch (lead off): no beats there
            return np.zeros(0, np.int64)
        raise


def detect_r_peaks(signal: np.ndarray, fs: float, sign: float = 1.0,
                   progress: Progress | None = None) -> np.ndarray:
    """Detector marks (sample indices, unsorted, near-duplicates possible) of the upright QRS in ``sign * signal``.

    SleepECG runs on fixed :data:`DETECT_BLOCK_S` blocks, each with :data:`PAD_S` of signal on both sides, keeping
    the marks inside its own block (so a block border neither loses nor doubles a beat), on two block grids
    staggered by half a block; the union is merged by :func:`refine_peaks`. The grids start at sample 0, so the
    result does not depend on how the caller chunks the recording.
    """
    n = len(signal)
    block = max(int(round(DETECT_BLOCK_S * fs)), 1)
    pad = int(round(PAD_S * fs))
    found = []
    for grid, offset in enumerate((0, block // 2)):
        edges = list(range(offset, n, block))
        if offset:
            edges = [0] + edges
        for i, start in enumerate(edges):
            stop = edges[i + 1] if i + 1 < len(edges) else n
            lo, hi = max(start - pad, 0), min(stop + pad, n)
            segment = np.asarray(signal[lo:hi], dtype=np.float64) * sign
            marks = _detect_segment(np.ascontiguousarray(segment), fs) + lo
            found.append(marks[(marks >= start) & (marks < stop)])
            if progress is not None:
                progress("detect", grid * n + stop, 2 * n)
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def gather(signal: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``signal[index]`` with indices clipped to the signal (float64); works on memory-mapped arrays."""
    return np.take(signal, index, mode="clip").astype(np.float64, copy=False)


def parabolic_offset(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Sub-sample offset of the vertex of the parabola through three neighbours ``a, b, c`` (from ``b``); 0 where
    they are not convex."""
    curvature = a - 2 * b + c
    offset: np.ndarray = np.where(curvature > 0, 0.5 * (a - c) / np.where(curvature > 0, curvature, 1.0), 0.0)
    return offset


def upright_fraction(signal: np.ndarray, fs: float, chunk_seconds: float = DEFAULT_CHUNK_S) -> float:
    """The fraction of :data:`POLARITY_BLOCK_S` blocks whose largest excursion from the block median is upward
    (flat blocks do not vote). In an ECG that excursion is the QRS; the majority gives its direction."""
    block = max(int(round(POLARITY_BLOCK_S * fs)), 2)
    per_chunk = max(int(chunk_seconds * fs) // block, 1) * block  # whole blocks: the vote ignores the chunking
    up = votes = 0
    for start in range(0, len(signal), per_chunk):
        part = np.asarray(signal[start:start + per_chunk], dtype=np.float64)
        whole = len(part) // block
        if whole == 0:
            break
        blocks = part[:whole * block].reshape(whole, block)
        median = np.median(blocks, axis=1)
        above, below = blocks.max(axis=1) - median, median - blocks.min(axis=1)
        voting = (above > 0) | (below > 0)
        up += int(np.sum((above > below) & voting))
        votes += int(np.sum(voting))
    return up / votes if votes else 0.0


def refine_marks(signal: np.ndarray, fs: float, marks: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sample position of the minimum of ``sign * signal`` within :data:`SEARCH_S` of each mark (parabolic
    refinement), one per mark and in its order, and the depth there."""
    w = max(int(round(SEARCH_S * fs)), 1)
    marks = np.asarray(marks, dtype=np.int64)
    positions = np.zeros(len(marks), np.float64)
    depth = np.zeros(len(marks), np.float64)
    offsets = np.arange(-w, w + 1)
    for i in range(0, len(marks), REFINE_BATCH):
        part = marks[i:i + REFINE_BATCH]
        index = np.clip(part[:, None] + offsets, 1, len(signal) - 2)
        values = sign * gather(signal, index)
        k = values.argmin(axis=1)
        centre = index[np.arange(len(part)), k]
        a, b, c = (sign * gather(signal, centre + d) for d in (-1, 0, 1))
        positions[i:i + REFINE_BATCH] = centre + np.clip(parabolic_offset(a, b, c), -0.5, 0.5)
        depth[i:i + REFINE_BATCH] = b
    return positions, depth


def refine_peaks(signal: np.ndarray, fs: float, marks: np.ndarray, sign: float) -> np.ndarray:
    """:func:`refine_marks`, sorted; of R-peaks closer than :data:`REFRACTORY_S`, the deeper one is kept."""
    positions, depth = refine_marks(signal, fs, marks, sign)
    order = np.lexsort((depth, positions))
    positions, depth = positions[order], depth[order]
    keep: list[int] = []
    refractory = REFRACTORY_S * fs
    for i, (p, d) in enumerate(zip(positions.tolist(), depth.tolist(), strict=True)):
        if keep and p - positions[keep[-1]] < refractory:
            if d < depth[keep[-1]]:
                keep[-1] = i
        else:
            keep.append(i)
    return positions[np.asarray(keep, dtype=np.int64)]
