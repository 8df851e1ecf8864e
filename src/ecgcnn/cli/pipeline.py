"""``ecgcnn pipeline``: train, export every format, evaluate, benchmark -> a results directory. The defaults are
:class:`~ecgcnn.workflows.pipeline.PipelineConfig`'s (declared there once)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import EcgcnnError
from ..training.config import RECIPES, train_models
from ..workflows.pipeline import PipelineConfig, run_pipeline
from ._parser import NONNEGATIVE_INT, POSITIVE_FLOAT, POSITIVE_INT, add_data_options, data_spec

EXAMPLES = ("ecgcnn pipeline --seeds 0 --models base-cnn edge",)
DEFAULTS = PipelineConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    choices = list(dict.fromkeys([*train_models(), *(r for r in RECIPES if r != "seed")]))
    parser.add_argument("--seeds", type=NONNEGATIVE_INT, nargs="+", default=DEFAULTS.seeds, help="seeds")
    parser.add_argument("--models", nargs="+", default=DEFAULTS.models, choices=choices,
                        help="architectures and/or recipes")
    parser.add_argument("--epochs", type=POSITIVE_INT, default=None,
                        help="epochs per training (default: 50, or the recipe's own)")
    parser.add_argument("--skip-train", action="store_true", help="reuse existing checkpoints where present")
    parser.add_argument("--output-dir", default=DEFAULTS.output_dir,
                        help="output root (per seed: <output-dir>/seed<N>/)")
    parser.add_argument("--results-dir", default=DEFAULTS.results_dir,
                        help="where results.json/results.md go ('results' regenerates the committed ones)")
    parser.add_argument("--threads", type=POSITIVE_INT, default=DEFAULTS.threads, help="inference threads in "
                                                                                      "benchmarks")
    parser.add_argument("--bench-runs", type=POSITIVE_INT, default=DEFAULTS.bench_runs,
                        help="timed calls per batch size")
    parser.add_argument("--bench-warmup", type=NONNEGATIVE_INT, default=DEFAULTS.bench_warmup,
                        help="untimed calls first")
    parser.add_argument("--bench-seconds", type=POSITIVE_FLOAT, default=DEFAULTS.bench_seconds,
                        help="time budget per file and batch size in benchmarks (at least 5 calls)")
    parser.add_argument("--batch-sizes", type=POSITIVE_INT, nargs="+", default=list(DEFAULTS.batch_sizes),
                        help="batch sizes to time")
    parser.add_argument("--readme", default=None,
                        help="a Markdown file whose section is replaced (e.g. docs/results.md)")
    parser.add_argument("--readme-section", default=DEFAULTS.readme_section,
                        help="the part replaced, between <!-- NAME:start --> and <!-- NAME:end -->")
    add_data_options(parser)


def run(args) -> int:
    if args.readme and not Path(args.readme).is_file():
        raise EcgcnnError(f"--readme {args.readme}: file not found")
    config = PipelineConfig(seeds=list(dict.fromkeys(args.seeds)), models=list(dict.fromkeys(args.models)),
                            epochs=args.epochs, output_dir=args.output_dir, results_dir=args.results_dir,
                            data=data_spec(args), skip_train=args.skip_train, threads=args.threads,
                            bench_runs=args.bench_runs, bench_warmup=args.bench_warmup,
                            bench_seconds=args.bench_seconds, batch_sizes=tuple(args.batch_sizes),
                            readme=args.readme or None, readme_section=args.readme_section)
    return run_pipeline(config)
