"""Pretrained models shipped inside the package: ``pretrained:best`` and ``pretrained:edge``. Resolution only.

A name resolves to a file in ``ecgcnn/pretrained/``; ``pretrained:NAME`` is the PyTorch checkpoint and
``pretrained:NAME.onnx`` / ``pretrained:NAME.tflite`` pick another format. ``manifest.json`` records, per model, the
command and seed that trained it, the commit, and per file its sha256 and the test metrics measured when it was
packed; every file is checked against its sha256 before it is used. ``ecgcnn pretrained pack``
(:mod:`ecgcnn.workflows.pack`) builds the folder from a recipe run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import EcgcnnError, ModelFileError
from ..core.fileio import file_sha256

PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"  # the data folder ecgcnn/pretrained/
MANIFEST = "manifest.json"
# The formats shipped per model (names from ecgcnn.core.formats), and the spec suffix that selects each.
SHIPPED_FORMATS = {"best": ("pytorch", "onnx", "tflite-int8-full"), "edge": ("pytorch", "onnx", "tflite-int8-full")}
# ".tflite" selects the model's one shipped TFLite file, whatever its quantisation
SPEC_SUFFIX = {"": "pytorch", ".pth": "pytorch", ".onnx": "onnx", ".tflite": "tflite"}
MAX_TOTAL_BYTES = 10 * 1024 * 1024


def read_manifest(directory: Path = PRETRAINED_DIR) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelFileError(f"{path}: no pretrained models are installed with this copy of ecgcnn")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc})") from None


def pretrained_spec(name: str, fmt: str) -> str:
    """The shortest spec that selects format ``fmt`` of the shipped model ``name`` (``pretrained:edge.tflite``)."""
    suffix = next(s for s in ("", ".onnx", ".tflite") if fmt.startswith(SPEC_SUFFIX[s]))
    return f"{PREFIX}{name}{suffix}"


def shipped_format(files: dict, suffix: str) -> str | None:
    """The format of a manifest entry's ``files`` that ``suffix`` (``""``, ``.pth``, ``.onnx``, ``.tflite``) selects."""
    wanted = SPEC_SUFFIX[suffix]
    return next((fmt for fmt in files if fmt == wanted or (wanted == "tflite" and fmt.startswith("tflite"))), None)


def is_pretrained_spec(spec: str | os.PathLike) -> bool:
    return str(spec).startswith(PREFIX)


def resolve_model_path(spec: str | os.PathLike, directory: Path = PRETRAINED_DIR) -> Path:
    """A model file path, or the verified file behind ``pretrained:NAME[.pth|.onnx|.tflite]``."""
    text = str(spec)
    if not is_pretrained_spec(text):
        return Path(spec)
    name, dot, suffix = text[len(PREFIX):].partition(".")
    suffix = dot + suffix
    manifest = read_manifest(directory)
    models = manifest.get("models", {})
    if name not in models or suffix not in SPEC_SUFFIX:
        choices = [f"{PREFIX}{n}{s}" for n in models for s in ("", ".onnx", ".tflite")]
        raise EcgcnnError(f"{text}: unknown pretrained model; expected one of {', '.join(choices)}")
    fmt = shipped_format(models[name]["files"], suffix)
    entry = models[name]["files"].get(fmt) if fmt else None
    if entry is None:
        raise EcgcnnError(f"{text}: this pretrained model is not shipped in that format")
    path = directory / entry["file"]
    if not path.is_file():
        raise ModelFileError(f"{path}: pretrained file missing from the installation")
    if file_sha256(path) != entry["sha256"]:
        raise ModelFileError(f"{path}: sha256 does not match {directory / MANIFEST} (damaged installation)")
    return path


def shipped_entry(path: str | os.PathLike, directory: Path = PRETRAINED_DIR) -> dict | None:
    """The manifest's entry for this very file (matched by sha256: figures measured on it when it was packed), or
    None for a file that is not a shipped one."""
    try:
        manifest = read_manifest(directory)
        digest = file_sha256(path)
    except (ModelFileError, OSError):
        return None
    for model in manifest.get("models", {}).values():
        for entry in model.get("files", {}).values():
            if entry.get("sha256") == digest:
                return dict(entry)
    return None


def measured_figures(path: str | os.PathLike, directory: Path = PRETRAINED_DIR) -> dict | None:
    """The stress figures the manifest records for this very file, or None."""
    entry = shipped_entry(path, directory)
    return dict(entry["stress"]) if entry and entry.get("stress") else None


def measured_fields(predictor) -> dict:
    """An annotation summary's fields about its model: the stress figures recorded for this very file (None where
    there are none) and the model's beat length (``ecgcnn stress`` measures models of 140-sample windows only)."""
    return {"model_measured": measured_figures(predictor.path) if predictor.path else None,
            "model_input_length": int(predictor.input_length)}


DEFAULT_MODEL = "pretrained:edge.tflite"  # predict's, annotate's and serve's default (why: default_model_help)


def default_model_help() -> str:
    """Why the default model is the default, with the figures the manifest records for it (for ``--help``)."""
    note = (f"default: {DEFAULT_MODEL}, the edge model's full-INT8 file: as robust as its PyTorch file on the "
            f"stress table, the fastest and smallest shipped model for whole recordings, and it needs no torch "
            f"(pretrained:best is more accurate but far slower)")
    try:
        stress = read_manifest()["models"]["edge"]["files"]["tflite-int8-full"].get("stress")
    except (ModelFileError, KeyError):
        return note
    if not stress:
        return note
    return (f"{note}; measured on {stress['beats']} ECG5000 test beats of one patient: "
            f"{100 * stress['official_accuracy']:.1f} %% on the dataset's windows, "
            f"{100 * stress['recut_accuracy']:.1f} %% re-cut from a recording")
