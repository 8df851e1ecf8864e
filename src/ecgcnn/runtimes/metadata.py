"""The self-describing metadata every model file carries: built once, validated by one function.

The same JSON object travels in a checkpoint (``payload["metadata"]``), in ONNX ``metadata_props`` and in the
TFLite flatbuffer's ``metadata`` table, always under the key :data:`METADATA_KEY`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..core.errors import ModelFileError
from ..core.preprocess import PREPROCESSING
from ..core.provenance import library_versions
from ..data.ucr import CLASS_NAMES, INPUT_LENGTH, ORIGINAL_LABELS

METADATA_KEY = "ecgcnn"
# What every format must carry, with its type.
REQUIRED = {"model": str, "labels": list, "input_length": int}
# What a checkpoint must also carry to rebuild its model.
REQUIRED_CHECKPOINT = {**REQUIRED, "model_kwargs": dict, "preprocessing": dict}


def build_metadata(model: str, model_kwargs: dict, config: dict | None = None, best_epoch: int | None = None,
                   data: dict | None = None, **extra: Any) -> dict:
    """Metadata of a model (labels, class names, input length, preprocessing, provenance). ``data``: what
    :meth:`ecgcnn.data.dataset.Dataset.model_fields` says of the training data; without it, ECG5000's."""
    data = data if data is not None else {"labels": list(ORIGINAL_LABELS), "class_names": list(CLASS_NAMES),
                                          "input_length": INPUT_LENGTH, "data_source": ""}
    return {"model": model, "model_kwargs": model_kwargs, **data, "preprocessing": dict(PREPROCESSING),
            "best_epoch": best_epoch, "config": config, "versions": library_versions(), **extra}


def check_metadata(path: str | os.PathLike, metadata: object, required: dict = REQUIRED) -> dict:
    """Raise a one-line :class:`ModelFileError` naming ``path`` unless ``metadata`` has every required field."""
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: ecgcnn metadata is not a JSON object")
    for key, kind in required.items():
        if not isinstance(metadata.get(key), kind) or (kind is int and isinstance(metadata.get(key), bool)):
            raise ModelFileError(f"{path}: ecgcnn metadata field {key!r} is missing or not a {kind.__name__}")
    return metadata


def parse_metadata_json(path: str | os.PathLike, text: str | bytes | None) -> dict:
    """Metadata stored as JSON text (ONNX ``metadata_props``, TFLite ``metadata``), checked."""
    if not text:
        raise ModelFileError(f"{path}: model has no ecgcnn metadata (export it with 'ecgcnn export')")
    try:
        metadata = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: ecgcnn metadata is not valid JSON") from None
    return check_metadata(path, metadata)


def recorded_data(metadata: dict) -> dict:
    """The data a model was trained on, as a :class:`~ecgcnn.data.dataset.DataSpec` dict ({} = ECG5000, also for
    files older than this record)."""
    return dict((metadata.get("dataset") or {}).get("spec") or {})


def run_name(metadata: dict) -> str:
    """A run's name: its recipe (``best``, ``edge``) where it came from one, else the architecture."""
    name: str = (metadata.get("config") or {}).get("recipe") or metadata["model"]
    return name
