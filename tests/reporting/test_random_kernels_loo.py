"""results/ablation/random_kernels_loo.md (scripts/random_kernels_loo.py): the page is what the script makes of the
committed JSON, its summary is recomputed here with SciPy's ``rankdata``, and one dataset's figures are measured again
with scikit-learn's leave-one-out ridge on the models' own features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import rankdata
from sklearn.linear_model import RidgeClassifierCV

from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.data.dataset import DataSpec, load_dataset
from ecgcnn.models import build_model
from ecgcnn.models._ridge import DEFAULT_ALPHAS

from ..scripts import load_script

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results" / "ablation"
MODELS = ("hydra", "minirocket", "hydra-minirocket")


@pytest.fixture(scope="module")
def script():
    return load_script("random_kernels_loo")


@pytest.fixture(scope="module")
def results():
    return json.loads((RESULTS / "random_kernels_loo.json").read_text(encoding="utf-8"))


def test_the_committed_page_is_what_the_script_makes_of_the_committed_json(script, results):
    assert (RESULTS / "random_kernels_loo.md").read_text(encoding="utf-8") == script.render(results)


def test_the_summary_is_the_mean_accuracy_and_mean_rank(results):
    page = (RESULTS / "random_kernels_loo.md").read_text(encoding="utf-8")
    accuracy = np.array([[results[n]["models"][m]["loo_accuracy"] for m in MODELS] for n in sorted(results)])
    ranks = np.array([rankdata(-row) for row in accuracy])
    top = accuracy == accuracy.max(axis=1, keepdims=True)
    wins = (top / top.sum(axis=1, keepdims=True)).sum(axis=0)
    assert f"## Summary over {len(results)} datasets" in page
    for j, name in enumerate(MODELS):
        row = f"| {name} | {100 * accuracy[:, j].mean():.2f} % | {ranks[:, j].mean():.2f} | {wins[j]:.1f} |"
        assert row in page


def test_a_dataset_measured_again_with_scikit_learn(results):
    """ECG200: each model's leave-one-out accuracy at the alpha scikit-learn's leave-one-out chooses on the same
    features (the fitted model's standardised features of the training beats; the test split is not read)."""
    data = load_dataset(DataSpec(dataset="ECG200", missing="fill"), load_test=False)
    beats = torch.from_numpy(normalize_beats(data.x_train))[:, None]
    labels = data.index_train
    for name in MODELS:
        model = build_model(name, num_classes=2, input_length=data.length, seed=0)
        model.fit_closed_form(beats, torch.from_numpy(labels), seed=0)
        features = model.transform(beats).double().numpy()
        alpha = RidgeClassifierCV(alphas=DEFAULT_ALPHAS).fit(features, labels).alpha_  # least leave-one-out error
        # with a scoring, scikit-learn keeps the leave-one-out decision values (one {-1, +1} column for two classes)
        values = RidgeClassifierCV(alphas=DEFAULT_ALPHAS, scoring="accuracy", store_cv_results=True).fit(
            features, labels).cv_results_
        loo = values[:, 0, list(DEFAULT_ALPHAS).index(alpha)]
        expected = float(np.mean((loo > 0) == (labels == 1)))
        assert results["ECG200"]["models"][name]["loo_accuracy"] == pytest.approx(expected), name
