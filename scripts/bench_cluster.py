"""Dask distributed vs Ray on ecgcnn's archive workload: the engine behind ``ecgcnn annotate --cluster``.

    .venv/bin/python scripts/bench_cluster.py --records 8 --minutes 30 --markdown results/bench/cluster.md

The same tasks (``ecgcnn.workflows.archive.annotate_record``: read a WFDB record, detect, window, classify, write its
CSV and JSON) run on a local cluster of two single-threaded worker processes of each engine, after one serial run
for reference. Reported: the engine's start-up time, the wall time for all records, beats per second, whether every
output file equals the serial run's byte for byte, and the engine's installed size. Ray is optional here (it is not a
dependency of ecgcnn): without it, only Dask's row is measured. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgcnn.data.dataset import load_dataset
from ecgcnn.evaluation.recut import stitch
from ecgcnn.workflows.archive import RecordOptions, _run_tasks, annotate_record

FS = 250


def make_records(folder: Path, count: int, minutes: float) -> list[Path]:
    import wfdb  # noqa: PLC0415 - the annotate extra

    dataset = load_dataset()
    beats_per_record = int(minutes * 60 / 0.8)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    for k in range(count):
        chosen = rng.choice(len(dataset.x_test), size=beats_per_record, replace=True)
        signal, _, _ = stitch(dataset.x_test[chosen], fs=FS, seed=k)
        here = os.getcwd()
        try:
            os.chdir(folder)
            wfdb.wrsamp(f"rec{k:03d}", fs=FS, units=["mV"], sig_name=["ECG"], p_signal=signal[:, None], fmt=["16"],
                        adc_gain=[2000.0], baseline=[0])
        finally:
            os.chdir(here)
        paths.append(folder / f"rec{k:03d}.hea")
    return paths


def tasks(paths: list[Path], out: Path, model: str) -> list[tuple]:
    out.mkdir(parents=True, exist_ok=True)
    return [(str(p), p.stem, str(out), RecordOptions(model=model)) for p in paths]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def installed_mb(distribution: str) -> float:
    dist = metadata.distribution(distribution)
    return sum(Path(dist.locate_file(f)).stat().st_size for f in dist.files or []
                if Path(dist.locate_file(f)).is_file()) / 1e6


def _ping() -> int:
    return 1


def run_dask(work: list[tuple]) -> tuple[float, float, list[dict]]:
    import distributed  # noqa: PLC0415

    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    client.submit(_ping, pure=False).result()  # workers up and answering
    started = time.perf_counter() - t0
    t1 = time.perf_counter()
    rows = client.gather([client.submit(annotate_record, *task, pure=False) for task in work])
    wall = time.perf_counter() - t1
    client.close()
    cluster.close()
    return started, wall, rows


def run_ray(work: list[tuple]) -> tuple[float, float, list[dict]]:
    import ray  # noqa: PLC0415

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(annotate_record)
    ray.get(ray.remote(_ping).remote())
    started = time.perf_counter() - t0
    t1 = time.perf_counter()
    rows = ray.get([remote.remote(*task) for task in work])
    wall = time.perf_counter() - t1
    ray.shutdown()
    return started, wall, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--model", default="pretrained:edge.tflite")
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_records(root / "records", args.records, args.minutes)
        t0 = time.perf_counter()
        serial = [annotate_record(*task) for task in tasks(paths, root / "serial", args.model)]
        serial_wall = time.perf_counter() - t0
        beats = sum(row["beats"] for row in serial)
        lines = [f"{args.records} records of {args.minutes:g} min at {FS} Hz ({beats:,} beats), model "
                 f"`{args.model}`, two worker processes of one thread each; `python scripts/bench_cluster.py "
                 f"--records {args.records} --minutes {args.minutes:g}` on {os.cpu_count()} cores.", "",
                 "| engine | start-up s | wall s | beats/s | outputs equal serial | installed MB |",
                 "|---|---:|---:|---:|---|---:|",
                 f"| serial (one process) | – | {serial_wall:.1f} | {beats / serial_wall:,.0f} | – | – |"]
        t0 = time.perf_counter()
        pool = list(_run_tasks(tasks(paths, root / "jobs", args.model), 2, None))
        wall = time.perf_counter() - t0
        same = files(root / "jobs") == files(root / "serial") and pool == serial
        lines.append(f"| `--jobs 2` (two spawned processes, no engine) | – | {wall:.1f} | {beats / wall:,.0f} | "
                     f"{'yes' if same else 'NO'} | – |")
        for name, run, dist in (("Dask distributed", run_dask, "distributed"), ("Ray", run_ray, "ray")):
            try:
                metadata.version(dist)
            except metadata.PackageNotFoundError:
                lines.append(f"| {name} | not installed | | | | |")
                continue
            started, wall, rows = run(tasks(paths, root / dist, args.model))
            same = files(root / dist) == files(root / "serial") and rows == serial
            size = installed_mb(dist) + (installed_mb("dask") if dist == "distributed" else 0.0)
            lines.append(f"| {name} {metadata.version(dist)} | {started:.1f} | {wall:.1f} | {beats / wall:,.0f} | "
                         f"{'yes' if same else 'NO'} | {size:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
