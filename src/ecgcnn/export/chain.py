"""The whole export chain, written once (``ecgcnn export tflite`` and the pipeline): a checkpoint becomes ONNX
(verified against PyTorch), then one TFLite file per quantisation mode (calibrated and verified on training beats
only). Each step goes through ``step(name, format, fn)`` so that a caller can record a failed step and go on."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import EcgcnnError
from ..core.formats import runtime_for, tflite_format
from .onnx import export_onnx
from .tflite import HeldOut, export_tflite

Step = Callable[[str, str, Callable[[], Any]], Any]


def _run(name: str, fmt: str, fn: Callable[[], Any]) -> Any:
    return fn()


def export_chain(source: str | os.PathLike, onnx_dir: str | os.PathLike, tflite_dir: str | os.PathLike,
                 modes: list[str] | tuple[str, ...], training_beats: np.ndarray, step: Step = _run,
                 held_out: HeldOut | None = None) -> dict[str, Path]:
    """Exports ``source`` (a ``.pth`` checkpoint or an ``.onnx`` file) to every TFLite ``mode``; returns the files
    written, keyed by format name (``onnx``, ``tflite-fp32``, ...). A step that ``step`` swallows (returns None)
    leaves its file out. ``held_out``: the full-INT8 file's held-out check (ecgcnn.workflows.held_out), if any."""
    source = Path(source)
    runtime = runtime_for(source)
    if runtime == "tflite":
        raise EcgcnnError(f"{source}: already a TFLite model; export from its .onnx or .pth")
    written: dict[str, Path] = {}
    if runtime == "torch":
        onnx = step("export-onnx", "onnx", lambda: export_onnx(source, onnx_dir, reference_beats=training_beats))
        if onnx is None:
            return written
        source = written["onnx"] = Path(onnx)
    for mode in modes:
        fmt = tflite_format(mode).name
        check = held_out if mode == "int8-full" else None
        path = step("export-tflite", fmt, lambda mode=mode, check=check: export_tflite(
            source, tflite_dir, quantize=mode, calibration_beats=training_beats, held_out=check))
        if path is not None:
            written[fmt] = Path(path)
    return written
