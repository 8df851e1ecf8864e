"""One winner per competition (ecgcnn.export.competition) and the int8 input's own share of a failed gate
(ecgcnn.export.tflite): graphs built here by hand, run in ONNX Runtime, against NumPy's arg-max and arg-min (first
index of a tie) and against beats whose classes depend on a known difference."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.export import parity as gate
from ecgcnn.export.competition import single_winner_competitions
from ecgcnn.models import build_model
from ecgcnn.runtimes.onnx import open_session

pytestmark = pytest.mark.fast

K, GROUPS, STEPS = 4, 3, 6


def _competitions(opset: int = 17) -> onnx.ModelProto:
    """Hydra's pattern on an input ``z`` (batch, k, groups, steps): the max mask times z, and the min mask."""
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", K, GROUPS, STEPS])
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", K, GROUPS, STEPS])
               for name in ("soft", "hard")]
    if opset >= 18:
        axes = [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")]
        reduce_max = helper.make_node("ReduceMax", ["z", "axes"], ["top"], keepdims=1)
        reduce_min = helper.make_node("ReduceMin", ["z", "axes"], ["bottom"], keepdims=1)
    else:
        axes = []
        reduce_max = helper.make_node("ReduceMax", ["z"], ["top"], axes=[1], keepdims=1)
        reduce_min = helper.make_node("ReduceMin", ["z"], ["bottom"], axes=[-3], keepdims=1)
    nodes = [reduce_max, helper.make_node("Equal", ["z", "top"], ["is_top"]),
             helper.make_node("Cast", ["is_top"], ["top_mask"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["top_mask", "z"], ["soft"]),
             reduce_min, helper.make_node("Equal", ["bottom", "z"], ["is_bottom"]),  # operands either way round
             helper.make_node("Cast", ["is_bottom"], ["hard"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "competitions", [z], outputs, initializer=axes)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _run(model: onnx.ModelProto, z: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"z": z})


def _one_hot(index: np.ndarray) -> np.ndarray:
    """(batch, groups, steps) kernel indices -> (batch, k, groups, steps) masks."""
    return (index[:, None] == np.arange(K)[None, :, None, None]).astype(np.float32)


@pytest.mark.parametrize("opset", [17, 18])
def test_one_winner_per_competition_first_of_a_tie(opset):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, K, GROUPS, STEPS)).astype(np.float32)
    z[0, :, 0, 0] = [0.5, 0.9, 0.9, -0.2]  # a tie for the maximum: kernels 1 and 2
    z[1, :, 2, 3] = [-0.7, 0.1, -0.7, 0.3]  # a tie for the minimum: kernels 0 and 2
    z[2, :, 1, :] = 0.0  # a flat stretch: every kernel tied
    model = _competitions(opset)
    soft_all, hard_all = _run(model, z)
    assert soft_all[0, 2, 0, 0] == pytest.approx(0.9) and hard_all[1, 2, 2, 3] == 1  # the original counts every tie
    assert single_winner_competitions(model) == 2
    onnx.checker.check_model(model, full_check=True)
    assert {n.op_type for n in model.graph.node} == {"ArgMax", "ArgMin", "Equal", "Cast", "Mul"}  # reductions gone
    soft, hard = _run(model, z)
    top, bottom = _one_hot(z.argmax(axis=1)), _one_hot(z.argmin(axis=1))  # NumPy: the first index of a tie
    np.testing.assert_array_equal(soft, top * z)
    np.testing.assert_array_equal(hard, bottom)
    assert hard[2, :, 1, :].sum(axis=0).tolist() == [1.0] * STEPS and hard[2, 0, 1, :].tolist() == [1.0] * STEPS
    untied = np.ones(z.shape[0], dtype=bool)
    untied[:3] = False
    np.testing.assert_array_equal(soft[untied], soft_all[untied])  # without ties: the same function
    np.testing.assert_array_equal(hard[untied], hard_all[untied])


def test_other_graphs_are_left_alone():
    """A maximum over two axes, or a minimum compared with another tensor, is not a competition of one tensor."""
    model = _competitions()
    for node in model.graph.node:
        if node.op_type == "ReduceMax":
            node.attribute[0].ints[:] = [1, 2]
        if node.op_type == "Equal" and "bottom" in node.input:
            node.input[:] = ["bottom", "soft"]
    before = model.SerializeToString()
    assert single_winner_competitions(model) == 0
    assert model.SerializeToString() == before


def test_hydra_export_rewrites_every_competition_and_keeps_its_function(tmp_path, dataset):
    """A fitted Hydra's ONNX graph: two competitions (max and min) per dilation and input, and on real beats
    (no exact ties) the rewritten graph gives the same logits."""
    beats = dataset.x_train[:80]
    model = build_model("hydra", seed=0, g=8).eval()
    model.fit_closed_form(torch.from_numpy(normalize_beats(beats))[:, None], torch.from_numpy(dataset.index_train[:80]))
    path = tmp_path / "hydra.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 140),), str(path), input_names=["beats"], output_names=["logits"],
                          opset_version=17, dynamo=False, dynamic_axes={"beats": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load(str(path))
    assert single_winner_competitions(proto) == 2 * 2 * len(model.dilations)
    rewritten = tmp_path / "single.onnx"
    onnx.save(proto, str(rewritten))
    x = normalize_beats(dataset.x_train[80:200]).astype(np.float32)[:, None, :]
    expected = open_session(path, quiet=True).run(None, {"beats": x})[0]
    actual = open_session(rewritten, quiet=True).run(None, {"beats": x})[0]
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def _difference_model(tmp_path) -> str:
    """logits = (x0 - x1, x1 - x0) of a beat of 4 samples: the class is the sign of x0 - x1."""
    weights = np.zeros((4, 2), dtype=np.float32)
    weights[0] = [1, -1]
    weights[1] = [-1, 1]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["beats"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "difference", [helper.make_tensor_value_info("beats", TensorProto.FLOAT, ["batch", 1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[numpy_helper.from_array(weights, "w")])
    path = tmp_path / "difference.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_a_failed_int8_gate_says_when_the_input_resolution_alone_changes_the_class(tmp_path):
    rng = np.random.default_rng(1)
    beats = rng.uniform(-0.09, 0.09, size=(200, 4)).astype(np.float32)
    beats[:, 1] = beats[:, 0] + rng.choice([-1, 1], size=200) * 0.004  # classes 0.004 apart
    expected = np.stack([beats[:, 0] - beats[:, 1], beats[:, 1] - beats[:, 0]], axis=1)
    path = _difference_model(tmp_path)
    # a step of 0.05 rounds most pairs to the same value (a tie: class 0) ...
    coarse = gate.input_resolution_note(path, beats, expected, {"input": {"scale": 0.05, "zero_point": 0}})
    rounded = np.round(beats / 0.05)
    kept = np.mean(np.where(rounded[:, 0] >= rounded[:, 1], 0, 1) == expected.argmax(1))
    assert kept < 0.95
    assert coarse == (f"; the ONNX model itself, given the same beats at the int8 input's resolution (step 0.05), "
                      f"keeps its class on only {100 * kept:.1f} %: 8 bits of input are too few for this model")
    # ... a step of 0.1 / 127 (the int8 grid of these beats) is a fifth of the difference: every class kept
    assert gate.input_resolution_note(path, beats, expected, {"input": {"scale": 0.1 / 127, "zero_point": 0}}) == ""


def _kept_by_hand(beats: np.ndarray, low: float, high: float, classes: np.ndarray) -> float:
    """The difference model's class on the beats at the int8 grid over low .. high (zero inside), worked out here."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255
    zero_point = np.round(-128 - low / scale)
    levels = np.clip(np.round(beats / scale) + zero_point, -128, 127)
    return float((np.where(levels[:, 0] >= levels[:, 1], 0, 1) == classes).mean())


def test_a_spike_that_coarsens_the_int8_grid_is_clipped_at_the_first_percentile_that_keeps_the_most(tmp_path):
    rng = np.random.default_rng(2)
    beats = rng.uniform(-0.09, 0.09, size=(200, 4)).astype(np.float32)
    beats[:, 1] = beats[:, 0] + rng.choice([-1, 1], size=200) * 0.004  # classes 0.004 apart
    beats[7, 3] = 50.0  # one spike where the model does not look: the full range's step is 0.2
    expected = np.stack([beats[:, 0] - beats[:, 1], beats[:, 1] - beats[:, 0]], axis=1)
    classes = expected.argmax(1)
    path = _difference_model(tmp_path)
    chosen = gate.input_range(path, beats, expected)
    shares = {p: _kept_by_hand(beats, *np.percentile(beats, [p, 100 - p]), classes)
              for p in gate.INPUT_CLIP_PERCENTILES}
    full = _kept_by_hand(beats, float(beats.min()), float(beats.max()), classes)
    first_best = min(p for p in shares if shares[p] == max(shares.values()))
    assert full < 0.6 and max(shares.values()) == 1.0  # the construction: a coarse full range, a clip that fixes it
    low, high = np.percentile(beats, [first_best, 100 - first_best])
    assert chosen == {"percentile": first_best, "low": pytest.approx(low), "high": pytest.approx(high),
                      "kept": 1.0, "full": pytest.approx(full)}
    # no spike: the full range already keeps every class, nothing is clipped
    assert gate.input_range(path, np.delete(beats, 7, axis=0), np.delete(expected, 7, axis=0)) is None


def test_the_int8_grid_rounds_inside_its_range_and_clamps_outside():
    beats = np.array([[-3.0, -1.0, -0.004, 0.0, 0.5, 0.9996, 7.0]], dtype=np.float32)
    grid = gate.on_int8_grid(beats, -1.0, 1.0)
    step = 2.0 / 255
    inside = np.abs(beats) <= 1.0
    assert np.all(np.abs(grid[inside] - beats[inside]) <= step / 2 + 1e-7)
    # beyond the range: clamped to its end levels, within a step of the range's ends
    ends = gate.on_int8_grid(np.array([[-1.5, 1.5]], np.float32), -1.0, 1.0)[0]
    assert grid[0, 0] == ends[0] and grid[0, -1] == ends[1]
    assert abs(ends[0] + 1.0) <= step and abs(ends[1] - 1.0) <= step
    assert grid[0, 3] == 0.0  # zero is on the grid
    # a range that does not hold zero is widened to it, as TFLite's calibration does
    assert gate.on_int8_grid(np.array([[0.0, 1.0]], np.float32), 0.5, 1.0)[0, 0] == 0.0
