"""``ecgcnn pretrained pack``: copy a recipe run's files into the package, score each once, write the manifest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..config import RECIPES
from ..data import load_dataset
from ..errors import EcgcnnError
from ..evaluate import evaluate_predictor
from ..evaluation.stress import run_stress, subset
from ..fileio import atomic_path, file_sha256, write_json_atomic
from ..layout import run_paths, shipped_file_name
from ..pretrained import MANIFEST, MAX_TOTAL_BYTES, PRETRAINED_DIR, SHIPPED_FORMATS, pretrained_spec
from ..provenance import git_commit
from ..runtimes import load_predictor

STRESS_BEATS = 1500  # a stratified subset of the test beats: the stress rows of a file take minutes, not hours


def pack_pretrained(run_root: str | os.PathLike, seed: int, names=("best", "edge"),
                    destination: Path = PRETRAINED_DIR, data_dir: str | None = None, noise_file=None,
                    log=print) -> dict:
    """Copy the recipe runs' files from ``run_root`` (``outputs/seed<N>``), score each on the test split and on
    the stress conditions (:mod:`ecgcnn.evaluation.stress`, a stratified subset of :data:`STRESS_BEATS` test beats;
    the NSTDB noise file must be present), write the manifest. Only scoring reads test beats; nothing is chosen
    here."""
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
        settings = dict(RECIPES[name])
        entry = {"recipe": name, "seed": seed, "settings": settings,
                 "command": f"ecgcnn pipeline --models {' '.join(names)} --seeds {seed}", "files": {}}
        for fmt, source in files.items():
            target = destination / shipped_file_name(name, fmt)
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
            metrics = evaluate_predictor(load_predictor(target), dataset.x_test, dataset.y_test)
            entry["files"][fmt] = {
                "file": target.name, "sha256": file_sha256(target), "bytes": target.stat().st_size,
                "test": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                         "per_class_f1": [c["f1"] for c in metrics["per_class"]],
                         "per_class_recall": [c["recall"] for c in metrics["per_class"]]},
            }
            chosen = subset(dataset.y_test, STRESS_BEATS, 0)
            stress = run_stress(load_predictor(target), dataset.x_test[chosen], dataset.y_test[chosen],
                                noise_file=noise_file)
            spec = pretrained_spec(name, fmt)
            entry["files"][fmt]["stress"] = {"command": f"ecgcnn stress {spec} --beats {STRESS_BEATS}",
                                             "beats": stress["beats"], **stress["summary"]}
            log(f"pretrained:{name} {fmt}: {target.name} accuracy {metrics['accuracy']:.4f} "
                f"macro-F1 {metrics['macro_f1']:.4f}; stress {stress['summary']}")
        manifest["models"][name] = entry
    write_json_atomic(destination / MANIFEST, manifest)
    return manifest
