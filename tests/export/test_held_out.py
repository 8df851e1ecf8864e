"""The full-INT8 held-out check: a twin of the model, converted the way the kept file was, is gated on training
beats it was not fitted on (ecgcnn.export.tflite.HeldOut, ecgcnn.workflows.held_out).

Expected values come from constructions: a linear graph built here whose class is the sign of (first half - second
half) of the beat, fitting beats far from that boundary, held-out beats whose halves differ by far less than one step
of the int8 output (so no int8 file can keep their class), and, for the pass, LiteRT's and ONNX Runtime's classes of
the held-out beats counted here."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ecgcnn.core.errors import ExportError
from ecgcnn.core.preprocess import PREPROCESSING, normalize_beats
from ecgcnn.export import parity as gate
from ecgcnn.export.tflite import HeldOut, export_tflite
from ecgcnn.runtimes.metadata import METADATA_KEY
from ecgcnn.runtimes.onnx import OnnxPredictor
from ecgcnn.runtimes.tflite import TFLitePredictor

LENGTH = 64
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnx2tf") is None,
                                reason="the 'tflite' extra is not installed")


def _halves_graph(path, length: int = LENGTH):
    """logits = (d, -d), d = mean of the first half of the beat - mean of the second: class 1 where d < 0."""
    w = np.zeros((length, 2), np.float32)
    w[: length // 2, 0], w[length // 2:, 0] = 2.0 / length, -2.0 / length
    w[:, 1] = -w[:, 0]
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["beats"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"],
                                                                                    ["logits"])],
        "halves", [helper.make_tensor_value_info("beats", TensorProto.FLOAT, ["batch", 1, length])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    metadata = {"model": "halves", "model_kwargs": {"num_classes": 2}, "labels": [0, 1],
                "class_names": ["first", "second"], "input_length": length, "preprocessing": PREPROCESSING,
                "metrics": {}, "versions": {}, "format": "onnx", "opset": 17}
    helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
    onnx.save(model, str(path))
    return path


def _beats(n: int, step: float, seed: int) -> np.ndarray:
    """Beats whose halves differ by +-``step`` (alternating) on a shared wave: d = +-step before z-normalising."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, LENGTH, endpoint=False)
    beats = np.sin(2 * np.pi * (2 * t + rng.uniform(0, 1, (n, 1)))) * rng.uniform(0.5, 2, (n, 1))
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[:, None]
    beats[:, : LENGTH // 2] += sign * step
    beats[:, LENGTH // 2:] -= sign * step
    return beats.astype(np.float32)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    return _halves_graph(tmp_path_factory.mktemp("halves") / "halves.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("twin", [True, False], ids=["twin", "itself"])
def test_held_out_beats_whose_classes_no_int8_file_keeps_refuse_the_file(graph, tmp_path, twin):
    """A twin (here: the same graph) or the model itself (a network's validation beats), on held-out beats this close
    to its boundary: refused in one line, no file."""
    fitting = _beats(120, 1.0, seed=0)          # halves 2 apart: far from the boundary
    held = _beats(40, 1e-4, seed=1)             # halves 2e-4 apart: below any int8 output step of this model
    d = normalize_beats(held)[:, : LENGTH // 2].mean(1) - normalize_beats(held)[:, LENGTH // 2:].mean(1)
    assert np.all(np.abs(d) < 1e-3) and np.all(np.sign(d) == np.where(np.arange(40) % 2 == 0, 1, -1))
    # without the check the file passes: on its training beats every class is kept
    path = export_tflite(graph, tmp_path / "plain", quantize="int8-full", calibration_beats=fitting,
                         log=lambda message: None)
    assert "held_out" not in TFLitePredictor(path).metadata
    agreement = (TFLitePredictor(path).predict_proba(fitting).argmax(1)
                 == OnnxPredictor(graph).predict_proba(fitting).argmax(1)).mean()
    assert agreement >= gate.MIN_INT8_AGREEMENT
    who = r"a twin of this model was not fitted on \(the held-out beats, converted the same way\)" if twin else \
        r"this model was not fitted on \(the held-out beats\)"
    with pytest.raises(ExportError, match=rf"held-out check: on the 40 training beats {who}: .*at least 95 % "
                                          rf"required.*would change more than its gate on the training beats shows"):
        export_tflite(graph, tmp_path / "checked", quantize="int8-full", calibration_beats=fitting,
                      log=lambda message: None, held_out=HeldOut(onnx=graph if twin else None, fit_beats=fitting,
                                                                 beats=held, how="the held-out beats"))
    assert not (tmp_path / "checked").exists() or not list((tmp_path / "checked").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("twin", [True, False], ids=["twin", "itself"])
def test_held_out_beats_whose_classes_are_kept_are_recorded_in_the_file(graph, tmp_path, twin):
    fitting, held = _beats(120, 1.0, seed=0), _beats(30, 1.0, seed=2)
    logs: list[str] = []
    path = export_tflite(graph, tmp_path, quantize="int8-full", calibration_beats=fitting, log=logs.append,
                         held_out=HeldOut(onnx=graph if twin else None, fit_beats=fitting, beats=held,
                                          how="the held-out beats"))
    # the twin is this graph calibrated on the same beats, so its file is this one: its share counted here
    kept = (TFLitePredictor(path).predict_proba(held).argmax(1)
            == OnnxPredictor(graph).predict_proba(held).argmax(1)).mean()
    figures = TFLitePredictor(path).metadata["held_out"]
    assert figures["beats"] == 30 and figures["how"] == "the held-out beats"
    assert figures["checked"] == ("a twin converted the same way" if twin else "this file")
    assert figures["agreement"] == pytest.approx(kept, abs=1e-4) and kept >= gate.MIN_INT8_AGREEMENT
    subject = "a twin (the held-out beats), converted the same way" if twin else "the file gives"
    assert any(line.startswith(f"full INT8 held-out check: {subject}") for line in logs), logs
