"""``ecgcnn predict``: labels and probabilities for beats in a CSV file."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..core.fileio import check_output_file, write_text_atomic
from ..data.beats import FLAT_WARNING, OUTLIER_WARNING, flat_beats, outlier_beats, read_beats_csv
from ..data.missing import MISSING_MODES
from ..runtimes import load_predictor
from ..runtimes.pretrained import DEFAULT_MODEL
from ._parser import add_device

EXAMPLES = ("ecgcnn predict --input beats.csv --output predictions.csv",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_file", nargs="?", default=DEFAULT_MODEL,
                        help="model file (.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite] (default: "
                             f"{DEFAULT_MODEL})")
    parser.add_argument("--input", required=True,
                        help="CSV of beats: one per row, the model's input length (140 for ECG5000), optional header")
    parser.add_argument("--output", default=None, help="write predictions to this CSV (default: standard output)")
    parser.add_argument("--resample", action="store_true",
                        help="linearly resample beats of another length (rows may differ) to the model's input "
                             "length")
    parser.add_argument("--label-column", choices=("none", "first", "last"), default="none",
                        help="'first' (a UCR file) or 'last' (the Kaggle layout): that column holds labels; they are "
                             "read and ignored")
    parser.add_argument("--missing", choices=MISSING_MODES, default="refuse",
                        help="NaN or empty cells: refuse them, or fill each beat as training does with --missing "
                             "fill (docs/data.md)")
    add_device(parser, "cpu")


def run(args) -> int:
    if args.output:
        check_output_file(args.output, "--output", inputs=(args.input,))
    predictor = load_predictor(args.model_file, device=args.device)
    beats = read_beats_csv(args.input, length=predictor.input_length, resample=args.resample,
                                label_column=args.label_column, missing=args.missing)
    probabilities = predictor.predict_proba(beats.values)
    flat, odd = flat_beats(beats.values), outlier_beats(beats.values)
    names = predictor.class_names
    header = ["row", "line", "predicted_label", "predicted_class"] + [f"p_{label}" for label in predictor.labels] \
        + ["warning"]
    lines = [",".join(header)]
    for row, (line_no, probs, is_flat) in enumerate(zip(beats.line_numbers, probabilities, flat, strict=True), start=1):
        k = int(probs.argmax())
        warning = (FLAT_WARNING if is_flat else OUTLIER_WARNING if odd[row - 1] else "")
        lines.append(",".join([str(row), str(line_no), str(predictor.labels[k]), f'"{names[k]}"']
                              + [f"{p:.6f}" for p in probs] + [f'"{warning}"' if warning else ""]))
    text = "\n".join(lines) + "\n"
    if (odd & ~flat).any():
        print(f"warning: {int((odd & ~flat).sum())} beat(s) with a spike or artefact (e.g. line "
              f"{beats.line_numbers[int(np.flatnonzero(odd & ~flat)[0])]}): their predictions are unreliable",
              file=sys.stderr, flush=True)
    if flat.any():
        print(f"warning: {int(flat.sum())} flat beat(s) (constant values, e.g. line "
              f"{beats.line_numbers[int(np.flatnonzero(flat)[0])]}): their predictions are meaningless",
              file=sys.stderr, flush=True)
    if args.output:
        write_text_atomic(args.output, text)
        print(f"{len(probabilities)} predictions -> {args.output}", file=sys.stderr, flush=True)
    else:
        sys.stdout.write(text)
    return 0
