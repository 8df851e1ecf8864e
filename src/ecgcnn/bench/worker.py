"""The benchmark worker: times one model file in a fresh process (``python -m ecgcnn.bench.worker SPEC``).

It imports only the runtime it measures (backends load on demand), so its peak memory is that runtime's own.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from ..data.dataset import load_dataset
from ..runtimes import load_predictor
from ..runtimes.loader import load_backend
from ..runtimes.metadata import recorded_data


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
    if spec["path"].startswith("eager:"):
        meta = json.loads(spec["path"][len("eager:"):])
        predictor = load_backend("torch").random_weights_predictor(meta, threads=threads)
        label = "pytorch-eager"
    else:
        predictor = load_predictor(spec["path"], threads=threads)
        label = predictor.format
    # Beats to time: the first 512 test beats of the named data, else of the model's own. Only their values are
    # used (speed), never their labels.
    beats = load_dataset(spec["data"] or recorded_data(predictor.metadata)).x_test[:512]
    rows = measure(predictor, beats, spec["batch_sizes"], spec["warmup"], spec["runs"], spec.get("max_seconds"))
    return {"model": predictor.name, "format": label, "rows": rows, "peak_rss_mib": peak_rss_mib(),
            "metadata": predictor.metadata}


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


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
