"""``load_predictor``: open any model file (or ``pretrained:NAME``) with the backend its extension names."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from ..core.errors import MissingExtraError, ModelFileError
from ..core.formats import runtime_for
from .base import Predictor
from .pretrained import is_pretrained_spec, resolve_model_path

RUNTIME_EXTRA = {"torch": "train", "onnx": "onnxruntime", "tflite": "litert"}  # the smallest extra that runs each
# A bare pretrained:NAME names the PyTorch file; an install without torch gets the first of these it can run.
FALLBACK_SUFFIXES = (".onnx", ".tflite")


def load_predictor(path: str | os.PathLike, device: str = "cpu", threads: int | None = None) -> Predictor:
    """Open a model file of any supported format (read-only) and return its :class:`Predictor`.

    ``pretrained:best`` / ``pretrained:edge`` (optionally ``.onnx`` / ``.tflite``) name the shipped models; a bare
    name opens the PyTorch file, or, in an install without torch (``ecgcnn[onnxruntime]``, ``ecgcnn[litert]``), the
    shipped ONNX or TFLite file (``predictor.format`` says which). Backends are imported on demand.
    """
    try:
        return _open(resolve_model_path(path), device, threads)
    except MissingExtraError:
        bare = is_pretrained_spec(path) and "." not in str(path).split(":", 1)[1]
        if not bare:
            raise
    for suffix in FALLBACK_SUFFIXES:
        try:
            return _open(resolve_model_path(f"{path}{suffix}"), device, threads)
        except MissingExtraError:
            continue
    raise MissingExtraError("litert", "no runtime for any shipped format: torch, onnxruntime and ai-edge-litert")


def _open(path: Path, device: str, threads: int | None) -> Predictor:
    runtime = runtime_for(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        backend = load_backend(runtime)
    except ModuleNotFoundError as exc:  # the torch backend imports torch at its top
        raise MissingExtraError(RUNTIME_EXTRA[runtime], (exc.name or runtime).split(".")[0]) from exc
    predictor: Predictor = backend.PREDICTOR(path, device=device, threads=threads)
    return predictor


def load_backend(runtime: str) -> ModuleType:
    """The backend module of a runtime (``torch``, ``onnx``, ``tflite``), imported on first use."""
    return importlib.import_module(f"{__package__}.{runtime}")
