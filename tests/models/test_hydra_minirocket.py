"""``hydra-minirocket``: each part's features are those of the part fitted alone, the head is scikit-learn's ridge
classifier over both, and the graph exports like Hydra's (ONNX parity, the first difference as a cuttable input)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifierCV

from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.data.dataset import load_dataset
from ecgcnn.evaluation.summary import macs_per_beat
from ecgcnn.export.difference import difference_input
from ecgcnn.models import build_model


@pytest.fixture(scope="module")
def beats():
    """ECG5000's 500 training beats (where leave-one-out picks an alpha well inside the grid)."""
    ds = load_dataset()
    return torch.from_numpy(normalize_beats(ds.x_train))[:, None], torch.from_numpy(ds.index_train)


@pytest.fixture(scope="module")
def fitted(beats):
    x, y = beats
    model = build_model("hydra-minirocket", seed=3).eval()
    return model, model.fit_closed_form(x, y, seed=3)


def test_features_are_the_parts_fitted_alone(beats, fitted):
    x, y = beats
    model, _ = fitted
    hydra = build_model("hydra", seed=3).eval()
    hydra.fit_closed_form(x, y)
    minirocket = build_model("minirocket", seed=3).eval()
    minirocket.fit_closed_form(x, y, seed=3)
    expected = torch.cat([hydra.transform(x), minirocket.transform(x)], dim=1)
    assert model.num_features == hydra.num_features + minirocket.num_features == expected.shape[1]
    assert torch.equal(model.transform(x), expected)
    assert macs_per_beat(model) == macs_per_beat(hydra) + macs_per_beat(minirocket)


def test_logits_are_one_ridge_over_both_feature_sets(beats, fitted):
    """scikit-learn's RidgeClassifierCV (same alpha grid, leave-one-out) on the concatenated features gives the alpha
    and the decision values; a head fitted on one part's features alone would not (planted below)."""
    x, y = beats
    model, info = fitted
    features = model.transform(x).double().numpy()
    reference = RidgeClassifierCV(alphas=info["alphas"]).fit(features, y.numpy())
    assert reference.alpha_ == pytest.approx(info["alpha"])
    with torch.no_grad():
        logits = model(x).double().numpy()
    decision = reference.decision_function(features)
    np.testing.assert_allclose(logits, decision, atol=2e-4)
    split = model.hydra.num_features
    hydra_only = RidgeClassifierCV(alphas=info["alphas"]).fit(features[:, :split], y.numpy())
    assert np.abs(hydra_only.decision_function(features[:, :split]) - decision).max() > 1e-2
    assert torch.count_nonzero(model.minirocket.head.bias) == 0  # the intercept is counted once, in Hydra's head


def test_onnx_graph_matches_torch_and_takes_the_difference_like_hydra(beats, fitted, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    x, _ = beats
    model, _ = fitted
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, torch.zeros(2, 1, 140), str(path), opset_version=17, dynamo=False,
                      input_names=["beats"], output_names=["logits"],
                      dynamic_axes={"beats": {0: "batch"}, "logits": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(session.run(None, {"beats": x.numpy()})[0], expected, atol=1e-4)
    graph = onnx.load(str(path))
    assert difference_input(graph)  # Hydra's Sub(Slice(x), Slice(x)) is the graph's only first difference
    two = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in two.get_inputs()]
    feeds = {names[0]: x.numpy(), names[1]: np.diff(x.numpy(), axis=-1)}
    np.testing.assert_allclose(two.run(None, feeds)[0], expected, atol=1e-4)
