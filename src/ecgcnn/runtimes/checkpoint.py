"""Self-describing PyTorch checkpoints: saved atomically, loaded with ``weights_only=True``, checked against a schema.

A checkpoint is a dict of plain Python values and tensors::

    {"format": "ecgcnn-checkpoint", "format_version": 1,
     "state_dict": {...},
     "metadata": {"model", "model_kwargs", "labels", "class_names", "input_length", "preprocessing",
                  "metrics", "versions", "config", ...}}

``metadata`` is the same object that ONNX ``metadata_props`` and the TFLite metadata carry, so every format
describes itself the same way.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from ..core.errors import ModelFileError
from ..core.fileio import atomic_path
from ..models import build_model, list_models
from .metadata import REQUIRED_CHECKPOINT, check_metadata

FORMAT = "ecgcnn-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, metadata: dict, **extra) -> Path:
    """Write a checkpoint atomically. ``extra`` entries (optimiser state, RNG states...) are stored alongside."""
    missing = [key for key in REQUIRED_CHECKPOINT if key not in metadata]
    if missing:
        raise ValueError(f"checkpoint metadata lacks {missing}")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "state_dict": state, "metadata": metadata, **extra}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (no code execution) and validate its structure. Errors are one line."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: checkpoint not found")
    try:
        with open(path, "rb") as fh:  # read-only
            payload = torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "unsafe content"
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it contains objects that are not plain tensors or values (refused, not executed)"
        raise ModelFileError(f"{path}: not a safe ecgcnn checkpoint: {reason}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError, TypeError,
            AttributeError, UnicodeDecodeError) as exc:  # torch.load raises all of these on non-checkpoint bytes
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt: {first})") from None
    _validate(path, payload)
    return payload


def _validate(path: Path, payload) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an ecgcnn checkpoint (expected a dict with format={FORMAT!r}); "
                             f"plain state_dicts are not self-describing")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: checkpoint format version {payload.get('format_version')!r} is not supported "
                             f"(expected {FORMAT_VERSION})")
    metadata = payload.get("metadata")
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: checkpoint has no metadata")
    check_metadata(path, metadata, REQUIRED_CHECKPOINT)
    if metadata["model"] not in list_models():
        raise ModelFileError(f"{path}: unknown model {metadata['model']!r} (known: {', '.join(list_models())})")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: checkpoint state_dict is missing or holds non-tensors")


def model_from_checkpoint(path: str | os.PathLike, payload: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model described by a checkpoint and load its weights (strictly)."""
    payload = payload if payload is not None else read_checkpoint(path)
    metadata = payload["metadata"]
    kwargs = metadata["model_kwargs"]
    try:
        model = build_model(metadata["model"], **kwargs)
    except TypeError as exc:
        raise ModelFileError(f"{path}: model arguments {kwargs} do not fit {metadata['model']!r} ({exc})") from None
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelFileError(f"{path}: weights do not fit a {metadata['model']!r} model with {kwargs} "
                             f"(another model or class count? {first})") from None
    model.eval()
    # Ask the model itself: model_kwargs may leave num_classes to the constructor's default.
    with torch.no_grad():
        outputs = model(torch.zeros(1, kwargs.get("in_channels", 1), int(metadata["input_length"]))).shape[-1]
    if len(metadata["labels"]) != outputs:
        raise ModelFileError(f"{path}: {len(metadata['labels'])} labels but the model has {outputs} outputs")
    return model, metadata
