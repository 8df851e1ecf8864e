"""Detect, window and classify every heartbeat of a recording: :func:`annotate_signal` and its
:class:`AnnotationResult` (one row per R-peak; flagged beats are reported, not classified). Streaming and memory:
docs/annotate.md."""

from __future__ import annotations

import csv
import io
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..core.errors import EcgcnnError
from ..core.novelty import novelty_flags, residual_ratio
from ..core.preprocess import normalize_beats
from .detection import DEFAULT_CHUNK_S, Progress, detector_name, r_peaks, upright_fraction
from .readers import Recording, check_recording
from .windows import QRS_POSITION, RR_RANGE_S, beat_windows

BATCH = 4096  # beats per classifier call (fixed: results do not depend on chunking)
IN_FLIGHT = 1  # batches left with the model thread while the next is cut (bounds memory)
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



@dataclass
class AnnotationResult:
    """One row per detected R-peak. Unclassified (flagged) beats have ``label`` "", ``class_index`` -1 and NaN
    probabilities."""

    fs: float
    n_samples: int
    positions: np.ndarray  # sub-sample R-peak positions (float64)
    rr_s: np.ndarray  # seconds to the next R-peak (the window's length); NaN for the last beat
    class_index: np.ndarray  # int64, -1 where flagged
    probabilities: np.ndarray  # float32 (N, C), NaN rows where flagged
    flags: np.ndarray  # object array of str, "" where the beat was classified
    labels: list  # the model's labels: whole numbers or text
    class_names: list[str]
    polarity: dict = field(default_factory=dict)
    detector: str = ""
    residual: np.ndarray | None = None  # novelty residual Q of each windowed beat (NaN elsewhere; None: no reference)
    novelty: dict | None = None  # the model's novelty reference (ecgcnn.core.novelty)

    @property
    def samples(self) -> np.ndarray:
        return np.round(self.positions).astype(np.int64)

    @property
    def label(self) -> np.ndarray:
        table = np.asarray([*self.labels, ""], dtype=object)  # index -1 (not classified): ""
        return table[self.class_index]

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
                         "label": label[i] if k >= 0 else "",
                         "class_name": self.class_names[k] if k >= 0 else "",
                         "probability": round(float(best[i]), 4) if k >= 0 else "",
                         "flag": str(self.flags[i])})
        return rows

    def csv_text(self) -> str:
        """The rows as CSV text (the ``csv`` module's quoting for labels, class names and flags; one pass of string
        formatting per row: this runs for every beat of a 24-hour record)."""
        cells = {label: _csv_cell(label) for label in [*self.labels, *self.class_names, *set(self.flags.tolist())]}
        labels = [cells[v] for v in self.labels] + [""]  # index -1 (not classified): empty
        names = [cells[v] for v in self.class_names] + [""]
        fs = self.fs
        lines = [",".join(CSV_COLUMNS)]
        lines += [f"{i},{s},{s / fs:.4f},{'' if r != r else f'{r:.4f}'},{labels[k]},{names[k]},"
                  f"{'' if k < 0 else f'{p:.4f}'},{cells[flag]}"
                  for i, (s, k, r, p, flag) in enumerate(zip(self.samples.tolist(), self.class_index.tolist(),
                                                             self.rr_s.tolist(), self.probability.tolist(),
                                                             self.flags.tolist(), strict=True), start=1)]
        return "\n".join(lines) + "\n"

    def familiarity(self) -> dict | None:
        """How far this recording's classified beats sit from the training beats as a whole (docs/annotate.md):
        the median novelty residual over the training beats' median, and the largest such ratio of the training beats
        re-cut from recordings (``limit``, when the model records it); the verdict compares the two as reported (2
        decimals). None without a novelty reference, or without a classified beat."""
        if self.residual is None:
            return None
        ratio = residual_ratio(self.residual[self.class_index >= 0], self.novelty)
        if ratio is None:
            return None
        ratio = round(ratio, 2)
        limit = (self.novelty or {}).get("recording_limit")
        limit = None if limit is None else round(float(limit), 2)
        return {"residual_ratio": ratio, "limit": limit, "familiar": None if limit is None else ratio <= limit}

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
            "familiarity": self.familiarity(),
            "mean_heart_rate_bpm": round(60.0 / float(in_range.mean()), 1) if len(in_range) else None,
            "beats_per_minute": round(60.0 * n / duration, 1) if duration > 0 else None,
            "beats_per_class": {name: {"label": label, "count": int(c),
                                       "percent": round(100.0 * c / max(int(classified.sum()), 1), 2)}
                                for name, label, c in zip(self.class_names, self.labels, counts, strict=True)},
        }


def _csv_cell(value) -> str:
    """One value as the ``csv`` module writes it (quoted where it holds a comma, a quote or a line break)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([value, ""])  # two cells: a lone "" would be quoted
    return buffer.getvalue()[:-2]


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
    and normalises them itself. ``polarity``: ``auto``, ``normal`` (QRS upright) or ``inverted`` (see
    docs/annotate.md). ``progress``: None, True (tqdm bars, hidden when stderr is not a terminal) or a callable
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
    labels = [v if isinstance(v, str) else int(v) for v in predictor.labels]
    metadata = getattr(predictor, "metadata", None) or {}
    names = list(metadata.get("class_names") or [str(v) for v in labels])
    novelty = metadata.get("novelty")
    report, close = _progress_callback(progress)
    # The model classifies a batch on its own thread while this one cuts the next windows (LiteRT, ONNX Runtime and
    # PyTorch release the GIL): the same calls on the same batches, so the same rows.
    model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgcnn-annotate-model")
    try:
        upright = upright_fraction(signal, fs, chunk_seconds)
        orientation = polarity if polarity != "auto" else ("normal" if upright >= 0.5 else "inverted")
        sign = -1.0 if orientation == "normal" else 1.0  # sign * signal has the QRS pointing down, as in ECG5000
        positions = r_peaks(signal, fs, sign, report)
        n = len(positions)
        class_index = np.full(n, -1, np.int64)
        probabilities = np.full((n, len(labels)), np.nan, np.float32)
        flags = np.full(n, "", dtype=object)
        residual = np.full(n, np.nan)
        if n:
            flags[-1] = "last_beat"
        pending: list[tuple[np.ndarray, np.ndarray]] = []  # (beat indices, windows) awaiting a full batch
        pending_count = 0
        in_flight: deque[tuple[np.ndarray, Future]] = deque()  # batches the model thread is classifying

        def collect(keep: int) -> None:
            while len(in_flight) > keep:
                index, job = in_flight.popleft()
                proba = np.asarray(job.result(), dtype=np.float32)
                probabilities[index] = proba
                class_index[index] = proba.argmax(axis=1)

        def classify(final: bool) -> None:
            nonlocal pending, pending_count
            while pending_count >= BATCH or (final and pending_count):
                index = np.concatenate([p[0] for p in pending])
                windows = np.concatenate([p[1] for p in pending])
                take = min(BATCH, len(index))
                in_flight.append((index[:take], model.submit(predictor.predict_proba, windows[:take])))
                collect(IN_FLIGHT)
                pending = [(index[take:], windows[take:])] if take < len(index) else []
                pending_count = len(index) - take
            if final:
                collect(0)

        # Windows chunk by chunk (the beats whose R-peak lies in the chunk; the last one borrows the next R-peak).
        chunk = max(chunk_seconds * fs, 1.0)
        bounds = np.searchsorted(positions[:-1] if n else positions, np.arange(0.0, len(signal) + chunk, chunk))
        for first, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if stop <= first:
                continue
            windows, window_flags = beat_windows(signal, fs, positions[first:stop + 1], sign, length)
            usable = np.flatnonzero(window_flags == "")
            flagged, beat_residual = novelty_flags(normalize_beats(windows[usable]), novelty)
            window_flags[usable[flagged]] = "unfamiliar"
            residual[first + usable] = beat_residual
            flags[first:stop] = window_flags
            if len(usable):
                pending.append((first + usable, windows[usable]))
                pending_count += len(usable)
            classify(final=False)
            if report is not None:
                report("classify", stop, n - 1)
        classify(final=True)
    finally:
        model.shutdown(wait=True, cancel_futures=True)
        close()
    rr_s = np.append(np.diff(positions) / fs, np.nan) if n else np.zeros(0)
    return AnnotationResult(fs=fs, n_samples=len(signal), positions=positions, rr_s=rr_s, class_index=class_index,
                            probabilities=probabilities, flags=flags, labels=labels, class_names=names,
                            polarity={"mode": polarity, "recording": orientation, "negated": sign < 0,
                                      "upright_fraction": round(upright, 4)},
                            detector=detector_name(), residual=residual if novelty else None, novelty=novelty)
