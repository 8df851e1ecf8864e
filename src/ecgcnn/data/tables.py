"""Delimited numeric text tables with one-line errors naming the file, line and column: what every reader of beats
in text files (UCR splits, ``predict``'s CSV, the service's CSV body) is built on."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..core.fileio import is_number, shorten


def _open_text_lines(path: Path, data: bytes | None = None) -> list[str]:
    """Read a text file (or ``data``, named ``path`` in errors) as lines; a UTF-8 BOM and Windows line endings are
    accepted. Errors name the file."""
    if data is not None:
        raw = data
    elif not path.exists():
        raise DataError(f"{path}: file not found")
    elif not path.is_file():
        raise DataError(f"{path}: not a regular file")
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file (undecodable byte at offset {exc.start})") from exc
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"{path}: file is empty (expected one beat per line)")
    return lines


MISSING_HINT = " (missing values, e.g. a variable-length UCR dataset's padding: --missing fill)"


def _split_line(line: str, delimiter: str | None) -> list[str]:
    """The cells of a line. With a delimiter, empty cells at either end count (pandas writes a missing value as an
    empty cell); splitting on whitespace has no empty cells."""
    if delimiter is None:
        return line.split()
    return [token.strip() for token in line.strip(" \r\n").split(delimiter)]


def is_blank(line: str, delimiter: str | None) -> bool:
    """A line to skip: nothing but whitespace, and (with a delimiter) not even one delimiter."""
    return not line.strip() and (delimiter is None or delimiter not in line)


def _parse_float(token: str, path: Path, line_no: int, column: int, missing: str = "refuse") -> float:
    """One finite number; with ``missing="fill"`` a ``NaN`` or empty cell is NaN (a missing value, filled later by
    :func:`ecgcnn.data.missing.fill_missing`). The refusal of such a cell says how to read it."""
    absent = token.strip().lower() in ("nan", "")
    if absent and missing == "fill":
        return math.nan
    hint = MISSING_HINT if absent else ""
    try:
        value = float(token)
    except ValueError:
        shown = shorten(token)
        raise DataError(f"{path}, line {line_no}, column {column}: expected a number, found {shown!r}{hint}"
                        ) from None
    if not math.isfinite(value):
        raise DataError(f"{path}, line {line_no}, column {column}: expected a finite number, found {token!r}{hint}")
    return value


def numeric_rows(path: Path, delimiter: str | None, allow_header: bool, expected_columns: int | None,
                 ragged: bool, data: bytes | None = None,
                 missing: str = "refuse") -> tuple[list[list[float]], list[int]]:
    """Rows of numbers (lists; ``ragged``: of any width) and the 1-based line number of each; ``missing="fill"``
    reads ``NaN`` and empty cells as NaN."""
    lines = _open_text_lines(path, data)
    rows: list[list[float]] = []
    line_numbers: list[int] = []
    width = expected_columns
    first = True
    for line_no, line in enumerate(lines, start=1):
        if is_blank(line, delimiter):
            continue
        tokens = _split_line(line, delimiter)
        if first and allow_header and _is_header(tokens):
            first = False
            continue  # a header: a first row in which no cell is a number
        first = False
        if width is None and not ragged:
            width = len(tokens)
        if not ragged and len(tokens) != width:
            raise DataError(f"{path}, line {line_no}: expected {width} columns, found {len(tokens)}")
        rows.append([_parse_float(tok, path, line_no, col, missing) for col, tok in enumerate(tokens, start=1)])
        line_numbers.append(line_no)
    if not rows:
        raise DataError(f"{path}: no data rows (expected one beat per line)")
    return rows, line_numbers


def read_numeric_table(path: str | os.PathLike, delimiter: str | None, *, allow_header: bool = False,
                       expected_columns: int | None = None, missing: str = "refuse") -> tuple[np.ndarray, list[int]]:
    """Parse a delimited numeric table into float64 ``(rows, columns)`` plus the 1-based line number of each row.

    ``delimiter=None`` splits on any whitespace. Blank lines are skipped. With ``allow_header`` a first non-blank
    line in which no cell is a number is a header; any other line is data and must parse (file, line, column).
    All rows must have the same number of columns. ``missing="fill"``: ``NaN`` and empty cells are NaN.
    """
    rows, line_numbers = numeric_rows(Path(path), delimiter, allow_header, expected_columns, ragged=False,
                                      missing=missing)
    return np.asarray(rows, dtype=np.float64), line_numbers


def _is_header(tokens: list[str]) -> bool:
    """No cell is a number and some cell holds text (a row of empty cells is a row of missing values)."""
    return not any(is_number(token) for token in tokens) and any(tokens)


def delimiter_for(path: Path) -> str | None:
    """Tab for ``.tsv``, comma for ``.csv``, any whitespace otherwise (UCR ``.txt``)."""
    suffix = path.suffix.lower()
    return {".tsv": "\t", ".csv": ","}.get(suffix)
