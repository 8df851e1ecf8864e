"""``ecgcnn ablation``: what each recipe technique adds, chosen by nested CV on training beats only."""

from __future__ import annotations

import argparse

from ..core.validation import argparse_type
from ..workflows.ablation import VARIANT_KEYS, render_ablation, run_ablation
from ._parser import NONNEGATIVE_INT, POSITIVE_INT, add_data_dir

EXAMPLES = ("ecgcnn ablation --validation-only --variants plain balanced",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0, help="seed")
    parser.add_argument("--epochs", type=POSITIVE_INT, default=None,
                        help="epochs per training (default: the recipes')")
    parser.add_argument("--outer-folds", type=argparse_type(int, low=2), default=5, help="outer cross-validation "
                                                                                         "folds")
    parser.add_argument("--variants", nargs="+", default=None, choices=VARIANT_KEYS,
                        help=f"rows to run (default: all: {' '.join(VARIANT_KEYS)})")
    parser.add_argument("--output-dir", default="outputs/ablation", help="output directory")
    parser.add_argument("--results-dir", default="outputs/ablation/results", help="where ablation.json/.md go")
    parser.add_argument("--readme", default=None, help="a Markdown file whose 'ablation' section is replaced when "
                                                       "all rows ran (e.g. docs/results.md)")
    parser.add_argument("--validation-only", action="store_true",
                        help="nested cross-validation only; never train on all beats or read the test split")
    parser.add_argument("--threads", type=NONNEGATIVE_INT, default=0,
                        help="CPU threads PyTorch trains with (0: its default, one per core); a network's row "
                             "reproduces bit for bit only with the same count, which the summary records")
    add_data_dir(parser)


def run(args) -> int:
    summary = run_ablation(seed=args.seed, outer_folds=args.outer_folds, epochs=args.epochs,
                           output_dir=args.output_dir, results_dir=args.results_dir, data_dir=args.data_dir,
                           variants=args.variants, readme=args.readme or None,
                           validation_only=args.validation_only, threads=args.threads)
    print(render_ablation(summary))
    return 0
