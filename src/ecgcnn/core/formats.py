"""The one table of model formats, shared by the exporters, the runtime loader, the pipeline, the reports and the
pretrained files.

A *format* is what a file holds (``tflite-int8-full``); a *runtime* is the backend module in
:mod:`ecgcnn.runtimes` that opens it (``tflite``), chosen by the file's extension.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFileError


@dataclass(frozen=True)
class Format:
    name: str                # as the results tables name it
    runtime: str             # backend module in ecgcnn.runtimes
    file_suffix: str         # appended to the run name (checkpoints live in their run's own folder)
    quantize: str | None     # TFLite quantisation mode passed to the exporter; None for the other formats
    description: str


FORMATS: tuple[Format, ...] = (
    Format("pytorch", "torch", "_best.pth", None, "PyTorch checkpoint (float32)"),
    Format("onnx", "onnx", ".onnx", None, "ONNX (float32, opset 17)"),
    Format("tflite-fp32", "tflite", ".tflite", "none", "TFLite float32"),
    Format("tflite-fp16", "tflite", "_fp16.tflite", "fp16", "TFLite float16 weights"),
    Format("tflite-int8", "tflite", "_int8.tflite", "int8", "TFLite dynamic-range INT8"),
    Format("tflite-int8-full", "tflite", "_int8_full.tflite", "int8-full",
           "TFLite full-integer INT8 (int8 input and output; microcontrollers)"),
)
FORMAT_NAMES = tuple(f.name for f in FORMATS)
BY_NAME = {f.name: f for f in FORMATS}
TFLITE_FORMATS = tuple(f for f in FORMATS if f.quantize is not None)
QUANTIZE_MODES = tuple(f.quantize for f in TFLITE_FORMATS if f.quantize is not None)
# The second input of a two-input full-INT8 file: the first difference of the z-normalised beat, quantised on its own
# grid (ecgcnn.export.difference says why); runtimes compute it from the beat.
DIFFERENCE_INPUT = "beat_difference"
# File extension -> runtime backend.
RUNTIME_BY_EXTENSION = {".pth": "torch", ".pt": "torch", ".onnx": "onnx", ".tflite": "tflite"}


def runtime_for(path: str | os.PathLike) -> str:
    """The runtime backend for a model file, from its extension; unknown extensions are a one-line error."""
    suffix = Path(path).suffix.lower()
    if suffix not in RUNTIME_BY_EXTENSION:
        raise ModelFileError(f"{path}: unknown model format {suffix or '(no extension)'!r}; "
                             f"expected one of {', '.join(sorted(RUNTIME_BY_EXTENSION))}")
    return RUNTIME_BY_EXTENSION[suffix]


def tflite_format(quantize: str) -> Format:
    for fmt in TFLITE_FORMATS:
        if fmt.quantize == quantize:
            return fmt
    raise ModelFileError(f"unknown quantisation mode {quantize!r}; expected one of {', '.join(QUANTIZE_MODES)}")


def format_name(runtime: str, quantize: str | None = None) -> str:
    """The table name of an opened file: ``pytorch``, ``onnx`` or ``tflite-<mode>``."""
    if runtime == "tflite":
        return tflite_format(quantize or "none").name
    return "pytorch" if runtime == "torch" else runtime
