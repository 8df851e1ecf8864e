"""The results figures: accuracy vs latency vs size, validation curves, confusion matrices, example beats."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..core.formats import FORMAT_NAMES
from ..core.layout import checkpoint_path, metrics_path, seed_root
from ..data.dataset import load_dataset
from ..evaluation.plots import plot_confusion_matrix, save_figure
from ..runtimes import load_predictor


def results_figures(plot_dir: Path, cfg, rows: list[dict], evaluations: list[dict]) -> None:
    plot_dir.mkdir(parents=True, exist_ok=True)
    models = list(dict.fromkeys(r["model"] for r in rows))
    colors = {m: plt.cm.tab10(i) for i, m in enumerate(models)}
    markers = dict(zip(FORMAT_NAMES, "osD^vP", strict=False))

    # 1. accuracy vs batch-1 latency, marker area ∝ file size
    fig, ax = plt.subplots(figsize=(9, 6))
    max_size = max((r["size_bytes"] for r in rows), default=1)
    for r in rows:
        if r["latency_b1_p50_ms"] is None:
            continue
        ax.scatter(r["latency_b1_p50_ms"], 100 * r["accuracy_mean"], s=30 + 600 * r["size_bytes"] / max_size,
                   color=colors[r["model"]], marker=markers.get(r["format"], "o"), alpha=0.7, edgecolors="black")
    for m in models:
        ax.scatter([], [], color=colors[m], label=m)
    for f, mk in markers.items():
        ax.scatter([], [], color="grey", marker=mk, label=f)
    ax.set(xscale="log", xlabel="batch-1 latency p50 (ms, log)", ylabel="test accuracy (%)",
           title="accuracy vs latency (marker area ∝ file size)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    save_figure(fig, plot_dir / "accuracy_latency_size.png")

    # 2. validation curves of the first seed
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    first = seed_root(cfg.output_dir, cfg.seeds[0])
    for m in models:
        path = metrics_path(first, m)
        if not path.is_file():
            continue
        metrics = json.loads(path.read_text())
        # an ensemble's curves: its first member's
        run = metrics if metrics.get("history") else (metrics.get("members") or [{}])[0]
        history, label = run.get("history") or [], m if run is metrics else f"{m} (fold 1)"
        epochs = [h["epoch"] for h in history]
        ax_acc.plot(epochs, [h["val_accuracy"] for h in history], color=colors[m], label=label)
        ax_acc.axvline(run.get("best_epoch") or 0, color=colors[m], linestyle=":", alpha=0.6)
        ax_loss.plot(epochs, [h["train_loss"] for h in history], color=colors[m], label=f"{label} train")
        ax_loss.plot(epochs, [h["val_loss"] for h in history], color=colors[m], linestyle="--",
                     label=f"{label} val")
        plot_confusion_matrix(metrics["test"]["confusion_matrix"], plot_dir / f"confusion_matrix_{m}.png",
                              f"{m} (PyTorch, seed {cfg.seeds[0]}): test accuracy {metrics['test']['accuracy']:.4f}",
                              metrics["test"].get("per_class"))
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title=f"validation accuracy (seed {cfg.seeds[0]}; "
               "dotted: chosen epoch)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss", yscale="log")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, plot_dir / "training_curves.png")

    # 3. one test beat per class with the best model's prediction
    pytorch_rows = [r for r in rows if r["format"] == "pytorch"]
    if pytorch_rows:
        best = max(pytorch_rows, key=lambda r: r["accuracy_mean"])
        _example_beats(plot_dir / "example_beats.png", checkpoint_path(first, best["model"]), cfg.data)


def _example_beats(path: Path, checkpoint: Path, data) -> None:
    if not checkpoint.is_file():
        return
    predictor = load_predictor(checkpoint)
    dataset = load_dataset(data)
    present = [c for c in range(dataset.num_classes) if np.any(dataset.index_test == c)][:8]
    labels, names = predictor.labels, predictor.class_names
    fig, axes = plt.subplots(1, len(present), figsize=(16, 3), sharey=True, squeeze=False)
    for cls, ax in zip(present, axes[0], strict=True):
        index = int(np.flatnonzero(dataset.index_test == cls)[0])
        beat = dataset.x_test[index]
        probs = predictor.predict_proba(beat[None])[0]
        pred = int(probs.argmax())
        ax.plot(beat, color="tab:green" if pred == cls else "tab:red")
        ax.set_title(f"true {labels[cls]} {names[cls]}\npred {labels[pred]} ({probs[pred]:.2f})", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"first test beat of each class, {predictor.model_name} (green: correct)")
    save_figure(fig, path)
