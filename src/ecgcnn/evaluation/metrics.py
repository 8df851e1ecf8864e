"""Scoring: accuracy, macro/weighted F1, per-class precision/recall/F1 and the confusion matrix, in numpy (so that
``ecgcnn evaluate`` needs no scikit-learn). The definitions and the text report are scikit-learn's
(``precision_recall_fscore_support`` with ``zero_division=0``, ``classification_report`` with 4 digits); the tests
compare both with scikit-learn itself."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..core.errors import EcgcnnError

_CHUNK = 512  # beats per progress step


def _scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int):
    """Confusion matrix (rows: true class) and per-class precision, recall, F1 and support (0 where undefined)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    matrix = np.bincount(num_classes * y_true + y_pred, minlength=num_classes * num_classes)
    matrix = matrix.reshape(num_classes, num_classes)
    tp = np.diag(matrix).astype(np.float64)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(num_classes), where=support > 0)
    denominator = 2 * tp + (predicted - tp) + (support - tp)  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denominator, out=np.zeros(num_classes), where=denominator > 0)
    return matrix, precision, recall, f1, support


def _class_labels(num_classes: int, labels: Sequence | None, names: Sequence | None) -> tuple[list, list[str]]:
    labels = list(labels) if labels is not None else list(range(num_classes))
    names = list(names) if names is not None else [str(label) for label in labels]
    if len(labels) != num_classes or len(names) != num_classes:
        raise ValueError(f"{num_classes} classes but {len(labels)} labels and {len(names)} names")
    return labels, names


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int,
                           labels: Sequence | None = None, names: Sequence | None = None) -> dict:
    """All the figures ecgcnn reports for one set of predictions (class indices 0..C-1; JSON-ready). ``labels``
    and ``names`` (default: the indices) describe each class in ``per_class``."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes = list(range(num_classes))
    labels, names = _class_labels(num_classes, labels, names)
    matrix, precision, recall, f1, support = _scores(y_true, y_pred, num_classes)
    weights = support / max(int(support.sum()), 1)
    present = support > 0  # macro averages over the classes present in y_true
    per_class = [
        {"class": c, "label": labels[c], "name": names[c],
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
        "confusion_matrix": matrix.tolist(),
    }


def text_report(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, labels: Sequence | None = None,
                names: Sequence | None = None) -> str:
    """The classification report as scikit-learn prints it (per class, accuracy, macro and weighted averages; 4
    digits). Macro averages here run over every class, as scikit-learn's do when given the labels. Rows are named
    ``"<label> <name>"`` (the name alone where it is the label)."""
    labels, names = _class_labels(num_classes, labels, names)
    names = [name if name == str(label) else f"{label} {name}" for label, name in zip(labels, names, strict=True)]
    _, precision, recall, f1, support = _scores(y_true, y_pred, num_classes)
    digits, total = 4, int(support.sum())
    width = max(max(len(name) for name in names), len("weighted avg"), digits)
    row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    report = ("{:>{width}s} " + " {:>9}" * 4).format("", "precision", "recall", "f1-score", "support", width=width)
    report += "\n\n"
    for values in zip(names, precision, recall, f1, support.tolist(), strict=True):
        report += row.format(*values, width=width, digits=digits)
    report += "\n"
    accuracy = float(np.sum(np.asarray(y_true) == np.asarray(y_pred))) / total if total else 0.0
    report += ("{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n").format(
        "accuracy", "", "", accuracy, total, width=width, digits=digits)
    report += row.format("macro avg", precision.mean(), recall.mean(), f1.mean(), total, width=width, digits=digits)
    weights = support / total if total else np.zeros(num_classes)
    report += row.format("weighted avg", float(precision @ weights), float(recall @ weights), float(f1 @ weights),
                         total, width=width, digits=digits)
    return report


def evaluate_predictor(predictor, beats: np.ndarray, y_true: np.ndarray, progress: bool = False) -> dict:
    """Score any :class:`ecgcnn.runtimes.Predictor` on labelled beats (``y_true``: class indices 0..C-1).

    ``progress`` shows a bar on a terminal (tqdm's ``disable=None``: none in logs and CI)."""
    chunks = range(0, len(beats), _CHUNK)
    bar = tqdm(chunks, desc=f"evaluate {predictor.name}", unit="chunk", leave=False, file=sys.stderr,
               disable=None if progress else True)
    y_pred = np.concatenate([predictor.predict_indices(beats[i:i + _CHUNK]) for i in bar]) if len(beats) else \
        np.zeros(0, np.int64)
    classes = (predictor.num_classes, predictor.labels, predictor.class_names)
    metrics = classification_metrics(y_true, y_pred, *classes)
    metrics["report"] = text_report(y_true, y_pred, *classes)
    metrics["predictions"] = y_pred.tolist()
    return metrics


def check_model_fits(name, predictor, dataset) -> None:
    """The model must predict the data's classes (same labels, same order) from beats of the data's length."""
    if predictor.input_length != dataset.length:
        raise EcgcnnError(f"{name}: the model takes beats of {predictor.input_length} samples, the test beats of "
                          f"{dataset.name} have {dataset.length}")
    if list(predictor.labels) != dataset.model_fields()["labels"]:
        raise EcgcnnError(f"{name}: the model predicts labels {predictor.labels}, the data's are "
                          f"{dataset.model_fields()['labels']}")
