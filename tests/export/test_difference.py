"""The beat's first difference as a second graph input (ecgcnn.export.difference): a fitted Hydra's ONNX graph cut
here, run in ONNX Runtime, against PyTorch's Hydra given the same difference (``Hydra.forward(x, dx)``, itself
tested against NumPy in tests/models), and the difference input's own calibration range (ecgcnn.export.parity)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch

from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.export import parity as gate
from ecgcnn.export.difference import difference_input
from ecgcnn.models import build_model
from ecgcnn.runtimes.onnx import open_session

pytestmark = pytest.mark.fast


def _export(model, path, length: int = 140):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, length),), str(path), input_names=["beats"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"beats": {0: "batch"}, "logits": {0: "batch"}})
    return onnx.load(str(path))


def test_hydra_graph_takes_the_difference_as_a_second_input(tmp_path, dataset):
    """After the cut the graph reads its second input where it took the difference of its first: with the true
    difference it gives the original logits, with any other it gives PyTorch's Hydra given that difference; the
    slices that made the difference are gone."""
    beats = dataset.x_train[:80]
    model = build_model("hydra", seed=0, g=8).eval()
    model.fit_closed_form(torch.from_numpy(normalize_beats(beats))[:, None], torch.from_numpy(dataset.index_train[:80]))
    proto = _export(model, tmp_path / "hydra.onnx")
    assert difference_input(proto) is True
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["beats", "beat_difference"]
    assert not any(node.op_type == "Slice" and node.input[0] == "beats" for node in proto.graph.node)
    cut = tmp_path / "cut.onnx"
    onnx.save(proto, str(cut))
    x = normalize_beats(dataset.x_train[80:150]).astype(np.float32)[:, None, :]
    original = open_session(tmp_path / "hydra.onnx", quiet=True).run(None, {"beats": x})[0]
    session = open_session(cut, quiet=True)
    np.testing.assert_allclose(session.run(None, {"beats": x, "beat_difference": np.diff(x, axis=2)})[0], original,
                               rtol=0, atol=1e-5)
    other = np.random.default_rng(0).standard_normal((len(x), 1, 139)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x), torch.from_numpy(other)).numpy()
    np.testing.assert_allclose(session.run(None, {"beats": x, "beat_difference": other})[0], expected,
                               rtol=0, atol=1e-4)
    # the exporter's ONNX Runtime helper feeds the difference of the beats it is given
    np.testing.assert_allclose(gate.onnx_logits(cut, x[:, 0, :]), original, rtol=0, atol=1e-5)


def test_a_graph_without_the_difference_is_left_alone(tmp_path):
    proto = _export(build_model("base-cnn").eval(), tmp_path / "cnn.onnx")
    before = proto.SerializeToString()
    assert difference_input(proto) is False
    assert proto.SerializeToString() == before


def test_the_difference_input_gets_its_own_clip(tmp_path, dataset):
    """:func:`~ecgcnn.export.parity.difference_range` scores each clip of the difference's values by ONNX Runtime's
    classes with the difference on that grid (counted here by hand for the clip it picks)."""
    chosen_beats = np.concatenate([np.flatnonzero(dataset.index_train == c)[:30] for c in (0, 1)])
    beats = normalize_beats(dataset.x_train[chosen_beats]).astype(np.float32)
    model = build_model("hydra", seed=0, g=4).eval()
    model.fit_closed_form(torch.from_numpy(beats)[:, None], torch.from_numpy(dataset.index_train[chosen_beats]))
    block = model.k * model.g
    with torch.no_grad():  # the classes read the difference branch only: the beat's blocks get no weight
        for i in range(len(model.dilations)):
            model.head.weight[:, 2 * i * block:(2 * i + 1) * block] = 0
    proto = _export(model, tmp_path / "hydra.onnx")
    difference_input(proto)
    cut = tmp_path / "cut.onnx"
    onnx.save(proto, str(cut))
    difference = np.diff(beats, axis=1)
    difference[0, 5] = 1000 * np.abs(difference).max()  # one far-out value: the full range leaves 2-3 levels
    expected = gate.onnx_logits(cut, beats, difference)
    chosen = gate.difference_range(cut, beats, difference, expected)

    def kept(low, high):
        logits = gate.onnx_logits(cut, beats, gate.on_int8_grid(difference, low, high))
        return float((logits.argmax(1) == expected.argmax(1)).mean())

    full = kept(difference.min(), difference.max())
    shares = {p: kept(*np.percentile(difference, [p, 100 - p])) for p in gate.INPUT_CLIP_PERCENTILES}
    best = max(shares.values())
    assert best > full and chosen is not None
    assert chosen["percentile"] == min(p for p, share in shares.items() if share == best)
    assert chosen["kept"] == best and chosen["full"] == full
