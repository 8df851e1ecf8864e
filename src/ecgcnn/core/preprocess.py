"""Beat preprocessing shared by training, export calibration and every runtime: per-beat z-normalisation."""

from __future__ import annotations

import numpy as np


def normalize_beats(beats: np.ndarray) -> np.ndarray:
    """Per-beat z-normalisation (mean 0, sample std 1), the UCR convention for ECG5000.

    The official beats are already z-normalised, so this is the identity on them (to ~1e-8); it makes the models
    usable on beats recorded at another scale or offset. A flat beat maps to zeros.
    """
    beats = np.asarray(beats, dtype=np.float64)
    mean = beats.mean(axis=1, keepdims=True)
    std = beats.std(axis=1, ddof=1, keepdims=True)
    return ((beats - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


PREPROCESSING = {"name": "znorm-per-beat", "ddof": 1,
                 "description": "each beat minus its mean, divided by its sample standard deviation"}
