"""Beats to classify, as ``ecgcnn predict`` and ``ecgcnn serve`` read them: one per row of a CSV/TSV/TXT file (or
a request body), optional header, optionally resampled to the model's length; flat beats found."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from .missing import made_whole
from .tables import numeric_rows
from .ucr import INPUT_LENGTH

FLOAT32_MAX = float(np.finfo(np.float32).max)
OUTLIER_Z = 8.0
SPIKE_RATIO = 4.0
FLAT_WARNING = "flat beat: constant values cannot be z-normalised; prediction meaningless"
OUTLIER_WARNING = "spike or artefact: a value far outside the beat's shape; prediction unreliable"


@dataclass
class Beats:
    """Beats read from a file: ``values`` ``(N, length)`` float32 and the 1-based line of each row."""

    values: np.ndarray
    line_numbers: list[int]
    labels: np.ndarray | None = None  # the label column, when read with label_column="first" or "last"


def read_beats_csv(path: str | os.PathLike, length: int = INPUT_LENGTH, resample: bool = False,
                   label_column: str = "none", data: bytes | None = None, missing: str = "refuse") -> Beats:
    """Beats to classify: one per row, comma separated (tab for ``.tsv``, whitespace for ``.txt``), optional header.

    Without ``resample`` every row must hold exactly ``length`` values. With it, rows of any length >= 2 (they may
    differ) are linearly resampled to ``length`` (ECG5000's beats were interpolated to 140 samples the same way).
    ``label_column="first"`` reads a UCR-style file whose first column is the label, ``"last"`` one whose last
    column is (the common Kaggle layout). A file that looks like either (a first or last column of small whole
    numbers in rows of one length) without that option is refused rather than misread, with or without
    ``resample``. Values beyond float32 are refused. ``data``: the file's bytes (a request body), ``path`` then only
    names it in errors. ``missing="fill"``: ``NaN`` and empty cells are missing values, each beat made whole as
    training data is (:func:`ecgcnn.data.missing.fill_missing`; a beat needs two values).
    """
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else None if path.suffix.lower() == ".txt" else ","
    rows, line_numbers = numeric_rows(path, delimiter, allow_header=True, expected_columns=None, ragged=resample,
                                      data=data, missing=missing)
    labels = None
    if label_column in ("first", "last"):
        short = next((i for i, row in enumerate(rows) if len(row) < 2), None)
        if short is not None:
            raise DataError(f"{path}, line {line_numbers[short]}: expected a label and beat values, found 1 value")
        at = 0 if label_column == "first" else -1
        labels = np.asarray([row[at] for row in rows])
        rows = [row[1:] if at == 0 else row[:-1] for row in rows]
    widths = {len(row) for row in rows}
    if label_column == "none" and len(widths) == 1 and (widths == {length + 1} or resample):
        for side, at in (("first", 0), ("last", -1)):
            # resampling any length: only a whole-number column beside samples that are not all whole numbers
            others_whole = resample and widths != {length + 1} and all(
                v == round(v) for row in rows for v in (row[1:] if at == 0 else row[:-1]))
            if not others_whole and _looks_like_labels([row[at] for row in rows]):
                raise DataError(f"{path}, line {line_numbers[0]}: {len(rows[0])} columns whose {side} holds small "
                                f"whole numbers: a label column? use --label-column {side} (or remove it)")
    _check_float32(path, rows, line_numbers, offset=1 if label_column == "first" else 0)
    if missing == "fill":  # after the check above, whose columns are the file's; rows may differ in length
        for i, row in enumerate(rows):
            if any(math.isnan(v) for v in row):
                rows[i] = made_whole(np.asarray([row]), path, [line_numbers[i]])[0].tolist()
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


def _check_float32(path: Path, rows: list[list[float]], line_numbers: list[int], offset: int) -> None:
    """Beats are float32: a value beyond its range would become infinite and every prediction meaningless."""
    for i, row in enumerate(rows):
        big = next((c for c, v in enumerate(row) if abs(v) > FLOAT32_MAX), None)
        if big is not None:
            raise DataError(f"{path}, line {line_numbers[i]}, column {big + 1 + offset}: {row[big]:g} is beyond the "
                            f"float32 range (|x| <= {FLOAT32_MAX:.3g}); expected an ECG sample")


def _looks_like_labels(column: list[float]) -> bool:
    values = np.asarray(column)
    distinct = np.unique(values)  # zeros alone are padding (at a beat's end), not a label column
    return bool(np.all(values == np.round(values)) and values.min() >= 0 and values.max() <= 20
                and len(distinct) <= 20 and not (len(distinct) == 1 and distinct[0] == 0))


def outlier_beats(beats: np.ndarray) -> np.ndarray:
    """True for each beat with a value far outside its own shape — a spike or an artefact — whose label is not to be
    trusted: a z-score above :data:`OUTLIER_Z` (a z-normalised beat of L samples cannot exceed sqrt(L - 1); one
    lone spike reaches it), or a largest deviation from the median :data:`SPIKE_RATIO` times the second largest.
    Chosen on ECG5000's 5,000 official beats, which reach at most 7.4 and 2.3 (none flagged; tested)."""
    x = np.asarray(beats, dtype=np.float64)
    if x.shape[1] < 3:
        return np.zeros(len(x), bool)
    std = x.std(axis=1, ddof=1)
    z = np.abs(x - x.mean(axis=1, keepdims=True)).max(axis=1) / np.where(std > 0, std, np.inf)
    deviation = np.sort(np.abs(x - np.median(x, axis=1, keepdims=True)), axis=1)
    ratio = deviation[:, -1] / np.maximum(deviation[:, -2], 1e-12 * np.maximum(deviation[:, -1], 1e-300))
    return (z > OUTLIER_Z) | ((ratio > SPIKE_RATIO) & (std > 0))


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
