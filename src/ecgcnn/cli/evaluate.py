"""``ecgcnn evaluate``: a model file scored on the test split."""

from __future__ import annotations

import argparse

from ..core.fileio import check_output_file, write_json_atomic
from ..data.dataset import load_dataset
from ..evaluation.metrics import check_model_fits, evaluate_predictor
from ..runtimes import load_predictor
from ..runtimes.metadata import recorded_data
from ._parser import add_data_options, add_device, data_spec

EXAMPLES = ("ecgcnn evaluate pretrained:edge.tflite --json edge.json",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_file", help="model file (.pth, .onnx, .tflite) or pretrained:best / pretrained:edge "
                                           "(add .onnx or .tflite for another format)")
    add_data_options(parser, model_default=True)
    add_device(parser, "cpu")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the metrics to this JSON file")


def run(args) -> int:
    if args.json_out:
        check_output_file(args.json_out, "--json")
    predictor = load_predictor(args.model_file, device=args.device)
    dataset = load_dataset(data_spec(args, recorded=recorded_data(predictor.metadata)))
    print(f"data: {dataset.source}")
    check_model_fits(args.model_file, predictor, dataset)
    metrics = evaluate_predictor(predictor, dataset.x_test, dataset.index_test, progress=True)
    print(f"model: {predictor.describe()}")
    print(metrics["report"])
    print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  ({metrics['n']} test beats)")
    if args.json_out:
        write_json_atomic(args.json_out, {"model_file": str(args.model_file), "format": predictor.format,
                                          "model": predictor.model_name, **metrics})
    return 0

