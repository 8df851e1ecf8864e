"""Pretrained models shipped inside the package: ``pretrained:best`` and ``pretrained:edge``.

A name resolves to a file in ``ecgcnn/pretrained/``; ``pretrained:NAME`` is the PyTorch checkpoint and
``pretrained:NAME.onnx`` / ``pretrained:NAME.tflite`` pick another format. ``manifest.json`` records, per model, the
command and seed that trained it, the commit, and per file its sha256 and the test metrics measured when it was
packed; every file is checked against its sha256 before it is used. ``ecgcnn pretrained pack`` (re)builds the folder
from a recipe run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from .errors import EcgcnnError, ModelFileError

PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
MANIFEST = "manifest.json"
# format (as the pipeline names it) -> file name suffix in the package
SHIPPED_FORMATS = {"pytorch": ".pth", "onnx": ".onnx", "tflite-int8-full": "_int8_full.tflite"}
SPEC_SUFFIX = {"": "pytorch", ".pth": "pytorch", ".onnx": "onnx", ".tflite": "tflite-int8-full"}
MAX_TOTAL_BYTES = 10 * 1024 * 1024


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(directory: Path = PRETRAINED_DIR) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelFileError(f"{path}: no pretrained models are installed with this copy of ecgcnn")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc})") from None


def resolve_model_path(spec: str | os.PathLike, directory: Path = PRETRAINED_DIR) -> Path:
    """A model file path, or the verified file behind ``pretrained:NAME[.pth|.onnx|.tflite]``."""
    text = str(spec)
    if not text.startswith(PREFIX):
        return Path(spec)
    name, dot, suffix = text[len(PREFIX):].partition(".")
    suffix = dot + suffix
    manifest = read_manifest(directory)
    models = manifest.get("models", {})
    if name not in models or suffix not in SPEC_SUFFIX:
        choices = [f"{PREFIX}{n}{s}" for n in models for s in ("", ".onnx", ".tflite")]
        raise EcgcnnError(f"{text}: unknown pretrained model; expected one of {', '.join(choices)}")
    entry = models[name]["files"].get(SPEC_SUFFIX[suffix])
    if entry is None:
        raise EcgcnnError(f"{text}: this pretrained model is not shipped in that format")
    path = directory / entry["file"]
    if not path.is_file():
        raise ModelFileError(f"{path}: pretrained file missing from the installation")
    if _sha256(path) != entry["sha256"]:
        raise ModelFileError(f"{path}: sha256 does not match {directory / MANIFEST} (damaged installation)")
    return path


def pack_pretrained(run_root: str | os.PathLike, seed: int, names=("best", "edge"),
                    destination: Path = PRETRAINED_DIR, data_dir: str | None = None, log=print) -> dict:
    """Copy the recipe runs' files from ``run_root`` (``outputs/seed<N>``), score each on the test split, write
    the manifest. Only scoring reads test beats; nothing is chosen here."""
    from .data import load_dataset  # noqa: PLC0415
    from .evaluate import evaluate_predictor  # noqa: PLC0415
    from .fileio import atomic_path, write_json_atomic  # noqa: PLC0415
    from .recipes import RECIPES  # noqa: PLC0415
    from .report import git_commit  # noqa: PLC0415
    from .runtime import load_predictor  # noqa: PLC0415

    from .pipeline import run_paths  # noqa: PLC0415 - the pipeline's file layout, in one place

    run_root = Path(run_root)
    sources = {name: {fmt: run_paths(run_root, name)[fmt] for fmt in SHIPPED_FORMATS} for name in names}
    missing = [str(p) for files in sources.values() for p in files.values() if not p.is_file()]
    if missing:
        raise EcgcnnError(f"cannot pack pretrained models: missing {', '.join(missing)} "
                          f"(run 'ecgcnn pipeline --models {' '.join(names)} --seeds {seed}' first)")
    total = sum(p.stat().st_size for files in sources.values() for p in files.values())
    if total > MAX_TOTAL_BYTES:
        raise EcgcnnError(f"pretrained files would take {total / 2**20:.1f} MiB (limit {MAX_TOTAL_BYTES / 2**20:.0f})")
    dataset = load_dataset(data_dir)
    destination.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "ecgcnn-pretrained", "version": 1, "commit": git_commit(), "data_source": dataset.source,
                "models": {}}
    for name, files in sources.items():
        settings = {k: v for k, v in RECIPES[name].items() if k != "teacher"}
        entry = {"recipe": name, "seed": seed, "settings": settings,
                 "command": f"ecgcnn pipeline --models {' '.join(names)} --seeds {seed}", "files": {}}
        for fmt, source in files.items():
            target = destination / f"{name}{SHIPPED_FORMATS[fmt]}"
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
            metrics = evaluate_predictor(load_predictor(target), dataset.x_test, dataset.y_test)
            entry["files"][fmt] = {
                "file": target.name, "sha256": _sha256(target), "bytes": target.stat().st_size,
                "test": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                         "per_class_f1": [c["f1"] for c in metrics["per_class"]]},
            }
            log(f"pretrained:{name} {fmt}: {target.name} accuracy {metrics['accuracy']:.4f} "
                f"macro-F1 {metrics['macro_f1']:.4f}")
        manifest["models"][name] = entry
    write_json_atomic(destination / MANIFEST, manifest)
    return manifest
