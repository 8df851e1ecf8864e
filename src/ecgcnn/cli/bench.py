"""``ecgcnn bench``: latency, throughput and memory of model files, each in a fresh process."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..bench.run import BATCH_SIZES, RUNS, WARMUP, bench, format_table
from ..core.errors import EcgcnnError
from ..core.fileio import check_output_file, write_json_atomic
from ..core.formats import runtime_for
from ..core.provenance import machine_info
from ..runtimes.pretrained import resolve_model_path
from ._parser import NONNEGATIVE_INT, POSITIVE_FLOAT, POSITIVE_INT, add_data_dir

EXAMPLES = ("ecgcnn bench pretrained:edge.tflite --batch-sizes 1 64",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_files", nargs="+", help="model files: .pth, .onnx, .tflite, or pretrained:NAME")
    parser.add_argument("--threads", type=POSITIVE_INT, default=1, help="CPU threads per runtime")
    parser.add_argument("--batch-sizes", type=POSITIVE_INT, nargs="+", default=list(BATCH_SIZES),
                        help="batch sizes to time")
    parser.add_argument("--warmup", type=NONNEGATIVE_INT, default=WARMUP, help="untimed calls first")
    parser.add_argument("--runs", type=POSITIVE_INT, default=RUNS, help="timed calls per batch size")
    parser.add_argument("--no-baseline", action="store_true", help="skip the PyTorch-eager baseline rows")
    parser.add_argument("--max-seconds", type=POSITIVE_FLOAT, default=None,
                        help="stop timing a batch size after this many seconds of calls (at least 5 calls)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the rows to this JSON file")
    add_data_dir(parser)


def run(args) -> int:
    if args.json_out:
        check_output_file(args.json_out, "--json")
    files = [str(resolve_model_path(path)) for path in args.model_files]
    for path in files:  # fail before measuring anything
        runtime_for(path)
        if not Path(path).is_file():
            raise EcgcnnError(f"{path}: model file not found")
    rows = bench(files, threads=args.threads, batch_sizes=args.batch_sizes, warmup=args.warmup, runs=args.runs,
                 data={"data_dir": args.data_dir} if args.data_dir else None, baseline=not args.no_baseline,
                 max_seconds=args.max_seconds,
                 log=lambda message: print(message, file=sys.stderr, flush=True))
    machine = machine_info()
    print(f"{machine['cpu']}, {machine['logical_cores']} logical cores, {args.threads} thread(s)")
    print(format_table(rows))
    if args.json_out:
        write_json_atomic(args.json_out, {"machine": machine, "threads": args.threads, "rows": rows})
    return 0
