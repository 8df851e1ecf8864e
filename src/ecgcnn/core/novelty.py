"""How unlike its training beats a beat is: a novelty score that travels with the model, numpy only.

A model can only be trusted on beats like the ones it learnt from. At training time :func:`fit_novelty` takes the
z-normalised training beats (the dataset's windows and, with ``--recut``, their re-cut copies: everything the model
was fitted on), keeps their mean and the :data:`COMPONENTS` leading principal directions, and scores each beat twice,
as in PCA process monitoring: its *residual* (Q: the mean squared distance from the beat to that subspace: a shape
the training beats never had) and its *leverage* (Hotelling's T^2: the squared Mahalanobis distance of its
coordinates inside the subspace: familiar ingredients in unfamiliar amounts, e.g. an inverted lead). Each threshold is
the :data:`QUANTILE` quantile of the training beats' own scores, so about 1 in 1,000 ordinary beats is flagged by
construction. The reference is stored in the model's metadata under ``novelty`` and follows it into ONNX and TFLite
files; ``annotate`` flags beats above either threshold as ``unfamiliar`` (still labelled). Beats longer than
:data:`MAX_POINTS` are first averaged onto that many points (equal bins: a low-pass, so noise still counts), so the
reference holds at most about 9 x 140 numbers at any beat length: written out in full it made a full-INT8 file of
1,639-sample beats 201 KB, 141 KB of it this reference, where the network needs 45 KB.

One beat far out is rare; a whole recording of another patient is the common case, and each of its beats can stay
under the per-beat thresholds while the recording as a whole sits far from the training beats. So the reference also
keeps the training beats' median residual, and :func:`residual_ratio` scores a recording: the median residual of its
beats over that median (1 for beats like the training beats). ``recording_limit``, when present, is the largest ratio
of the training beats themselves re-cut from clean recordings by annotate's cutter (set where the beats can be
re-cut: :func:`ecgcnn.evaluation.recut.recording_limit`); a recording above it is unlike the beats the model was
fitted on: another patient or lead, or noise.
"""

from __future__ import annotations

import numpy as np

COMPONENTS = 8
QUANTILE = 0.9995  # per score; the two together flag about 0.1 % of the training beats
MAX_POINTS = 140  # ECG5000's beat length: its references (and the shipped ones) are unchanged


def on_points(beats: np.ndarray, points: int) -> np.ndarray:
    """Each row of ``beats`` (N, L >= points) as the means of ``points`` bins: sample ``i`` in bin
    ``floor(i * points / L)``."""
    x = np.asarray(beats, dtype=np.float64)
    length = x.shape[1]
    if length == points:
        return x
    if length < points:
        raise ValueError(f"beats of {length} samples cannot be scored against a reference of {points} points")
    edges = -((-np.arange(points + 1) * length) // points)  # ceil(j * L / points): the first sample of bin j
    means: np.ndarray = np.add.reduceat(x, edges[:-1], axis=1) / np.diff(edges)
    return means


def fit_novelty(beats: np.ndarray, components: int = COMPONENTS, quantile: float = QUANTILE) -> dict:
    """The novelty reference of z-normalised ``beats`` (N, L), JSON-ready."""
    x = np.asarray(beats, dtype=np.float64)
    x = on_points(x, min(x.shape[1], MAX_POINTS))
    mean = x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
    basis = vt[:components]
    variance = singular[:components] ** 2 / max(len(x) - 1, 1)
    reference = {"method": "pca-q-t2", "components": int(len(basis)), "quantile": quantile, "beats": int(len(x)),
                 "mean": [round(float(v), 5) for v in mean],
                 "basis": [[round(float(v), 5) for v in row] for row in basis],
                 "variance": [float(v) for v in variance]}
    residual, leverage = novelty_scores(x, reference)
    reference["threshold"] = [float(np.quantile(residual, quantile)), float(np.quantile(leverage, quantile))]
    reference["median_residual"] = float(np.median(residual))
    return reference


def novelty_scores(beats: np.ndarray, reference: dict) -> tuple[np.ndarray, np.ndarray]:
    """(residual Q, leverage T^2) of each z-normalised beat against the reference (on the reference's points)."""
    mean = np.asarray(reference["mean"], dtype=np.float64)
    x = on_points(beats, len(mean)) - mean
    basis = np.asarray(reference["basis"], dtype=np.float64)
    coordinates = x @ basis.T
    residual = np.mean((x - coordinates @ basis) ** 2, axis=1)
    leverage = np.sum(coordinates ** 2 / np.asarray(reference["variance"], dtype=np.float64), axis=1)
    return residual, leverage


def novelty_flags(beats: np.ndarray, reference: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """``(flagged, residual)`` per z-normalised beat: True where it scores above either threshold, and its residual
    Q (all False and NaN without a reference)."""
    if not reference or not len(beats):
        return np.zeros(len(beats), dtype=bool), np.full(len(beats), np.nan)
    residual, leverage = novelty_scores(beats, reference)
    q_max, t2_max = reference["threshold"]
    return (residual > q_max) | (leverage > t2_max), residual


def unfamiliar(beats: np.ndarray, reference: dict | None) -> np.ndarray:
    """True where a z-normalised beat scores above either threshold (all False without a reference)."""
    return novelty_flags(beats, reference)[0]


def residual_ratio(residuals: np.ndarray, reference: dict | None) -> float | None:
    """The median of a recording's beat residuals (Q, as :func:`novelty_scores` gives them) over the training beats'
    median: about 1 for beats like the training beats. None without a reference that records the median, or without
    beats."""
    residuals = np.asarray(residuals, dtype=np.float64)
    residuals = residuals[np.isfinite(residuals)]
    if not reference or not reference.get("median_residual") or not len(residuals):
        return None
    return float(np.median(residuals) / reference["median_residual"])
