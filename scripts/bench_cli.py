"""How light the command line is: wall time and peak RSS of commands a user runs often, each in a fresh process.

    .venv/bin/python scripts/bench_cli.py --markdown results/bench/cli.md

Each command runs ``--repeat`` times (the median is reported) from a parent that reads the child's peak RSS with
getrusage; ``predict`` classifies 20 official test beats. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ecgcnn.data.dataset import load_dataset

MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": done.returncode, "wall": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def measure(command: list[str], repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if any(r["code"] != 0 for r in runs):
        raise SystemExit(f"{' '.join(command)} failed")
    return {"wall": statistics.median(r["wall"] for r in runs), "rss": max(r["peak_rss_mb"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    ecgcnn = [sys.executable, "-m", "ecgcnn"]
    with tempfile.TemporaryDirectory() as tmp:
        beats = Path(tmp) / "beats.csv"
        np.savetxt(beats, load_dataset().x_test[:20], delimiter=",", fmt="%.6f")
        commands = [("ecgcnn --help", ["--help"]),
                    ("ecgcnn predict pretrained:edge.tflite --input beats.csv (20 beats)",
                     ["predict", "pretrained:edge.tflite", "--input", str(beats)]),
                    ("ecgcnn predict pretrained:edge.onnx --input beats.csv (20 beats)",
                     ["predict", "pretrained:edge.onnx", "--input", str(beats)]),
                    ("ecgcnn predict pretrained:edge --input beats.csv (20 beats, PyTorch)",
                     ["predict", "pretrained:edge", "--input", str(beats)]),
                    ("ecgcnn pretrained list", ["pretrained", "list"])]
        lines = [f"Fresh process per run, median wall time of {args.repeat} runs, largest peak RSS; {os.cpu_count()} "
                 f"cores. Regenerate: `python scripts/bench_cli.py --markdown FILE`.", "",
                 "| command | wall s | peak RSS MB |", "|---|---:|---:|"]
        for label, argv in commands:
            result = measure([*ecgcnn, *argv], args.repeat)
            lines.append(f"| `{label}` | {result['wall']:.2f} | {result['rss']:.0f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
