"""``ecgcnn summary``: torchinfo's layer table, parameters and MACs per beat of an architecture."""

from __future__ import annotations

import argparse

from ..evaluation.summary import model_summary
from ..models import list_models

EXAMPLES = ("ecgcnn summary --model tcn",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="vgg", choices=list_models())


def run(args) -> int:
    print(model_summary(args.model))
    return 0
