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
from .checkpoint import TorchPredictor, library_versions, read_checkpoint, resolve_device, save_checkpoint
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
        ]
        for ok, message in checks:
            if not ok:
                raise EcgcnnError(message)

    # Fields whose change makes a resumed run a different run.
    RESUME_KEYS = ("model", "epochs", "lr", "batch_size", "dropout", "weight_decay", "seed", "val_fraction")


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
    out_dir = Path(cfg.output_dir) / cfg.model
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
    train_idx, val_idx = data_mod.stratified_split(dataset.y_train, cfg.val_fraction, cfg.seed)
    beats = torch.from_numpy(normalize_beats(dataset.x_train)).unsqueeze(1)
    labels = torch.from_numpy(dataset.y_train)
    x_train, y_train = beats[train_idx].to(device), labels[train_idx].to(device)
    x_val, y_val = beats[val_idx].to(device), labels[val_idx].to(device)
    log(f"split: {len(train_idx)} train / {len(val_idx)} validation beats (seed {cfg.seed}); device {device}"
        + (f"; {dist.world} ranks" if dist.enabled else ""))

    # 2. Model, optimiser, schedule.
    model_kwargs = {"num_classes": dataset.num_classes, "in_channels": 1, "dropout": cfg.dropout}
    model = build_model(cfg.model, **model_kwargs).to(device)
    run_model = torch.compile(model) if cfg.compile else model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415

        run_model = DistributedDataParallel(run_model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    generator = torch.Generator().manual_seed(cfg.seed)
    history: list[dict] = []
    best = {"epoch": 0, "key": (-1.0, -math.inf), "state": None}
    first_epoch = 1

    last_path = out_dir / f"{cfg.model}_last.pth"
    if cfg.resume:
        first_epoch = _restore(last_path, cfg, model, optimizer, scheduler, scaler, generator, history, best)

    # 3. Epochs.
    for epoch in range(first_epoch, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        run_model.train()
        total_loss, correct, seen = 0.0, 0, 0
        if dist.enabled:
            batches = _rank_batches(len(x_train), cfg.batch_size, cfg.seed, epoch, dist)
        else:
            batches = list(_batches(len(x_train), cfg.batch_size, generator))
        bar = tqdm(batches, desc=f"{cfg.model} epoch {epoch}/{cfg.epochs}", leave=False,
                   disable=not (cfg.progress and dist.is_main),
                   file=sys.stderr)
        for batch in bar:
            xb, yb = x_train[batch.to(device)], y_train[batch.to(device)]
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                logits = run_model(xb)
                loss = F.cross_entropy(logits, yb)
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
        log(f"epoch {epoch:3d}/{cfg.epochs}  train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}"
             f"  val loss {val['loss']:.4f} acc {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f}"
             f"  {record['seconds']:.1f}s{'  *' if improved else ''}")
        if dist.is_main:
            _save_last(last_path, cfg, model, model_kwargs, optimizer, scheduler, scaler, generator, history, best,
                       epoch)

    # 4. The final model: the best epoch on validation. Only now is the test split read, once, to score it.
    model.load_state_dict(best["state"])
    model.eval()
    if dist.enabled:
        print(f"rank {dist.rank}/{dist.world}: final weights sha256 {weights_digest(model)}", flush=True)
        if not dist.is_main:
            return {"best_epoch": best["epoch"], "rank": dist.rank}
    best_record = history[best["epoch"] - 1]
    full = data_mod.load_dataset(cfg.data_dir, load_test=True)
    metadata = _metadata(cfg, model_kwargs, best["epoch"], dataset.source)
    predictor = TorchPredictor(model, metadata, device=str(device))
    test = evaluate_predictor(predictor, full.x_test, full.y_test)
    report = test.pop("report")
    test.pop("predictions")
    val_metrics = {"accuracy": best_record["val_accuracy"], "macro_f1": best_record["val_macro_f1"],
                   "loss": best_record["val_loss"]}
    metadata["metrics"] = {"val": val_metrics,
                           "test": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}}
    best_path = save_checkpoint(out_dir / f"{cfg.model}_best.pth", model, metadata)

    metrics = {
        "model": cfg.model,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "best_epoch": best["epoch"],
        "split": {"train": int(len(train_idx)), "val": int(len(val_idx)), "test": int(len(full.y_test))},
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
        "history": history,
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    from .plots import plot_confusion_matrix, plot_training_curves  # noqa: PLC0415 - matplotlib is slow to import

    plot_training_curves(history, out_dir / f"{cfg.model}_training_curves.png",
                         f"{cfg.model}: training curves (seed {cfg.seed})", best["epoch"])
    plot_confusion_matrix(test["confusion_matrix"], out_dir / f"{cfg.model}_confusion_matrix.png",
                          f"{cfg.model}: test confusion matrix (accuracy {test['accuracy']:.4f}, "
                          f"epoch {best['epoch']} chosen on validation)")
    log(f"best epoch {best['epoch']} (validation accuracy {val_metrics['accuracy']:.4f})")
    log(report)
    log(f"test accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}  -> {best_path}")
    return metrics


def _config_dict(cfg: TrainConfig) -> dict:
    config = asdict(cfg)
    config.pop("progress")
    return config


def _metadata(cfg: TrainConfig, model_kwargs: dict, best_epoch: int, source: str) -> dict:
    return {
        "model": cfg.model,
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

def _save_last(path, cfg, model, model_kwargs, optimizer, scheduler, scaler, generator, history, best, epoch):
    metadata = _metadata(cfg, model_kwargs, best["epoch"], "")
    state = {
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
    }
    save_checkpoint(path, model, metadata, training_state=state)


def _restore(path, cfg, model, optimizer, scheduler, scaler, generator, history, best) -> int:
    if not path.is_file():
        raise EcgcnnError(f"{path}: nothing to resume (no last checkpoint); run without --resume")
    payload = read_checkpoint(path)
    state = payload.get("training_state")
    if not isinstance(state, dict):
        raise EcgcnnError(f"{path}: not a resumable checkpoint (no training state)")
    saved = payload["metadata"].get("config", {})
    changed = [k for k in TrainConfig.RESUME_KEYS if saved.get(k) != getattr(cfg, k)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {getattr(cfg, k)!r}" for k in changed)
        raise EcgcnnError(f"{path}: cannot resume with different settings ({detail})")
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    history.extend(state["history"])
    best.update(epoch=state["best_epoch"], key=tuple(state["best_key"]), state=state["best_state"])
    _log(f"resuming after epoch {state['epoch']} from {path}")
    return int(state["epoch"]) + 1
