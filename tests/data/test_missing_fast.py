"""Missing values (``--missing fill``): NaN padding and gaps made whole, in training data and in predict's input.

Oracles built here: straight lines sampled on a known grid (linear interpolation reproduces them exactly), so the
filled row of a padded or gappy line is the same line sampled on the full grid; and the packaged variable-length UCR
files read with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.core.errors import DataError
from ecgcnn.data.beats import read_beats_csv
from ecgcnn.data.dataset import DataSpec, load_dataset
from ecgcnn.data.files import read_labelled_file
from ecgcnn.data.missing import fill_missing
from ecgcnn.data.ucr import packaged_root
from tests.conftest import assert_one_line_error, write_ucr

pytestmark = pytest.mark.fast


def _line(a: float, b: float, n: int) -> np.ndarray:
    return a + b * np.linspace(0.0, 1.0, n)


def test_a_padded_row_is_its_values_stretched_and_a_gap_is_bridged():
    width = 40
    short = np.full(width, np.nan)
    short[:25] = _line(2.0, -3.0, 25)  # a shorter series, NaN-padded at the end
    leading = np.full(width, np.nan)
    leading[5:] = _line(1.0, 4.0, 35)  # NaN before the first value too
    gappy = _line(-1.0, 2.0, width)
    gappy[[3, 4, 5, 20]] = np.nan  # gaps inside: the row keeps its length
    whole = np.sin(np.arange(width))
    filled = fill_missing(np.stack([short, leading, gappy, whole]))
    np.testing.assert_allclose(filled[0], _line(2.0, -3.0, width), atol=1e-12)
    np.testing.assert_allclose(filled[1], _line(1.0, 4.0, width), atol=1e-12)
    np.testing.assert_allclose(filled[2], _line(-1.0, 2.0, width), atol=1e-12)
    np.testing.assert_array_equal(filled[3], whole)  # nothing missing: unchanged
    one = np.full(width, np.nan)
    one[7] = 1.0
    with pytest.raises(ValueError, match="row 1: 1 value"):
        fill_missing(np.stack([whole, one]))


def _write(path, rows, labels, header=None):
    lines = ([header] if header else []) + [
        "\t".join([str(lab)] + ["NaN" if np.isnan(v) else repr(float(v)) for v in row])
        for lab, row in zip(labels, rows, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_labelled_files_refuse_missing_values_by_default_and_fill_them_when_asked(tmp_path):
    rows = np.full((4, 30), np.nan)
    for i, n in enumerate((30, 12, 20, 2)):
        rows[i, :n] = _line(i, 1.0 + i, n)
    path = _write(tmp_path / "beats.tsv", rows, [1, 2, 1, 2])
    with pytest.raises(DataError, match=r"beats.tsv, line 2, column 14: expected a finite number, found 'NaN' "
                                        r"\(missing values.*--missing fill\)"):
        read_labelled_file(path, "first")
    beats = read_labelled_file(path, "first", missing="fill")
    expected = np.stack([_line(i, 1.0 + i, 30) for i in range(4)])
    np.testing.assert_allclose(beats.values, expected, atol=1e-5)
    assert beats.values.dtype == np.float32 and beats.labels == [1, 2, 1, 2]
    rows[3, 1] = np.nan  # one value left
    _write(path, rows, [1, 2, 1, 2])
    with pytest.raises(DataError, match=r"beats.tsv, line 4: fewer than 2 values, the rest missing"):
        read_labelled_file(path, "first", missing="fill")


def test_with_a_header_the_bad_cell_is_named_not_the_missing_one(tmp_path):
    path = tmp_path / "beats.csv"
    path.write_text("label,a,b,c,d\n1,1.0,NaN,oops,2.0\n")
    with pytest.raises(DataError, match=r"line 2, column 4: expected a number, found 'oops' in column 'c'"):
        read_labelled_file(path, missing="fill")


def test_predict_reads_the_same_cells_the_same_way(tmp_path):
    rows = np.full((3, 25), np.nan)
    for i, n in enumerate((25, 10, 17)):
        rows[i, :n] = _line(-i, 2.0, n)
    path = tmp_path / "beats.csv"
    path.write_text("\n".join(",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in rows) + "\n")
    with pytest.raises(DataError, match=r"line 2, column 11: expected a number, found ''.*--missing fill"):
        read_beats_csv(path, length=25)
    beats = read_beats_csv(path, length=25, missing="fill")
    np.testing.assert_allclose(beats.values, np.stack([_line(-i, 2.0, 25) for i in range(3)]), atol=1e-5)


def test_a_variable_length_ucr_dataset_loads_filled_and_its_spec_says_so():
    name = "GesturePebbleZ1"
    raw = np.genfromtxt(packaged_root() / f"{name}_TRAIN.tsv", delimiter="\t")
    assert np.isnan(raw).any()
    with pytest.raises(DataError, match="--missing fill"):
        load_dataset(DataSpec(dataset=name), load_test=False)
    data = load_dataset(DataSpec(dataset=name, missing="fill"), load_test=False)
    assert data.x_train.shape == (len(raw), raw.shape[1] - 1) and np.isfinite(data.x_train).all()
    i = int(np.flatnonzero(np.isnan(raw[:, 1:]).any(axis=1))[0])  # a padded row, stretched by numpy here
    values = raw[i, 1:][~np.isnan(raw[i, 1:])]
    stretched = np.interp(np.linspace(0, len(values) - 1, raw.shape[1] - 1), np.arange(len(values)), values)
    np.testing.assert_allclose(data.x_train[i], stretched, rtol=1e-5, atol=1e-5)
    assert DataSpec(dataset=name, missing="fill").as_dict()["missing"] == "fill"  # what a model file records


def test_an_unknown_mode_is_one_line(cli):
    assert_one_line_error(cli("train", "--model", "hydra", "--dataset", "GesturePebbleZ1", "--missing", "zero"),
                          "--missing", "zero")


def test_empty_cells_at_the_end_of_a_tab_separated_row_are_missing_values_too(tmp_path):
    """pandas writes NaN as an empty cell: a short row of a .tsv ends in tabs, which are cells, not padding."""
    path = tmp_path / "beats.tsv"
    path.write_text("1\t0.0\t1.0\t2.0\t3.0\n2\t5.0\t3.0\t\t\n\t\t\t\t\n")
    with pytest.raises(DataError, match=r"beats.tsv, line 3, column 1: the label is empty"):  # a row, not a blank
        read_labelled_file(path, "first", missing="fill")
    path.write_text("1\t0.0\t1.0\t2.0\t3.0\n2\t5.0\t3.0\t\t\n")
    beats = read_labelled_file(path, "first", missing="fill")
    np.testing.assert_allclose(beats.values[1], _line(5.0, -2.0, 4), atol=1e-6)
    with pytest.raises(DataError, match=r"line 2, column 4: expected a number, found ''"):
        read_labelled_file(path, "first")


def test_ecg5000_files_with_a_missing_value_follow_the_same_option(tmp_path, official_tables):
    train, test = official_tables["train"].copy(), official_tables["test"]
    expected = train[3, 1:].astype(np.float64).copy()
    train[3, 70:] = np.nan  # beat 4 stops after 69 of its 140 values
    for name, table in (("ECG5000_TRAIN.txt", train), ("ECG5000_TEST.txt", test)):
        write_ucr(tmp_path / name, table[:, 1:], table[:, 0])
    with pytest.raises(DataError, match=r"ECG5000_TRAIN.txt, line 4, column 71: .*--missing fill"):
        load_dataset(DataSpec(data_dir=str(tmp_path)), load_test=False)
    data = load_dataset(DataSpec(data_dir=str(tmp_path), missing="fill"), load_test=False)
    stretched = np.interp(np.linspace(0, 68, 140), np.arange(69), expected[:69])
    np.testing.assert_allclose(data.x_train[3], stretched, atol=1e-5)


def test_a_label_that_is_not_a_finite_number_is_one_line(tmp_path):
    path = tmp_path / "beats.csv"
    path.write_text("1,0.5,0.2\nnan,0.1,0.3\n")
    with pytest.raises(DataError, match=r"beats.csv, line 2, column 1: label 'nan' is not a finite number"):
        read_labelled_file(path, missing="fill")


def test_a_first_row_of_empty_cells_is_a_beat_without_values_not_a_header(tmp_path):
    path = tmp_path / "beats.csv"
    path.write_text(",,,\n1.0,2.0,3.0,4.0\n")
    with pytest.raises(DataError, match=r"beats.csv, line 1: fewer than 2 values"):
        read_beats_csv(path, length=4, missing="fill")
