"""R-peaks in a raw recording: SleepECG restarted on staggered blocks, the QRS polarity vote, sub-sample refinement
to the QRS minimum, and faint detections dropped (the choice of detector and its measurements: docs/annotate.md)."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.metadata
import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..core.errors import optional_import
from ..core.provenance import usable_cores
from .kernels import butter_bandpass_sos, load_extension, sosfilt_initial_state, sosfilt_kernel

REFRACTORY_S = 0.2  # two R-peaks closer than this are one beat
SEARCH_S = 0.12  # the QRS extremum is searched within +-120 ms of the detector's mark
POLARITY_BLOCK_S = 2.0  # polarity vote: one vote per 2 s block (its largest excursion from the block's median)
DETECT_BLOCK_S = 60.0  # the detector restarts every 60 s (two grids, staggered by 30 s; see the module docstring)
PAD_S = 10.0  # ... with 10 s of signal on each side of its block (its learning phase is the first 2 s)
DEFAULT_CHUNK_S = 600.0
# A detection is dropped when its QRS is faint next to its neighbours': peak-to-peak within +-FAINT_HALF_S below this
# fraction of the median over the FAINT_BEATS nearest beats that both grids found. One grid alone (a restart that
# settled on a low threshold) needs more than both together (SleepECG's search-back into a pause, noise). Chosen
# on ECG5000 training beats stitched into recordings and on synthetic N/S/V records, never on test beats
# (scripts/choose_faint.py; docs/annotate.md).
FAINT_ALONE, FAINT_AGREED = 0.4, 0.2
FAINT_HALF_S = 0.06
FAINT_BEATS = 31
# A detection is dropped as interposed when it splits one beat-to-beat interval in two - its two RR intervals sum to
# the local median RR within INTERPOSED_RR (a fraction of it) - its QRS is no larger than INTERPOSED_SIZE times the
# local median peak-to-peak, and its +-INTERPOSED_HALF_S waveform correlates below INTERPOSED_CORRELATION with the
# median of its INTERPOSED_NEIGHBOURS neighbours on each side: a muscle-artifact burst or a T wave between two
# beats, not a beat. An interpolated PVC also splits an interval; it is kept when it is large (the size bound) or
# like its neighbours in shape (the synthetic ones correlate at 0.5-0.7). Chosen on training beats, synthetic noise
# and synthetic records, never on test beats or NSTDB records (scripts/choose_interposed.py).
INTERPOSED_RR, INTERPOSED_SIZE, INTERPOSED_CORRELATION = 0.2, 1.5, 0.5
INTERPOSED_HALF_S = 0.1
INTERPOSED_NEIGHBOURS = 4
RR_BEATS = 31  # the local median RR and QRS size: over this many neighbouring intervals / detections
REFINE_BATCH = 4096  # R-peaks refined per vectorised step (bounds memory; the result does not depend on it)

Progress = Callable[[str, int, int], None]


def detector_name() -> str:
    return f"sleepecg {_sleepecg_version()} detect_heartbeats"


def _detect_segment(segment: np.ndarray, fs: float) -> np.ndarray:
    """SleepECG's beats in one segment (sample indices): the fast path, or the public function for a short segment
    and a flat start (which it handles itself)."""
    fast = _fast_detector(fs)
    if fast is not None and len(segment) > fast.edge and segment[1] != segment[0]:
        return fast.detect(segment)
    try:
        return np.asarray(optional_import("sleepecg", "annotate").detect_heartbeats(segment, fs), dtype=np.int64)
    except ValueError as exc:
        if "flat" in str(exc).lower():  # a flat stretch (lead off): no beats there
            return np.zeros(0, np.int64)
        raise


class _FastDetector:
    """``sleepecg.detect_heartbeats(x, fs)`` (version 0.6, C backend) without its per-call set-up: the same band-pass
    (SciPy's ``sosfiltfilt`` with odd padding, written out so that the filter's initial state is computed once per
    rate, not once per segment: 1.5x faster on 80 s segments), derivative, moving integration and thresholding, so
    the result is identical (tests/annotate/test_detection_fast.py compares it with the public function)."""

    def __init__(self, fs: float, integrate, threshold):
        self.fs, self._integrate, self._threshold = fs, integrate, threshold
        # SciPy's compiled kernel loaded from its file: importing scipy.signal (and with it scipy.stats) costs about
        # 1.3 s and 100 MB per process, for one function; the public sosfilt only where the file is not there.
        self._kernel = sosfilt_kernel()
        self.sos = butter_bandpass_sos(5.0, 30.0, fs)  # scipy.signal.butter(N=2, Wn=(5, 30), "bandpass", "sos", fs)
        self.zi = sosfilt_initial_state(self.sos)  # scipy.signal.sosfilt_zi(sos): (sections, 2)
        taps = 2 * len(self.sos) + 1 - min(int((self.sos[:, 2] == 0).sum()), int((self.sos[:, 5] == 0).sum()))
        self.edge = 3 * taps  # sosfiltfilt's default padding
        self.width = int(0.15 * fs)
        self._derivative = np.array([-1, -2, 0, 2, 1])  # Pan & Tompkins' five-point derivative

    def bandpass(self, x: np.ndarray) -> np.ndarray:
        """``scipy.signal.sosfiltfilt(sos, x)``."""
        e = self.edge
        ext = np.concatenate((2 * x[0] - x[e:0:-1], x, 2 * x[-1] - x[-2:-(e + 2):-1]))  # odd extension
        y = self._filter(ext, ext[0])
        y = self._filter(y[::-1], y[-1])
        return np.ascontiguousarray(y[::-1][e:-e])

    def _filter(self, x: np.ndarray, x0: float) -> np.ndarray:
        """``scipy.signal.sosfilt(sos, x, zi=zi * x0)[0]``: SciPy's compiled kernel called directly where it is there
        (the public function's argument checks cost as much as the filtering on 80 s segments)."""
        if self._kernel is None:
            import scipy.signal  # noqa: PLC0415 - only where the kernel's file is missing

            return scipy.signal.sosfilt(self.sos, x, zi=self.zi * x0)[0]
        y = np.array(x, dtype=np.float64, order="C")[None, :]  # filtered in place
        self._kernel(self.sos, y, np.ascontiguousarray((self.zi * x0)[None]))
        return y[0]

    def detect(self, x: np.ndarray) -> np.ndarray:
        filtered = self.bandpass(np.asarray(x, dtype=np.float64))
        slope = np.correlate(filtered, self._derivative, mode="same")
        mask = self._threshold(filtered, self._integrate(slope, self.width), self.fs)
        return np.flatnonzero(mask).astype(np.int64)


@functools.lru_cache(maxsize=8)
def _fast_detector(fs: float) -> _FastDetector | None:
    """The fast path for ``fs``; ``None`` where SleepECG's compiled backend is missing or its version is not the one
    the replica follows (then the public function runs)."""
    if _sleepecg_version() != "0.6.0":
        return None
    kernels = _sleepecg_kernels()
    return None if kernels is None else _FastDetector(fs, *kernels)


def _sleepecg_version() -> str:
    try:
        return importlib.metadata.version("sleepecg")
    except importlib.metadata.PackageNotFoundError:
        optional_import("sleepecg", "annotate")  # raises the one-line "install the annotate extra"
        return "unknown"


def _sleepecg_kernels() -> tuple | None:
    """SleepECG's compiled moving integration and thresholding, loaded from its extension module without running
    the ``sleepecg`` package's ``__init__`` (which imports its sleep-staging stack: about a second per process, for
    two functions). ``None`` where the extension is not found or does not load."""
    module = load_extension("sleepecg", "_heartbeat_detection")
    try:
        return module._squared_moving_integration, module._thresholding
    except AttributeError:
        return None


def detect_r_peaks(signal: np.ndarray, fs: float, sign: float = 1.0,
                   progress: Progress | None = None) -> np.ndarray:
    """Detector marks (sample indices, unsorted, near-duplicates possible) of the upright QRS in ``sign * signal``:
    both grids of :func:`detect_grid_marks` together."""
    return np.concatenate(detect_grid_marks(signal, fs, sign, progress))


def detect_grid_marks(signal: np.ndarray, fs: float, sign: float = 1.0,
                      progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each grid's detector marks (sample indices, sorted) of the upright QRS in ``sign * signal``.

    SleepECG runs on fixed :data:`DETECT_BLOCK_S` blocks, each with :data:`PAD_S` of signal on both sides, keeping
    the marks inside its own block (so a block border neither loses nor doubles a beat), on two block grids
    staggered by half a block. The grids start at sample 0, so the result does not depend on how the caller chunks
    the recording.
    """
    n = len(signal)
    block = max(int(round(DETECT_BLOCK_S * fs)), 1)
    pad = int(round(PAD_S * fs))
    done = [0, 0]  # samples covered by each grid (for progress)

    def grid_marks(grid: int, offset: int) -> list[np.ndarray]:
        edges = list(range(offset, n, block))
        if offset:
            edges = [0] + edges
        found = []
        for i, start in enumerate(edges):
            stop = edges[i + 1] if i + 1 < len(edges) else n
            lo, hi = max(start - pad, 0), min(stop + pad, n)
            segment = np.asarray(signal[lo:hi], dtype=np.float64) * sign
            marks = _detect_segment(segment, fs) + lo
            found.append(marks[(marks >= start) & (marks < stop)])
            done[grid] = stop
            if progress is not None and grid == 0:  # reported from the calling thread only
                progress("detect", done[0] + done[1], 2 * n)
        return found

    if usable_cores() > 1 and n > 2 * block:  # the second grid on another core (SciPy's filter releases the GIL)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgcnn-detect") as pool:
            second = pool.submit(grid_marks, 1, block // 2)
            first = grid_marks(0, 0)
            grids = (first, second.result())
    else:
        grids = (grid_marks(0, 0), grid_marks(1, block // 2))
    if progress is not None:
        progress("detect", 2 * n, 2 * n)
    empty = np.zeros(0, np.int64)
    return (np.concatenate(grids[0]) if grids[0] else empty, np.concatenate(grids[1]) if grids[1] else empty)


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
    # A mark both grids found refines to the same point and depth: one copy gives the same result.
    return _merge_close(*refine_marks(signal, fs, np.unique(np.asarray(marks, dtype=np.int64)), sign), fs)


def _merge_close(positions: np.ndarray, depth: np.ndarray, fs: float) -> np.ndarray:
    order = np.lexsort((depth, positions))
    positions, depth = positions[order], depth[order]
    refractory = REFRACTORY_S * fs
    # The rule runs along the sorted marks; a mark at least the refractory period after its predecessor is a new beat
    # whatever came before, so it only needs running inside runs of close marks.
    if len(positions) == 0:
        return positions
    starts = np.flatnonzero(np.r_[True, np.diff(positions) >= refractory])
    ends = np.r_[starts[1:], len(positions)]
    kept = [starts[ends - starts == 1]]
    for start, end in zip(starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist(), strict=True):
        keep = [start]
        for i in range(start + 1, end):
            if positions[i] - positions[keep[-1]] < refractory:
                if depth[i] < depth[keep[-1]]:
                    keep[-1] = i
            else:
                keep.append(i)
        kept.append(np.asarray(keep, dtype=np.int64))
    return positions[np.sort(np.concatenate(kept))]


def r_peaks(signal: np.ndarray, fs: float, sign: float, progress: Progress | None = None) -> np.ndarray:
    """The R-peaks ``annotate`` uses (sorted sub-sample positions): :func:`candidate_peaks`, then interposed
    detections dropped (:func:`drop_interposed`). ``sign`` orients the QRS downwards (ECG5000's convention);
    SleepECG gets it upright."""
    return drop_interposed(signal, fs, candidate_peaks(signal, fs, sign, progress))


def candidate_peaks(signal: np.ndarray, fs: float, sign: float, progress: Progress | None = None) -> np.ndarray:
    """Both grids' marks refined and merged (as :func:`refine_peaks`), then faint detections dropped
    (:func:`drop_faint`): :func:`r_peaks` before its last step."""
    first, second = detect_grid_marks(signal, fs, -sign, progress)
    marks = np.unique(np.concatenate([first, second]))
    refined, depth = refine_marks(signal, fs, marks, sign)  # each mark's refinement does not depend on the others
    positions = _merge_close(refined, depth, fs)
    return drop_faint(signal, fs, positions, refined[np.isin(marks, first)], refined[np.isin(marks, second)])


def drop_faint(signal: np.ndarray, fs: float, positions: np.ndarray, first: np.ndarray, second: np.ndarray,
               alone: float = FAINT_ALONE, both: float = FAINT_AGREED) -> np.ndarray:
    """``positions`` without the faint ones (see :data:`FAINT_ALONE`; ``alone`` and ``both`` are the two fractions):
    a position within half the refractory period of a position of both ``first`` and ``second`` (each grid's refined
    marks) counts as found by both."""
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) == 0:
        return positions
    tolerance = REFRACTORY_S * fs / 2
    agreed = _has_neighbour(positions, first, tolerance) & _has_neighbour(positions, second, tolerance)
    if not agreed.any():
        return positions
    size = peak_to_peak(signal, fs, positions)
    reference = _rolling_median(size[agreed], FAINT_BEATS)
    nearest = np.clip(np.searchsorted(positions[agreed], positions), 0, int(agreed.sum()) - 1)
    keep = size >= np.where(agreed, both, alone) * reference[nearest]
    return positions[keep]


def interposed(signal: np.ndarray, fs: float, positions: np.ndarray, rr: float = INTERPOSED_RR,
               size: float = INTERPOSED_SIZE, correlation: float = INTERPOSED_CORRELATION) -> np.ndarray:
    """A boolean mask of the interposed detections among sorted ``positions`` (see :data:`INTERPOSED_RR`)."""
    positions = np.asarray(positions, dtype=np.float64)
    mask = np.zeros(len(positions), dtype=bool)
    if len(positions) < 2 * INTERPOSED_NEIGHBOURS + 1:
        return mask
    intervals = np.diff(positions)
    median_rr = _rolling_median(intervals, RR_BEATS)
    # position i lies between intervals i - 1 and i; the median RR around it is that of interval i - 1
    split = intervals[:-1] + intervals[1:]
    sizes = peak_to_peak(signal, fs, positions)
    relative_size = sizes / np.maximum(_rolling_median(sizes, RR_BEATS), np.finfo(np.float64).tiny)
    inner = np.arange(INTERPOSED_NEIGHBOURS, len(positions) - INTERPOSED_NEIGHBOURS)
    suspect = inner[(np.abs(split[inner - 1] - median_rr[inner - 1]) <= rr * median_rr[inner - 1])
                    & (relative_size[inner] <= size)]
    if len(suspect) == 0:
        return mask
    half = max(int(round(INTERPOSED_HALF_S * fs)), 1)
    offsets = np.arange(-half, half + 1)
    centre = np.round(positions).astype(np.int64)
    neighbours = np.r_[-INTERPOSED_NEIGHBOURS:0, 1:INTERPOSED_NEIGHBOURS + 1]
    for i in range(0, len(suspect), REFINE_BATCH):
        part = suspect[i:i + REFINE_BATCH]
        own = gather(signal, centre[part, None] + offsets)  # (n, w)
        template = np.median(gather(signal, centre[part[:, None] + neighbours][:, :, None] + offsets), axis=1)
        own = own - own.mean(axis=1, keepdims=True)
        template = template - template.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(own, axis=1) * np.linalg.norm(template, axis=1)
        r = np.einsum("ij,ij->i", own, template) / np.where(norm > 0, norm, 1.0)
        mask[part[r < correlation]] = True
    return mask


def drop_interposed(signal: np.ndarray, fs: float, positions: np.ndarray, **fractions) -> np.ndarray:
    """``positions`` without the interposed ones (:func:`interposed`; ``fractions`` override its three bounds)."""
    positions = np.asarray(positions, dtype=np.float64)
    return positions[~interposed(signal, fs, positions, **fractions)]


def peak_to_peak(signal: np.ndarray, fs: float, positions: np.ndarray) -> np.ndarray:
    """Largest minus smallest sample within +-:data:`FAINT_HALF_S` of each position."""
    w = max(int(round(FAINT_HALF_S * fs)), 1)
    centre = np.round(np.asarray(positions, dtype=np.float64)).astype(np.int64)
    offsets = np.arange(-w, w + 1)
    size = np.zeros(len(centre), np.float64)
    for i in range(0, len(centre), REFINE_BATCH):
        values = gather(signal, centre[i:i + REFINE_BATCH, None] + offsets)
        size[i:i + REFINE_BATCH] = values.max(axis=1) - values.min(axis=1)
    return size


def _has_neighbour(positions: np.ndarray, others: np.ndarray, tolerance: float) -> np.ndarray:
    others = np.sort(np.asarray(others, dtype=np.float64))
    if len(others) == 0:
        return np.zeros(len(positions), dtype=bool)
    right = np.clip(np.searchsorted(others, positions), 0, len(others) - 1)
    left = np.clip(right - 1, 0, len(others) - 1)
    return np.minimum(np.abs(others[right] - positions), np.abs(others[left] - positions)) <= tolerance


def _rolling_median(values: np.ndarray, width: int) -> np.ndarray:
    """Median of the ``width`` values centred on each (the edge values repeated beyond the ends)."""
    half = width // 2
    padded = np.pad(values, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)
