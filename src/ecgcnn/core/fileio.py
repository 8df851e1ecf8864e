"""File helpers below every reader and writer.

Crash-safe writing (every artifact is written to a temporary file in the target directory, then renamed), a file's
sha256, and the two token checks the text readers (``data``, ``recording``) share for their error messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import EcgcnnError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``, on failure deleted.

    The temporary name keeps the final suffix (libraries such as matplotlib pick the format from it).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix,
                                        dir=path.parent)
    except OSError as exc:  # the reason, naming the file the user asked for (not a temporary name)
        raise EcgcnnError(f"{path}: cannot write here ({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; artifacts get the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays appear in metrics; store them as plain numbers/lists.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_number(token: str) -> bool:
    """Whether ``float(token)`` parses."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def shorten(token: str) -> str:
    """``token`` cut to 20 characters (17 and ``...``) for quoting in a one-line error message."""
    return token if len(token) <= 20 else token[:17] + "..."


def check_output_file(path: str | os.PathLike, flag: str, inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Refuse an output path that cannot become a file, or that is one of ``inputs`` (it would replace the data it
    is made from), before any work is done (one-line error, exit 2)."""
    path = Path(path)
    for given in inputs:
        if given is not None and Path(given).exists() and path.exists() and path.samefile(given):
            raise EcgcnnError(f"{flag} {path}: is the input file {given}; expected a different output file")
    if path.is_dir():
        raise EcgcnnError(f"{flag} {path}: is a directory; expected a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise EcgcnnError(f"{flag} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK):
        raise EcgcnnError(f"{flag} {path}: directory {parent} is not writable")
    try:  # os.access says yes to root everywhere; a probe file says what the file system allows
        fd, probe = tempfile.mkstemp(prefix=".ecgcnn-probe.", dir=parent)
    except OSError as exc:
        raise EcgcnnError(f"{flag} {path}: cannot create a file in {parent} ({exc.strerror or type(exc).__name__})"
                          ) from None
    os.close(fd)
    os.unlink(probe)
    return path
