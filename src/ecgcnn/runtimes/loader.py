"""``load_predictor``: open any model file (or ``pretrained:NAME``) with the backend its extension names."""

from __future__ import annotations

import importlib
import os

from ..core.errors import ModelFileError
from ..core.formats import runtime_for
from .base import Predictor
from .pretrained import resolve_model_path


def load_predictor(path: str | os.PathLike, device: str = "cpu", threads: int | None = None) -> Predictor:
    """Open a model file of any supported format (read-only) and return its :class:`Predictor`.

    ``pretrained:best`` / ``pretrained:edge`` (optionally ``.onnx`` / ``.tflite``) name the shipped models. Backends
    are imported on demand, so a runtime-only install (no torch) can open ``.onnx`` and ``.tflite`` files.
    """
    path = resolve_model_path(path)
    runtime = runtime_for(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    return load_backend(runtime).PREDICTOR(path, device=device, threads=threads)


def load_backend(runtime: str):
    """The backend module of a runtime (``torch``, ``onnx``, ``tflite``), imported on first use."""
    return importlib.import_module(f"{__package__}.{runtime}")
