"""Labelled beats from annotated recordings (``ecgcnn beats``): every reference beat annotation of a WFDB record,
cut by the cutter ``annotate`` uses (polarity vote, refinement to the QRS minimum, one R-to-R window in ECG5000's
convention), so that a model trained on these beats sees the windows it will meet in ``annotate``.

Labels follow ANSI/AAMI EC57's five beat classes (MIT-BIH symbols): N (N, L, R, e, j), S (A, a, J, S), V (V, E),
F (F) and Q (/, f, Q); annotations that are not beats (rhythm, noise, comments) are skipped, and a beat whose window
annotate would not classify (the last one, RR outside 0.25-2.5 s, before the start, flat) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detection import refine_marks, upright_fraction
from .readers import Recording
from .windows import ECG5000_LENGTH, beat_windows

AAMI_CLASSES = {"N": ("N", "L", "R", "e", "j"), "S": ("A", "a", "J", "S"), "V": ("V", "E"), "F": ("F",),
                "Q": ("/", "f", "Q")}
AAMI_OF_SYMBOL = {symbol: cls for cls, symbols in AAMI_CLASSES.items() for symbol in symbols}


@dataclass
class ReferenceBeats:
    """Windows ``(N, length)`` float32 and, per window, the annotation's sample, symbol and label."""

    windows: np.ndarray
    samples: np.ndarray
    symbols: list[str]
    labels: list[str]


def reference_beats(recording: Recording, samples: np.ndarray, symbols: list[str], length: int = ECG5000_LENGTH,
                    polarity: str = "auto", labels: str = "aami") -> ReferenceBeats:
    """Cut every annotated beat of ``recording`` (``samples``/``symbols`` from its reference annotations).
    ``labels``: ``aami`` (the five EC57 classes) or ``symbol`` (the annotation symbols as they are)."""
    beat = np.asarray([s in AAMI_OF_SYMBOL for s in symbols], dtype=bool)
    marks = np.asarray(samples, dtype=np.int64)[beat]
    kept_symbols = [s for s, b in zip(symbols, beat, strict=True) if b]
    signal, fs = recording.signal, recording.fs
    orientation = polarity if polarity != "auto" else ("normal" if upright_fraction(signal, fs) >= 0.5 else "inverted")
    sign = -1.0 if orientation == "normal" else 1.0  # QRS pointing down, as in ECG5000 (as annotate does)
    order = np.argsort(marks, kind="stable")
    marks, kept_symbols = marks[order], [kept_symbols[i] for i in order]
    positions, _ = refine_marks(signal, fs, marks, sign)
    windows, flags = beat_windows(signal, fs, positions, sign, length)
    usable = np.flatnonzero(flags == "")
    chosen = [kept_symbols[i] for i in usable]
    return ReferenceBeats(windows=windows[usable], samples=marks[usable], symbols=chosen,
                          labels=[AAMI_OF_SYMBOL[s] if labels == "aami" else s for s in chosen])
