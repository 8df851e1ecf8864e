"""Checks at the boundary, in one place: each raises :class:`EcgcnnError` with one sentence naming the setting.

Used by the configuration (:mod:`ecgcnn.training.config`), the command line (as argparse types) and the runtimes.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import EcgcnnError


def expectation(kind: type[int] | type[float] = float, low: float | None = None, high: float | None = None,
                low_inclusive: bool = True, high_inclusive: bool = True) -> str:
    """What a bounded number must be, in words: 'a whole number >= 1', 'a value in [0, 1)'."""
    noun = "a whole number" if kind is int else "a number"
    if low is not None and high is not None:
        if not low_inclusive and not high_inclusive:
            return f"a value strictly between {low:g} and {high:g}"
        if kind is int and low_inclusive and high_inclusive:
            return f"a whole number from {low:g} to {high:g}"
        return f"a value in {'[' if low_inclusive else '('}{low:g}, {high:g}{']' if high_inclusive else ')'}"
    if low is not None:
        if low == 0 and not low_inclusive:
            return "a positive number" if kind is float else "a whole number >= 1"
        return f"{noun} {'>=' if low_inclusive else '>'} {low:g}"
    if high is not None:
        return f"{noun} {'<=' if high_inclusive else '<'} {high:g}"
    return noun


def _in_bounds(value: float, low: float | None, high: float | None, low_inclusive: bool, high_inclusive: bool) -> bool:
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    return not (too_low or too_high)


def check_number(name: str, value: Any, *, kind: type[int] | type[float] = float, low: float | None = None,
                 high: float | None = None, low_inclusive: bool = True, high_inclusive: bool = True) -> float | int:
    """``value`` as ``kind`` within the bounds, else a one-line :class:`EcgcnnError` naming ``name``."""
    if kind is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
            and math.isfinite(float(value))
    if not ok or not _in_bounds(value, low, high, low_inclusive, high_inclusive):
        raise EcgcnnError(f"{name} {value!r}: expected {expectation(kind, low, high, low_inclusive, high_inclusive)}")
    return kind(value)


def argparse_type(kind: type[int] | type[float] = float, **bounds: Any) -> Callable[[str], float | int]:
    """An argparse ``type=`` callable applying :func:`check_number` (errors become argparse's one-line errors)."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check_number("", value, kind=kind, **bounds)
        except EcgcnnError:
            raise argparse.ArgumentTypeError(f"expected {expectation(kind, **bounds)}, got {text}") from None

    parse.__name__ = kind.__name__
    return parse


def check_beats(beats: npt.ArrayLike, length: int) -> np.ndarray:
    """Beats as a C-contiguous float32 ``(N, length)`` array of finite values (``(N, 1, length)`` accepted)."""
    x = np.asarray(beats, dtype=np.float32)
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0, :]
    if x.ndim != 2 or x.shape[1] != length:
        raise EcgcnnError(f"expected beats of shape (N, {length}), got {tuple(x.shape)}")
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise EcgcnnError(f"beats contain NaN or infinite values (first in beat {row + 1})")
    return np.ascontiguousarray(x)
