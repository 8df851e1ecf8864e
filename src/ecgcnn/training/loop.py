"""Fit one model, top to bottom: the epoch loop and the choice of its epoch on held-out training beats.

:func:`fit_member` trains one member of a run (the model itself, or one fold's member of a K-fold ensemble) on
``train_idx`` and keeps the epoch with the best accuracy on ``val_idx`` (ties: lower validation loss). Both index
sets are training beats; the test split never reaches this module. Models with a closed-form fit (random-kernel
models: fixed kernels and a ridge head) are fitted once instead of by epochs.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..evaluation.metrics import classification_metrics
from ..models import build_model
from .augment import augment_batch
from .config import TrainConfig
from .distributed import Distributed, rank_batches


@dataclass
class MemberJob:
    """What one member's fit needs (beats and labels are the run's z-normalised training beats)."""

    cfg: TrainConfig
    member: int
    model_kwargs: dict
    beats: torch.Tensor
    labels: torch.Tensor
    train_idx: np.ndarray
    val_idx: np.ndarray
    device: torch.device
    tag: str = ""
    teacher: torch.nn.Module | None = None
    dist: Distributed = field(default_factory=Distributed)
    use_amp: bool = False
    resume_state: dict | None = None  # restores an interrupted member (see resume.py)
    refit_epochs: int | None = None  # refit on all beats: train exactly this many epochs, keep the last (no val_idx)
    schedule_epochs: int | None = None  # a refit's learning-rate schedule: the length of the run that chose its epochs
    on_epoch_end: Callable[[EpochState], None] | None = None  # writes the resumable checkpoint
    log: Callable[[str], None] = lambda message: None

    @property
    def seed(self) -> int:
        return self.cfg.seed + 1000 * self.member


@dataclass
class EpochState:
    """Everything that resuming after ``epoch`` needs."""

    member: int
    epoch: int
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    history: list
    best: dict


def batches_per_epoch(n: int, batch_size: int) -> int:
    """How many batches :func:`batches` yields for ``n`` beats (a last batch of one beat is left out)."""
    return n // batch_size + (n % batch_size >= 2)


def batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        batch = order[start:start + batch_size]
        if batch.numel() >= 2:  # BatchNorm cannot train on a single beat
            yield batch


@torch.no_grad()
def score(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> dict:
    model.eval()
    logits = torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])
    loss = F.cross_entropy(logits, y).item()
    metrics = classification_metrics(y.cpu().numpy(), logits.argmax(1).cpu().numpy(), logits.shape[1])
    return {"loss": loss, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "predictions": logits.argmax(1).cpu().numpy()}


def class_weights(y: torch.Tensor, num_classes: int, power: float) -> torch.Tensor | None:
    """Loss weights proportional to count ** -power, scaled so the average weight per training beat is 1."""
    if not power:
        return None
    counts = torch.bincount(y, minlength=num_classes).double().clamp(min=1)
    weights = counts.pow(-power)
    return (weights * counts.sum() / (weights * counts).sum()).float()


def loss_fn(logits, targets, weights, cfg: TrainConfig, teacher_logits=None):
    loss = F.cross_entropy(logits, targets, weight=weights, label_smoothing=cfg.label_smoothing)
    if teacher_logits is None:
        return loss
    t = cfg.distill_temperature
    soft = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher_logits / t, 1), log_target=True,
                    reduction="batchmean") * t * t
    return (1 - cfg.distill_weight) * loss + cfg.distill_weight * soft


def fit_member(job: MemberJob) -> dict:
    """Train one model on ``job.train_idx``; return its chosen weights, epoch, history and validation figures.

    A refit (``job.refit_epochs``; no validation beats) trains that many epochs of the same schedule and keeps the
    last: the epoch count was chosen before, on held-out beats."""
    cfg, device = job.cfg, job.device
    refit = job.refit_epochs is not None
    x_train, y_train = job.beats[job.train_idx], job.labels[job.train_idx]
    x_val, y_val = job.beats[job.val_idx], job.labels[job.val_idx]
    torch.manual_seed(job.seed)
    model = build_model(cfg.model, **job.model_kwargs).to(device)
    if hasattr(model, "fit_closed_form"):
        return _fit_closed_form(job, model, x_train, y_train, x_val, y_val)
    run_model = torch.compile(model) if cfg.compile else model
    if job.dist.enabled:
        run_model = DistributedDataParallel(run_model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epochs = job.schedule_epochs or cfg.epochs_for(batches_per_epoch(len(x_train), cfg.batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=job.use_amp)
    generator = torch.Generator().manual_seed(job.seed)
    weights = class_weights(y_train, job.model_kwargs["num_classes"], cfg.class_balance)
    augment = cfg.augment
    history: list[dict] = []
    best = {"epoch": 0, "key": (-1.0, -math.inf), "state": None}
    first_epoch = 1
    if job.resume_state is not None:
        first_epoch = restore(job.resume_state, model, optimizer, scheduler, scaler, generator, history, best)

    for epoch in range(first_epoch, (job.refit_epochs if refit else epochs) + 1):
        epoch_start = time.perf_counter()
        run_model.train()
        total_loss, correct, seen = 0.0, 0, 0
        if job.dist.enabled:
            epoch_batches = rank_batches(len(x_train), cfg.batch_size, job.seed, epoch, job.dist)
        else:
            epoch_batches = list(batches(len(x_train), cfg.batch_size, generator))
        bar = tqdm(epoch_batches, desc=f"{job.tag or cfg.model} epoch {epoch}/{epochs}", leave=False,
                   disable=None if (cfg.progress and job.dist.is_main) else True, file=sys.stderr)
        for batch in bar:
            batch = batch.to(device)
            xb, yb = augment_batch(x_train[batch], augment, generator), y_train[batch]
            with torch.autocast(device.type, dtype=torch.float16, enabled=job.use_amp):
                logits = run_model(xb)
                with torch.no_grad():
                    teacher_logits = job.teacher(xb) if job.teacher is not None else None
                loss = loss_fn(logits.float(), yb, weights, cfg,
                               teacher_logits.float() if teacher_logits is not None else None)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total_loss += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            seen += len(yb)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        total_loss, correct, seen = job.dist.sum(total_loss, correct, seen)
        job.dist.sync_buffers(model)
        # every rank scores the same weights on the full validation split; a refit has none and keeps its last epoch
        val = score(model, x_val, y_val) if not refit else {"loss": math.nan, "accuracy": math.nan,
                                                            "macro_f1": math.nan}
        record = {"epoch": epoch, "lr": lr, "train_loss": total_loss / seen, "train_accuracy": correct / seen,
                  "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                  "seconds": time.perf_counter() - epoch_start}
        history.append(record)
        key = (float(epoch), 0.0) if refit else (val["accuracy"], -val["loss"])
        improved = key > best["key"]
        if improved:
            best.update(epoch=epoch, key=key, state=copy.deepcopy(model.state_dict()))
        job.log(f"{job.tag + ' ' if job.tag else ''}epoch {epoch:3d}/{epochs}  train loss "
                f"{record['train_loss']:.4f} acc {record['train_accuracy']:.4f}  val loss {val['loss']:.4f} "
                f"acc {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f}  {record['seconds']:.1f}s"
                f"{'  *' if improved else ''}")
        if job.dist.is_main and job.on_epoch_end is not None:
            job.on_epoch_end(EpochState(job.member, epoch, model, optimizer, scheduler, scaler, generator, history,
                                        best))

    model.load_state_dict(best["state"])
    chosen = history[best["epoch"] - 1]
    return {"state": best["state"], "best_epoch": best["epoch"], "epochs": epochs, "history": history,
            "val": {"accuracy": chosen["val_accuracy"], "macro_f1": chosen["val_macro_f1"],
                    "loss": chosen["val_loss"]},
            "val_predictions": score(model, x_val, y_val)["predictions"] if not refit else np.zeros(0, np.int64)}


def _fit_closed_form(job: MemberJob, model, x_train, y_train, x_val, y_val) -> dict:
    """Random-kernel models: data-derived buffers and a ridge head fitted once on ``train_idx`` (regularisation
    chosen by cross-validation inside those beats); the validation beats only report."""
    info = model.fit_closed_form(x_train, y_train, class_balance=job.cfg.class_balance, seed=job.seed)
    shown = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}  # scalars only, not arrays
    if job.refit_epochs is not None:  # a refit on all beats: nothing held out to score
        return {"state": copy.deepcopy(model.state_dict()), "best_epoch": None, "history": [], "fit": shown,
                "val": {}, "val_predictions": np.zeros(0, np.int64)}
    val = score(model, x_val, y_val)
    job.log(f"{job.tag + ' ' if job.tag else ''}closed-form fit {shown}: val loss {val['loss']:.4f} "
            f"acc {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f}")
    return {"state": copy.deepcopy(model.state_dict()), "best_epoch": None, "history": [], "fit": shown,
            "val": {"accuracy": val["accuracy"], "macro_f1": val["macro_f1"], "loss": val["loss"]},
            "val_predictions": val["predictions"]}


def restore(state, model, optimizer, scheduler, scaler, generator, history, best) -> int:
    """Load an interrupted member's state; returns the next epoch."""
    model.load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    history.extend(state["history"])
    best.update(epoch=state["best_epoch"], key=tuple(state["best_key"]), state=state["best_state"])
    return int(state["epoch"]) + 1
