"""The resumable ``<run>_last.pth``: written after every epoch, read by ``--resume`` only with the same settings."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import EcgcnnError
from ..runtimes.checkpoint import read_checkpoint, save_checkpoint
from ..runtimes.metadata import build_metadata
from .config import RUN_DEFINING_FIELDS, TrainConfig
from .loop import EpochState


def save_last(path: Path, cfg: TrainConfig, model_kwargs: dict, finished: list[dict], state: EpochState,
              data: dict | None = None) -> None:
    metadata = build_metadata(cfg.model, model_kwargs, cfg.as_dict(), state.best["epoch"], data)
    training_state = {
        "member": state.member,
        "epoch": state.epoch,
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict(),
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": state.history,
        "best_epoch": state.best["epoch"],
        "best_key": list(state.best["key"]),
        "best_state": state.best["state"],
        "finished": [{k: (torch.from_numpy(v) if k == "val_predictions" else v) for k, v in r.items()}
                     for r in finished],
    }
    save_checkpoint(path, state.model, metadata, training_state=training_state)


def read_resume_state(path: Path, cfg: TrainConfig, log=print) -> dict:
    if not path.is_file():
        raise EcgcnnError(f"{path}: nothing to resume (no last checkpoint); run without --resume")
    payload = read_checkpoint(path)
    state = payload.get("training_state")
    if not isinstance(state, dict):
        raise EcgcnnError(f"{path}: not a resumable checkpoint (no training state)")
    saved = payload["metadata"].get("config") or {}
    defaults, current = TrainConfig().as_dict(), cfg.as_dict()
    changed = [k for k in RUN_DEFINING_FIELDS if saved.get(k, defaults[k]) != current[k]]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k, defaults[k])!r} -> {current[k]!r}" for k in changed)
        raise EcgcnnError(f"{path}: cannot resume with different settings ({detail})")
    state["model_state"] = payload["state_dict"]
    state["finished"] = [{k: (v.numpy() if k == "val_predictions" else v) for k, v in r.items()}
                         for r in state.get("finished", [])]
    log(f"resuming after epoch {state['epoch']}" + (f" of fold {state['member'] + 1}" if cfg.folds > 1 else "")
        + f" from {path}")
    return state
