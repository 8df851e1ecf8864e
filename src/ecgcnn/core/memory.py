"""Bounded memory: the beats per model call of the export's checks, and giving freed heap memory back to the operating
system (glibc's ``malloc_trim``; a no-op elsewhere).

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

# Beats per model call where the export runs a whole split through a model to check it (PyTorch against ONNX Runtime,
# ONNX Runtime against TFLite): Hydra's responses are k * g / 2 channels of the beat's length per dilation and input,
# and one ONNX Runtime call on every training beat of FordA (3,601 beats of 500 samples) grew to 24 GB and was killed.
# 2,000 such beats peak at 0.85 GB in calls of 64, at 7.2 GB in one call (tests/export/test_check_batches.py).
CHECK_BATCH = 64


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
