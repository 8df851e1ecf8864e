"""An exclusive lock on a run's output directory: an OS file lock (``filelock``), so it dies with its process.

The holder's pid and host are written next to the lock so that a refused second training can say who holds it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from filelock import FileLock, Timeout

from ..core.errors import EcgcnnError

LOCK_NAME = ".ecgcnn.lock"
OWNER_NAME = ".ecgcnn.lock.owner"


class RunLock:
    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.owner = self.directory / OWNER_NAME
        self._lock = FileLock(str(self.path))

    def __enter__(self) -> RunLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise EcgcnnError(f"{self.directory}: another training ({self._holder()}) is writing here; "
                              f"wait for it or choose another --output-dir") from None
        self.owner.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}), encoding="utf-8")
        return self

    def _holder(self) -> str:
        try:
            info = json.loads(self.owner.read_text(encoding="utf-8"))
            return f"pid {int(info['pid'])} on {info.get('host')}"
        except (OSError, ValueError, KeyError, TypeError):
            return "pid unknown"

    def __exit__(self, *exc) -> None:
        self.owner.unlink(missing_ok=True)
        self._lock.release()
