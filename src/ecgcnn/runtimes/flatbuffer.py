"""The TFLite flatbuffer, read and written in one place (the runtime, the exporter and the microcontroller bundle):
its file identifier, the generated schema module (shipped by ``ai_edge_litert``; TensorFlow is not imported), and
the ``ecgcnn`` metadata entry of its ``metadata`` table (a sidecar ``<file>.tflite.json`` is accepted on reading, for
models produced elsewhere)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..core.errors import MissingExtraError, ModelFileError, optional_import
from .metadata import METADATA_KEY, check_metadata

FILE_IDENTIFIER = b"TFL3"


def schema():
    """The generated TFLite flatbuffers schema module (``Model``, ``ModelT``, ``BufferT``, ``MetadataT``)."""
    try:
        return optional_import("ai_edge_litert.schema_py_generated", "litert")
    except MissingExtraError:
        return optional_import("tensorflow.lite.python.schema_py_generated", "litert", package="ai-edge-litert")


def has_tflite_identifier(data: bytes) -> bool:
    """True when ``data`` starts like a TFLite flatbuffer (file identifier ``TFL3`` at bytes 4..8)."""
    return len(data) >= 8 and data[4:8] == FILE_IDENTIFIER


def read_embedded_metadata(data: bytes, name: str = METADATA_KEY) -> dict | None:
    """The JSON stored under ``name`` in a TFLite model's ``metadata`` table, or ``None`` if there is none.

    Only call this on a flatbuffer the interpreter has already accepted (it verifies the buffer); raises
    ``ValueError`` if the entry exists but is not a JSON object.
    """
    schema_module = schema()
    model = schema_module.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() is None or entry.Name().decode("utf-8", "replace") != name:
            continue
        buffer = model.Buffers(entry.Buffer())
        if buffer.DataLength() > 0:
            raw = buffer.DataAsNumpy().tobytes()
        elif buffer.Offset() > 1:  # large models store buffers after the flatbuffer
            raw = bytes(data[buffer.Offset():buffer.Offset() + buffer.Size()])
        else:
            raw = b""
        value = json.loads(raw.decode("utf-8"))
        if not isinstance(value, dict):
            raise ValueError("metadata is not a JSON object")
        return value
    return None


def sidecar_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def read_tflite_metadata(path: str | os.PathLike, data: bytes | None = None) -> dict:
    """The ecgcnn metadata of a TFLite file: embedded entry first, then the sidecar ``<file>.json``."""
    path = Path(path)
    if data is None:
        data = path.read_bytes()
    try:
        metadata = read_embedded_metadata(data)
    except MissingExtraError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged table raises struct/index/unicode/JSON errors
        raise ModelFileError(f"{path}: the embedded ecgcnn metadata is unreadable ({type(exc).__name__})") from None
    if metadata is None:
        sidecar = sidecar_path(path)
        if not sidecar.is_file():
            raise ModelFileError(f"{path}: TFLite model has no ecgcnn metadata (embedded or {sidecar.name}); "
                                 f"export it with 'ecgcnn export tflite'")
        try:
            metadata = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise ModelFileError(f"{sidecar}: not a readable JSON metadata file") from None
        if not isinstance(metadata, dict):
            raise ModelFileError(f"{sidecar}: metadata is not a JSON object")
    return check_metadata(path, metadata)


def embed_metadata(model_bytes: bytes, metadata: dict, name: str = METADATA_KEY) -> bytes:
    """Return ``model_bytes`` with ``metadata`` (JSON) stored in the ``metadata`` table under ``name``.

    Uses the flatbuffers object API, the same round trip the TFLite converter itself performs to add its
    ``CONVERSION_METADATA`` entry. An existing entry with the same name is replaced.
    """
    flatbuffers = optional_import("flatbuffers", "litert", package="ai-edge-litert")
    schema_module = schema()
    model = schema_module.ModelT.InitFromObj(schema_module.Model.GetRootAs(model_bytes, 0))
    payload = schema_module.BufferT()
    payload.data = np.frombuffer(json.dumps(metadata, sort_keys=False).encode("utf-8"), dtype=np.uint8)
    model.buffers = list(model.buffers or [])
    model.metadata = list(model.metadata or [])
    for entry in model.metadata:
        if entry.name is not None and entry.name.decode("utf-8", "replace") == name:
            model.buffers[entry.buffer] = payload
            break
    else:
        model.buffers.append(payload)
        entry = schema_module.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())
