"""The TFLite export's parity gate on logits whose answer is known by construction: probabilities computed here
with an independent softmax, agreement counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.export import parity as gate

pytestmark = pytest.mark.fast


def _probabilities(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def onnx_logits():
    return np.random.default_rng(0).normal(scale=3.0, size=(200, 5))


def test_fp32_must_reproduce_the_logits(onnx_logits):
    error, agreement, problem = gate.parity("none", onnx_logits + 1e-4, onnx_logits)
    assert problem is None and agreement == 1.0
    assert error == pytest.approx(1e-4 / np.abs(onnx_logits).max())
    off = onnx_logits.copy()
    off[7] += 0.05 * np.abs(onnx_logits).max()  # every class moved alike: the same arg-max, logits off
    error, agreement, problem = gate.parity("none", off, onnx_logits)
    assert agreement == 1.0 and error == pytest.approx(0.05)
    assert problem.startswith("the FP32 TFLite model disagrees with ONNX Runtime (max relative |Δ logit| 5.0e-02")
    tied = onnx_logits.copy()
    tied[3, :2] = [20.0, 20.0 - 1e-5]  # a near tie in ONNX Runtime's logits ...
    flipped = tied.copy()
    flipped[3, :2] = [20.0 - 1e-5, 20.0]  # ... flipped: a tiny error, another class
    error, agreement, problem = gate.parity("none", flipped, tied)
    assert error < gate.LOGIT_TOLERANCE and agreement == 1 - 1 / 200 and "top-1 identical: False" in problem


@pytest.mark.parametrize("quantize", ["fp16", "int8", "int8-full"])
def test_quantised_models_keep_the_class_and_the_probabilities(onnx_logits, quantize):
    assert gate.parity(quantize, onnx_logits + 0.01, onnx_logits)[2] is None
    # 11 of 200 beats (5.5 %) given another class: 94.5 % agreement
    wrong = onnx_logits.copy()
    wrong[:11] = np.roll(wrong[:11], 1, axis=1)
    changed = int(np.sum(wrong.argmax(1) != onnx_logits.argmax(1)))
    _, agreement, problem = gate.parity(quantize, wrong, onnx_logits)
    assert agreement == 1 - changed / 200 < gate.MIN_INT8_AGREEMENT
    assert problem == (f"the {quantize} model gives ONNX Runtime's class on only {100 * agreement:.1f} % of 200 "
                       f"beats (at least 95 % required)")
    # every arg-max kept, probabilities sharpened: logits x 3 (a dequantisation that divides by a scale of 1/3)
    sharp = onnx_logits * 3.0
    drift = np.abs(_probabilities(sharp) - _probabilities(onnx_logits)).max(axis=1).mean()
    assert drift > gate.MAX_MEAN_PROBABILITY_ERROR
    _, agreement, problem = gate.parity(quantize, sharp, onnx_logits)
    assert agreement == 1.0
    assert problem == (f"the {quantize} model's probabilities differ from ONNX Runtime's by {drift:.3f} on average "
                       f"over 200 beats (at most 0.1 allowed)")
    # just inside the bound: logits scaled until the mean drift is below it
    gentle = onnx_logits * 1.1
    assert np.abs(_probabilities(gentle) - _probabilities(onnx_logits)).max(axis=1).mean() <= 0.1
    assert gate.parity(quantize, gentle, onnx_logits)[2] is None


def test_a_wrong_output_shape_is_a_failure(onnx_logits):
    error, agreement, problem = gate.parity("int8-full", onnx_logits[:, :4], onnx_logits)
    assert error == float("inf") and agreement == 0.0
    assert problem == "the model gives outputs of shape (200, 4); ONNX Runtime (200, 5)"
