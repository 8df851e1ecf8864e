"""``ecgcnn train``: one flag per :class:`~ecgcnn.training.config.TrainConfig` setting, generated from it; flag defaults
are None so that explicit flags override a ``--recipe`` (the help shows TrainConfig's own default)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING

from ..core.validation import argparse_type
from ..training import train
from ..training.config import (
    FLAG_FIELDS,
    RECIPES,
    TrainConfig,
    flag_name,
    recipe_settings,
    train_models,
    with_explicit,
)
from ._parser import add_data_options, add_device, data_spec

EXAMPLES = ("ecgcnn train --recipe edge --seed 0", "ecgcnn train --recipe best --dataset ECG200",
            "ecgcnn train --recipe edge --train beats.tsv --group-by record --class-names N,S,V,F,Q")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", default=None, choices=list(RECIPES),
                        help="start from a named recipe (explicit flags override it)")
    for field in FLAG_FIELDS:
        default = field.default if field.default is not MISSING else None
        kind, bounds = field.metadata["kind"], field.metadata["bounds"]
        help_text = f"{field.metadata['help']} (default: {default})"
        if field.name == "model":
            parser.add_argument("--model", default=None, choices=train_models(), help=help_text)
        elif kind is None and isinstance(default, bool) or field.name == "amp":
            if field.name == "amp":  # None means: on with CUDA
                help_text = f"{field.metadata['help']} (default: on with CUDA, off elsewhere)"
            parser.add_argument(f"--{flag_name(field.name)}", action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(f"--{flag_name(field.name)}", default=None, help=help_text,
                                type=argparse_type(kind, **bounds) if kind else str)
    add_data_options(parser)
    parser.add_argument("--output-dir", default="outputs", help="output root")
    add_device(parser, "auto")
    parser.add_argument("--resume", action="store_true", help="continue from <run>_last.pth in the output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    settings = recipe_settings(args.recipe) if args.recipe else {}
    explicit = {f.name: getattr(args, f.name) for f in FLAG_FIELDS if getattr(args, f.name) is not None}
    config = TrainConfig(**with_explicit(settings, explicit), data=data_spec(args), output_dir=args.output_dir,
                         device=args.device, resume=args.resume, progress=not args.no_progress)
    train(config)
    return 0
