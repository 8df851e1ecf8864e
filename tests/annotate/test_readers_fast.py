"""``.npy`` recordings of every layout read back as the channel asked for, converted block by block.

The expected channel is NumPy's own indexing of the array that was saved (no reader involved); blocks of a few
samples make every file need several maps and a remainder."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from ecgcnn.annotate import readers
from ecgcnn.core.errors import EcgcnnError

pytestmark = pytest.mark.fast
FS = 250.0


def _wave(samples: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / FS
    return np.stack([np.sin(2 * np.pi * (1 + c) * t) + 0.1 * rng.normal(size=samples) for c in range(channels)], 1)


# The dtype each is held in: its own (native byte order) where float64 holds every value exactly, else float64.
HELD = {"<i2": np.int16, ">f4": np.float32, "<f4": np.float32, "<u2": np.uint16, ">f8": np.float64,
        "<f8": np.float64, "<i8": np.float64, ">i4": np.int32}


@pytest.mark.parametrize("dtype", list(HELD))
@pytest.mark.parametrize("layout", ["1-D", "samples x channels", "channels x samples",
                                    "samples x channels, Fortran", "channels x samples, Fortran"])
def test_npy_channels_in_every_layout(tmp_path, monkeypatch, dtype, layout):
    monkeypatch.setattr(readers, "NPY_BLOCK", 7)
    samples, channels = 1003, 3
    scale = 1000.0 if np.dtype(dtype).kind in "iu" else 1.0
    offset = 5000.0 if np.dtype(dtype).kind == "u" else 0.0
    wave = (_wave(samples, channels, seed=len(layout)) * scale + offset).astype(dtype)
    array = {"1-D": wave[:, 0], "samples x channels": wave, "channels x samples": np.ascontiguousarray(wave.T),
             "samples x channels, Fortran": np.asfortranarray(wave),
             "channels x samples, Fortran": np.asfortranarray(wave.T)}[layout]
    path = tmp_path / "rec.npy"
    np.save(path, array)
    assert np.isfortran(np.load(path, mmap_mode="r")) == layout.endswith("Fortran")
    wanted = [1] if layout == "1-D" else [1, 2, 3]
    for channel in wanted:
        expected = array if array.ndim == 1 else (array[:, channel - 1] if layout.startswith("samples")
                                                   else array[channel - 1])
        recording = readers.read_recording(path, fs=FS, channel=channel)
        assert recording.signal.dtype == np.dtype(HELD[dtype]) and recording.signal.shape == (samples,)
        assert recording.channel_name == f"channel {channel}"
        np.testing.assert_array_equal(recording.signal.astype(np.float64), expected.astype(np.float64))


# ------------------------------------------------------------------------------------------------ check_recording

def _recording(signal, fs=FS, source="src.txt"):
    return readers.Recording(np.asarray(signal), fs, source, "")


def test_check_recording_messages_name_the_source_and_the_figures():
    wave = np.sin(np.arange(1000) / 10.0)
    for fs in (None, 0, -1.0, float("nan"), float("inf"), "250", True and "x"):
        with pytest.raises(readers.DataError) as info:
            readers.check_recording(_recording(wave, fs))
        assert str(info.value) == (f"src.txt: sampling frequency {fs!r} is not a positive number; expected e.g. "
                                   f"fs=250 Hz")
    with pytest.raises(readers.DataError) as info:
        readers.check_recording(_recording(wave, 99.5))
    assert str(info.value) == ("src.txt: sampling frequency 99.5 Hz is too low; expected at least 100 Hz for QRS "
                               "detection")
    low = readers.check_recording(_recording(wave[:200], np.int64(100)))  # exactly the least rate and duration
    assert low.fs == 100.0 and type(low.fs) is float
    with pytest.raises(readers.DataError) as info:
        readers.check_recording(_recording(wave[:199], 100))
    assert str(info.value) == ("src.txt: the signal has 199 samples (1.99 s at 100 Hz); expected at least 2 s (two "
                               "heartbeats)")
    with pytest.raises(readers.DataError) as info:
        readers.check_recording(_recording(np.stack([wave, wave]), 250))
    assert str(info.value) == "src.txt: signal of shape (2, 1000); expected one channel (a 1-D array)"
    with pytest.raises(readers.DataError) as info:
        readers.check_recording(_recording(np.full(1000, -2.5), 250))
    assert str(info.value) == "src.txt: the signal is a flat line (every sample is -2.5); expected an ECG"
    bad = wave.copy()
    bad[[500, 501, 502, 700]] = [np.nan, np.inf, -np.inf, np.nan]
    with pytest.raises(readers.DataError) as info:
        readers.check_recording(_recording(bad, 250), line_of_row=lambda row: row + 10)
    assert str(info.value) == ("src.txt: 4 missing (NaN) or infinite value(s) in 2 run(s), the first at samples "
                               "500-502 (2.000-2.008 s), lines 510-512; expected finite numbers throughout")


def _runs_by_hand(x):
    """(first, last of the first run, runs, count) by walking the samples one by one."""
    first = last = -1
    runs = count = 0
    previous = False
    for i, value in enumerate(x):
        bad = not np.isfinite(value)
        count += bad
        if bad and not previous:
            runs += 1
            first = i if first < 0 else first
        if not bad and previous and last < 0:
            last = i - 1
        previous = bad
    if first >= 0 and last < 0:
        last = len(x) - 1
    return max(first, 0), max(last, 0), runs, count


@pytest.mark.parametrize("seed", range(12))
def test_nonfinite_runs_by_blocks_agree_with_a_sample_by_sample_walk(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=int(rng.integers(1, 60)))
    for _ in range(int(rng.integers(0, 4))):
        start = int(rng.integers(0, len(x)))
        x[start:start + int(rng.integers(1, 9))] = rng.choice([np.nan, np.inf, -np.inf])
    expected = _runs_by_hand(x)
    for block in (1, 2, 3, 5, 7, 64, 1 << 22):
        assert readers.nonfinite_runs(x, block=block) == expected, (block, x)


def test_nonfinite_runs_at_the_ends_and_across_block_borders():
    x = np.arange(20.0)
    x[[0, 1, 6, 7, 8, 19]] = np.nan
    for block in (1, 2, 3, 4, 6, 7, 20, 4096):
        assert readers.nonfinite_runs(x, block=block) == (0, 1, 3, 6)
    y = np.arange(20.0)
    y[[3, 4, 5]] = np.inf  # the run fills a block and ends at its border
    for block in (3, 6, 1 << 22):
        assert readers.nonfinite_runs(y, block=block) == (3, 5, 1, 3)
    y[5:] = np.nan  # runs to the end
    assert readers.nonfinite_runs(y, block=4) == (3, 19, 1, 17)
    assert readers.nonfinite_runs(np.arange(9.0), block=2) == (0, 0, 0, 0)
    assert readers.nonfinite_runs(np.zeros(0)) == (0, 0, 0, 0)


def test_min_max_over_blocks():
    rng = np.random.default_rng(3)
    x = rng.normal(size=101)
    for block in (1, 4, 100, 1 << 22):
        assert readers._min_max(x, block=block) == (x.min(), x.max())


# ------------------------------------------------------------------------------------------------ choosing a channel

def test_select_by_number_text_or_name_in_any_case():
    names = ["MLII", "V5", "v1"]
    assert readers._select(names, None, "channel", "r.hea") == 0
    assert [readers._select(names, w, "channel", "r.hea") for w in (1, np.int64(3), "2", " 3 ")] == [0, 2, 1, 2]
    assert readers._select(names, "V5", "channel", "r.hea") == 1
    assert readers._select(names, " mlii ", "channel", "r.hea") == 0
    assert readers._select(names, "v1", "channel", "r.hea") == 2  # the exact name before a case-insensitive match
    assert readers._select(["a", "A"], "A", "column", "f.csv") == 1
    with pytest.raises(readers.DataError) as info:
        readers._select(names, 4, "channel", "r.hea")
    assert str(info.value) == ("r.hea: there is no channel 4; expected a number from 1 to 3 or a name: 1 (MLII), "
                               "2 (V5), 3 (v1)")
    with pytest.raises(readers.DataError, match="there is no channel 0;"):
        readers._select(names, "0", "channel", "r.hea")
    with pytest.raises(readers.DataError) as info:
        readers._select(["1", "2"], "x", "column", "f.csv")
    assert str(info.value) == "f.csv: there is no column named 'x'; expected one of 1, 2"
    with pytest.raises(readers.DataError, match="no channel named 'True'"):
        readers._select(names, True, "channel", "r.hea")  # a bool is not a channel number


# ------------------------------------------------------------------------------------------------------ text files

WAVE = np.round(np.sin(np.arange(600) / 7.0) * 100, 3)  # 600 samples at 250 Hz: 2.4 s


@pytest.mark.parametrize("delimiter", [",", ";", "\t", " ", "  \t "])
def test_text_columns_by_name_or_number_with_any_delimiter(tmp_path, delimiter):
    other = WAVE[::-1] * 2
    lines = ["# exported by a recorder", "", f'"time"{delimiter}"ECG II"{delimiter}resp'.replace(" II", "_II")]
    lines += [f"{i / FS!r}{delimiter}{float(a)!r}{delimiter}{float(b)!r}"
              for i, (a, b) in enumerate(zip(WAVE, other, strict=True))]
    path = tmp_path / "three.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")  # with a byte-order mark
    by_name = readers.read_recording(path, fs=FS, column="ecg_ii")
    assert by_name.channel_name == "ECG_II" and np.array_equal(by_name.signal, WAVE)
    assert by_name.signal.dtype == np.float64 and by_name.source == str(path)
    by_number = readers.read_recording(path, fs=FS, column=3)
    assert by_number.channel_name == "resp" and np.array_equal(by_number.signal, other)
    assert np.array_equal(readers.read_recording(path, fs=FS, channel="2").signal, WAVE)  # channel: the column


def test_text_without_a_header(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("".join(f"{a} {b}\n" for a, b in zip(WAVE, -WAVE, strict=True)))
    second = readers.read_recording(path, fs=FS, column="2")
    assert second.channel_name == "column 2" and np.array_equal(second.signal, -WAVE)
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS, column="ecg")
    assert str(info.value) == f"{path}: no header line to find column 'ecg' in; expected a 1-based column number"
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS)
    assert str(info.value) == (f"{path}: 2 columns (1, 2); expected one signal column, or column (--column "
                               f"NAME|NUMBER) naming one")
    one = tmp_path / "one.txt"
    one.write_text("\n\n# comment\n" + "".join(f"{v}\n" for v in WAVE))
    recording = readers.read_recording(one, fs=FS)
    assert recording.channel_name == "signal" and np.array_equal(recording.signal, WAVE)


def test_text_header_messages(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("t,ecg\n\n# note\n0,1\n" + "".join(f"{i},{v}\n" for i, v in enumerate(WAVE)))
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS)
    assert str(info.value) == (f"{path}: 2 columns (1 (t), 2 (ecg)); expected one signal column, or column "
                               f"(--column NAME|NUMBER) naming one")
    path.write_text("t,ecg\n0\n1\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS, column=2)
    assert str(info.value) == (f"{path}, line 2: 1 value(s) under a header of 2 column(s); expected one value per "
                               f"header column")
    path.write_text("\n# c\nt,ecg\n# d\n1,abcdefghijklmnopqrstuvwxyz\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS, column=2)
    assert str(info.value) == (f"{path}, line 5: expected numbers, found 'abcdefghijklmnopq...'; this does not look "
                               f"like a signal file")
    path.write_text("# only a header\nt,ecg\n")
    with pytest.raises(readers.DataError) as info, warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "input contained no data" is not shown as well
        readers.read_recording(path, fs=FS, column=2)
    assert str(info.value) == f"{path}: a header but no values; expected one signal value per line"
    for name, fragment in (("e.csv", ""), ("e.dat2", " (or a WFDB record / .npy array)")):
        (tmp_path / name).write_text("\n  \n# nothing\n")
        with pytest.raises(readers.DataError) as info:
            readers.read_recording(tmp_path / name, fs=FS)
        assert str(info.value) == f"{tmp_path / name}: file is empty; expected one signal value per line{fragment}"


def test_text_value_errors_name_the_line_and_column(tmp_path):
    path = tmp_path / "v.csv"
    body = [f"{i},{v}" for i, v in enumerate(WAVE)]
    path.write_text("t,ecg\n" + "\n".join(body[:300] + ["# a comment", "", "7"] + body[300:]) + "\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS, column="ecg")
    assert str(info.value) == f"{path}, line 304: 1 value(s); expected at least 2 (column 2)"
    path.write_text("t,ecg\n" + "\n".join(body[:10] + ["10,1.5 # trailing comment", "11,x1"] + body[12:]) + "\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS, column=2)
    assert str(info.value) == f"{path}, line 13, column 2: expected a number, found 'x1'"
    path.write_text("\n".join(f"{v}" for v in WAVE[:100]) + "\n1_0\n")  # Python reads 1_0, numpy does not
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS)
    assert str(info.value).startswith(f"{path}: cannot read the values (") and str(info.value).endswith(
        "); expected one number per line")


def test_text_sniffing_beyond_its_first_64_kib(tmp_path):
    values = np.round(np.sin(np.arange(20000) / 9.0), 6)
    path = tmp_path / "long.csv"
    text = "ecg\n" + "".join(f"{v}\n" for v in values)
    assert len(text.encode()) > readers._SNIFF_BYTES
    path.write_text(text)
    assert np.array_equal(readers.read_recording(path, fs=FS).signal, values)
    # a multi-byte character cut by the sniff boundary (in a comment) is not an undecodable file
    cut = tmp_path / "cut.csv"
    head = b"ecg\n" + b"1\n" * 100
    comment = b"#" + b"x" * (readers._SNIFF_BYTES - 1 - len(head) - 1) + "é".encode() + b"\n"
    assert (head + comment).index("é".encode()) == readers._SNIFF_BYTES - 1
    cut.write_bytes(head + comment + b"2\n" * 500)
    assert np.array_equal(readers.read_recording(cut, fs=FS).signal, np.r_[np.ones(100), np.full(500, 2.0)])
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"ecg\n" + b"1\n" * 10 + b"\xe9\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(bad, fs=FS)
    assert str(info.value) == (f"{bad}: not a text file (undecodable byte at offset 24); expected a WFDB record, a "
                               f".npy array or a CSV/TXT signal")


def test_line_map_skips_blank_and_comment_lines(tmp_path):
    path = tmp_path / "m.txt"
    path.write_text("head\n1\n\n# c\n2\n  # indented comment\n3\n")
    line_of = readers._LineMap(path, skip=1)
    assert [line_of(row) for row in range(4)] == [2, 5, 7, -1]
    assert readers._LineMap(path, skip=0)(0) == 1


# ------------------------------------------------------------------------------------------------------- .npy files

def test_npy_refusals(tmp_path):
    wave = np.sin(np.arange(1000) / 9.0)
    cases = {
        "complex.npy": (wave.astype(np.complex64), None, "array of dtype complex64; expected integer or "
                                                         "floating-point samples"),
        "bool.npy": (wave > 0, None, "array of dtype bool; expected integer or floating-point samples"),
        "one.npy": (wave, 2, "a 1-D array has one channel; expected channel 1 or none, got 2"),
        "cube.npy": (wave.reshape(10, 10, 10), None, "array of shape (10, 10, 10); expected 1-D samples or 2-D "
                                                     "(samples x channels)"),
        "two.npy": (np.stack([wave, wave]), 3, "there is no channel 3; expected a number from 1 to 2 or a name: 1, 2"),
    }
    for name, (array, channel, message) in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(readers.DataError) as info:
            readers.read_recording(tmp_path / name, fs=FS, channel=channel)
        assert str(info.value) == f"{tmp_path / name}: {message}"
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(tmp_path / "one.npy", fs=FS, column=1)
    assert str(info.value) == f"{tmp_path / 'one.npy'}: a .npy array has channels, not columns; expected channel " \
                              f"instead of column"
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(tmp_path / "one.npy")
    assert str(info.value) == (f"{tmp_path / 'one.npy'}: this file type does not record a sampling frequency; "
                               f"expected it given (--fs HZ)")
    for channel in ("1", " channel 1 ", 1):
        assert np.array_equal(readers.read_recording(tmp_path / "one.npy", fs=FS, channel=channel).signal, wave)
    second = readers.read_recording(tmp_path / "two.npy", fs=FS, channel="channel 2")
    assert second.channel_name == "channel 2" and second.source == str(tmp_path / "two.npy")
    (tmp_path / "folder.npy").mkdir()
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(tmp_path / "folder.npy", fs=FS)
    assert str(info.value) == f"{tmp_path / 'folder.npy'}: is a directory; expected a recording file"


# ------------------------------------------------------------------------------------------------------------ WFDB

@pytest.fixture
def record(tmp_path):
    wfdb = pytest.importorskip("wfdb")
    signal = np.stack([np.sin(np.arange(1200) / 9.0), np.cos(np.arange(1200) / 5.0)], 1)
    wfdb.wrsamp("rec", fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=signal, fmt=["16", "16"],
                write_dir=str(tmp_path))
    return tmp_path / "rec", signal


def test_wfdb_record_by_any_of_its_names(record):
    path, signal = record
    for name in (path, path.with_suffix(".hea"), path.with_suffix(".dat")):
        recording = readers.read_recording(name, channel="v1")
        assert recording.source == str(path) and recording.channel_name == "V1" and recording.fs == 360.0
        assert recording.signal.dtype == np.float64 and recording.signal.flags.c_contiguous
        np.testing.assert_allclose(recording.signal, signal[:, 1], atol=1e-3)
    assert readers.read_recording(path, fs=360 * (1 + 1e-11)).fs == 360.0
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=360.001)
    assert str(info.value) == (f"{path.with_suffix('.hea')}: the header says 360 Hz but fs=360.001 was given; "
                               f"expected no fs for a WFDB record (or the header's)")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, column=2)
    assert str(info.value) == f"{path}: a WFDB record has channels, not columns; expected channel instead of column"


def test_wfdb_refusals(record, tmp_path):
    path, _ = record
    lonely = tmp_path / "lonely.dat"
    lonely.write_bytes(b"\0" * 100)
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(lonely)
    assert str(info.value) == f"{lonely}: a WFDB signal file without its header; expected lonely.hea beside it"
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(tmp_path / "gone.hea")
    assert str(info.value) == f"{tmp_path / 'gone.hea'}: file not found (expected a WFDB header beside the signal file)"
    (tmp_path / "junk.hea").write_text("this is not a header\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(tmp_path / "junk.hea")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'junk.hea'}: not a valid WFDB header (") and message.endswith(
        "); expected a PhysioNet .hea file") and len(message.splitlines()) == 1
    (tmp_path / "empty.hea").write_text("empty 0 250 1000\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(tmp_path / "empty.hea")
    assert str(info.value) == (f"{tmp_path / 'empty.hea'}: the header lists no signals; expected at least one ECG "
                               f"channel")
    path.with_suffix(".dat").write_bytes(b"\1\2\3")  # a signal file far shorter than the header says
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path)
    message = str(info.value)
    assert message.startswith(f"{path.with_suffix('.hea')}: ") and len(message.splitlines()) == 1
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir.hea").write_text("dir 1 250 1000\ndir.dat 16 200 16 0 0 0 0 ECG\n")
    with pytest.raises(readers.DataError) as info:  # a directory beside a header is not the record
        readers.read_recording(tmp_path / "dir", fs=FS)
    assert str(info.value) == f"{tmp_path / 'dir'}: is a directory; expected a recording file"


def test_reference_annotations(record, tmp_path):
    wfdb = pytest.importorskip("wfdb")
    path, _ = record
    samples, symbols = np.array([100, 460, 800, 1150]), ["N", "V", "A", "N"]
    wfdb.wrann("rec", "atr", samples, symbols, write_dir=str(tmp_path))
    for name in (path, path.with_suffix(".hea"), path.with_suffix(".dat")):
        found, kinds = readers.read_annotations(name, "atr")
        assert found.dtype == np.int64 and found.tolist() == samples.tolist() and kinds == symbols
    with pytest.raises(readers.DataError) as info:
        readers.read_annotations(path, "qrs")
    assert str(info.value) == (f"{path}: no annotation file rec.qrs; expected reference beat annotations beside the "
                               f"record (--annotations names their extension)")
    with pytest.raises(readers.DataError) as info:
        readers.read_annotations(tmp_path / "beats.csv", "atr")
    assert str(info.value) == (f"{tmp_path / 'beats.csv'}: reference annotations come with WFDB records; expected "
                               f"NAME or NAME.hea")
    path.with_suffix(".bad").write_bytes(b"\xff" * 7)
    with pytest.raises(readers.DataError) as info:
        readers.read_annotations(path, "bad")
    message = str(info.value)
    assert message.startswith(f"{path.with_suffix('.bad')}: not a readable WFDB annotation file (") and \
        len(message.splitlines()) == 1


def test_messages_carry_the_first_line_of_the_libraries_own_errors(record, tmp_path):
    wfdb = pytest.importorskip("wfdb")
    assert readers._first_line(ValueError("first line.\nsecond line")) == "first line"
    assert readers._first_line(ValueError("  ...dots around.  ")) == "...dots around"
    assert readers._first_line(KeyError()) == "KeyError" and readers._first_line(OSError("")) == "OSError"
    assert readers._first_line(ValueError("x" * 200 + ".")) == "x" * 160
    assert readers._first_line(ValueError("ends in X.")) == "ends in X"

    def first_line_of(call) -> str:  # the library's own error, read here
        try:
            call()
        except Exception as exc:  # noqa: BLE001
            return str(exc).strip().splitlines()[0][:160].rstrip(".")
        raise AssertionError("no error")

    (tmp_path / "junk.hea").write_text("this is not a header\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(tmp_path / "junk.hea")
    inner = first_line_of(lambda: wfdb.rdheader(str(tmp_path / "junk")))
    assert str(info.value) == (f"{tmp_path / 'junk.hea'}: not a valid WFDB header ({inner}); expected a PhysioNet "
                               f".hea file")
    path, _ = record
    path.with_suffix(".dat").write_bytes(b"\1\2\3")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path)
    inner = first_line_of(lambda: wfdb.rdrecord(str(path), channels=[0], physical=True, return_res=64))
    assert str(info.value) == (f"{path.with_suffix('.hea')}: cannot read the signal ({inner}); expected a readable "
                               f"WFDB record")
    path.with_suffix(".bad").write_bytes(b"\xff" * 7)
    with pytest.raises(readers.DataError) as info:
        readers.read_annotations(path, "bad")
    inner = first_line_of(lambda: wfdb.rdann(str(path), "bad"))
    assert str(info.value) == f"{path.with_suffix('.bad')}: not a readable WFDB annotation file ({inner})"
    text = tmp_path / "u.txt"
    text.write_text("\n".join(["1.5"] * 600) + "\n1_0\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(text, fs=FS)
    inner = first_line_of(lambda: np.loadtxt(text))
    assert str(info.value) == f"{text}: cannot read the values ({inner}); expected one number per line"


def test_a_missing_annotate_extra_is_named(record, monkeypatch):
    path, _ = record
    path.with_suffix(".atr").write_bytes(b"")  # present, so that the reader gets as far as importing wfdb
    monkeypatch.setitem(sys.modules, "wfdb", None)  # as when the 'annotate' extra is not installed
    for call in (lambda: readers.read_recording(path), lambda: readers.read_annotations(path, "atr")):
        with pytest.raises(EcgcnnError) as info:
            call()
        assert str(info.value) == ("this needs the 'annotate' extra (wfdb is not installed): pip install -c "
                                   "constraints.txt 'ecgcnn[annotate]'")


def test_text_scans_after_a_byte_order_mark_trailing_comments_and_indented_ones(tmp_path):
    path = tmp_path / "bom.csv"
    body = ["# made by hand", "0.5"] + [repr(float(v)) for v in WAVE[:299]] + ["  # indented comment",
                                                                                 "0.25 # a # b", "nan", "inf"]
    path.write_text("\n".join(body + [repr(float(v)) for v in WAVE]) + "\n", encoding="utf-8-sig")
    with pytest.raises(readers.DataError) as info:  # a BOM, then the comment line: lines are counted as written
        readers.read_recording(path, fs=FS)
    assert str(info.value) == (f"{path}: 2 missing (NaN) or infinite value(s) in 1 run(s), the first at samples "
                               f"301-302 (1.204-1.208 s), lines 304-305; expected finite numbers throughout")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(["0.5"] * 20 + ["  # indented", "1.5 # a # b", "7, x1 # note"] + ["0.5"] * 600) + "\n",
                   encoding="utf-8-sig")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(bad, fs=FS)
    assert str(info.value) == f"{bad}, line 23, column 1: expected a number, found '7,'"  # whitespace-separated
    two = tmp_path / "two.csv"
    two.write_text("\n".join(["1,0.5"] * 20 + ["  # indented", "1,1.5 # a # b", "7, x1 # note"] + ["1,2"] * 600)
                   + "\n", encoding="utf-8-sig")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(two, fs=FS, column=2)
    assert str(info.value) == f"{two}, line 23, column 2: expected a number, found 'x1'"


def test_text_layouts_at_the_edges(tmp_path):
    def refused(name: str, content, **kwargs) -> str:
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        with pytest.raises(readers.DataError) as info:
            readers.read_recording(path, fs=FS, **kwargs)
        return str(info.value).replace(f"{path}", "FILE")

    def read(name: str, content: str, **kwargs) -> np.ndarray:
        (tmp_path / name).write_text(content)
        return readers.read_recording(tmp_path / name, fs=FS, **kwargs).signal

    values = "".join(f"{v}\n" for v in WAVE)
    # a tab-separated header whose names hold spaces; single and double quotes around names and values
    tabbed = "time s\t'ECG II'\n" + "".join(f"{i}\t\"{v}\"\n" for i, v in enumerate(WAVE))
    np.testing.assert_array_equal(read("tab.tsv", tabbed, column="ECG II"), WAVE)
    np.testing.assert_array_equal(read("quoted.csv", "".join(f'"{v}"\n' for v in WAVE)), WAVE)
    np.testing.assert_array_equal(read("indented.csv", "   # a note, indented\n" + values), WAVE)
    assert refused("one.csv", "0.5\n") == ("FILE: the signal has 1 samples (0.00 s at 250 Hz); expected at least 2 s "
                                           "(two heartbeats)")
    two = "".join(f"{v} {v}\n" for v in WAVE)
    assert refused("two.txt", two, column=3) == ("FILE: there is no column 3; expected a number from 1 to 2 or a name: "
                                                 "1, 2")
    assert refused("named.csv", "a,b\n" + two.replace(" ", ","), column=3) == (
        "FILE: there is no column 3; expected a number from 1 to 2 or a name: 1 (a), 2 (b)")
    # an undecodable byte beyond the sniffed head: found on its line by the scan, not taken for a binary file
    late = b"ecg\n" + b"1.5\n" * 30000 + b"\xff\n" + b"2\n" * 10
    assert refused("late.csv", late) == ("FILE, line 30002: not UTF-8 text (byte 0xff, the line's byte 1); "
                                         "expected a UTF-8 CSV/TXT signal")
    # where the sniffed head ends: a byte 5 before it is undecodable; 4 before, it may begin a cut character
    size = readers._SNIFF_BYTES
    for offset in (size - 5, size - 4):
        head = b"ecg\n" + b"1.5\n" * 1000
        head += b"#" + b"x" * (offset - len(head) - 2) + b"\n"  # a comment fills the head up to the byte
        assert len(head) == offset
        message = refused(f"edge{offset}.csv", head + b"\xff\n" + b"2\n" * 2000)
        assert message == (f"FILE: not a text file (undecodable byte at offset {size - 5}); expected a WFDB record, "
                           f"a .npy array or a CSV/TXT signal" if offset == size - 5 else
                           "FILE, line 1003: not UTF-8 text (byte 0xff, the line's byte 1); expected a "
                           "UTF-8 CSV/TXT signal")
    # a header and a second line that is not numbers, in a file longer than the sniffed head
    assert refused("long.csv", "ecg\nabc\n" + values * 50) == ("FILE, line 2: expected numbers, found 'abc'; this "
                                                               "does not look like a signal file")


def test_an_npy_of_python_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1.0, "x", None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError) as numpy_error:  # numpy's own refusal, the inner text of ours
        np.load(path, mmap_mode="r", allow_pickle=False)
    inner = str(numpy_error.value).strip().splitlines()[0][:160].rstrip(".")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS)
    assert str(info.value).startswith(f"{path}: not a plain numeric .npy array ({inner}); expected one saved with ")


def test_a_two_dimensional_npy_without_a_channel_gives_the_first(tmp_path):
    wave = _wave(900, 3, seed=4)
    np.save(tmp_path / "three.npy", wave)
    recording = readers.read_recording(tmp_path / "three.npy", fs=FS)
    np.testing.assert_array_equal(recording.signal, wave[:, 0])
    assert recording.channel_name == "channel 1"


def test_a_column_name_matches_in_any_case(tmp_path):
    wave = _wave(900, 2, seed=5)
    (tmp_path / "lower.csv").write_text("mlii,v5\n" + "".join(f"{a},{b}\n" for a, b in wave.tolist()))
    for column in ("V5", "v5", " V5 "):
        recording = readers.read_recording(tmp_path / "lower.csv", fs=FS, column=column)
        np.testing.assert_array_equal(recording.signal, wave[:, 1])
    (tmp_path / "upper.csv").write_text("MLII,V5\n" + "".join(f"{a},{b}\n" for a, b in wave.tolist()))
    np.testing.assert_array_equal(readers.read_recording(tmp_path / "upper.csv", fs=FS, column="mlii").signal,
                                  wave[:, 0])


def test_an_undecodable_byte_past_the_sniffed_head_is_named_by_its_line(tmp_path):
    """A Latin-1 comment far into a UTF-8 file: refused as the same byte in the head would be (not UTF-8 text),
    with its line counted here (the header, 20,000 values, then the comment)."""
    values = [str(v) for v in _wave(30000, 1, seed=6)[:, 0].tolist()]
    lines = ["ecg"] + values[:20000] + ["# patient Jos\xe9"] + values[20000:]
    path = tmp_path / "late.csv"
    path.write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    assert path.stat().st_size > readers._SNIFF_BYTES
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS)
    assert str(info.value) == (f"{path}, line 20002: not UTF-8 text (byte 0xe9, the line's byte 14); "
                               f"expected a UTF-8 CSV/TXT signal")


def test_the_line_of_a_missing_value_far_into_a_file(tmp_path):
    values = [str(v) for v in _wave(30000, 1, seed=6)[:, 0].tolist()]
    lines = ["# a note", "ecg"] + values[:20000] + ["", "# a comment"] + values[20000:]
    lines[2 + 25000 + 2] = "nan"  # sample 25000: after the note, the header, a blank line and the comment
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(readers.DataError) as info:
        readers.read_recording(path, fs=FS)
    assert ", the first at samples 25000-25000 (100.000-100.000 s), lines 25005-25005;" in str(info.value)


@pytest.mark.parametrize("block", [1, 2, 3, 4, 5, 64])
def test_nonfinite_runs_that_touch_either_end(block):
    """Known answers (first, last of the first run, runs, values) for runs at sample 0, one sample long, and
    running to the end, whatever the block size."""
    nan, inf = np.nan, np.inf
    cases = {(nan, 1, 1, 1, 1, 1, 1, 1, 1, 1, nan, 1): (0, 0, 2, 2), (nan, nan, -inf): (0, 2, 1, 3),
             (1, 1, nan, inf): (2, 3, 1, 2), (inf, 1, 2, 3, 4, 5, 6, 7): (0, 0, 1, 1), (1.0, 2.0): (0, 0, 0, 0),
             (nan, 1, 1, 1, 1, 1, nan, nan, nan, nan, nan, nan): (0, 0, 2, 7)}
    for values, expected in cases.items():
        assert readers.nonfinite_runs(np.array(values, dtype=np.float64), block=block) == expected, values


def test_only_the_first_sample_differs_and_rates_just_above_zero():
    wave = np.full(1000, 3.0)
    wave[0] = 5.0  # not a flat line: the first sample counts
    assert readers.check_recording(_recording(wave, 250)).signal is wave
    for fs in (1, 0.5, 99.9):
        with pytest.raises(readers.DataError) as info:
            readers.check_recording(_recording(np.sin(np.arange(1000) / 10.0), fs))
        assert str(info.value) == (f"src.txt: sampling frequency {float(fs):g} Hz is too low; expected at least "
                                   f"100 Hz for QRS detection")
