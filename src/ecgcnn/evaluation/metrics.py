"""Scoring: accuracy, macro/weighted F1, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

import sys

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support
from tqdm.auto import tqdm

from ..data.ucr import CLASS_NAMES, ORIGINAL_LABELS

_CHUNK = 512  # beats per progress step


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = len(ORIGINAL_LABELS)) -> dict:
    """All the figures ecgcnn reports for one set of predictions (JSON-ready)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes = list(range(num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes,
                                                                     zero_division=0)
    weights = support / max(int(support.sum()), 1)
    present = support > 0  # macro averages over the classes present in y_true, as sklearn's report does
    per_class = [
        {"class": c, "label": ORIGINAL_LABELS[c] if c < len(ORIGINAL_LABELS) else c,
         "name": CLASS_NAMES[c] if c < len(CLASS_NAMES) else str(c),
         "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
         "support": int(support[c])}
        for c in classes
    ]
    return {
        "n": int(y_true.size),
        "accuracy": float((y_true == y_pred).mean()) if y_true.size else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * weights).sum()),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }


def text_report(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = len(ORIGINAL_LABELS)) -> str:
    """scikit-learn's classification report (per class, macro and weighted averages, accuracy)."""
    names = [f"{ORIGINAL_LABELS[c]} {CLASS_NAMES[c]}" for c in range(num_classes)]
    return classification_report(y_true, y_pred, labels=list(range(num_classes)), target_names=names, digits=4,
                                 zero_division=0)


def evaluate_predictor(predictor, beats: np.ndarray, y_true: np.ndarray, progress: bool = False) -> dict:
    """Score any :class:`ecgcnn.runtimes.Predictor` on labelled beats (``y_true``: class indices 0..C-1).

    ``progress`` shows a bar on a terminal (tqdm's ``disable=None``: none in logs and CI)."""
    chunks = range(0, len(beats), _CHUNK)
    bar = tqdm(chunks, desc=f"evaluate {predictor.name}", unit="chunk", leave=False, file=sys.stderr,
               disable=None if progress else True)
    y_pred = np.concatenate([predictor.predict_indices(beats[i:i + _CHUNK]) for i in bar]) if len(beats) else \
        np.zeros(0, np.int64)
    metrics = classification_metrics(y_true, y_pred, predictor.num_classes)
    metrics["report"] = text_report(y_true, y_pred, predictor.num_classes)
    metrics["predictions"] = y_pred.tolist()
    return metrics
