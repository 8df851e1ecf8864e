"""The scores and the text report, in numpy, against scikit-learn itself (the reference implementation) on random
predictions with missing and never-predicted classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from ecgcnn.data.ucr import CLASS_NAMES, ORIGINAL_LABELS
from ecgcnn.evaluation.metrics import classification_metrics, text_report

pytestmark = pytest.mark.fast
NAMES = [f"{label} {name}" for label, name in zip(ORIGINAL_LABELS, CLASS_NAMES, strict=True)]


@pytest.mark.parametrize("seed", range(40))
def test_scores_and_report_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    n, present = int(rng.integers(1, 80)), int(rng.integers(1, 6))
    y_true = rng.integers(0, present, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, 5, n))
    labels = list(range(5))
    expected = classification_report(y_true, y_pred, labels=labels, target_names=NAMES, digits=4, zero_division=0)
    assert text_report(y_true, y_pred, 5, ORIGINAL_LABELS, CLASS_NAMES) == expected
    metrics = classification_metrics(y_true, y_pred, 5)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose([c["precision"] for c in metrics["per_class"]], precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in metrics["per_class"]], recall, rtol=0, atol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in metrics["per_class"]], f1, rtol=0, atol=1e-12)
    assert [c["support"] for c in metrics["per_class"]] == support.tolist()
    assert metrics["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()
    on = support > 0
    assert metrics["macro_f1"] == pytest.approx(f1[on].mean())
    assert metrics["weighted_f1"] == pytest.approx(float(f1 @ support) / support.sum())
    assert metrics["accuracy"] == pytest.approx(float(np.mean(y_true == y_pred)))
