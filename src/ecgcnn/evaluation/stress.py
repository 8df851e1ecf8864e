"""The stress evaluation: a model file judged on beats cut the way ``annotate`` cuts recordings, not only on the
dataset's own windows.

Every condition starts from the official test beats (or a seeded subset of them), stitched into a continuous
recording by :func:`ecgcnn.evaluation.recut.stitch` (shuffled neighbours, RR drawn per beat) and annotated by the
project's own path, :func:`~ecgcnn.annotate.pipeline.annotate_signal` (detector, polarity, refinement, windows,
model). Its R-peaks are matched to the true ones within :data:`TOLERANCE_S`; detection sensitivity and positive
predictivity count those matches, and label accuracy and macro-F1 are computed over the matched beats that annotate
classified (a flagged beat is not scored; ``coverage`` says how many were). Conditions (:func:`conditions`):

- ``official``: the dataset's own windows, no recording (the figure ``evaluate`` prints);
- ``recut-<rate>``: recordings at 250, 360 and 500 Hz, RR 0.68-0.92 s;
- ``<noise>-<snr>dB``: NSTDB baseline wander / muscle artifact / electrode motion added to the 250 Hz recording at
  SNR 24, 18, 12 and 6 dB (:mod:`ecgcnn.evaluation.noise`); compare with ``recut-250``, the same recording clean;
- ``gain-offset``: the 250 Hz recording times 200 plus 1000 (ADC units);
- ``inverted``: the 250 Hz recording negated (annotate's polarity detection must turn it back);
- ``rr-0.5-2.0``: RR drawn from 0.5-2.0 s at 250 Hz.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..annotate.pipeline import annotate_signal
from ..core.novelty import unfamiliar
from ..core.preprocess import normalize_beats
from .metrics import classification_metrics
from .noise import NOISE_KINDS, add_noise, load_noise, noise_for
from .recut import match_peaks, stitch

TOLERANCE_S = 0.15  # a detection within 150 ms of a true R-peak finds it (EC57's match window)
RATES = (250.0, 360.0, 500.0)
SNRS_DB = (24, 18, 12, 6)
RR_S = (0.68, 0.92)
WIDE_RR_S = (0.5, 2.0)


@dataclass(frozen=True)
class Condition:
    name: str
    group: str  # official, recut, noise, transform
    fs: float = 250.0
    rr_s: tuple[float, float] = RR_S
    noise: str | None = None
    snr_db: float | None = None
    gain: float = 1.0
    offset: float = 0.0


def conditions(noise: bool = True) -> list[Condition]:
    """Every condition of the stress table, in its order (noise rows only with ``noise``)."""
    rows = [Condition("official", "official")]
    rows += [Condition(f"recut-{rate:g}", "recut", fs=rate) for rate in RATES]
    if noise:
        rows += [Condition(f"{kind}-{snr}dB", "noise", noise=kind, snr_db=snr) for kind in NOISE_KINDS
                 for snr in SNRS_DB]
    rows += [Condition("gain-offset", "transform", gain=200.0, offset=1000.0),
             Condition("inverted", "transform", gain=-1.0),
             Condition(f"rr-{WIDE_RR_S[0]:g}-{WIDE_RR_S[1]:g}", "transform", rr_s=WIDE_RR_S)]
    return rows


def score_recording(predictor, signal: np.ndarray, fs: float, r_peaks: np.ndarray, labels: np.ndarray) -> dict:
    """Annotate ``signal`` and score it against the true ``r_peaks`` and their class indices ``labels``."""
    result = annotate_signal(signal, fs, predictor)
    match = match_peaks(result.positions, r_peaks, TOLERANCE_S * fs)
    found = match >= 0
    matched_class = result.class_index[match[found]]
    classified = matched_class >= 0
    truth = labels[found][classified]
    metrics = classification_metrics(truth, matched_class[classified], len(predictor.labels))
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "sensitivity": float(found.mean()) if len(found) else 0.0,
            "ppv": float(found.sum() / len(result.positions)) if len(result.positions) else 0.0,
            "coverage": float(classified.sum() / len(r_peaks)) if len(r_peaks) else 0.0,
            "beats": int(len(r_peaks)), "scored": int(classified.sum()),
            "per_class_recall": [c["recall"] for c in metrics["per_class"]],
            "unfamiliar": float(np.mean(result.flags[match[found]] == "unfamiliar")) if found.any() else 0.0,
            "familiarity": result.familiarity(),
            "polarity": result.polarity.get("recording")}


def condition_recording(condition: Condition, beats: np.ndarray, seed: int, noise: dict | None = None,
                        cache: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The recording of a non-official condition: ``(signal, r_peaks, order)`` as :func:`~.recut.stitch` returns
    them, with the condition's NSTDB ``noise`` record (started at a point drawn from ``seed``), gain and offset.
    ``cache`` keeps the clean stitched recordings between conditions (keyed by rate and RR range)."""
    cache = {} if cache is None else cache
    key = (condition.fs, condition.rr_s)
    if key not in cache:
        cache[key] = stitch(beats, condition.fs, condition.rr_s, seed)
    signal, r_peaks, order = cache[key]
    if condition.noise is not None:
        rng = np.random.default_rng(seed)
        record = noise[condition.noise]
        start = int(rng.integers(0, len(record)))
        signal = add_noise(signal, condition.fs, r_peaks,
                           noise_for(record, len(signal), condition.fs, start=start), condition.snr_db)
    return condition.gain * signal + condition.offset, r_peaks, order


def run_stress(predictor, beats: np.ndarray, labels: np.ndarray, seed: int = 0, noise_file=None,
               with_noise: bool = True, log=lambda message: None) -> dict:
    """The stress table of one model: a row per :func:`conditions` entry (JSON-ready).

    ``beats`` (N, L) raw test beats and ``labels`` their class indices; ``seed`` fixes neighbours, RR and the
    noise's starting point, so every model is judged on the same recordings."""
    beats = np.asarray(beats, dtype=np.float64)
    labels = np.asarray(labels)
    noise = load_noise(noise_file) if with_noise else None
    rows = []
    recordings: dict[tuple, tuple] = {}
    for condition in conditions(with_noise):
        started = time.perf_counter()
        if condition.group == "official":
            predicted = predictor.predict_indices(beats)
            metrics = classification_metrics(labels, predicted, len(predictor.labels))
            row = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "beats": int(len(labels)),
                   "scored": int(len(labels)), "per_class_recall": [c["recall"] for c in metrics["per_class"]],
                   "unfamiliar": float(np.mean(unfamiliar(normalize_beats(beats),
                                                          predictor.metadata.get("novelty"))))}
        else:
            signal, r_peaks, order = condition_recording(condition, beats, seed, noise, recordings)
            row = score_recording(predictor, signal, condition.fs, r_peaks, labels[order])
        rows.append({"condition": condition.name, "group": condition.group, "fs_hz": condition.fs,
                     "rr_s": list(condition.rr_s), "noise": condition.noise, "snr_db": condition.snr_db,
                     **row, "seconds": round(time.perf_counter() - started, 2)})
        log(f"{condition.name:>16}: accuracy {row['accuracy']:.4f} macro-F1 {row['macro_f1']:.4f}"
            + (f"  Se {row['sensitivity']:.4f} PPV {row['ppv']:.4f}" if "sensitivity" in row else ""))
    return {"seed": seed, "beats": int(len(labels)), "tolerance_s": TOLERANCE_S, "rows": rows,
            "summary": summarise(rows)}


def summarise(rows: list[dict]) -> dict:
    """Headline figures: official and 250 Hz re-cut accuracy, their gap, the worst noise row at 12 dB against clean."""
    by = {r["condition"]: r for r in rows}
    out = {"official_accuracy": by["official"]["accuracy"]}
    if "recut-250" in by:
        out["recut_accuracy"] = by["recut-250"]["accuracy"]
        out["recut_macro_f1"] = by["recut-250"]["macro_f1"]
        out["recut_drop_pp"] = round(100 * (out["official_accuracy"] - out["recut_accuracy"]), 2)
        twelve = [r["accuracy"] for r in rows if r["snr_db"] == 12]
        if twelve:
            out["noise_12db_worst_accuracy"] = min(twelve)
            out["noise_12db_drop_pp"] = round(100 * (out["recut_accuracy"] - min(twelve)), 2)
    return out


def subset(labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded, stratified subset of ``size`` beats (all beats, in order, when ``size`` is None)."""
    labels = np.asarray(labels)
    if size is None or size >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = max(1, int(round(size * len(members) / len(labels))))
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))
