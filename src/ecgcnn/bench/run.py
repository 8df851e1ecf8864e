"""Latency, throughput and memory of model files, through the one runtime interface.

Each file is measured in a fresh worker process (``python -m ecgcnn.bench.worker``) so that its peak resident memory and
thread count are its own. The timed call is ``predictor.predict_proba(beats)``: what a user pays per call,
preprocessing and softmax included. A PyTorch-eager row per architecture is the baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tqdm.auto import tqdm

from ..core.errors import EcgcnnError
from ..evaluation.summary import macs_per_beat
from ..models import build_model

BATCH_SIZES = (1, 64, 512)  # the batch sizes timed by default (bench and pipeline)
WARMUP = 10  # untimed calls first
RUNS = 100  # timed calls per batch size


def bench_file(path: str, threads: int = 1, batch_sizes=BATCH_SIZES, warmup: int = WARMUP, runs: int = RUNS,
               data: dict | None = None, max_seconds: float | None = None) -> dict:
    """Benchmark one file (or ``eager:<metadata json>``) in a fresh process; ``data``: a
    :class:`~ecgcnn.data.dataset.DataSpec` as a dict, whose test beats are timed (default: ECG5000's)."""
    spec = {"path": str(path), "threads": threads, "batch_sizes": list(batch_sizes), "warmup": warmup,
            "runs": runs, "data": data or {}, "max_seconds": max_seconds}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "ecgcnn.bench.worker", json.dumps(spec)], capture_output=True,
                            text=True, env=env, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise EcgcnnError(f"{path}: benchmark failed ({lines[-1] if lines else 'no output'})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def macs_for(metadata: dict) -> int:
    return macs_per_beat(build_model(metadata["model"], **metadata["model_kwargs"]), metadata["input_length"])


def bench(paths, threads: int = 1, batch_sizes=BATCH_SIZES, warmup: int = WARMUP, runs: int = RUNS,
          data: dict | None = None, baseline: bool = True, max_seconds: float | None = None,
          log=print) -> list[dict]:
    """Benchmark files plus a PyTorch-eager baseline per architecture; returns flat result rows."""
    results, seen_models = [], {}
    for path in tqdm(paths, desc="bench", unit="file", leave=False, file=sys.stderr, disable=None):
        result = bench_file(path, threads, batch_sizes, warmup, runs, data, max_seconds)
        result["file"] = str(path)
        result["size_bytes"] = Path(path).stat().st_size
        results.append(result)
        seen_models.setdefault(result["model"], result["metadata"])
        log(f"measured {path}")
    if baseline:
        for name, meta in seen_models.items():
            eager_meta = {k: meta.get(k) for k in ("model", "model_kwargs", "labels", "input_length", "preprocessing",
                                                   "config", "dataset")}
            result = bench_file("eager:" + json.dumps(eager_meta), threads, batch_sizes, warmup, runs, data,
                                max_seconds)
            result["file"] = f"(pytorch eager, {name})"
            result["size_bytes"] = None
            results.insert(0, result)
    flat = []
    macs_cache: dict[str, int] = {}
    for result in results:
        meta = result.pop("metadata")
        if result["model"] not in macs_cache:  # counting MACs builds the model: once per model
            macs_cache[result["model"]] = macs_for(meta)
        macs = macs_cache[result["model"]]
        for row in result.pop("rows"):
            flat.append({**result, **row, "threads": threads, "macs_per_beat": macs,
                         "gmac_per_s": macs * row["beats_per_s"] / 1e9})
    return flat


def format_table(rows: list[dict]) -> str:
    header = ("| model | format | file | batch | p50 ms | p99 ms | ms/beat | beats/s | GMAC/s | peak RSS MiB |\n"
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    lines = [header]
    for r in rows:
        lines.append(f"| {r['model']} | {r['format']} | {Path(r['file']).name} | {r['batch_size']} | "
                     f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['per_beat_ms']:.4f} | {r['beats_per_s']:,.0f} | "
                     f"{r['gmac_per_s']:.2f} | {r['peak_rss_mib']:.0f} |")
    return "\n".join(lines)

