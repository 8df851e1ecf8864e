"""``ecgcnn pretrained pack``: copy a recipe run's files into the package, score each once, write the manifest."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..core.errors import EcgcnnError, optional_import
from ..core.fileio import atomic_path, file_sha256, write_json_atomic
from ..core.formats import runtime_for
from ..core.layout import run_paths, shipped_file_name
from ..core.novelty import fit_novelty
from ..core.preprocess import normalize_beats
from ..core.provenance import git_commit
from ..data.dataset import load_dataset
from ..data.ucr import INPUT_LENGTH
from ..evaluation.metrics import evaluate_predictor
from ..evaluation.noise import load_noise
from ..evaluation.recut import recording_reference
from ..evaluation.stress import run_stress, subset
from ..runtimes import load_predictor
from ..runtimes.checkpoint import read_checkpoint
from ..runtimes.flatbuffer import embed_metadata
from ..runtimes.metadata import METADATA_KEY
from ..runtimes.pretrained import (
    MANIFEST,
    MAX_TOTAL_BYTES,
    PRETRAINED_DIR,
    SHIPPED_FORMATS,
    pretrained_spec,
    read_manifest,
)
from ..training.config import RECIPES

STRESS_BEATS = 1500  # a stratified subset of the test beats: the stress rows of a file take minutes, not hours


def describe_truly(path: Path, fmt: str, data_source: str, novelty: dict | None = None) -> None:
    """Rewrite a file's own metadata so that it states only what is true of that file: the data source as the
    dataset describes it (no machine's path), no test figures in an exported file (they were measured on the
    PyTorch model it came from; the manifest holds each file's own) and, when given, the novelty reference of the
    beats its model was fitted on (:func:`novelty_of`). Weights and graph are untouched."""
    metadata = dict(load_predictor(path).metadata)
    metadata["data_source"] = data_source
    if novelty is not None:
        metadata["novelty"] = novelty
    runtime = runtime_for(path)
    if runtime != "torch":
        metadata.pop("metrics", None)
    if runtime == "torch":
        payload = read_checkpoint(path)
        payload["metadata"] = metadata
        torch.save(payload, path)
    elif runtime == "onnx":
        onnx = optional_import("onnx", "onnx")
        proto = onnx.load(str(path))
        props = {p.key: p.value for p in proto.metadata_props}
        props[METADATA_KEY] = json.dumps(metadata)
        onnx.helper.set_model_props(proto, props)
        onnx.save(proto, str(path))
    else:
        path.write_bytes(embed_metadata(path.read_bytes(), metadata))


def novelty_of(checkpoint: Path, recipe: str, dataset, seed: int = 0) -> dict | None:
    """The checkpoint's novelty reference, completed as training completes it now
    (:func:`~ecgcnn.evaluation.recut.recording_reference`, the run's ``seed``): a model trained before the reference
    existed gets one fitted on the recipe's training beats when those are the dataset's beats as they are (no re-cut
    copies, which cannot be rebuilt exactly here; such a model keeps what it has)."""
    reference = load_predictor(checkpoint).metadata.get("novelty")
    if reference and "median_residual" in reference:
        return reference
    if reference is None:
        if RECIPES.get(recipe, {}).get("recut"):
            return None
        reference = fit_novelty(normalize_beats(dataset.x_train))
    return recording_reference(reference, dataset.x_train, seed, recut=dataset.length == INPUT_LENGTH)


def repack_shipped(destination: Path = PRETRAINED_DIR, data_dir: str | None = None, noise_file=None,
                   log=print) -> dict:
    """Measure the shipped files again at this commit and rewrite their metadata to what is true of them (same
    weights): the manifest's ``commit`` becomes this one, and ``trained_at`` keeps the commit the previous manifest
    recorded for the training."""
    previous = read_manifest(destination)
    if not previous.get("models"):
        raise EcgcnnError(f"{destination}: no shipped models to repack")
    seeds = {entry["seed"] for entry in previous["models"].values()}
    with tempfile.TemporaryDirectory(prefix="ecgcnn-repack-") as root:
        for name, entry in previous["models"].items():
            for fmt, info in entry["files"].items():
                target = run_paths(root, name)[fmt]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(destination / info["file"], target)
        return pack_pretrained(root, seeds.pop(), tuple(previous["models"]), destination, data_dir, noise_file, log,
                               trained_at=previous.get("trained_at") or previous.get("commit"))


def pack_pretrained(run_root: str | os.PathLike, seed: int, names=("best", "edge"),
                    destination: Path = PRETRAINED_DIR, data_dir: str | None = None, noise_file=None,
                    log=print, trained_at: str | None = None) -> dict:
    """Copy the recipe runs' files from ``run_root`` (``outputs/seed<N>``), score each on the test split and on
    the stress conditions (:mod:`ecgcnn.evaluation.stress`, a stratified subset of :data:`STRESS_BEATS` test beats;
    the NSTDB noise file must be present), write the manifest. Only scoring reads test beats; nothing is chosen
    here."""
    run_root = Path(run_root)
    sources = {name: {fmt: run_paths(run_root, name)[fmt] for fmt in SHIPPED_FORMATS[name]} for name in names}
    missing = [str(p) for files in sources.values() for p in files.values() if not p.is_file()]
    if missing:
        raise EcgcnnError(f"cannot pack pretrained models: missing {', '.join(missing)} "
                          f"(run 'ecgcnn pipeline --models {' '.join(names)} --seeds {seed}' first)")
    total = sum(p.stat().st_size for files in sources.values() for p in files.values())
    if total > MAX_TOTAL_BYTES:
        raise EcgcnnError(f"pretrained files would take {total / 2**20:.1f} MiB (limit {MAX_TOTAL_BYTES / 2**20:.0f})")
    load_noise(noise_file)  # the stress rows need it: refused before anything is copied
    dataset = load_dataset(data_dir)
    destination.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "ecgcnn-pretrained", "version": 1, "commit": git_commit(),
                **({"trained_at": trained_at} if trained_at else {}), "data_source": dataset.source, "models": {}}
    chosen = subset(dataset.index_test, STRESS_BEATS, 0)
    # Everything is measured in a staging folder; the package's files change only once all of it succeeded.
    with tempfile.TemporaryDirectory(prefix=".pack.", dir=destination.parent) as staging:
        for name, files in sources.items():
            novelty = novelty_of(files["pytorch"], name, dataset, seed)
            entry = {"recipe": name, "seed": seed, "settings": dict(RECIPES[name]),
                     "command": f"ecgcnn pipeline --models {' '.join(names)} --seeds {seed}", "files": {}}
            for fmt, source in files.items():
                staged = Path(staging) / shipped_file_name(name, fmt)
                shutil.copyfile(source, staged)
                describe_truly(staged, fmt, dataset.source, novelty)
                predictor = load_predictor(staged)
                metrics = evaluate_predictor(predictor, dataset.x_test, dataset.index_test)
                stress = run_stress(predictor, dataset.x_test[chosen], dataset.index_test[chosen],
                                    noise_file=noise_file)
                entry["files"][fmt] = {
                    "file": staged.name, "sha256": file_sha256(staged), "bytes": staged.stat().st_size,
                    "test": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                             "per_class_f1": [c["f1"] for c in metrics["per_class"]],
                             "per_class_recall": [c["recall"] for c in metrics["per_class"]]},
                    "stress": {"command": f"ecgcnn stress {pretrained_spec(name, fmt)} --beats {STRESS_BEATS}",
                               "beats": stress["beats"], **stress["summary"]},
                }
                log(f"pretrained:{name} {fmt}: {staged.name} accuracy {metrics['accuracy']:.4f} "
                    f"macro-F1 {metrics['macro_f1']:.4f}; stress {stress['summary']}")
            manifest["models"][name] = entry
        for staged in sorted(Path(staging).iterdir()):
            with atomic_path(destination / staged.name) as tmp:
                shutil.copyfile(staged, tmp)
    write_json_atomic(destination / MANIFEST, manifest)
    return manifest
