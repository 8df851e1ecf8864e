"""Giving freed heap memory back to the operating system (glibc's ``malloc_trim``; a no-op elsewhere).

PyTorch's CPU convolutions make hundreds of small allocations per call between the activations they free, and glibc
keeps the freed activations inside its arenas, fragmented, instead of returning them. ``pretrained:best`` (Hydra,
PyTorch, one thread) annotating 2 hours of ECG peaked at 191 MB of live heap (memray) and 426-676 MB resident from
one run to the next; a ``--jobs 2`` worker on 24 hours reached 540 MB. Trimming after every model call: 364 MB on
the 2 hours, 466 MB on the 24 (docs/deployment.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows, musl)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_heap() -> bool:
    """Return the free pages of every malloc arena to the system; True where that was possible (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
