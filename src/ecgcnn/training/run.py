"""``ecgcnn train``: one run, top to bottom, and its artifacts.

Protocol: validation beats are carved from the 500 training beats (stratified, seeded; one held-out fold per member
for a K-fold ensemble); each member keeps its epoch with the best validation accuracy. The test file is checked to
parse before training starts (so a broken file fails in seconds, not after training), but its beats and labels are
loaded only after the final model is fixed, then read once to score that model.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace

import numpy as np
import torch

from ..core.errors import EcgcnnError
from ..core.fileio import write_json_atomic
from ..core.layout import checkpoint_path, figure_path, metrics_path, run_dir
from ..core.novelty import fit_novelty
from ..core.preprocess import normalize_beats
from ..core.provenance import library_versions
from ..data import dataset as data_mod
from ..data.ucr import INPUT_LENGTH
from ..evaluation.metrics import classification_metrics, evaluate_predictor
from ..evaluation.plots import plot_confusion_matrix, plot_training_curves
from ..evaluation.recut import add_recut_copies, recording_reference
from ..models import build_model, fold_for_export, model_accepts
from ..runtimes.checkpoint import model_from_checkpoint, save_checkpoint
from ..runtimes.metadata import build_metadata
from ..runtimes.pretrained import resolve_model_path
from ..runtimes.torch import TorchPredictor, resolve_device
from .augment import add_tail_swaps
from .config import TrainConfig
from .distributed import Distributed
from .lock import RunLock
from .loop import MemberJob, fit_member
from .resume import read_resume_state, save_last


def _log(message: str) -> None:
    print(message, flush=True)


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def model_kwargs_for(cfg: TrainConfig, num_classes: int, length: int = INPUT_LENGTH) -> dict:
    """Constructor arguments of the run's architecture; random-kernel models draw their kernels from the run's
    seed (so seeds give different models, as they do for networks) and fit their dilations to the beat length."""
    kwargs = {"num_classes": num_classes, "in_channels": 1, "dropout": cfg.dropout}
    if model_accepts(cfg.model, "seed"):
        kwargs["seed"] = cfg.seed
    if model_accepts(cfg.model, "input_length"):
        kwargs["input_length"] = length
    return kwargs


def splits_for(cfg: TrainConfig, y: np.ndarray,
               groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs over training beats: one per member; with ``groups`` (--group-by) no group
    is on both sides of a pair."""
    if groups is not None:
        if cfg.folds > 1:
            return data_mod.group_folds(groups, cfg.folds, cfg.seed)
        return [data_mod.group_split(groups, cfg.val_fraction, cfg.seed)]
    if cfg.folds > 1:  # every member holds out one fold for its own epoch choice
        return data_mod.stratified_folds(y, cfg.folds, cfg.seed)
    return [data_mod.stratified_split(y, cfg.val_fraction, cfg.seed)]


def needs_validation(cfg: TrainConfig, num_classes: int, length: int) -> bool:
    """False for a closed-form model refit on every beat (Hydra, MiniRocket with ``--refit``): it has no epoch to
    choose, so held-out beats would only report a validation score. A network picks its epoch on them."""
    if not cfg.refit or cfg.folds > 1:
        return True
    return not hasattr(build_model(cfg.model, **model_kwargs_for(cfg, num_classes, length)), "fit_closed_form")


def check_training_data(cfg: TrainConfig, dataset: data_mod.Dataset) -> None:
    """One line, before any work, for data this run cannot train on."""
    counts = np.bincount(dataset.index_train, minlength=dataset.num_classes)
    if cfg.folds > 1 and counts.min() < 2:
        k = int(np.argmin(counts))
        raise EcgcnnError(f"class {dataset.labels[k]!r} has {counts[k]} training beat(s): with --folds "
                          f"{cfg.folds} a member would never see it; give it at least 2 beats, or --folds 1")
    if dataset.groups_train is not None:
        groups = len(set(dataset.groups_train.tolist()))
        if groups < max(2, cfg.folds):
            raise EcgcnnError(f"--group-by {dataset.spec.group_by}: the training beats hold {groups} group(s); "
                              + (f"--folds {cfg.folds} needs as many" if cfg.folds > 1 else
                                 "validation by group needs at least 2"))
    if (any(len(val) == 0 for _, val in splits_for(cfg, dataset.index_train, dataset.groups_train))
            and needs_validation(cfg, dataset.num_classes, dataset.length)):
        raise EcgcnnError(f"no validation beats can be held out of {len(dataset.index_train)} training beats in "
                          f"{dataset.num_classes} classes (each class keeps one training beat); give more beats "
                          f"per class, or a closed-form model refit on every beat (--recipe best)")
    if cfg.tail_swap and not 1 <= cfg.tail_swap <= dataset.length - 2:
        raise EcgcnnError(f"--tail-swap {cfg.tail_swap}: expected a sample index from 1 to {dataset.length - 2} "
                          f"(these beats have {dataset.length} samples), or 0 for none")
    if cfg.recut and dataset.length != INPUT_LENGTH:
        raise EcgcnnError(f"--recut re-cuts beats of {INPUT_LENGTH} samples cut at the R-peak as annotate cuts them; "
                          f"these beats have {dataset.length}")
    try:  # every architecture says for itself whether it takes this length and class count
        with torch.no_grad():
            probe = build_model(cfg.model, **model_kwargs_for(cfg, dataset.num_classes, dataset.length)).eval()
            out = probe(torch.zeros(2, 1, dataset.length))
        if tuple(out.shape) != (2, dataset.num_classes) or not bool(torch.isfinite(out).all()):
            raise ValueError(f"output {tuple(out.shape)}")
    except (RuntimeError, ValueError) as exc:
        raise EcgcnnError(f"--model {cfg.model} cannot take beats of {dataset.length} samples in "
                          f"{dataset.num_classes} classes ({str(exc).splitlines()[0][:80]}); choose another "
                          f"--model") from None


def train(cfg: TrainConfig) -> dict:
    """Train one run and write its artifacts into ``<output_dir>/<run>/``. Returns the metrics dict."""
    cfg.validate()
    out_dir = run_dir(cfg.output_dir, cfg.run_name)
    dist = Distributed()
    if dist.enabled and cfg.resume:
        raise EcgcnnError("--resume is not supported with distributed training yet")
    # The data is read and checked before the run's folder or its lock exist: refused data leaves nothing behind.
    dataset = data_mod.load_dataset(cfg.data, load_test=False)
    data_mod.check_test_data(cfg.data)  # parsed and dropped: a broken test file fails before training
    check_training_data(cfg, dataset)
    if not dist.is_main:  # rank 0 holds the directory lock and writes every file
        return _train_ranked(cfg, dist, dataset)
    with RunLock(out_dir):
        return _train_ranked(cfg, dist, dataset)


def _train_ranked(cfg: TrainConfig, dist: Distributed, dataset: data_mod.Dataset) -> dict:
    started = time.perf_counter()
    device = dist.setup(resolve_device(cfg.device))
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, dist, device, started, dataset)
    finally:
        torch.set_num_threads(threads)  # the caller's own setting back
        dist.teardown()


def _run(cfg: TrainConfig, dist: Distributed, device: torch.device, started: float,
         dataset: data_mod.Dataset) -> dict:
    log = _log if dist.is_main else (lambda message: None)
    use_amp = device.type == "cuda" if cfg.amp is None else cfg.amp
    if use_amp and device.type != "cuda":
        log(f"note: --amp is CUDA-only; training in float32 on {device.type}")
        use_amp = False
    seed_everything(cfg.seed)

    # 1. Data: training beats only (read and checked by train()).
    log(f"data: {dataset.source}")
    dataset_splits = splits_for(cfg, dataset.index_train, dataset.groups_train)  # the dataset's own beats
    x_train, y_train, splits = add_recut_copies(dataset.x_train, dataset.index_train, dataset_splits, cfg.recut,
                                                cfg.seed, cfg.recut_noise)
    recut_splits, real_rows = splits, len(x_train)  # rows after here are tail-swapped chimeras, not real beats
    x_train, y_train, splits = add_tail_swaps(x_train, y_train, splits, cfg.tail_swap, cfg.seed)
    beats = torch.from_numpy(normalize_beats(x_train)).unsqueeze(1).to(device)
    labels = torch.from_numpy(y_train).to(device)
    teacher = load_teacher(cfg.teacher, device, dataset) if cfg.teacher else None
    log(f"split: {len(splits[0][0])} train / {len(splits[0][1])} validation beats (seed {cfg.seed})"
        + (f" x {cfg.folds} folds" if cfg.folds > 1 else "") + f"; device {device}"
        + (f"; {dist.world} ranks" if dist.enabled else "") + (f"; teacher {cfg.teacher}" if teacher else ""))
    model_kwargs = model_kwargs_for(cfg, dataset.num_classes, dataset.length)
    data_fields = dataset.model_fields()

    # 2. One member per split (a single model when folds == 1), each resumable from <run>_last.pth.
    last_path = checkpoint_path(cfg.output_dir, cfg.run_name, "last")
    resume_state = read_resume_state(last_path, cfg, log) if cfg.resume else None
    finished: list[dict] = list(resume_state["finished"]) if resume_state else []
    for member, (train_idx, val_idx) in enumerate(splits):
        if member < len(finished):
            continue
        if len(val_idx) == 0:  # nothing to hold out (checked: a closed-form model refit below on every beat)
            finished.append({"state": None, "best_epoch": None, "history": [], "val": {},
                             "val_predictions": np.zeros(0, np.int64)})
            continue
        job = MemberJob(cfg, member, model_kwargs, beats, labels, train_idx, val_idx, device,
                        tag=f"{cfg.run_name} fold {member + 1}/{cfg.folds}" if cfg.folds > 1 else "",
                        teacher=teacher, dist=dist, use_amp=use_amp,
                        resume_state=resume_state if resume_state and resume_state["member"] == member else None,
                        on_epoch_end=lambda state: save_last(last_path, cfg, model_kwargs, finished, state,
                                                             data_fields),
                        log=log)
        finished.append(fit_member(job))
    if cfg.refit:
        finished[0] = refit_on(np.arange(len(labels)), finished[0], MemberJob(
            cfg, 0, model_kwargs, beats, labels, splits[0][0], splits[0][1], device, teacher=teacher, dist=dist,
            use_amp=use_amp, log=log))

    # 3. The final model: each member's chosen weights; an ensemble averages the members.
    model, final_name, final_kwargs = assemble(cfg, model_kwargs, finished, device)
    if dist.enabled:
        print(f"rank {dist.rank}/{dist.world}: final weights sha256 {weights_digest(model)}", flush=True)
        if not dist.is_main:
            return {"best_epoch": finished[0]["best_epoch"], "rank": dist.rank}
    val_metrics = validation_summary(finished, y_train, [val for _, val in splits], dataset.num_classes)

    # 4. Only now is the test split read, once, to score the final model.
    test_split = data_mod.load_dataset(cfg.data, load_test=True)
    best_epoch = finished[0]["best_epoch"] if cfg.folds == 1 else None
    # beats in ECG5000's convention can be re-cut as annotate cuts recordings: a recording limit too
    novelty = recording_reference(fit_novelty(beats[:real_rows, 0].cpu().numpy()), dataset.x_train, seed=cfg.seed,
                                  recut=dataset.length == INPUT_LENGTH)
    metadata = build_metadata(final_name, final_kwargs, cfg.as_dict(), best_epoch,
                              {**data_fields, "dataset": test_split.describe()}, novelty=novelty)
    predictor = TorchPredictor.from_model(model, metadata, device=str(device))
    test = evaluate_predictor(predictor, test_split.x_test, test_split.index_test)
    report = test.pop("report")
    test.pop("predictions")
    metadata["metrics"] = {"val": val_metrics, "test": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"],
                                                        "per_class_recall": [c["recall"] for c in test["per_class"]]}}
    best_path = save_checkpoint(checkpoint_path(cfg.output_dir, cfg.run_name), model, metadata)

    metrics = {
        "model": final_name,
        "recipe": cfg.recipe,
        "seed": cfg.seed,
        "epochs": finished[0].get("epochs", cfg.epochs),  # --epochs, or more for a small set (min_steps)
        "best_epoch": best_epoch,
        "split": {"train": int(len(dataset_splits[0][0])), "val": int(len(dataset_splits[0][1])), "folds": cfg.folds,
                  "test": int(len(test_split.index_test))},
        "recut_rows": {"train": int(len(recut_splits[0][0]) - len(dataset_splits[0][0])),  # added by --recut
                       "val": int(len(recut_splits[0][1]) - len(dataset_splits[0][1]))},
        "tail_swap_rows": {"train": int(len(splits[0][0]) - len(recut_splits[0][0])),  # added by --tail-swap
                           "val": int(len(splits[0][1]) - len(recut_splits[0][1]))},
        "val": val_metrics,
        "test": test,
        "checkpoint": best_path.name,
        "data_source": dataset.source,
        "device": str(device),
        "amp": use_amp,
        "torch_threads": torch.get_num_threads(),  # with the seed, what makes a CPU run reproducible bit for bit
        "world_size": dist.world,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "config": cfg.as_dict(),
        "versions": library_versions(),
        "history": finished[0]["history"] if cfg.folds == 1 else None,
        "members": [{"fold": i + 1, "best_epoch": r["best_epoch"], "val": r["val"], "history": r["history"]}
                    for i, r in enumerate(finished)] if cfg.folds > 1 else None,
    }
    write_json_atomic(metrics_path(cfg.output_dir, cfg.run_name), metrics)
    _write_figures(cfg, finished, test, best_epoch)
    if val_metrics:
        log(f"validation accuracy {val_metrics['accuracy']:.4f} macro-F1 {val_metrics['macro_f1']:.4f}"
            + (" (out-of-fold)" if cfg.folds > 1 else
               f" (best epoch {best_epoch})" if best_epoch is not None else " (closed-form fit)"))
    else:
        log("validation: none (the split holds out no beat; the closed-form model is fitted on every beat)")
    log(report)
    log(f"test accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}  -> {best_path}")
    return metrics


def _write_figures(cfg: TrainConfig, finished: list[dict], test: dict, best_epoch: int | None) -> None:
    if finished[0]["history"]:
        plot_training_curves(finished[0]["history"], figure_path(cfg.output_dir, cfg.run_name, "training_curves"),
                             f"{cfg.run_name}: training curves (seed {cfg.seed}"
                             + (", fold 1)" if cfg.folds > 1 else ")"), finished[0]["best_epoch"])
    chosen = ("epochs chosen per fold" if cfg.folds > 1 else
              f"epoch {best_epoch} chosen on validation" if best_epoch is not None else "closed-form fit")
    plot_confusion_matrix(test["confusion_matrix"], figure_path(cfg.output_dir, cfg.run_name, "confusion_matrix"),
                          f"{cfg.run_name}: test confusion matrix (accuracy {test['accuracy']:.4f}, {chosen})",
                          test["per_class"])


def assemble(cfg: TrainConfig, model_kwargs: dict, finished: list[dict], device) -> tuple[torch.nn.Module, str, dict]:
    """The final eval-mode model from the members' chosen weights: the model itself, or their ensemble."""
    if cfg.folds > 1:
        name, kwargs = "ensemble", {**model_kwargs, "members": [cfg.model] * cfg.folds}
    else:
        name, kwargs = cfg.model, model_kwargs
    model = build_model(name, **kwargs).to(device)
    for target, result in zip(model.members if cfg.folds > 1 else [model], finished, strict=True):
        target.load_state_dict(result["state"])
    return model.eval(), name, kwargs


def fit_on_subset(cfg: TrainConfig, beats: torch.Tensor, labels: torch.Tensor, subset: np.ndarray,
                  teacher: torch.nn.Module | None, device, log=lambda message: None,
                  num_classes: int | None = None) -> torch.nn.Module:
    """Train ``cfg`` (members, epoch choice and all) using only the beats ``(N, 1, L)`` in ``subset``; return the
    final model for ``num_classes`` classes (default: as many as the labels show).

    The same procedure as ``train`` without files, resume or DDP: the inner loop of nested cross-validation, and the
    full-INT8 export's held-out twin."""
    inner = [(subset[train_idx], subset[val_idx]) for train_idx, val_idx in
             splits_for(cfg, labels[subset].cpu().numpy())]
    model_kwargs = model_kwargs_for(cfg, num_classes or int(labels.max()) + 1, beats.shape[-1])
    if cfg.recut:  # re-cut copies of the subset's beats only (each side of each split stitched on its own)
        x, y, inner = add_recut_copies(beats[:, 0].cpu().numpy(), labels.cpu().numpy(), inner, cfg.recut, cfg.seed,
                                       cfg.recut_noise)
        beats = torch.from_numpy(normalize_beats(x)).unsqueeze(1).to(beats.device)
        labels = torch.from_numpy(y).to(labels.device)
    if cfg.tail_swap:  # copies of each inner split's training beats only, donors from that training side
        x, y, inner = add_tail_swaps(beats[:, 0].cpu().numpy(), labels.cpu().numpy(), inner, cfg.tail_swap, cfg.seed)
        beats = torch.from_numpy(x).unsqueeze(1).to(beats.device)
        labels = torch.from_numpy(y).to(labels.device)
    jobs = [MemberJob(cfg, member, model_kwargs, beats, labels, train_idx, val_idx, device,
                      tag=f"{cfg.run_name} member {member + 1}", teacher=teacher, log=log)
            for member, (train_idx, val_idx) in enumerate(inner)]
    finished = [fit_member(job) for job in jobs]
    if cfg.refit:
        finished[0] = refit_on(np.concatenate(inner[0]), finished[0], jobs[0])
    return assemble(cfg, model_kwargs, finished, device)[0]


def refit_on(subset: np.ndarray, chosen: dict, job: MemberJob) -> dict:
    """The choice is made on held-out beats (epoch count, or a closed-form model's own settings): fit again on every
    beat of ``subset`` and keep the chosen member's validation figures."""
    refit = fit_member(replace(job, train_idx=subset, val_idx=subset[:0], refit_epochs=chosen["best_epoch"] or 0,
                               schedule_epochs=chosen.get("epochs"),
                               tag=f"{job.cfg.run_name} refit on {len(subset)} beats", on_epoch_end=None,
                               resume_state=None))
    return {**chosen, "state": refit["state"], "refit": {"beats": int(len(subset)), "epochs": chosen["best_epoch"]}}


def validation_summary(finished: list[dict], y: np.ndarray, val_sets: list[np.ndarray], num_classes: int) -> dict:
    """Validation metrics of the chosen weights. For an ensemble: every member scored on its own held-out fold
    (out-of-fold predictions covering all training beats; each fold also chose its member's epoch)."""
    if len(finished) == 1:
        return dict(finished[0]["val"])
    y_true = np.concatenate([y[idx] for idx in val_sets])
    y_pred = np.concatenate([r["val_predictions"] for r in finished])
    metrics = classification_metrics(y_true, y_pred, num_classes)
    losses = [r["val"]["loss"] * len(idx) for r, idx in zip(finished, val_sets, strict=True)]
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "loss": sum(losses) / len(y_true)}


def load_teacher(spec: str, device: torch.device, dataset: data_mod.Dataset) -> torch.nn.Module:
    path = resolve_model_path(spec)
    if path.suffix.lower() not in (".pth", ".pt"):
        raise EcgcnnError(f"--teacher {spec}: expected a PyTorch checkpoint (.pth)")
    model, metadata = model_from_checkpoint(path)
    if metadata["labels"] != dataset.model_fields()["labels"]:
        raise EcgcnnError(f"{path}: the teacher predicts labels {metadata['labels']}, not the data's "
                          f"{dataset.model_fields()['labels']}")
    teacher = fold_for_export(model).to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
