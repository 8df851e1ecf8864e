"""core/memory: freed heap pages go back to the system. The construction is built from the C library's own malloc
and free in a fresh process, so the arena's state is known: 96 blocks of 512 KiB, each pinned in place by a 24 KiB
block allocated after it, are written and freed; glibc keeps them (no free space at the heap's top to trim) until
``release_free_heap`` returns them."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.fast,
              pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                 reason="malloc_trim is glibc's")]

CHILD = r"""
import ctypes, ctypes.util
from ecgcnn.core.memory import release_free_heap
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

libc.free(libc.malloc(1 << 20))  # an mmapped block freed: glibc now serves blocks up to 1 MiB from its heap
big, pins = [], []
for _ in range(96):
    block = libc.malloc(512 << 10)
    libc.memset(block, 1, 512 << 10)
    big.append(block)
    pins.append(libc.malloc(24 << 10))
before = rss_mib()
for block in big:
    libc.free(block)
freed = rss_mib()
ok = release_free_heap()
print(ok, before, freed, rss_mib())
"""


def _measure() -> tuple[bool, float, float, float]:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", *map(float, out[1:])


def test_release_free_heap_returns_freed_fragmented_blocks_to_the_system():
    # Resident memory is the kernel's account, and another process's load can move it (the test failed once in a
    # loaded full run and passed alone): up to three fresh processes, and one that shows the construction and the
    # trim is enough. Without the trim none can: the 48 MiB stay resident in every one.
    runs = []
    for _ in range(3):
        ok, before, freed, trimmed = _measure()
        runs.append((ok, before, freed, trimmed))
        # the construction holds (free alone keeps the 48 MiB resident), then the trim gives them back
        if ok and freed > before - 8 and trimmed < freed - 40:
            return
    pytest.fail(f"release_free_heap did not return the freed blocks (ok, before, freed, trimmed MiB): {runs}")
