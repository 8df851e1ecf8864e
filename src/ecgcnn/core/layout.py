"""Where every artifact of a run lives. The only place that builds artifact file names.

A run root (``outputs/seed0``) holds one folder per run (``<root>/<run>/``: checkpoints, metrics, plots) and one
folder per exported kind (``<root>/onnx/<run>.onnx``, ``<root>/tflite/<run>[_fp16|_int8|_int8_full].tflite``).
A run is named by its recipe (``best``) or else its architecture (``base-cnn``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .formats import BY_NAME, FORMATS, tflite_format


def run_dir(root: str | os.PathLike, run: str) -> Path:
    return Path(root) / run


def checkpoint_path(root: str | os.PathLike, run: str, kind: str = "best") -> Path:
    """``best``: the final model; ``last``: the resumable state after the latest epoch."""
    return run_dir(root, run) / f"{run}_{kind}.pth"


def metrics_path(root: str | os.PathLike, run: str) -> Path:
    return run_dir(root, run) / "metrics.json"


def figure_path(root: str | os.PathLike, run: str, figure: str) -> Path:
    return run_dir(root, run) / f"{run}_{figure}.png"


def onnx_path(output_dir: str | os.PathLike, run: str) -> Path:
    return Path(output_dir) / f"{run}{BY_NAME['onnx'].file_suffix}"


def tflite_path(output_dir: str | os.PathLike, run: str, quantize: str = "none") -> Path:
    return Path(output_dir) / f"{run}{tflite_format(quantize).file_suffix}"


def run_paths(root: str | os.PathLike, run: str) -> dict[str, Path]:
    """Every format's file of one run under a run root, keyed by format name (see :mod:`ecgcnn.core.formats`)."""
    root = Path(root)
    paths = {}
    for fmt in FORMATS:
        if fmt.runtime == "torch":
            paths[fmt.name] = checkpoint_path(root, run)
        elif fmt.runtime == "onnx":
            paths[fmt.name] = onnx_path(root / "onnx", run)
        elif fmt.quantize is not None:  # the TFLite formats
            paths[fmt.name] = tflite_path(root / "tflite", run, fmt.quantize)
    return paths


def shipped_file_name(run: str, format_name: str) -> str:
    """File name of a pretrained model inside the package (``edge_int8_full.tflite``, ``best.pth``)."""
    fmt = BY_NAME[format_name]
    return f"{run}.pth" if fmt.runtime == "torch" else f"{run}{fmt.file_suffix}"


def seed_root(output_dir: str | os.PathLike, seed: int) -> Path:
    """The run root of one seed of a pipeline: ``<output_dir>/seed<N>``."""
    return Path(output_dir) / f"seed{seed}"
