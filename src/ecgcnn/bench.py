"""Latency, throughput and memory of model files, through the one runtime interface.

Each file is measured in a fresh worker process (``python -m ecgcnn.bench``) so that its peak resident memory and
thread count are its own. The timed call is ``predictor.predict_proba(beats)``: what a user pays per call,
preprocessing and softmax included. A PyTorch-eager row per architecture is the baseline.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .errors import EcgcnnError


def _percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def measure(predictor, beats: np.ndarray, batch_sizes, warmup: int, runs: int,
            max_seconds: float | None = None) -> list[dict]:
    """Time ``predict_proba`` for each batch size; returns one row per batch size.

    ``runs`` timed calls, or fewer once ``max_seconds`` of timed calls have passed (at least 5), so that large
    batches of large models do not dominate a benchmark; each row records how many calls it timed.
    """
    rows = []
    for batch_size in batch_sizes:
        reps = int(np.ceil(batch_size / len(beats)))
        batch = np.tile(beats, (reps, 1))[:batch_size]
        for _ in range(warmup if batch_size <= 64 else min(warmup, 2)):
            predictor.predict_proba(batch)
        latencies = []
        for _ in range(runs):
            start = time.perf_counter()
            predictor.predict_proba(batch)
            latencies.append(time.perf_counter() - start)
            if max_seconds is not None and len(latencies) >= 5 and sum(latencies) >= max_seconds:
                break
        p50 = _percentile(latencies, 50)
        rows.append({"batch_size": batch_size, "runs": len(latencies), "p50_ms": p50 * 1e3,
                     "p99_ms": _percentile(latencies, 99) * 1e3, "per_beat_ms": p50 * 1e3 / batch_size,
                     "beats_per_s": batch_size / p50})
    return rows


def _worker(spec: dict) -> dict:
    """Runs inside the worker process."""
    threads = spec["threads"]
    if spec["path"].startswith("eager:") or spec["path"].endswith((".pth", ".pt")):
        import torch  # noqa: PLC0415 - only where it runs: the peak memory is the runtime's own

        torch.set_num_threads(threads)
    from .data import load_dataset  # noqa: PLC0415
    from .runtime import load_predictor  # noqa: PLC0415

    beats = load_dataset(spec["data_dir"]).x_test[:512]
    if spec["path"].startswith("eager:"):
        from .checkpoint import TorchPredictor  # noqa: PLC0415
        from .models import build_model  # noqa: PLC0415

        meta = json.loads(spec["path"][len("eager:"):])
        model = build_model(meta["model"], **meta["model_kwargs"])
        predictor = TorchPredictor(model, meta, threads=threads)
        label = "pytorch-eager"
    else:
        predictor = load_predictor(spec["path"], threads=threads)
        label = predictor.format
    rows = measure(predictor, beats, spec["batch_sizes"], spec["warmup"], spec["runs"], spec.get("max_seconds"))
    return {"model": predictor.name, "format": label,
            "quantize": predictor.metadata.get("quantize", "none" if label != "pytorch" else "fp32"),
            "rows": rows, "peak_rss_mib": peak_rss_mib(), "metadata": predictor.metadata}


def peak_rss_mib() -> float:
    """Peak resident memory of this process. VmHWM, because ru_maxrss survives exec on Linux: a worker started by a
    large parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_file(path: str, threads: int = 1, batch_sizes=(1, 64, 512), warmup: int = 10, runs: int = 100,
               data_dir: str | None = None, max_seconds: float | None = None) -> dict:
    """Benchmark one file (or ``eager:<metadata json>``) in a fresh process."""
    spec = {"path": str(path), "threads": threads, "batch_sizes": list(batch_sizes), "warmup": warmup,
            "runs": runs, "data_dir": data_dir, "max_seconds": max_seconds}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "ecgcnn.bench", json.dumps(spec)], capture_output=True,
                            text=True, env=env, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise EcgcnnError(f"{path}: benchmark failed ({lines[-1] if lines else 'no output'})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def macs_for(metadata: dict) -> int:
    from .models import build_model  # noqa: PLC0415
    from .summary import macs_per_beat  # noqa: PLC0415

    return macs_per_beat(build_model(metadata["model"], **metadata["model_kwargs"]), metadata["input_length"])


def bench(paths, threads: int = 1, batch_sizes=(1, 64, 512), warmup: int = 10, runs: int = 100,
          data_dir: str | None = None, baseline: bool = True, max_seconds: float | None = None,
          log=print) -> list[dict]:
    """Benchmark files plus a PyTorch-eager baseline per architecture; returns flat result rows."""
    results, seen_models = [], {}
    for path in paths:
        result = bench_file(path, threads, batch_sizes, warmup, runs, data_dir, max_seconds)
        result["file"] = str(path)
        result["size_bytes"] = Path(path).stat().st_size
        results.append(result)
        seen_models.setdefault(result["model"], result["metadata"])
        log(f"measured {path}")
    if baseline:
        for name, meta in seen_models.items():
            eager_meta = {k: meta.get(k) for k in ("model", "model_kwargs", "labels", "input_length", "preprocessing",
                                                   "config")}
            result = bench_file("eager:" + json.dumps(eager_meta), threads, batch_sizes, warmup, runs, data_dir,
                                max_seconds)
            result["file"] = f"(pytorch eager, {name})"
            result["size_bytes"] = None
            results.insert(0, result)
    flat = []
    macs_cache: dict[str, int] = {}
    for result in results:
        meta = result.pop("metadata")
        macs = macs_cache.setdefault(result["model"], macs_for(meta))
        for row in result.pop("rows"):
            flat.append({**result, **row, "threads": threads, "macs_per_beat": macs,
                         "gmac_per_s": macs * row["beats_per_s"] / 1e9})
    return flat


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def format_table(rows: list[dict]) -> str:
    header = ("| model | format | file | batch | p50 ms | p99 ms | ms/beat | beats/s | GMAC/s | peak RSS MiB |\n"
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    lines = [header]
    for r in rows:
        fmt = r["format"] if r["format"] != "tflite" else f"tflite-{r['quantize']}"
        lines.append(f"| {r['model']} | {fmt} | {Path(r['file']).name} | {r['batch_size']} | {r['p50_ms']:.3f} | "
                     f"{r['p99_ms']:.3f} | {r['per_beat_ms']:.4f} | {r['beats_per_s']:,.0f} | "
                     f"{r['gmac_per_s']:.2f} | {r['peak_rss_mib']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # worker entry point
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
