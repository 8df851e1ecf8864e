"""Labelled beats in the user's own text files: one beat per row, a label column, optionally a group column (a record
or patient) and a header.

Layout (``.tsv`` tab, ``.csv`` comma, anything else whitespace separated):

* the **label column** is the first column unless told otherwise (``first``, ``last``, a header name or a 1-based
  number); a header with a column named ``label`` makes that column the default;
* the **beat** is every column after the label column (before it, when the label is the last column), except the
  group column — so the UCR layout (label first), the common Kaggle layout (label last) and the output of
  ``ecgcnn beats`` (``record, sample, symbol, label, v1 .. vL``) all read as they are;
* labels are whole numbers or text, not both (``1.0`` is the label 1); the classes are the sorted distinct labels.

Every refusal is one line naming the file, the line and what was expected.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..core.fileio import is_number, shorten
from .missing import MISSING_MODES, made_whole
from .tables import _is_header, _open_text_lines, _parse_float, _split_line, delimiter_for, is_blank

Label = int | str


@dataclass
class LabelledBeats:
    """What one file holds: beats ``(N, L)`` float32, the label of each (int or str), its group (or None) and the
    1-based line of each row."""

    path: Path
    values: np.ndarray
    labels: list[Label]
    groups: list[str] | None
    line_numbers: list[int]


def read_labelled_file(path: str | os.PathLike, label_column: str | int | None = None,
                       group_column: str | int | None = None, missing: str = "refuse") -> LabelledBeats:
    """Read a labelled-beats file (see the module docstring for the layout); one-line :class:`DataError` on any
    problem. ``missing="fill"``: a beat's ``NaN`` or empty cells are missing values, made whole by
    :func:`~ecgcnn.data.missing.fill_missing` (a beat needs two values); ``"refuse"``: they are errors."""
    if missing not in MISSING_MODES:
        raise DataError(f"--missing {missing!r}: expected one of {', '.join(MISSING_MODES)}")
    path = Path(path)
    delimiter = delimiter_for(path)
    rows = [(number, _split_line(line, delimiter))
            for number, line in enumerate(_open_text_lines(path), start=1) if not is_blank(line, delimiter)]
    header = rows[0][1] if _is_header(rows[0][1]) else None
    if header is not None:
        _check_header(path, rows[0][0], header)
        rows = rows[1:]
        if not rows:
            raise DataError(f"{path}: only a header, no beats (expected one beat per line)")
    width = len(header) if header is not None else len(rows[0][1])
    label_at = _column_index(path, label_column, header, width, "label", default_name="label")
    group_at = _column_index(path, group_column, header, width, "group") if group_column is not None else None
    if group_at == label_at:
        raise DataError(f"{path}: the group column and the label column are the same column ({label_at + 1})")
    span = range(label_at + 1, width) if label_at < width - 1 else range(0, label_at)
    value_columns = [c for c in span if c != group_at]
    if not value_columns:
        raise DataError(f"{path}: no beat values beside the label column {label_at + 1} (expected a label and the "
                        f"beat's samples on each line)")

    values = np.empty((len(rows), len(value_columns)), np.float32)
    tokens: list[str] = []
    groups: list[str] = []
    for i, (line_no, cells) in enumerate(rows):
        if header is not None and cells == header:
            raise DataError(f"{path}, line {line_no}: the header again (duplicate header; were files concatenated?)")
        if len(cells) != width:
            raise DataError(f"{path}, line {line_no}: expected {width} columns, found {len(cells)}")
        token = cells[label_at]
        if not token:
            raise DataError(f"{path}, line {line_no}, column {label_at + 1}: the label is empty")
        tokens.append(token)
        if group_at is not None:
            if not cells[group_at]:
                raise DataError(f"{path}, line {line_no}, column {group_at + 1}: the group is empty")
            groups.append(cells[group_at])
        try:
            values[i] = [_parse_float(cells[c], path, line_no, c + 1, missing) for c in value_columns]
        except DataError as exc:
            if header is None:
                raise
            column = next(c for c in value_columns if not _parses(cells[c], missing))
            raise DataError(f"{exc} in column {header[column]!r}, read as part of the beat (the beat is every "
                            f"column beside the label's: name a record column with --group-by, or remove it)"
                            ) from None
    line_numbers = [line_no for line_no, _ in rows]
    if missing == "fill":
        values = made_whole(values, path, line_numbers)
    labels = typed_labels(tokens, path, line_numbers, label_at + 1)
    return LabelledBeats(path, values, labels, groups if group_at is not None else None, line_numbers)


def _parses(token: str, missing: str) -> bool:
    return (is_number(token) and math.isfinite(float(token))) or (
        missing == "fill" and token.strip().lower() in ("nan", ""))


def typed_labels(tokens: list[str], path: Path, line_numbers: list[int], column: int) -> list[Label]:
    """Labels as whole numbers when every token is one (``1``, ``-1``, ``2.0``), else as text; a file mixing numbers
    and text is refused at the first row whose kind differs from the first row's."""
    numeric = [is_number(token) for token in tokens]
    odd_number = next((i for i, (token, flag) in enumerate(zip(tokens, numeric, strict=True))
                       if flag and not math.isfinite(float(token))), None)
    if odd_number is not None:
        raise DataError(f"{path}, line {line_numbers[odd_number]}, column {column}: label "
                        f"{shorten(tokens[odd_number])!r} is not a finite number (expected a class label)")
    if all(numeric):
        floats = [float(token) for token in tokens]
        fractional = next((i for i, v in enumerate(floats) if v != round(v)), None)
        if fractional is None:
            return [int(round(v)) for v in floats]
        return list(tokens)  # fractional numbers name classes as text, exactly as written
    if any(numeric):
        odd = next(i for i, flag in enumerate(numeric) if flag != numeric[0])
        kind, first_kind = ("a number", "text") if numeric[odd] else ("text", "a number")
        raise DataError(f"{path}, line {line_numbers[odd]}, column {column}: label {shorten(tokens[odd])!r} is "
                        f"{kind} where line {line_numbers[0]}'s label {shorten(tokens[0])!r} is {first_kind} "
                        f"(mixed label types)")
    return list(tokens)


def _check_header(path: Path, line_no: int, header: list[str]) -> None:
    seen: set[str] = set()
    for column, name in enumerate(header, start=1):
        if name in seen:
            raise DataError(f"{path}, line {line_no}, column {column}: column name {shorten(name)!r} appears twice "
                            f"in the header (duplicate header)")
        seen.add(name)


def _column_index(path: Path, choice: str | int | None, header: list[str] | None, width: int, what: str,
                  default_name: str | None = None) -> int:
    """0-based index of a column given as ``first``/``last``, a 1-based number or a header name."""
    if choice is None:
        if header is not None and default_name is not None:
            lowered = [name.lower() for name in header]
            if default_name in lowered:
                return lowered.index(default_name)
        return 0
    if isinstance(choice, int) or (isinstance(choice, str) and choice.isdigit()):
        number = int(choice)
        if not 1 <= number <= width:
            raise DataError(f"{path}: {what} column {number} does not exist (the file has {width} columns)")
        return number - 1
    if choice == "first":
        return 0
    if choice == "last":
        return width - 1
    if header is None:
        raise DataError(f"{path}: no header line, so no {what} column named {choice!r} (name it in a first line, or "
                        f"give its number)")
    if choice not in header:
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        raise DataError(f"{path}: no column named {choice!r} for the {what} in the header (columns: {shown})")
    return header.index(choice)
