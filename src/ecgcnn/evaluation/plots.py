"""Figure primitives and the per-run training figures, written atomically as PNG. matplotlib runs headless (Agg)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..core.fileio import atomic_path


def save_figure(fig, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def plot_training_curves(history: list[dict], path: str | os.PathLike, title: str, best_epoch: int | None = None):
    """Loss and accuracy per epoch for training and validation; the chosen epoch is marked."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [h["train_accuracy"] for h in history], label="train")
    ax_acc.plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    ax_acc.plot(epochs, [h["val_macro_f1"] for h in history], label="validation macro-F1", linestyle="--")
    ax_acc.set(xlabel="epoch", ylabel="score", title="accuracy")
    for ax in (ax_loss, ax_acc):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"chosen epoch {best_epoch}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    save_figure(fig, path)


def plot_confusion_matrix(matrix, path: str | os.PathLike, title: str, per_class: list[dict] | None = None) -> None:
    """Counts and row-normalised (recall) confusion matrices side by side; ``per_class`` (the metrics' entries)
    names the classes."""
    counts = np.asarray(matrix, dtype=np.int64)
    totals = counts.sum(axis=1, keepdims=True)
    normalised = counts / np.where(totals == 0, 1, totals)
    labels = [f"{c['label']}\n{c['name']}" if c["name"] != str(c["label"]) else str(c["label"])
              for c in per_class] if per_class else [str(i) for i in range(len(counts))]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, data, fmt, name in ((axes[0], counts, "d", "counts"), (axes[1], normalised, ".2f", "normalised by row")):
        image = ax.imshow(data, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046)
        ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
               xlabel="predicted", ylabel="true", title=name)
        ax.tick_params(axis="x", labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        threshold = data.max() / 2 if data.size else 0
        for (i, j), value in np.ndenumerate(data if len(labels) <= 20 else np.zeros((0, 0))):
            ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=8,
                    color="white" if value > threshold else "black")
    fig.suptitle(title)
    save_figure(fig, path)
