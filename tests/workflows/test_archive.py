"""Many records in one run (`ecgcnn annotate ... --output-dir`): outputs per record, the archive table, resuming,
failures, and parallel runs (processes, a local Dask cluster) that must equal the serial run byte for byte.

The records are built here from official test beats at known R-peaks (evaluation.recut.stitch), so the expected
beat counts and durations come from the construction, not from the code under test."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecgcnn.evaluation.recut import stitch
from ecgcnn.runtimes import load_predictor
from ecgcnn.workflows.archive import threads_per_record

from ..conftest import assert_one_line_error

wfdb = pytest.importorskip("wfdb")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
FS = 250
MODEL = "pretrained:edge.tflite"  # fast, and the same answer whatever process runs it


def _records(folder: Path, dataset, sizes=(40, 55, 30)) -> dict[str, tuple[int, int]]:
    """WFDB records r0, r1, ... of stitched test beats; returns name -> (true beats, samples)."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    start = 0
    for k, n in enumerate(sizes):
        signal_, peaks, _ = stitch(dataset.x_test[start:start + n], fs=FS, seed=k)
        start += n
        here = os.getcwd()
        try:
            os.chdir(folder)
            wfdb.wrsamp(f"r{k}", fs=FS, units=["mV"], sig_name=["ECG"], p_signal=signal_[:, None], fmt=["16"],
                        adc_gain=[2000.0], baseline=[0])
        finally:
            os.chdir(here)
        truth[f"r{k}"] = (len(peaks), len(signal_))
    return truth


def _annotate(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgcnn", "annotate", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, timeout=900, cwd=cwd)


def _table(folder: Path) -> list[dict]:
    with open(folder / "archive.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def archive(tmp_path_factory, dataset):
    """Three good records, one broken one, and the serial run over the folder."""
    root = tmp_path_factory.mktemp("archive")
    truth = _records(root / "records", dataset)
    (root / "records" / "broken.csv").write_text("time,ecg\n0,abc\n")
    done = _annotate(root / "records", MODEL, "--fs", FS, "--output-dir", root / "serial")
    return root, truth, done


def test_every_record_gets_its_files_and_a_row(archive):
    root, truth, done = archive
    assert done.returncode == 1, done.stderr  # one record failed: the exit status counts it
    rows = {row["record"]: row for row in _table(root / "serial")}
    assert list(rows) == ["broken", "r0", "r1", "r2"]  # the folder's records, sorted
    assert rows["broken"]["status"] == "failed" and "broken.csv" in rows["broken"]["error"]
    assert not (root / "serial" / "broken.csv").exists() and not (root / "serial" / "broken.json").exists()
    for name, (beats, samples) in truth.items():
        row = rows[name]
        assert row["status"] == "ok" and row["error"] == ""
        assert float(row["duration_s"]) == pytest.approx(samples / FS, abs=1e-3)
        assert abs(int(row["beats"]) - beats) <= 1  # every stitched beat found (the detector may add one at an edge)
        with open(root / "serial" / f"{name}.csv", encoding="utf-8") as fh:
            assert sum(1 for _ in fh) - 1 == int(row["beats"])
        summary = json.loads((root / "serial" / f"{name}.json").read_text())
        assert summary["beats"] == int(row["beats"])
        mix = dict(item.split("=") for item in row["class_mix"].split("; "))
        assert sum(map(int, mix.values())) == int(row["classified"])
        # the training patient's beats, re-cut from a recording: like the training beats, under the model's limit
        assert row["familiar"] == "yes" and float(row["residual_ratio"]) == summary["familiarity"]["residual_ratio"]
        assert summary["familiarity"]["residual_ratio"] < summary["familiarity"]["limit"]
    assert "1 failed" in done.stderr and "broken.csv" in done.stderr


def test_a_rerun_keeps_finished_records_and_redoes_what_changed(archive, tmp_path):
    root, truth, _ = archive
    records = tmp_path / "records"
    records.mkdir()
    for p in (root / "records").iterdir():
        if p.name.startswith("r"):
            (records / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "out"
    first = _annotate(records, MODEL, "--output-dir", out)
    assert first.returncode == 0, first.stderr
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = _annotate(records, MODEL, "--output-dir", out)
    assert again.returncode == 0 and "3 of 3 records already finished" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "archive.csv"} == \
        {k: v for k, v in stamps.items() if k != "archive.csv"}
    # a changed record, a changed option, a lost summary: each redone, nothing else
    os.utime(records / "r1.dat", ns=(time.time_ns(), time.time_ns()))
    (out / "r2.json").unlink()
    third = _annotate(records, MODEL, "--output-dir", out)
    assert "1 of 3 records already finished" in third.stderr
    assert (out / "r0.json").stat().st_mtime_ns == stamps["r0.json"]
    assert (out / "r1.json").stat().st_mtime_ns != stamps["r1.json"]
    fourth = _annotate(records, MODEL, "--output-dir", out, "--polarity", "inverted")
    assert "records already finished" not in fourth.stderr
    assert json.loads((out / "r0.json").read_text())["polarity"]["mode"] == "inverted"


def test_a_killed_run_loses_only_the_records_in_flight(archive, tmp_path, dataset):
    root, truth, _ = archive
    records = tmp_path / "records"
    _records(records, dataset, sizes=(200,) * 6)
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "ecgcnn", "annotate", str(records), MODEL, "--output-dir",
                                str(out), "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "r1.json").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(p.stem for p in out.glob("*.json"))
    assert finished and len(finished) < 6, finished
    for name in finished:  # what is there is whole
        assert json.loads((out / f"{name}.json").read_text())["beats"] > 0
    resumed = _annotate(records, MODEL, "--output-dir", out)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished)} of 6 records already finished" in resumed.stderr
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    assert _annotate(records, MODEL, "--output-dir", tmp_path / "clean").returncode == 0
    assert _files(out) == _files(tmp_path / "clean")


def test_jobs_give_the_serial_run_byte_for_byte(archive, tmp_path):
    root, _, _ = archive
    done = _annotate(root / "records", MODEL, "--fs", FS, "--output-dir", tmp_path / "jobs", "--jobs", "2")
    assert done.returncode == 1, done.stderr
    assert _files(tmp_path / "jobs") == _files(root / "serial")


def test_a_dask_cluster_gives_the_serial_run_byte_for_byte(archive, tmp_path):
    distributed = pytest.importorskip("distributed")
    root, _, _ = archive
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        done = _annotate(root / "records", MODEL, "--fs", FS, "--output-dir", tmp_path / "dask",
                         "--cluster", cluster.scheduler_address)
        workers = list(cluster.workers)
    assert len(workers) == 2
    assert done.returncode == 1, done.stderr
    assert _files(tmp_path / "dask") == _files(root / "serial")


def test_inputs_are_checked_before_any_work(cli, tmp_path, archive):
    root, _, _ = archive
    out = tmp_path / "out"
    assert_one_line_error(cli("annotate", tmp_path / "missing.hea", "--output-dir", out), "missing.hea",
                          "file not found")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "same.npy").write_bytes((root / "records" / "r0.dat").read_bytes()[:10])
    assert_one_line_error(cli("annotate", tmp_path / "a" / "same.npy", tmp_path / "b" / "same.npy", "--output-dir",
                              out), "would both write same.csv")
    assert_one_line_error(cli("annotate", root / "records", "--output-dir", out, "--output", tmp_path / "x.csv"),
                          "--output names one record's file")
    assert_one_line_error(cli("annotate", root / "records" / "r0.hea", root / "records" / "r1.hea"),
                          "expected one record, or --output-dir")
    assert_one_line_error(cli("annotate", str(tmp_path / "nothing" / "*.hea"), "--output-dir", out),
                          "no file matches")
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"# records\n{root / 'records' / 'r0.hea'}\nmissing.hea\n")
    assert_one_line_error(cli("annotate", "--manifest", manifest, "--output-dir", out), "list.txt, line 3")
    assert not out.exists()


def test_a_manifest_names_records_relative_to_itself(archive, tmp_path):
    root, truth, _ = archive
    manifest = root / "records" / "list.txt"
    manifest.write_text("r2.hea   # the third\n\nr0\n")
    try:
        done = _annotate("--manifest", manifest, MODEL, "--output-dir", tmp_path / "out")
    finally:
        manifest.unlink()
    assert done.returncode == 0, done.stderr
    assert [row["record"] for row in _table(tmp_path / "out")] == ["r2", "r0"]
    assert (tmp_path / "out" / "r2.csv").read_bytes() == (root / "serial" / "r2.csv").read_bytes()


def test_cores_are_shared_out_between_jobs():
    cores = len(os.sched_getaffinity(0))
    assert load_predictor(MODEL).threads == cores  # a serial run: LiteRT on every usable core, not its one
    assert threads_per_record(1, None) is None and threads_per_record(2, None) == max(cores // 2, 1)
    assert threads_per_record(4 * cores, None) == 1 and threads_per_record(1, "tcp://127.0.0.1:8786") == 1
