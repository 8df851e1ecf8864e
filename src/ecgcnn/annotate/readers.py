"""Raw ECG recordings for ``ecgcnn annotate``: :func:`read_recording` opens one signal channel of a file.

Supported inputs (the file type is taken from the name):

* **WFDB** records (PhysioNet): ``NAME``, ``NAME.hea`` or ``NAME.dat`` with the header beside it. The header
  carries the sampling frequency. Read with the ``wfdb`` package (the ``annotate`` extra), imported on first use.
* **CSV / TXT / TSV**: one number per line, or several columns (comma, semicolon, tab or whitespace separated)
  with ``column`` naming one by header name or 1-based number. An optional header line, ``#`` comments and blank
  lines are allowed. Text files carry no sampling frequency: ``fs`` is required.
* **NPY**: a 1-D array, or a 2-D array whose shorter axis is the channel axis (``channel`` picks one, 1-based).
  Opened memory-mapped: a 1-D recording of floats or of integers up to 32 bits is not copied, any other is
  copied block by block (see :class:`Recording` for the dtype it is held in). ``fs`` is required.

``channel`` (WFDB, NPY) and ``column`` (text) accept a 1-based number or a name; WFDB and NPY default to the
first channel, a text file with several columns must name one. Every problem raises :class:`DataError` with one
sentence naming the file (and the line, column or sample where that applies) and what was expected.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..core.errors import DataError, optional_import
from ..core.fileio import is_number, shorten

MIN_FS = 100.0  # the QRS detector's band-pass (5-30 Hz) and its authors' recommendation: at least 100 Hz
MIN_SECONDS = 2.0  # two heartbeats at 60 bpm: anything shorter cannot hold one R-to-R window
TEXT_SUFFIXES = {".csv", ".txt", ".tsv", ".asc"}
_SNIFF_BYTES = 64 * 1024


@dataclass
class Recording:
    """One ECG channel: ``signal`` (1-D, physical units), ``fs`` in Hz, where it came from.

    ``signal`` is float64, or the file's own dtype where every value of it is a float64 exactly (a .npy of float32
    or of integers up to 32 bits: half or less of the memory of a 24-hour record); whatever reads it converts what it
    reads to float64 (:func:`~ecgcnn.annotate.detection.gather`), so the beats do not depend on which."""

    signal: np.ndarray
    fs: float
    source: str
    channel_name: str

    @property
    def duration_s(self) -> float:
        return len(self.signal) / self.fs


def read_recording(path: str | os.PathLike, fs: float | None = None, channel: int | str | None = None,
                   column: int | str | None = None) -> Recording:
    """Open one channel of a WFDB record, CSV/TXT file or ``.npy`` array as a checked :class:`Recording`."""
    path = Path(path)
    header = _wfdb_header_path(path)
    if header is not None:
        if column is not None:
            raise DataError(f"{path}: a WFDB record has channels, not columns; expected channel instead of column")
        signal, fs, name = _read_wfdb(header, fs, channel)
        return check_recording(Recording(signal, fs, str(header.with_suffix("")), name))
    if not path.exists():
        raise DataError(f"{path}: file not found (expected a WFDB record NAME or NAME.hea, a .csv/.txt or a .npy)")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a recording file")
    if path.suffix.lower() == ".npy":
        if column is not None:
            raise DataError(f"{path}: a .npy array has channels, not columns; expected channel instead of column")
        signal, name = _read_npy(path, channel)
        return check_recording(Recording(signal, _given_fs(path, fs), str(path), name))
    if channel is not None and column is None:
        column = channel  # a text file's "channel" is its column
    signal, name, line_of_row = _read_text(path, column)
    return check_recording(Recording(signal, _given_fs(path, fs), str(path), name), line_of_row=line_of_row)


# ------------------------------------------------------------------------------------------------------ the checks

def check_recording(recording: Recording, line_of_row=None) -> Recording:
    """The checks every reader ends with (also usable on a hand-made :class:`Recording`): a positive sampling
    frequency of at least :data:`MIN_FS`, at least :data:`MIN_SECONDS` of samples, finite values, not a flat line.
    ``line_of_row`` maps sample indices to text-file line numbers for the messages."""
    source, fs, x = recording.source, recording.fs, recording.signal
    if fs is None or not isinstance(fs, (int, float, np.integer, np.floating)) or not math.isfinite(float(fs)) \
            or fs <= 0:
        raise DataError(f"{source}: sampling frequency {fs!r} is not a positive number; expected e.g. fs=250 Hz")
    fs = float(fs)
    if fs < MIN_FS:
        raise DataError(f"{source}: sampling frequency {fs:g} Hz is too low; expected at least {MIN_FS:g} Hz for "
                        f"QRS detection")
    if x.ndim != 1:
        raise DataError(f"{source}: signal of shape {tuple(x.shape)}; expected one channel (a 1-D array)")
    n = len(x)
    if n < MIN_SECONDS * fs:
        raise DataError(f"{source}: the signal has {n} samples ({n / fs:.2f} s at {fs:g} Hz); expected at least "
                        f"{MIN_SECONDS:g} s (two heartbeats)")
    first, last, runs, count = nonfinite_runs(x)
    if count:
        where = f"samples {first}-{last} ({first / fs:.3f}-{last / fs:.3f} s)"
        if line_of_row is not None:
            where += f", lines {line_of_row(first)}-{line_of_row(last)}"
        raise DataError(f"{source}: {count} missing (NaN) or infinite value(s) in {runs} run(s), the first at "
                        f"{where}; expected finite numbers throughout")
    low, high = _min_max(x)
    if low == high:
        raise DataError(f"{source}: the signal is a flat line (every sample is {low:g}); expected an ECG")
    recording.fs = fs
    return recording


def nonfinite_runs(x: np.ndarray, block: int = 1 << 22) -> tuple[int, int, int, int]:
    """(first index, last index of the first run, number of runs, number of values) of NaN/Inf in ``x``, read in
    blocks so that a memory-mapped day-long signal is not copied. (0, 0, 0, 0) when every value is finite."""
    first = last = -1
    runs = count = 0
    previous_bad = False
    for start in range(0, len(x), block):
        bad = ~np.isfinite(np.asarray(x[start:start + block]))
        if bad.any():
            count += int(bad.sum())
            starts = np.flatnonzero(bad & ~np.concatenate(([previous_bad], bad[:-1])))
            runs += len(starts)
            if first < 0 and len(starts):
                first = start + int(starts[0])
            if first >= 0 and last < 0:
                good_after = np.flatnonzero(~bad[max(first - start, 0):])
                if len(good_after):
                    last = start + max(first - start, 0) + int(good_after[0]) - 1
        elif first >= 0 and last < 0:
            last = start - 1
        previous_bad = bool(bad[-1]) if len(bad) else previous_bad
    if first >= 0 and last < 0:
        last = len(x) - 1
    return (max(first, 0), max(last, 0), runs, count)


def _min_max(x: np.ndarray, block: int = 1 << 22) -> tuple[float, float]:
    low, high = math.inf, -math.inf
    for start in range(0, len(x), block):
        part = np.asarray(x[start:start + block])
        low, high = min(low, float(part.min())), max(high, float(part.max()))
    return low, high


def _given_fs(path: Path, fs) -> float:
    if fs is None:
        raise DataError(f"{path}: this file type does not record a sampling frequency; expected it given "
                        f"(--fs HZ)")
    return fs


def _select(names: list[str], wanted: int | str | None, what: str, path: Path) -> int:
    """0-based index of ``wanted`` (a 1-based number, its text, or a name) among ``names``."""
    if wanted is None:
        return 0
    shown = ", ".join(f"{i} ({name})" if name != str(i) else str(i) for i, name in enumerate(names, start=1))
    if isinstance(wanted, (int, np.integer)) and not isinstance(wanted, bool) or str(wanted).strip().isdigit():
        number = int(wanted)
        if 1 <= number <= len(names):
            return number - 1
        raise DataError(f"{path}: there is no {what} {number}; expected a number from 1 to {len(names)} "
                        f"or a name: {shown}")
    text = str(wanted).strip()
    for candidates in (names, [n.lower() for n in names]):
        key = text if candidates is names else text.lower()
        if key in candidates:
            return candidates.index(key)
    raise DataError(f"{path}: there is no {what} named {text!r}; expected one of {shown}")


# ------------------------------------------------------------------------------------------------------------ WFDB

def _wfdb_header_path(path: Path) -> Path | None:
    """The ``.hea`` of a WFDB record named by ``path`` (``NAME``, ``NAME.hea`` or ``NAME.dat``), else None."""
    suffix = path.suffix.lower()
    if suffix == ".hea":
        return path
    if suffix == ".dat":
        header = path.with_suffix(".hea")
        if not header.exists():
            raise DataError(f"{path}: a WFDB signal file without its header; expected {header.name} beside it")
        return header
    if suffix in TEXT_SUFFIXES or suffix == ".npy":
        return None
    header = Path(f"{path}.hea")
    return header if header.exists() and not path.is_dir() else None


def _read_wfdb(header: Path, fs, channel) -> tuple[np.ndarray, float, str]:
    if not header.exists():
        raise DataError(f"{header}: file not found (expected a WFDB header beside the signal file)")
    wfdb = optional_import("wfdb", "annotate")
    record_name = str(header.with_suffix(""))
    try:
        with warnings.catch_warnings():  # wfdb's own deprecation noise (pandas) is not the user's problem
            warnings.simplefilter("ignore")
            head = wfdb.rdheader(record_name)
    except Exception as exc:  # noqa: BLE001 - wfdb raises many kinds; all mean "not a header"
        raise DataError(f"{header}: not a valid WFDB header ({_first_line(exc)}); expected a PhysioNet .hea "
                        f"file") from None
    names = [str(n) for n in (getattr(head, "sig_name", None) or [])]
    if not names:
        raise DataError(f"{header}: the header lists no signals; expected at least one ECG channel")
    index = _select(names, channel, "channel", header)
    file_names = getattr(head, "file_name", None) or []
    if index < len(file_names) and file_names[index]:
        data_file = header.parent / file_names[index]
        if not data_file.is_file():
            raise DataError(f"{header}: its signal file {data_file.name} is missing; expected it beside the header "
                            f"in {header.parent}")
    header_fs = getattr(head, "fs", None)
    if fs is not None and header_fs is not None and not math.isclose(float(fs), float(header_fs), rel_tol=1e-9):
        raise DataError(f"{header}: the header says {float(header_fs):g} Hz but fs={fs:g} was given; expected "
                        f"no fs for a WFDB record (or the header's)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record = wfdb.rdrecord(record_name, channels=[index], physical=True, return_res=64)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{header}: cannot read the signal ({_first_line(exc)}); expected a readable WFDB "
                        f"record") from None
    signal = getattr(record, "p_signal", None)
    if signal is None or signal.ndim != 2 or signal.shape[1] < 1:
        raise DataError(f"{header}: the record holds no physical signal; expected an ECG channel")
    return np.ascontiguousarray(signal[:, 0], dtype=np.float64), float(record.fs), names[index]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:160] if text else type(exc).__name__).rstrip(".")


# ------------------------------------------------------------------------------------------------------------- NPY

def _read_npy(path: Path, channel) -> tuple[np.ndarray, str]:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a plain numeric .npy array ({_first_line(exc)}); expected one saved with "
                        f"numpy.save") from None
    if array.dtype.kind not in "iuf":
        raise DataError(f"{path}: array of dtype {array.dtype}; expected integer or floating-point samples")
    if array.ndim == 1:
        if channel is not None and str(channel).strip() not in ("1", "channel 1"):
            raise DataError(f"{path}: a 1-D array has one channel; expected channel 1 or none, got {channel!r}")
        return _channel(path, array, 0, None), "channel 1"
    if array.ndim == 2:
        channels_axis = 0 if array.shape[0] < array.shape[1] else 1
        count = array.shape[channels_axis]
        names = [str(i) for i in range(1, count + 1)]
        index = _select(names, None if channel is None else str(channel).replace("channel", "").strip(),
                        "channel", path)
        return _channel(path, array, index, channels_axis), f"channel {index + 1}"
    raise DataError(f"{path}: array of shape {tuple(array.shape)}; expected 1-D samples or 2-D (samples x channels)")


NPY_BLOCK = 1 << 21  # samples converted per map (16 MiB of float64)


def kept_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a channel is held in: the file's own (in native byte order) where float64 holds every value of it
    exactly (floats, integers up to 32 bits), else float64."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize <= 8 or dtype.kind in "iu" and dtype.itemsize <= 4:
        return dtype.newbyteorder("=")
    return np.dtype(np.float64)


def _channel(path: Path, array: np.memmap, index: int, channels_axis: int | None) -> np.ndarray:
    """Channel ``index`` of a memory-mapped .npy array in :func:`kept_dtype`, without holding the whole file in
    memory too.

    A 1-D array already in that dtype is returned as it is (still mapped: nothing copied). Anything else is copied
    block by block through small maps of the file, each closed after its block, so the file's pages leave the
    resident set as the copy fills. Measured: one channel of a 24-hour 250 Hz 12-channel int16 file peaked 209 MB
    above the start as float64 (173 MB) against 659 MB through one map of the whole file; held as int16 it is 43 MB.
    """
    kept = kept_dtype(array.dtype)
    if channels_axis is None and array.dtype == kept:
        return np.asarray(array)
    samples = array.shape[0] if channels_axis in (None, 1) else array.shape[1]
    # Strided when the samples of a channel are rows of the file's layout, one element of each row being ours.
    strided = channels_axis is not None and (channels_axis == 1) != bool(np.isfortran(array))
    channels = 1 if channels_axis is None else array.shape[channels_axis]
    itemsize = array.dtype.itemsize
    out = np.empty(samples, dtype=kept)
    for start in range(0, samples, NPY_BLOCK):
        count = min(NPY_BLOCK, samples - start)
        if strided:
            block = np.memmap(path, dtype=array.dtype, mode="r", offset=array.offset + start * channels * itemsize,
                              shape=(count, channels))[:, index]
        else:  # the channel is one contiguous run of the file
            block = np.memmap(path, dtype=array.dtype, mode="r",
                              offset=array.offset + (index * samples + start) * itemsize, shape=(count,))
        out[start:start + count] = block
        del block  # unmapped: its pages are no longer this process's
    return out


# ------------------------------------------------------------------------------------------------------------ text

def _sniff_delimiter(line: str) -> str | None:
    for delimiter in (",", ";", "\t"):
        if delimiter in line:
            return delimiter
    return None  # whitespace


def _tokens(line: str, delimiter: str | None) -> list[str]:
    parts = line.split() if delimiter is None else line.split(delimiter)
    return [p.strip().strip('"').strip("'").strip() for p in parts]


def _read_text(path: Path, column) -> tuple[np.ndarray, str, object]:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    suffix = path.suffix.lower()
    known = suffix in TEXT_SUFFIXES
    if b"\0" in head:
        raise DataError(f"{path}: binary content, not a signal; expected a WFDB record (.hea + .dat), a .npy array "
                        f"or a text file with one number per line")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(head) < _SNIFF_BYTES or exc.start < len(head) - 4:  # not a multi-byte character cut at the boundary
            raise DataError(f"{path}: not a text file (undecodable byte at offset {exc.start}); expected a WFDB "
                            f"record, a .npy array or a CSV/TXT signal") from None
        text = head[:exc.start].decode("utf-8-sig")
    lines = text.splitlines()
    if len(head) == _SNIFF_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    meaningful = [(i, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not meaningful:
        raise DataError(f"{path}: file is empty; expected one signal value per line"
                        + ("" if known else " (or a WFDB record / .npy array)"))
    first_index, first_line = meaningful[0]
    delimiter = _sniff_delimiter(first_line)
    tokens = _tokens(first_line, delimiter)
    has_header = not all(is_number(t) for t in tokens if t)
    if has_header and len(meaningful) > 1:
        data_tokens = _tokens(meaningful[1][1], delimiter)
        if not all(is_number(t) for t in data_tokens if t):
            line_no = meaningful[1][0] + 1
            bad = next(t for t in data_tokens if t and not is_number(t))
            raise DataError(f"{path}, line {line_no}: expected numbers, found {shorten(bad)!r}; this does not look "
                            f"like a signal file")
        if len(data_tokens) != len(tokens):
            raise DataError(f"{path}, line {meaningful[1][0] + 1}: {len(data_tokens)} value(s) under a header of "
                            f"{len(tokens)} column(s); expected one value per header column")
    names = tokens if has_header else [str(i) for i in range(1, len(tokens) + 1)]
    if column is None:
        if len(names) != 1:
            listed = ", ".join(f"{i} ({n})" if has_header else str(i) for i, n in enumerate(names, start=1))
            raise DataError(f"{path}: {len(names)} columns ({listed}); expected one signal column, or column "
                            f"(--column NAME|NUMBER) naming one")
        index = 0
    else:
        if not has_header and not str(column).strip().isdigit():
            raise DataError(f"{path}: no header line to find column {str(column)!r} in; expected a 1-based column "
                            f"number")
        index = _select(names, column, "column", path)
    skip = first_index + 1 if has_header else 0
    try:
        with warnings.catch_warnings():  # "input contained no data": refused below in one line
            warnings.simplefilter("ignore", UserWarning)
            values = np.loadtxt(path, dtype=np.float64, delimiter=delimiter, comments="#", skiprows=skip,
                                usecols=(index,), ndmin=1, encoding="utf-8-sig", quotechar='"')
    except ValueError as exc:  # a UnicodeDecodeError too: a byte beyond the sniffed head
        _raise_text_error(path, delimiter, skip, index, exc)
    if values.size == 0:
        raise DataError(f"{path}: a header but no values; expected one signal value per line")
    name = names[index] if has_header else (f"column {index + 1}" if len(names) > 1 else "signal")
    return values, name, _LineMap(path, skip)


def _raise_text_error(path: Path, delimiter, skip: int, index: int, exc: Exception) -> NoReturn:
    """Find the first line numpy could not read (a slow scan, only on the error path) and name it."""
    if isinstance(exc, UnicodeDecodeError):
        with open(path, "rb") as raw_lines:
            for line_no, raw in enumerate(raw_lines, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as bad:
                    raise DataError(f"{path}, line {line_no}: not UTF-8 text (byte {raw[bad.start]:#04x}, the "
                                    f"line's byte {bad.start + 1}); expected a UTF-8 CSV/TXT signal") from None
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line_no <= skip or not line.strip() or line.lstrip().startswith("#"):
                continue
            tokens = _tokens(line.split("#", 1)[0], delimiter)
            if index >= len(tokens):
                raise DataError(f"{path}, line {line_no}: {len(tokens)} value(s); expected at least {index + 1} "
                                f"(column {index + 1})") from None
            if not is_number(tokens[index]):
                raise DataError(f"{path}, line {line_no}, column {index + 1}: expected a number, found "
                                f"{shorten(tokens[index])!r}") from None
    raise DataError(f"{path}: cannot read the values ({_first_line(exc)}); expected one number per line") from None


class _LineMap:
    """Sample index → line number of a text file (blank and comment lines skipped), computed only when asked."""

    def __init__(self, path: Path, skip: int):
        self.path, self.skip = path, skip

    def __call__(self, row: int) -> int:
        count = -1
        with open(self.path, encoding="utf-8-sig", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                if line_no <= self.skip or not line.strip() or line.lstrip().startswith("#"):
                    continue
                count += 1
                if count == row:
                    return line_no
        return -1


# ----------------------------------------------------------------------------------------- reference annotations

def read_annotations(record: str | os.PathLike, extension: str) -> tuple[np.ndarray, list[str]]:
    """The sample index and symbol of every annotation in a WFDB annotation file ``<record>.<extension>``."""
    path = Path(record)
    header = _wfdb_header_path(path)
    if header is None:
        raise DataError(f"{path}: reference annotations come with WFDB records; expected NAME or NAME.hea")
    annotation_file = header.with_suffix(f".{extension}")
    if not annotation_file.is_file():
        raise DataError(f"{header.with_suffix('')}: no annotation file {annotation_file.name}; expected reference "
                        f"beat annotations beside the record (--annotations names their extension)")
    wfdb = optional_import("wfdb", "annotate")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            annotation = wfdb.rdann(str(header.with_suffix("")), extension)
    except Exception as exc:  # noqa: BLE001 - wfdb raises many kinds; all mean "not an annotation file"
        raise DataError(f"{annotation_file}: not a readable WFDB annotation file ({_first_line(exc)})") from None
    return np.asarray(annotation.sample, dtype=np.int64), [str(s) for s in annotation.symbol]
