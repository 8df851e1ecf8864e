"""``ecgcnn export onnx|tflite|micro``: a checkpoint to ONNX, ONNX or a checkpoint to TFLite (the whole chain in
:func:`~ecgcnn.export.chain.export_chain`), a full-INT8 TFLite file to C sources for TensorFlow Lite Micro."""

from __future__ import annotations

import argparse
import contextlib

from ..core.errors import EcgcnnError
from ..core.formats import QUANTIZE_MODES, runtime_for
from ..data.dataset import Dataset, load_dataset
from ..export.chain import export_chain
from ..export.micro import export_micro
from ..export.onnx import export_onnx
from ..runtimes import load_predictor
from ..runtimes.metadata import recorded_data
from ..runtimes.pretrained import resolve_model_path
from ..workflows.held_out import held_out_check
from ._parser import POSITIVE_INT, add_actions, add_data_options, add_subcommand, data_spec

EXAMPLES = ("ecgcnn export tflite pretrained:edge --quantize all",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = add_actions(parser, "export_format", "FORMAT")
    e = add_subcommand(actions, "onnx", "checkpoint -> <output-dir>/<run>.onnx, verified against PyTorch",
                       ("ecgcnn export onnx outputs/base-cnn/base-cnn_best.pth",))
    e.add_argument("checkpoint", help="a .pth checkpoint written by 'ecgcnn train', or pretrained:NAME")
    e.add_argument("--opset", type=POSITIVE_INT, default=17, help="ONNX opset")
    e.add_argument("--output-dir", default="outputs/onnx", help="output directory")
    add_data_options(e, model_default=True)
    e = add_subcommand(actions, "tflite", "ONNX or checkpoint -> TFLite through onnx2tf (FP32, FP16, INT8, full "
                                          "INT8)", ("ecgcnn export tflite outputs/onnx/base-cnn.onnx --quantize "
                                                    "int8-full",))
    e.add_argument("model_file", help="a .onnx file, a .pth checkpoint (exported to ONNX first) or pretrained:NAME")
    e.add_argument("--quantize", nargs="+", default=["none"], choices=QUANTIZE_MODES + ("all",),
                   help="none (FP32), fp16, int8 (dynamic range), int8-full (static, int8 I/O, calibrated on "
                        "training beats); several or 'all' at once")
    e.add_argument("--output-dir", default="outputs/tflite", help="output directory")
    add_data_options(e, model_default=True)
    e = add_subcommand(actions, "micro", "full-INT8 .tflite -> C/C++ source for TensorFlow Lite Micro (array, "
                                         "quantisation, labels, op resolver)",
                       ("ecgcnn export micro pretrained:edge.tflite --output-dir firmware/model",))
    e.add_argument("model_file", help="a full-INT8 .tflite file or pretrained:NAME.tflite")
    e.add_argument("--output-dir", default="outputs/micro", help="output directory")
    e.add_argument("--name", default=None, help="C identifier prefix (default: the run name, e.g. edge)")
    e.add_argument("--arena-size", type=POSITIVE_INT, default=None,
                   help="tensor arena bytes, measured on your target, written into the header (default: none; the "
                        "generated README says how to measure it)")


def run(args) -> int:
    if args.export_format == "micro":
        for path in export_micro(args.model_file, args.output_dir, name=args.name, arena_size=args.arena_size,
                                 arena_note="given at export (--arena-size)"):
            print(f"wrote {path}")
        return 0
    if args.export_format == "onnx":
        source = resolve_model_path(args.checkpoint)
        export_onnx(source, args.output_dir, opset=args.opset, reference_beats=training_data(args, source).x_train)
        return 0
    source = resolve_model_path(args.model_file)
    modes = list(QUANTIZE_MODES) if "all" in args.quantize else list(dict.fromkeys(args.quantize))
    dataset = training_data(args, source)
    check = (held_out_check(source, dataset) if "int8-full" in modes and runtime_for(source) == "torch"
             else contextlib.nullcontext())
    with check as held_out:
        # ONNX, the intermediate step from a checkpoint, is kept beside the TFLite files
        export_chain(source, args.output_dir, args.output_dir, modes, dataset.x_train, held_out=held_out)
    return 0


def training_data(args, source) -> Dataset:
    """Calibration and verification beats: the training beats of the data the options name, else of the data the
    model records (never test beats); their length must be the model's."""
    metadata = load_predictor(source).metadata
    dataset = load_dataset(data_spec(args, recorded=recorded_data(metadata)), load_test=False)
    if dataset.length != int(metadata["input_length"]):
        raise EcgcnnError(f"{source}: the model takes beats of {metadata['input_length']} samples, but the training "
                          f"beats of {dataset.name} have {dataset.length}; name the model's data (--dataset/--train)")
    print(f"calibration and verification: {len(dataset.x_train)} training beats from {dataset.source}")
    return dataset
