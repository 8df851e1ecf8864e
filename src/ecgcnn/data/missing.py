"""Beats with missing values, made whole (``--missing fill``).

The UCR archive's variable-length datasets pad a short series with NaN up to the longest one's length (the gesture
datasets: a slower gesture is a longer series), and some datasets have gaps inside a series (DodgerLoop*: a
traffic sensor that did not report). A model takes beats of one length, so with ``--missing fill`` each row is made
whole the same way in training, evaluation and the bake-off: its span from the first to the last finite value, with
every gap inside filled by linear interpolation between the values around it, is stretched by linear interpolation
to the row's full width. Stretching, not padding, because in these datasets length follows speed (uniform scaling,
as Tan et al., "Time series classification for varying length series", 2019, recommend for that case); a row
without missing values is unchanged. The default, ``refuse``, keeps every NaN an error naming its file, line and
column.
"""

from __future__ import annotations

import numpy as np

from ..core.errors import DataError

MISSING_MODES = ("refuse", "fill")
MIN_VALUES = 2  # a row needs at least two values to be stretched


def fill_missing(values: np.ndarray) -> np.ndarray:
    """``values`` (N, L) with NaN where a value is missing -> (N, L) without NaN (see the module docstring), in the
    input's dtype. Rows with fewer than :data:`MIN_VALUES` finite values raise :class:`ValueError` naming the first
    such row (0-based); :func:`too_short_rows` finds them beforehand."""
    x = np.asarray(values)
    out = x.copy()
    width = x.shape[1]
    for i in np.flatnonzero(np.isnan(x).any(axis=1)):
        known = np.flatnonzero(~np.isnan(x[i]))
        if len(known) < MIN_VALUES:
            raise ValueError(f"row {i}: {len(known)} value(s), at least {MIN_VALUES} needed")
        first, last = known[0], known[-1]
        span = np.interp(np.arange(first, last + 1), known, x[i, known].astype(np.float64))  # gaps filled
        out[i] = np.interp(np.linspace(0.0, len(span) - 1.0, width), np.arange(len(span)), span)
    return out


def too_short_rows(values: np.ndarray) -> np.ndarray:
    """Indices of the rows that have fewer than :data:`MIN_VALUES` finite values."""
    return np.flatnonzero((~np.isnan(np.asarray(values))).sum(axis=1) < MIN_VALUES)


def made_whole(values: np.ndarray, path, line_numbers: list[int]) -> np.ndarray:
    """:func:`fill_missing` for the rows of a file: a row with too few values is a :class:`DataError` naming the
    file and its line."""
    short = too_short_rows(values)
    if len(short):
        raise DataError(f"{path}, line {line_numbers[short[0]]}: fewer than {MIN_VALUES} values, the rest missing "
                        f"(expected a beat)")
    return fill_missing(values)
