"""The data a run is trained and scored on: where it comes from (:class:`DataSpec`: a packaged UCR dataset, a
directory, or the user's own files), the two splits with their labels, class names and beat length
(:class:`Dataset`), and the seeded splits of training beats (stratified, or by group: no record in two splits).

Every check a file can fail is made when it is loaded — before any training starts or any file is written — and
fails with one line naming the file and what was expected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..core.errors import DataError
from ..core.fileio import shorten
from . import ucr
from .files import LabelledBeats, read_labelled_file
from .missing import MISSING_MODES

DEFAULT_DATASET = ucr.ECG5000


# ------------------------------------------------------------------------------------------------------------ source

@dataclass(frozen=True)
class DataSpec:
    """Which data: ``dataset`` (a UCR name) from ``data_dir`` or the packaged archive, or the user's ``train`` file
    (and ``test`` file; without one, a seeded split of ``train`` holds out ``test_fraction`` of its beats, whole
    groups at a time with ``group_by``)."""

    dataset: str = DEFAULT_DATASET
    data_dir: str | None = None
    train: str | None = None
    test: str | None = None
    label_column: str | None = None
    group_by: str | None = None
    class_names: str | None = None
    test_fraction: float = 0.25
    split_seed: int = 0
    missing: str = "refuse"

    def validate(self) -> DataSpec:
        """One line for options that do not go together."""
        if self.train is not None and (self.dataset != DEFAULT_DATASET or self.data_dir is not None):
            raise DataError("--train FILE with --dataset/--data-dir: choose your own files or a UCR dataset")
        if self.train is None:
            for flag, value in (("--test", self.test), ("--label-column", self.label_column),
                                ("--group-by", self.group_by)):
                if value is not None:
                    raise DataError(f"{flag} applies to your own files: give the training file with --train FILE")
        if self.missing not in MISSING_MODES:
            raise DataError(f"--missing {self.missing!r}: expected one of {', '.join(MISSING_MODES)}")
        if not 0.0 < self.test_fraction < 1.0:
            raise DataError(f"--test-fraction {self.test_fraction!r}: expected a value strictly between 0 and 1")
        return self

    def as_dict(self) -> dict:
        """The settings that differ from the defaults (what a model file records to find its data again)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}

    @classmethod
    def coerce(cls, value: DataSpec | dict | str | os.PathLike | None) -> DataSpec:
        """A spec from a spec, its dict, a data directory (the older ``load_dataset(data_dir)`` call) or None."""
        if isinstance(value, DataSpec):
            return value
        if value is None:
            return cls()
        if isinstance(value, dict):
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in value.items() if k in known})
        return cls(data_dir=str(value))


# ----------------------------------------------------------------------------------------------------------- dataset

@dataclass
class Dataset:
    """The two splits. ``source`` says where they were read from.

    ``y_train`` / ``y_test`` hold the dataset's own labels (ECG5000: 1..5; text labels stay text), the convention
    ``Predictor.predict`` returns, so ``(predictor.predict(d.x_test) == d.y_test).mean()`` is the accuracy;
    ``index_train`` / ``index_test`` hold the class indices (0..C-1) that training and the metrics work with.
    """

    x_train: np.ndarray
    index_train: np.ndarray
    x_test: np.ndarray
    index_test: np.ndarray
    source: str
    files: dict = field(default_factory=dict)
    labels: tuple = ucr.ORIGINAL_LABELS  # the dataset label of each class index
    class_names: tuple = ucr.CLASS_NAMES
    name: str = DEFAULT_DATASET
    groups_train: np.ndarray | None = None  # the group (record) of each training beat, with --group-by
    spec: DataSpec = field(default_factory=DataSpec)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def length(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def y_train(self) -> np.ndarray:
        return np.asarray(self.labels)[self.index_train]

    @property
    def y_test(self) -> np.ndarray:
        return np.asarray(self.labels)[self.index_test]

    def model_fields(self) -> dict:
        """The metadata a model trained on this data carries: labels (numbers stay numbers, text stays text),
        class names, beat length, source and :meth:`describe`."""
        return {"labels": [v if isinstance(v, str) else int(v) for v in self.labels],
                "class_names": [str(n) for n in self.class_names], "input_length": self.length,
                "data_source": self.source, "dataset": self.describe()}

    def describe(self) -> dict:
        """What a model file records about its data (``metadata["dataset"]``)."""
        return {"name": self.name, "spec": self.spec.as_dict(), "train_beats": int(len(self.index_train)),
                "test_beats": int(len(self.index_test)),
                "class_counts": np.bincount(self.index_train, minlength=self.num_classes).tolist()}


def load_dataset(spec: DataSpec | dict | str | os.PathLike | None = None, *, load_test: bool = True) -> Dataset:
    """Load the data ``spec`` names (default: ECG5000 from $ECGCNN_DATA_DIR, the packaged TSVs or the download cache;
    a path is a data directory). With ``load_test=False`` a test file is not even read (a split of one file holds
    out its test beats and drops them): see :func:`check_test_data` to check it without keeping it."""
    return _load(DataSpec.coerce(spec).validate(), load_test)


def _load(spec: DataSpec, load_test: bool) -> Dataset:
    dataset = _load_files(spec, load_test) if spec.train is not None else _load_ucr(spec, load_test)
    if not load_test:
        dataset.x_test = np.zeros((0, dataset.length), np.float32)
        dataset.index_test = np.zeros((0,), np.int64)
    return dataset


def check_test_data(spec: DataSpec | dict | str | os.PathLike | None = None) -> None:
    """Fail now, with the usual one-line error, if the test beats are missing, malformed or do not fit the
    training beats (length, labels, groups); keep nothing of them. Training calls this before it starts, so that a
    broken file does not cost a whole training; nothing is returned that could reach a choice."""
    _load(DataSpec.coerce(spec).validate(), load_test=True)


def _load_ucr(spec: DataSpec, load_test: bool) -> Dataset:
    directory, source, verify_packaged = ucr.data_source(spec.data_dir, spec.dataset)
    files: dict[str, str] = {}

    def read(split: str):  # the training file first: its errors come before a missing test file
        path = ucr.split_file(directory, split, spec.dataset)
        files[split] = str(path)
        if spec.dataset == ucr.ECG5000:  # its five labels are known: a file with a sixth is refused
            x, index = ucr.read_split(path, split, verify_packaged, spec.missing)
            _check_two_classes(path, [ucr.ORIGINAL_LABELS[i] for i in np.unique(index)])
            return x, index
        return read_labelled_file(path, "first", missing=spec.missing)

    if spec.dataset == ucr.ECG5000:
        x_train, i_train = read("train")
        x_test, i_test = read("test") if load_test else (x_train[:0], i_train[:0])
        names = class_names_for(spec, ucr.ORIGINAL_LABELS, default=ucr.CLASS_NAMES)
        return Dataset(x_train, i_train, x_test, i_test, source=source, files=files, labels=ucr.ORIGINAL_LABELS,
                       class_names=names, name=spec.dataset, spec=spec)
    train = read("train")
    return _assemble(spec, train, read("test") if load_test else None, source=f"UCR {spec.dataset}, {source}",
                     files=files)


def _load_files(spec: DataSpec, load_test: bool) -> Dataset:
    assert spec.train is not None
    train = read_labelled_file(spec.train, spec.label_column, spec.group_by, spec.missing)
    files = {"train": spec.train}
    test: LabelledBeats | None = None
    if spec.test is not None:
        if load_test:
            test = read_labelled_file(spec.test, spec.label_column, spec.group_by, spec.missing)
            files["test"] = spec.test
        source = f"files {spec.train} and {spec.test}"
    else:
        _check_two_classes(train.path, train.labels)
        if train.groups is not None:
            train_idx, test_idx = _group_split_or_fail(train, spec.test_fraction, spec.split_seed)
        else:
            index = np.unique(np.asarray(train.labels, dtype=object), return_inverse=True)[1]
            train_idx, test_idx = stratified_split(index, spec.test_fraction, spec.split_seed)
        train, test = _subset(train, train_idx), _subset(train, test_idx)
        how = f"whole groups of {spec.group_by!r}" if spec.group_by else "stratified"
        source = (f"file {spec.train}, {100 * spec.test_fraction:g} % held out for test ({how}, split seed "
                  f"{spec.split_seed})")
    return _assemble(spec, train, test, source=source, files=files)


def _assemble(spec: DataSpec, train: LabelledBeats, test: LabelledBeats | None, source: str,
              files: dict) -> Dataset:
    """Classes from the training labels; the test beats (if read) checked against them (length, labels, groups)."""
    _check_two_classes(train.path, train.labels)
    classes = tuple(sorted(set(train.labels)))
    if test is None:
        test = _subset(train, np.zeros(0, np.int64))
    if test.values.shape[1] != train.values.shape[1]:
        raise DataError(f"{test.path}, line {test.line_numbers[0]}: beats of {test.values.shape[1]} samples, but the "
                        f"training beats ({train.path}) have {train.values.shape[1]}")
    position = {label: i for i, label in enumerate(classes)}
    for row, label in enumerate(test.labels):
        if label not in position:
            kind = "text" if isinstance(label, str) else "a number"
            raise DataError(f"{test.path}, line {test.line_numbers[row]}: label {shorten(str(label))!r} ({kind}) never "
                            f"occurs in the training beats of {train.path} (a model cannot predict it)")
    if train.groups is not None and test.groups is not None:
        shared = set(train.groups) & set(test.groups)
        if shared:
            row = next(i for i, g in enumerate(test.groups) if g in shared)
            raise DataError(f"{test.path}, line {test.line_numbers[row]}: group {shorten(test.groups[row])!r} is also "
                            f"in the training beats (with --group-by no group may be in both splits)")
    return Dataset(train.values, np.asarray([position[v] for v in train.labels], np.int64), test.values,
                   np.asarray([position[v] for v in test.labels], np.int64), source=source, files=files,
                   labels=classes, class_names=class_names_for(spec, classes), name=_name_of(spec),
                   groups_train=np.asarray(train.groups, dtype=object) if train.groups is not None else None,
                   spec=spec)


def _name_of(spec: DataSpec) -> str:
    return Path(spec.train).stem if spec.train is not None else spec.dataset


def _subset(beats: LabelledBeats, rows: np.ndarray) -> LabelledBeats:
    return LabelledBeats(beats.path, beats.values[rows], [beats.labels[i] for i in rows],
                         [beats.groups[i] for i in rows] if beats.groups is not None else None,
                         [beats.line_numbers[i] for i in rows])


def _check_two_classes(path: Path, labels) -> None:
    present = sorted(set(labels))
    if len(present) < 2:
        raise DataError(f"{path}: only one class present (label {present[0]}); expected beats of several classes")


def _group_split_or_fail(beats: LabelledBeats, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    assert beats.groups is not None
    if len(set(beats.groups)) < 2:
        raise DataError(f"{beats.path}: every beat is in group {beats.groups[0]!r}; a split by group needs at least "
                        f"two (give a --test file, or no --group-by)")
    return group_split(np.asarray(beats.groups, dtype=object), fraction, seed)


def class_names_for(spec: DataSpec, labels: tuple, default: tuple | None = None) -> tuple:
    """Class names from ``--class-names`` (names in class order, comma separated, or a file of ``label,name``
    lines), else ``default``, else the labels as text."""
    given = spec.class_names
    if given is None:
        return tuple(default) if default is not None else tuple(str(v) for v in labels)
    if os.path.isfile(given):
        return _class_names_from_file(Path(given), labels)
    names = tuple(name.strip() for name in given.split(","))
    if len(names) != len(labels) or not all(names):
        raise DataError(f"--class-names {shorten(given)!r}: expected {len(labels)} non-empty names, comma separated, "
                        f"for the labels {', '.join(str(v) for v in labels)} (in that order)")
    return names


def _class_names_from_file(path: Path, labels: tuple) -> tuple:
    by_label: dict[str, str] = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        for separator in ("\t", ",", None):
            parts = line.strip().split(separator, 1)
            if len(parts) == 2:
                break
        if len(parts) != 2 or not parts[1].strip():
            raise DataError(f"{path}, line {line_no}: expected 'label,name'")
        by_label[parts[0].strip()] = parts[1].strip()
    missing = [str(v) for v in labels if str(v) not in by_label]
    if missing:
        raise DataError(f"{path}: no name for label {missing[0]!r} (expected a 'label,name' line for each of "
                        f"{', '.join(str(v) for v in labels)})")
    return tuple(by_label[str(v)] for v in labels)


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


def group_split(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split by group: whole groups (records, patients) are held out, in a shuffled order, until at least
    ``fraction`` of the beats are; at least one group stays on each side. Returns (kept, held-out) indices."""
    names = sorted(set(groups.tolist()))
    if len(names) < 2:
        raise ValueError("a split by group needs at least two groups")
    order = np.random.default_rng(seed).permutation(len(names))
    sizes = {name: int(np.sum(groups == name)) for name in names}
    held: list[str] = []
    for k in order[:-1]:  # the last group in the order always stays
        if sum(sizes[g] for g in held) >= fraction * len(groups):
            break
        held.append(names[k])
    out = np.isin(groups, held)
    return np.flatnonzero(~out), np.flatnonzero(out)


def group_folds(groups: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded k-fold split by group: each group is held out in exactly one fold (shuffled, dealt round-robin)."""
    names = sorted(set(groups.tolist()))
    if not 2 <= folds <= len(names):
        raise ValueError(f"folds by group must be in [2, {len(names)}] (the number of groups), got {folds}")
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of_group = {names[k]: i % folds for i, k in enumerate(order)}
    fold_of = np.asarray([fold_of_group[g] for g in groups.tolist()])
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)) for k in range(folds)]
