"""Training, top to bottom.

Protocol: the validation split is carved from the 500 training beats (stratified, seeded); the chosen epoch is the
one with the best validation accuracy (ties: lower validation loss). The test split is not even loaded until the
final model is fixed; it is then read once to score that model.
"""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import data as data_mod
from .augment import Augment, augment_batch
from .checkpoint import (TorchPredictor, library_versions, model_from_checkpoint, read_checkpoint, resolve_device,
                         save_checkpoint)
from .errors import EcgcnnError
from .evaluate import classification_metrics, evaluate_predictor
from .fileio import write_json_atomic
from .models import build_model, list_models
from .runtime import PREPROCESSING, normalize_beats


@dataclass
class TrainConfig:
    """Everything that defines a training run (plain data; stored in the checkpoint and metrics.json)."""

    model: str = "vgg"
    data_dir: str | None = None
    output_dir: str = "outputs"
    epochs: int = 50
    lr: float = 1e-3
    batch_size: int = 64
    dropout: float = 0.3
    weight_decay: float = 0.0
    amp: bool | None = None  # None: on where it is supported (CUDA)
    compile: bool = False
    seed: int = 42
    val_fraction: float = 0.2
    device: str = "auto"
    resume: bool = False
    progress: bool = True
    # Recipe techniques (all off by default = the seed's training). See recipes.py for the named recipes.
    recipe: str | None = None      # name of the recipe these settings came from (run and file names)
    jitter: float = 0.0            # augmentation, see augment.py
    scale: float = 0.0
    shift: int = 0
    window: float = 0.0
    class_balance: float = 0.0     # loss weight of class c proportional to count_c ** -class_balance
    label_smoothing: float = 0.0
    folds: int = 1                 # >1: k-fold ensemble over the training beats, one member per held-out fold
    teacher: str | None = None     # checkpoint to distil from (soft targets on the augmented training batches)
    distill_weight: float = 0.5    # share of the distillation term in the loss
    distill_temperature: float = 2.0

    @property
    def run_name(self) -> str:
        return self.recipe or self.model

    @property
    def augment(self) -> Augment:
        return Augment(jitter=self.jitter, scale=self.scale, shift=self.shift, window=self.window)

    def validate(self) -> None:
        checks = [
            (self.model in list_models(), f"--model {self.model!r}: expected one of {', '.join(list_models())}"),
            (isinstance(self.epochs, int) and self.epochs >= 1, f"--epochs {self.epochs}: expected an integer >= 1"),
            (math.isfinite(self.lr) and self.lr > 0, f"--lr {self.lr}: expected a positive number"),
            (self.batch_size >= 2, f"--batch-size {self.batch_size}: expected an integer >= 2 (BatchNorm needs 2)"),
            (0.0 <= self.dropout < 1.0, f"--dropout {self.dropout}: expected a value in [0, 1)"),
            (math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             f"--weight-decay {self.weight_decay}: expected a number >= 0"),
            (0.0 < self.val_fraction < 1.0, f"--val-fraction {self.val_fraction}: expected a value in (0, 1)"),
            (self.seed >= 0, f"--seed {self.seed}: expected an integer >= 0"),
            (self.model != "ensemble", "--model ensemble: ensembles are built by --folds K over a base architecture"),
            (isinstance(self.folds, int) and 1 <= self.folds <= 10,
             f"--folds {self.folds}: expected an integer from 1 to 10"),
            (min(self.jitter, self.scale, self.shift, self.window, self.class_balance, self.label_smoothing) >= 0
             and self.window < 1 and self.label_smoothing < 1,
             "augmentation, --class-balance and --label-smoothing: expected numbers >= 0 (window and smoothing < 1)"),
            (0.0 <= self.distill_weight <= 1.0 and self.distill_temperature > 0,
             "--distill-weight in [0, 1] and --distill-temperature > 0 expected"),
        ]
        for ok, message in checks:
            if not ok:
                raise EcgcnnError(message)

    # Fields whose change makes a resumed run a different run.
    RESUME_KEYS = ("model", "epochs", "lr", "batch_size", "dropout", "weight_decay", "seed", "val_fraction",
                   "jitter", "scale", "shift", "window", "class_balance", "label_smoothing", "folds", "teacher",
                   "distill_weight", "distill_temperature")


# ------------------------------------------------------------------------------------------------------- helpers

def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


class RunLock:
    """An exclusive lock on an output directory. A lock left by a dead process is taken over."""

    def __init__(self, directory: Path):
        self.path = directory / ".ecgcnn.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None:
                    raise EcgcnnError(f"{self.path.parent}: another training (pid {holder}) is writing here; "
                                      f"wait for it or choose another --output-dir") from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
            return self
        raise EcgcnnError(f"{self.path}: could not take the output directory lock")

    def _holder(self) -> int | None:
        try:
            info = json.loads(self.path.read_text())
            pid, host = int(info["pid"]), info.get("host")
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable or half-written: treat as stale
        if host != socket.gethostname():
            return pid  # cannot check a process on another host; be safe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def _log(message: str) -> None:
    print(message, flush=True)


def _rank_batches(n: int, batch_size: int, seed: int, epoch: int, dist) -> list[torch.Tensor]:
    """This rank's share of the epoch: a DistributedSampler shard, batched (global batch = batch_size)."""
    from torch.utils.data import DistributedSampler  # noqa: PLC0415

    sampler = DistributedSampler(range(n), num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    indices = torch.tensor(list(sampler))
    per_rank = max(batch_size // dist.world, 2)
    return [b for b in indices.split(per_rank) if b.numel() >= 2]


def _batches(n: int, batch_size: int, generator: torch.Generator):
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        batch = order[start:start + batch_size]
        if batch.numel() >= 2:  # BatchNorm cannot train on a single beat
            yield batch


@torch.no_grad()
def _score(model, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> dict:
    model.eval()
    logits = torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])
    loss = F.cross_entropy(logits, y).item()
    y_pred = logits.argmax(1).cpu().numpy()
    metrics = classification_metrics(y.cpu().numpy(), y_pred)
    return {"loss": loss, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


# ---------------------------------------------------------------------------------------------------------- train

class Distributed:
    """DistributedDataParallel context from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK).

    gloo on CPU, nccl on CUDA. Each rank trains on its shard of every epoch's shuffled order (DistributedSampler);
    gradients are averaged by DDP, metrics are summed across ranks, and only rank 0 writes files.
    """

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def setup(self, device: torch.device) -> torch.device:
        if not self.enabled:
            return device
        import torch.distributed as dist  # noqa: PLC0415

        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return device

    def sum(self, *values: float) -> list[float]:
        if not self.enabled:
            return list(values)
        import torch.distributed as dist  # noqa: PLC0415

        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """BatchNorm statistics are per rank; make every rank hold rank 0's."""
        if self.enabled:
            import torch.distributed as dist  # noqa: PLC0415

            for buffer in model.buffers():
                dist.broadcast(buffer, 0)

    def teardown(self) -> None:
        if self.enabled:
            import torch.distributed as dist  # noqa: PLC0415

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()


def weights_digest(model: torch.nn.Module) -> str:
    import hashlib  # noqa: PLC0415

    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train(cfg: TrainConfig) -> dict:
    """Train one model and write its artifacts into ``<output_dir>/<model>/``. Returns the metrics dict."""
    cfg.validate()
    out_dir = Path(cfg.output_dir) / cfg.run_name
    dist = Distributed()
    if not dist.is_main:  # rank 0 holds the directory lock and writes every file
        return _train_locked(cfg, out_dir, dist)
    with RunLock(out_dir):
        return _train_locked(cfg, out_dir, dist)


def _train_locked(cfg: TrainConfig, out_dir: Path, dist: Distributed) -> dict:
    started = time.perf_counter()
    device = dist.setup(resolve_device(cfg.device))
    if dist.enabled and cfg.resume:
        raise EcgcnnError("--resume is not supported with distributed training yet")
    try:
        return _run(cfg, out_dir, dist, device, started)
    finally:
        dist.teardown()


def _run(cfg: TrainConfig, out_dir: Path, dist: Distributed, device: torch.device, started: float) -> dict:
    log = _log if dist.is_main else (lambda message: None)
    use_amp = device.type == "cuda" if cfg.amp is None else cfg.amp
    if use_amp and device.type != "cuda":
        log(f"note: --amp is CUDA-only; training in float32 on {device.type}")
        use_amp = False
    seed_everything(cfg.seed)

    # 1. Data: training beats only. The test split is loaded after the model is final.
    dataset = data_mod.load_dataset(cfg.data_dir, load_test=False)
    log(f"data: {dataset.source}")
    if cfg.folds > 1:  # every member holds out one fold for its own epoch choice
        splits = data_mod.stratified_folds(dataset.y_train, cfg.folds, cfg.seed)
    else:
        splits = [data_mod.stratified_split(dataset.y_train, cfg.val_fraction, cfg.seed)]
    beats = torch.from_numpy(normalize_beats(dataset.x_train)).unsqueeze(1).to(device)
    labels = torch.from_numpy(dataset.y_train).to(device)
    teacher = _load_teacher(cfg, device) if cfg.teacher else None
    log(f"split: {len(splits[0][0])} train / {len(splits[0][1])} validation beats (seed {cfg.seed})"
        + (f" x {cfg.folds} folds" if cfg.folds > 1 else "") + f"; device {device}"
        + (f"; {dist.world} ranks" if dist.enabled else "") + (f"; teacher {cfg.teacher}" if teacher else ""))
    model_kwargs = {"num_classes": dataset.num_classes, "in_channels": 1, "dropout": cfg.dropout}

    # 2. One member per split (a single model when folds == 1), each resumable from <name>_last.pth.
    last_path = out_dir / f"{cfg.run_name}_last.pth"
    resume_state = _read_resume_state(last_path, cfg) if cfg.resume else None
    finished: list[dict] = list(resume_state["finished"]) if resume_state else []
    for member, (train_idx, val_idx) in enumerate(splits):
        if member < len(finished):
            continue
        tag = f"{cfg.run_name} fold {member + 1}/{cfg.folds}" if cfg.folds > 1 else ""
        state = resume_state if resume_state and resume_state["member"] == member else None
        result = _fit_member(cfg, member, tag, model_kwargs, beats, labels, train_idx, val_idx, teacher, device,
                             dist, use_amp, state, finished, last_path, log)
        finished.append(result)

    # 3. The final model: each member's best epoch on its validation beats; an ensemble averages the members.
    model, final_name, final_kwargs = assemble(cfg, model_kwargs, finished, device)
    if dist.enabled:
        print(f"rank {dist.rank}/{dist.world}: final weights sha256 {weights_digest(model)}", flush=True)
        if not dist.is_main:
            return {"best_epoch": finished[0]["best_epoch"], "rank": dist.rank}
    val_metrics = _validation_summary(finished, dataset.y_train, [val for _, val in splits])

    # 4. Only now is the test split read, once, to score the final model.
    full = data_mod.load_dataset(cfg.data_dir, load_test=True)
    best_epoch = finished[0]["best_epoch"] if cfg.folds == 1 else None
    metadata = _metadata(cfg, final_name, final_kwargs, best_epoch, dataset.source)
    predictor = TorchPredictor(model, metadata, device=str(device))
    test = evaluate_predictor(predictor, full.x_test, full.y_test)
    report = test.pop("report")
    test.pop("predictions")
    metadata["metrics"] = {"val": val_metrics, "test": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}}
    best_path = save_checkpoint(out_dir / f"{cfg.run_name}_best.pth", model, metadata)

    metrics = {
        "model": final_name,
        "recipe": cfg.recipe,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "best_epoch": best_epoch,
        "split": {"train": int(len(splits[0][0])), "val": int(len(splits[0][1])), "folds": cfg.folds,
                  "test": int(len(full.y_test))},
        "val": val_metrics,
        "test": test,
        "checkpoint": best_path.name,
        "data_source": dataset.source,
        "device": str(device),
        "amp": use_amp,
        "world_size": dist.world,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "config": _config_dict(cfg),
        "versions": library_versions(),
        "history": finished[0]["history"] if cfg.folds == 1 else None,
        "members": [{"fold": i + 1, "best_epoch": r["best_epoch"], "val": r["val"], "history": r["history"]}
                    for i, r in enumerate(finished)] if cfg.folds > 1 else None,
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    from .plots import plot_confusion_matrix, plot_training_curves  # noqa: PLC0415 - matplotlib is slow to import

    chosen = "epochs chosen per fold" if cfg.folds > 1 else f"epoch {best_epoch} chosen on validation"
    plot_training_curves(finished[0]["history"], out_dir / f"{cfg.run_name}_training_curves.png",
                         f"{cfg.run_name}: training curves (seed {cfg.seed}"
                         + (", fold 1)" if cfg.folds > 1 else ")"), finished[0]["best_epoch"])
    plot_confusion_matrix(test["confusion_matrix"], out_dir / f"{cfg.run_name}_confusion_matrix.png",
                          f"{cfg.run_name}: test confusion matrix (accuracy {test['accuracy']:.4f}, {chosen})")
    log(f"validation accuracy {val_metrics['accuracy']:.4f} macro-F1 {val_metrics['macro_f1']:.4f}"
        + (" (out-of-fold)" if cfg.folds > 1 else f" (best epoch {best_epoch})"))
    log(report)
    log(f"test accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}  -> {best_path}")
    return metrics


def assemble(cfg: TrainConfig, model_kwargs: dict, finished: list[dict], device) -> tuple[torch.nn.Module, str, dict]:
    """The final eval-mode model from the members' chosen weights: the model itself, or their ensemble."""
    if cfg.folds > 1:
        name, kwargs = "ensemble", {**model_kwargs, "members": [cfg.model] * cfg.folds}
    else:
        name, kwargs = cfg.model, model_kwargs
    model = build_model(name, **kwargs).to(device)
    for target, result in zip(model.members if cfg.folds > 1 else [model], finished):
        target.load_state_dict(result["state"])
    return model.eval(), name, kwargs


def fit_on_subset(cfg: TrainConfig, beats: torch.Tensor, labels: torch.Tensor, subset: np.ndarray,
                  teacher: torch.nn.Module | None, device, log=lambda message: None) -> torch.nn.Module:
    """Train ``cfg`` (members, epoch choice and all) using only the beats in ``subset``; return the final model.

    The same procedure as ``train`` without files, resume or DDP: the inner loop of nested cross-validation."""
    y = labels[subset].cpu().numpy()
    if cfg.folds > 1:
        inner = data_mod.stratified_folds(y, cfg.folds, cfg.seed)
    else:
        inner = [data_mod.stratified_split(y, cfg.val_fraction, cfg.seed)]
    model_kwargs = {"num_classes": int(labels.max()) + 1, "in_channels": 1, "dropout": cfg.dropout}
    finished: list[dict] = []
    for member, (train_idx, val_idx) in enumerate(inner):
        finished.append(_fit_member(cfg, member, f"{cfg.run_name} member {member + 1}", model_kwargs, beats, labels,
                                    subset[train_idx], subset[val_idx], teacher, device, Distributed(), False, None,
                                    finished, None, log))
    return assemble(cfg, model_kwargs, finished, device)[0]


def _validation_summary(finished: list[dict], y: np.ndarray, val_sets: list[np.ndarray]) -> dict:
    """Validation metrics of the chosen weights. For an ensemble: every member scored on its own held-out fold
    (out-of-fold predictions covering all training beats; each fold also chose its member's epoch)."""
    if len(finished) == 1:
        return dict(finished[0]["val"])
    y_true = np.concatenate([y[idx] for idx in val_sets])
    y_pred = np.concatenate([r["val_predictions"] for r in finished])
    metrics = classification_metrics(y_true, y_pred)
    losses = [r["val"]["loss"] * len(idx) for r, idx in zip(finished, val_sets)]
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "loss": sum(losses) / len(y_true)}


def _class_weights(y: torch.Tensor, num_classes: int, power: float) -> torch.Tensor | None:
    """Loss weights proportional to count ** -power, scaled so the average weight per training beat is 1."""
    if not power:
        return None
    counts = torch.bincount(y, minlength=num_classes).double().clamp(min=1)
    weights = counts.pow(-power)
    return (weights * counts.sum() / (weights * counts).sum()).float()


def _load_teacher(cfg: TrainConfig, device: torch.device) -> torch.nn.Module:
    from .models import fold_for_export  # noqa: PLC0415
    from .pretrained import resolve_model_path  # noqa: PLC0415

    path = resolve_model_path(cfg.teacher)
    if path.suffix.lower() not in (".pth", ".pt"):
        raise EcgcnnError(f"--teacher {cfg.teacher}: expected a PyTorch checkpoint (.pth)")
    model, metadata = model_from_checkpoint(path)
    if metadata["labels"] != list(data_mod.ORIGINAL_LABELS):
        raise EcgcnnError(f"{path}: the teacher predicts labels {metadata['labels']}, not ECG5000's")
    teacher = fold_for_export(model).to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def _loss(logits, targets, weights, cfg: TrainConfig, teacher_logits=None):
    loss = F.cross_entropy(logits, targets, weight=weights, label_smoothing=cfg.label_smoothing)
    if teacher_logits is None:
        return loss
    t = cfg.distill_temperature
    soft = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher_logits / t, 1), log_target=True,
                    reduction="batchmean") * t * t
    return (1 - cfg.distill_weight) * loss + cfg.distill_weight * soft


def _fit_member(cfg, member, tag, model_kwargs, beats, labels, train_idx, val_idx, teacher, device, dist, use_amp,
                resume_state, finished, last_path, log) -> dict:
    """Train one model on ``train_idx``; return its best epoch (validation accuracy, ties: lower loss)."""
    x_train, y_train = beats[train_idx], labels[train_idx]
    x_val, y_val = beats[val_idx], labels[val_idx]
    torch.manual_seed(cfg.seed + 1000 * member)
    model = build_model(cfg.model, **model_kwargs).to(device)
    run_model = torch.compile(model) if cfg.compile else model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415

        run_model = DistributedDataParallel(run_model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    generator = torch.Generator().manual_seed(cfg.seed + 1000 * member)
    weights = _class_weights(y_train, model_kwargs["num_classes"], cfg.class_balance)
    augment = cfg.augment
    history: list[dict] = []
    best = {"epoch": 0, "key": (-1.0, -math.inf), "state": None}
    first_epoch = 1
    if resume_state is not None:
        first_epoch = _restore(resume_state, model, optimizer, scheduler, scaler, generator, history, best)

    for epoch in range(first_epoch, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        run_model.train()
        total_loss, correct, seen = 0.0, 0, 0
        if dist.enabled:
            batches = _rank_batches(len(x_train), cfg.batch_size, cfg.seed + 1000 * member, epoch, dist)
        else:
            batches = list(_batches(len(x_train), cfg.batch_size, generator))
        bar = tqdm(batches, desc=f"{tag or cfg.model} epoch {epoch}/{cfg.epochs}", leave=False,
                   disable=not (cfg.progress and dist.is_main), file=sys.stderr)
        for batch in bar:
            batch = batch.to(device)
            xb, yb = augment_batch(x_train[batch], augment, generator), y_train[batch]
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = run_model(xb)
                with torch.no_grad():
                    teacher_logits = teacher(xb) if teacher is not None else None
                loss = _loss(logits.float(), yb, weights, cfg,
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
        total_loss, correct, seen = dist.sum(total_loss, correct, seen)
        dist.sync_buffers(model)
        val = _score(model, x_val, y_val)  # every rank scores the same weights on the full validation split
        record = {"epoch": epoch, "lr": lr, "train_loss": total_loss / seen, "train_accuracy": correct / seen,
                  "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                  "seconds": time.perf_counter() - epoch_start}
        history.append(record)
        key = (val["accuracy"], -val["loss"])
        improved = key > best["key"]
        if improved:
            best.update(epoch=epoch, key=key, state=copy.deepcopy(model.state_dict()))
        log(f"{tag + ' ' if tag else ''}epoch {epoch:3d}/{cfg.epochs}  train loss {record['train_loss']:.4f} "
            f"acc {record['train_accuracy']:.4f}  val loss {val['loss']:.4f} acc {val['accuracy']:.4f} "
            f"macro-F1 {val['macro_f1']:.4f}  {record['seconds']:.1f}s{'  *' if improved else ''}")
        if dist.is_main and last_path is not None:
            _save_last(last_path, cfg, model, model_kwargs, optimizer, scheduler, scaler, generator, history, best,
                       epoch, member, finished)

    model.load_state_dict(best["state"])
    chosen = history[best["epoch"] - 1]
    with torch.no_grad():
        model.eval()
        val_predictions = torch.cat([model(x_val[i:i + 512]) for i in range(0, len(x_val), 512)]).argmax(1)
    return {"state": best["state"], "best_epoch": best["epoch"], "history": history,
            "val": {"accuracy": chosen["val_accuracy"], "macro_f1": chosen["val_macro_f1"],
                    "loss": chosen["val_loss"]},
            "val_predictions": val_predictions.cpu().numpy()}


def _config_dict(cfg: TrainConfig) -> dict:
    config = asdict(cfg)
    config.pop("progress")
    return config


def _metadata(cfg: TrainConfig, model: str, model_kwargs: dict, best_epoch: int | None, source: str) -> dict:
    return {
        "model": model,
        "model_kwargs": model_kwargs,
        "labels": list(data_mod.ORIGINAL_LABELS),
        "class_names": list(data_mod.CLASS_NAMES),
        "input_length": data_mod.INPUT_LENGTH,
        "preprocessing": dict(PREPROCESSING),
        "best_epoch": best_epoch,
        "data_source": source,
        "config": _config_dict(cfg),
        "versions": library_versions(),
    }


# --------------------------------------------------------------------------------------------------------- resume

def _save_last(path, cfg, model, model_kwargs, optimizer, scheduler, scaler, generator, history, best, epoch,
               member, finished):
    metadata = _metadata(cfg, cfg.model, model_kwargs, best["epoch"], "")
    state = {
        "member": member,
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": history,
        "best_epoch": best["epoch"],
        "best_key": list(best["key"]),
        "best_state": best["state"],
        "finished": [{**r, "val_predictions": torch.from_numpy(r["val_predictions"])} for r in finished],
    }
    save_checkpoint(path, model, metadata, training_state=state)


def _read_resume_state(path: Path, cfg: TrainConfig) -> dict:
    if not path.is_file():
        raise EcgcnnError(f"{path}: nothing to resume (no last checkpoint); run without --resume")
    payload = read_checkpoint(path)
    state = payload.get("training_state")
    if not isinstance(state, dict):
        raise EcgcnnError(f"{path}: not a resumable checkpoint (no training state)")
    saved = payload["metadata"].get("config", {})
    changed = [k for k in TrainConfig.RESUME_KEYS if saved.get(k, getattr(TrainConfig, k, None)) != getattr(cfg, k)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in changed)
        raise EcgcnnError(f"{path}: cannot resume with different settings ({detail})")
    state["model_state"] = payload["state_dict"]
    state["finished"] = [{**r, "val_predictions": r["val_predictions"].numpy()} for r in state.get("finished", [])]
    _log(f"resuming after epoch {state['epoch']}" + (f" of fold {state['member'] + 1}" if cfg.folds > 1 else "")
         + f" from {path}")
    return state


def _restore(state, model, optimizer, scheduler, scaler, generator, history, best) -> int:
    model.load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    history.extend(state["history"])
    best.update(epoch=state["best_epoch"], key=tuple(state["best_key"]), state=state["best_state"])
    return int(state["epoch"]) + 1
