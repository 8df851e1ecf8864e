"""The full-INT8 export's held-out check (:class:`ecgcnn.export.tflite.HeldOut`): a twin, or own validation beats.

A closed-form head refit on every training beat (``best``: Hydra and its ridge) keeps wide margins on exactly those
beats, so a full-INT8 file gives ONNX Runtime's class on them more often than on beats it has not seen: in the
bake-off, files that kept 97-100 % of the classes on the training beats kept 64-96 % on the test split (Adiac lost
10.7 points of accuracy). The twin is the same recipe refit on 80 % of the training beats (stratified by class, or
whole groups with ``--group-by``; the run's own seed); the export converts it the way it converted the file it keeps
and gates it on the other 20 %, which it was not fitted on. The test split plays no part.

A network trained without refit (``edge``) kept its validation beats out of its weights (they chose its epoch): its
own file is gated on them, no twin needed. An ensemble (``--folds``) has seen every beat in some member: no check.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from ..core.errors import ModelFileError
from ..core.preprocess import normalize_beats
from ..data import dataset as data_mod
from ..export.onnx import export_onnx
from ..export.tflite import HeldOut
from ..models import build_model
from ..runtimes.checkpoint import read_checkpoint, save_checkpoint
from ..runtimes.metadata import recorded_data
from ..training import fit_on_subset
from ..training.config import TrainConfig
from ..training.run import model_kwargs_for, splits_for

# The share of the training beats the twin does not see.
TWIN_FRACTION = 0.2


def twin_config(metadata: dict) -> TrainConfig | None:
    """The training configuration a checkpoint records, where it is a closed-form model refit on every beat; else
    None (no twin)."""
    cfg = recorded_config(metadata)
    if cfg is None or not cfg.refit or not hasattr(build_model(metadata["model"], **metadata["model_kwargs"]),
                                                   "fit_closed_form"):
        return None
    return cfg


def recorded_config(metadata: dict) -> TrainConfig | None:
    """The training configuration a checkpoint of one model (not an ensemble) records, or None."""
    config = dict(metadata.get("config") or {})
    if not config or int(config.get("folds") or 1) > 1 or config.get("model") != metadata.get("model"):
        return None
    known = {f.name for f in fields(TrainConfig)} - {"data", "output_dir", "progress"}
    return TrainConfig(**{k: v for k, v in config.items() if k in known}, progress=False)


def twin_split(dataset: data_mod.Dataset, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(fitted, held out) training-beat indices and how they were chosen."""
    if dataset.groups_train is not None:
        fitted, held = data_mod.group_split(dataset.groups_train, TWIN_FRACTION, seed)
        how = f"whole {dataset.spec.group_by} groups"
    else:
        fitted, held = data_mod.stratified_split(dataset.index_train, TWIN_FRACTION, seed)
        how = "stratified by class"
    return fitted, held, how


@contextmanager
def held_out_check(checkpoint: str | Path, dataset: data_mod.Dataset, log=print) -> Iterator[HeldOut | None]:
    """The held-out check of ``checkpoint`` (a ``.pth`` file) on ``dataset``'s training beats: its twin as an ONNX file
    that lives while the context does, or (a network) its own validation beats; None where the model gets no check
    (the log says why)."""
    try:
        metadata = read_checkpoint(checkpoint)["metadata"]
    except ModelFileError:  # the export of the file itself says what is wrong with it
        yield None
        return
    cfg = recorded_config(metadata)
    if cfg is None:
        yield None
        return
    num_classes = int(metadata["model_kwargs"]["num_classes"])
    why = (f"the data has {dataset.num_classes} classes, the model {num_classes}" if num_classes != dataset.num_classes
           else "the recipe no longer builds this model's arguments"
           if model_kwargs_for(cfg, num_classes, dataset.length) != metadata["model_kwargs"]
           else "the training beats hold fewer than two groups"
           if dataset.groups_train is not None and len(set(dataset.groups_train.tolist())) < 2 else None)
    if twin_config(metadata) is None:
        recorded_beats = (metadata.get("dataset") or {}).get("train_beats")  # older files: ECG5000's, not recorded
        if not why and cfg.refit:
            why = "refit on every training beat after its epoch was chosen"
        elif not why and (dataset.describe()["spec"] != recorded_data(metadata)
                          or recorded_beats not in (None, len(dataset.index_train))):
            why = "its validation beats are known only on the data it was trained on"
        train_idx, val_idx = splits_for(cfg, dataset.index_train, dataset.groups_train)[0] if not why else ([], [])
        if why or len(val_idx) == 0:
            log(f"full INT8 held-out check: skipped ({why or 'no validation beats'})")
            yield None
            return
        yield HeldOut(onnx=None, fit_beats=dataset.x_train[train_idx], beats=dataset.x_train[val_idx],
                      how=f"its validation beats, {len(val_idx)} of the {len(dataset.index_train)} training beats, "
                          f"seed {cfg.seed}")
        return
    if why:
        log(f"full INT8 held-out check: skipped ({why})")
        yield None
        return
    fitted, held, how = twin_split(dataset, cfg.seed)
    if len(held) == 0:
        log("full INT8 held-out check: skipped (no training beat can be held out)")
        yield None
        return
    beats = torch.from_numpy(normalize_beats(dataset.x_train)).unsqueeze(1)
    labels = torch.from_numpy(dataset.index_train)
    twin = fit_on_subset(cfg, beats, labels, fitted, None, torch.device("cpu"), num_classes=num_classes)
    with tempfile.TemporaryDirectory(prefix="ecgcnn-twin-") as tmp:
        path = save_checkpoint(Path(tmp) / Path(checkpoint).name, twin, metadata)
        onnx = export_onnx(path, tmp, reference_beats=dataset.x_train[fitted], log=lambda message: None)
        yield HeldOut(onnx=Path(onnx), fit_beats=dataset.x_train[fitted], beats=dataset.x_train[held],
                      how=f"its recipe refit on {len(fitted)} of the {len(fitted) + len(held)} training beats, "
                          f"{how}, seed {cfg.seed}")
