"""`ecgcnn train --recipe best` on many beats: wall time and peak memory of the command, as a user runs it on their
own beats (e.g. recordings cut by `ecgcnn beats`).

The beats: ECG5000's 500 training beats drawn with replacement (seeded), each with Gaussian noise of 0.05 of its
std, written as one TSV (label first); `train --train FILE` holds out its default 25 % as the test split. The
figures are the machine's: wall seconds and the command's peak resident memory (its process and children).

    python scripts/bench_fit.py --beats 20000 50000 --markdown results/bench/fit.md
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ecgcnn.core.fileio import write_text_atomic
from ecgcnn.core.provenance import git_commit
from ecgcnn.data.dataset import load_dataset


def make_beats(path: Path, beats: int, seed: int = 0) -> None:
    data = load_dataset(load_test=False)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(data.x_train), beats)
    x = data.x_train[rows] + 0.05 * data.x_train[rows].std(axis=1, keepdims=True) * rng.standard_normal(
        (beats, data.length))
    table = np.column_stack([data.y_train[rows], x])
    np.savetxt(path, table, delimiter="\t", fmt=["%d"] + ["%.6g"] * data.length)


def measure(beats: int, work: Path) -> dict:
    source = work / f"beats-{beats}.tsv"
    make_beats(source, beats)
    command = [str(Path(sys.executable).with_name("ecgcnn")), "train", "--recipe", "best", "--train", str(source),
               "--output-dir", str(work / f"runs-{beats}"), "--no-progress"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"train on {beats} beats failed: {done.stderr.strip().splitlines()[-1:]}")
    # the largest child so far: runs go in ascending order of beats, so this is the run's own peak
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"beats": beats, "seconds": seconds, "peak_mb": peak / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beats", type=int, nargs="+", default=[20000])
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ecgcnn-bench-fit-") as work:
        for beats in sorted(args.beats):
            rows.append(measure(beats, Path(work)))
            print(f"{beats} beats: {rows[-1]['seconds']:.0f} s, peak {rows[-1]['peak_mb']:.0f} MB", flush=True)
    lines = [f"`ecgcnn train --recipe best --train FILE` on many beats (ECG5000's training beats drawn with "
             f"replacement, noise added; 75 % train, 25 % test), one run each, at commit {git_commit()} on "
             f"{os.cpu_count()} cores. "
             f"Regenerate: `python scripts/bench_fit.py --beats {' '.join(str(b) for b in sorted(args.beats))} "
             f"--markdown FILE`.", "", "| beats in the file | wall s | peak RSS MB |", "|---:|---:|---:|"]
    lines += [f"| {r['beats']:,} | {r['seconds']:.0f} | {r['peak_mb']:,.0f} |" for r in rows]
    if args.markdown:
        write_text_atomic(args.markdown, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
