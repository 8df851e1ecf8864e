"""Beats to classify, as ``ecgcnn predict`` and ``ecgcnn serve`` read them: one per row of a CSV/TSV/TXT file (or
a request body), optional header, optionally resampled to the model's length; flat beats found."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from .tables import numeric_rows
from .ucr import INPUT_LENGTH


@dataclass
class Beats:
    """Beats read from a file: ``values`` ``(N, length)`` float32 and the 1-based line of each row."""

    values: np.ndarray
    line_numbers: list[int]
    labels: np.ndarray | None = None  # a UCR file's label column, when read with label_column="first"


def read_beats_csv(path: str | os.PathLike, length: int = INPUT_LENGTH, resample: bool = False,
                   label_column: str = "none", data: bytes | None = None) -> Beats:
    """Beats to classify: one per row, comma separated (tab for ``.tsv``, whitespace for ``.txt``), optional header.

    Without ``resample`` every row must hold exactly ``length`` values. With it, rows of any length >= 2 (they may
    differ) are linearly resampled to ``length`` (ECG5000's beats were interpolated to 140 samples the same way).
    ``label_column="first"`` reads a UCR-style file whose first column is the label. A file that looks like one
    (one extra leading column of small integers) without that option is refused rather than misread. ``data``: the
    file's bytes (a request body), ``path`` then only names it in errors.
    """
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else None if path.suffix.lower() == ".txt" else ","
    rows, line_numbers = numeric_rows(path, delimiter, allow_header=True, expected_columns=None, ragged=resample,
                                      data=data)
    labels = None
    if label_column == "first":
        short = next((i for i, row in enumerate(rows) if len(row) < 2), None)
        if short is not None:
            raise DataError(f"{path}, line {line_numbers[short]}: expected a label and beat values, found 1 value")
        labels = np.asarray([row[0] for row in rows])
        rows = [row[1:] for row in rows]
    widths = {len(row) for row in rows}
    if not resample and widths == {length + 1} and _looks_like_labels([row[0] for row in rows]):
        raise DataError(f"{path}, line {line_numbers[0]}: {length + 1} columns whose first holds small whole "
                        f"numbers: a label column? use --label-column first (or remove it)")
    if not resample:
        width = widths.pop()
        if width != length:
            raise DataError(f"{path}, line {line_numbers[0]}: expected {length} values per beat, found {width} "
                            f"(use --resample to resample beats of another length)")
        return Beats(np.asarray(rows, dtype=np.float32), line_numbers, labels)
    short = next((i for i, row in enumerate(rows) if len(row) < 2), None)
    if short is not None:
        raise DataError(f"{path}, line {line_numbers[short]}: cannot resample a beat of {len(rows[short])} "
                        f"value(s); expected >= 2")
    return Beats(np.stack([resample_beats(np.asarray([row]), length)[0] for row in rows]), line_numbers, labels)


def _looks_like_labels(column: list[float]) -> bool:
    values = np.asarray(column)
    return bool(np.all(values == np.round(values)) and values.min() >= 0 and values.max() <= 20
                and len(np.unique(values)) <= 20)


def flat_beats(beats: np.ndarray, tolerance: float = 1e-8) -> np.ndarray:
    """True for each beat whose values are constant: its z-normalisation is undefined (it maps to zeros)."""
    beats = np.asarray(beats, dtype=np.float64)
    return beats.std(axis=1, ddof=1) <= tolerance if beats.shape[1] > 1 else np.ones(len(beats), bool)


def resample_beats(beats: np.ndarray, length: int = INPUT_LENGTH) -> np.ndarray:
    """Linear interpolation of each beat onto ``length`` evenly spaced points over the same span."""
    beats = np.asarray(beats, dtype=np.float64)
    source = np.linspace(0.0, 1.0, beats.shape[1])
    target = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(target, source, row) for row in beats]).astype(np.float32)
