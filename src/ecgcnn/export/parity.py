"""The export's parity gates: a converted model's logits against ONNX Runtime's, and what a refused full-INT8 file
is told about its input.

``ecgcnn.export.converter`` applies :func:`parity` to every TFLite file it builds; ``ecgcnn.export.full_int8`` chooses
the int8 inputs' ranges with :func:`input_range` and :func:`difference_range`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.formats import DIFFERENCE_INPUT
from ..core.memory import CHECK_BATCH
from ..runtimes.base import softmax
from ..runtimes.onnx import open_session

# A quantised model (FP16, dynamic-range or full INT8) must give ONNX Runtime's top-1 class on at least this share of
# the training beats, and probabilities that differ from ONNX Runtime's by at most this much on average (the largest
# class difference of each beat, averaged over the beats): a conversion can keep every arg-max and still change what
# the probabilities say. Measured on the training beats, full INT8 against ONNX: pretrained:edge 0.0035,
# pretrained:best 0.067 (its ridge decision values are wide logits).
MIN_INT8_AGREEMENT = 0.95
MAX_MEAN_PROBABILITY_ERROR = 0.1
# Keras-vs-ONNX and FP32-TFLite-vs-ONNX tolerance, relative to max(1, max |logit|).
LOGIT_TOLERANCE = 1e-3


def onnx_logits(path: Path, beats: np.ndarray, difference: np.ndarray | None = None) -> np.ndarray:
    """ONNX Runtime's logits of z-normalised beats (N, L), :data:`~ecgcnn.core.memory.CHECK_BATCH` beats per call; a
    graph that takes their first difference as a second input (export/difference.py) gets ``difference`` (N, L - 1),
    else the beats' own."""
    session = open_session(path, quiet=True)
    inputs = {tensor.name: (np.diff(beats, axis=1) if difference is None else difference)
              if tensor.name == DIFFERENCE_INPUT else beats for tensor in session.get_inputs()}
    return np.concatenate([session.run(None, {name: values[i:i + CHECK_BATCH, None, :]
                                              for name, values in inputs.items()})[0]
                           for i in range(0, len(beats), CHECK_BATCH)], axis=0)


# A full-INT8 input has 256 levels over the calibration beats' range. One far-out value (a spike) can stretch that
# range until the levels are too coarse for the rest; clipping the calibration beats at a percentile of their values
# narrows it, and inputs beyond it saturate at run time (every runtime here clamps to -128..127).
INPUT_CLIP_PERCENTILES = (0.01, 0.1, 0.5, 1.0)


def dequantized(beats: np.ndarray, scale: float, zero_point: float) -> np.ndarray:
    """The beats after an int8 input of this ``scale`` and ``zero_point``: rounded, clamped to -128..127, back."""
    return ((np.clip(np.round(beats / scale) + zero_point, -128, 127) - zero_point) * scale).astype(np.float32)


def on_int8_grid(beats: np.ndarray, low: float, high: float) -> np.ndarray:
    """The beats as a full-INT8 input calibrated on ``low .. high`` sees them: 256 levels over the range (widened to
    hold zero, as TFLite's calibration does), rounded, clamped at its ends."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = (high - low) / 255 or 1.0
    return dequantized(beats, scale, np.round(-128 - low / scale))


def _best_clip(values: np.ndarray, kept) -> dict | None:
    """The percentile of ``values`` (from :data:`INPUT_CLIP_PERCENTILES`, each side) whose int8 grid keeps the most
    classes (``kept(low, high)``: a share), when that is more than the values' own min..max keeps; else None."""
    full = kept(values.min(), values.max())
    best = None
    for percentile in INPUT_CLIP_PERCENTILES:
        low, high = np.percentile(values, [percentile, 100 - percentile])
        share = kept(low, high)
        if share > (best["kept"] if best else full):
            best = {"percentile": percentile, "low": float(low), "high": float(high), "kept": share, "full": full}
    return best


def input_range(onnx_file: Path, beats: np.ndarray, expected: np.ndarray,
                difference: np.ndarray | None = None) -> dict | None:
    """Where clipping helps, the range to calibrate a full-INT8 input on: the percentile of the beats' values (from
    :data:`INPUT_CLIP_PERCENTILES`, each side) whose int8 grid keeps ONNX Runtime's class (``expected`` logits) on
    the most beats, when that is more than the beats' own min..max keeps; else None (the full range). A graph with
    the first difference as a second input gets ``difference`` as it is (the beats' grid alone is chosen here)."""
    classes = expected.argmax(1)
    return _best_clip(beats, lambda low, high: float(
        (onnx_logits(onnx_file, on_int8_grid(beats, low, high), difference).argmax(1) == classes).mean()))


def difference_range(onnx_file: Path, beats: np.ndarray, difference: np.ndarray, expected: np.ndarray) -> dict | None:
    """:func:`input_range` of the second input of a two-input graph (export/difference.py): the clip of the
    ``difference`` values whose int8 grid keeps the most classes, the ``beats`` given as the first input sees them."""
    classes = expected.argmax(1)
    return _best_clip(difference, lambda low, high: float(
        (onnx_logits(onnx_file, beats, on_int8_grid(difference, low, high)).argmax(1) == classes).mean()))


def input_resolution_note(onnx_file: Path, beats: np.ndarray, expected: np.ndarray, quantization: dict) -> str:
    """Where the int8 inputs alone already change the class: ONNX Runtime on the beats (and, for a two-input graph,
    their first difference) rounded to the inputs' grids, against ONNX Runtime on the beats themselves."""
    scale = quantization["input"]["scale"]
    rounded = dequantized(beats, scale, quantization["input"]["zero_point"])
    second = quantization.get("difference")
    difference = (dequantized(np.diff(beats, axis=1), second["scale"], second["zero_point"]) if second else None)
    kept = float((onnx_logits(onnx_file, rounded, difference).argmax(1) == expected.argmax(1)).mean())
    if kept >= MIN_INT8_AGREEMENT:
        return ""
    steps = f"step {scale:.3g}" + (f"; the difference's {second['scale']:.3g}" if second else "")
    return (f"; the ONNX model itself, given the same beats at the int8 input's resolution ({steps}), "
            f"keeps its class on only {100 * kept:.1f} %: 8 bits of input are too few for this model")


def parity(quantize: str, actual: np.ndarray, expected: np.ndarray) -> tuple[float, float, str | None]:
    """(max relative |Δ logit|, top-1 agreement, why the TFLite logits ``actual`` fail against ONNX Runtime's or None).

    FP32 must reproduce the logits (:data:`LOGIT_TOLERANCE`) and every top-1 class; a quantised model must keep the
    top-1 class on :data:`MIN_INT8_AGREEMENT` of the beats and its probabilities within
    :data:`MAX_MEAN_PROBABILITY_ERROR` on average.
    """
    if actual.shape != expected.shape:
        return float("inf"), 0.0, f"the model gives outputs of shape {actual.shape}; ONNX Runtime {expected.shape}"
    error = max_error(actual, expected)
    agreement = float((actual.argmax(1) == expected.argmax(1)).mean())
    if quantize == "none":
        if error > LOGIT_TOLERANCE or agreement < 1.0:
            return error, agreement, (f"the FP32 TFLite model disagrees with ONNX Runtime (max relative |Δ logit| "
                                      f"{error:.1e}, tolerance {LOGIT_TOLERANCE:.0e}; top-1 identical: "
                                      f"{agreement == 1.0})")
        return error, agreement, None
    what = f"the {quantize} model"
    if agreement < MIN_INT8_AGREEMENT:
        return error, agreement, (f"{what} gives ONNX Runtime's class on only {100 * agreement:.1f} % of "
                                  f"{len(expected)} beats (at least {100 * MIN_INT8_AGREEMENT:.0f} % "
                                  f"required)")
    drift = float(np.abs(softmax(actual.astype(np.float64)) - softmax(expected.astype(np.float64))).max(1).mean())
    if drift > MAX_MEAN_PROBABILITY_ERROR:
        return error, agreement, (f"{what}'s probabilities differ from ONNX Runtime's by {drift:.3f} on average over "
                                  f"{len(expected)} beats (at most {MAX_MEAN_PROBABILITY_ERROR} allowed)")
    return error, agreement, None


def max_error(actual: np.ndarray, expected: np.ndarray) -> float:
    if actual.shape != expected.shape:
        return float("inf")
    return float(np.abs(actual - expected).max()) / max(1.0, float(np.abs(expected).max()))
