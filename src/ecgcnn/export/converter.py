"""One ONNX graph to one TFLite flatbuffer, gated: onnx2tf, TensorFlow's converter in the chosen quantisation mode,
the ecgcnn metadata embedded, the bytes loaded as users load them and compared with ONNX Runtime.

:class:`Conversion` holds what every candidate graph of one export shares (the beats, the expected logits, the
toolchain); :meth:`Conversion.build` converts one candidate and returns its bytes with the gate's verdict, and writes
nothing outside the export's temporary directory. Which candidates are converted: ``ecgcnn.export.tflite`` (one) and
``ecgcnn.export.full_int8`` (full INT8's tie rules and inputs). The steps are described in ``ecgcnn.export.tflite``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import EcgcnnError, ExportError
from ..core.formats import DIFFERENCE_INPUT
from ..runtimes.flatbuffer import embed_metadata
from ..runtimes.tflite import TFLitePredictor, interpreter_class
from .parity import LOGIT_TOLERANCE, max_error, parity
from .toolchain import captured_output, last_error_line

# onnx2tf configurations, tried in order until one reproduces ONNX Runtime on a batch of beats (see export/tflite.py).
_ONNX2TF_ATTEMPTS = (
    {"disable_strict_mode": True},
    {},
    {"batch_size": 1},
)


# ---------------------------------------------------------------------------------------------------- helpers

def _layout_of(shape, length: int) -> str:
    dims = tuple(shape[1:])
    if dims == (length, 1):
        return "NWC"
    if dims == (1, length):
        return "NCW"
    raise ExportError(f"onnx2tf produced an unexpected input shape {tuple(shape)}")


def _to_layout(beats: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(beats[:, :, None] if layout == "NWC" else beats[:, None, :], dtype=np.float32)


def _is_difference(tensor) -> bool:
    """Whether a Keras input (or signature argument) is the beat's first difference (export/difference.py)."""
    return DIFFERENCE_INPUT in tensor.name


def _feeds(model, beats: np.ndarray, layout: str) -> list[np.ndarray]:
    """The Keras model's inputs, in its order, for z-normalised beats (N, L): the beats, and their first difference
    where the model takes it."""
    return [_to_layout(np.diff(beats, axis=1) if _is_difference(i) else beats, layout) for i in model.inputs]


def _keras_logits(model, xs: list[np.ndarray]) -> np.ndarray:
    if model.inputs[0].shape[0] is None:
        return np.asarray(model(xs if len(xs) > 1 else xs[0], training=False))
    rows = [model([x[i:i + 1] for x in xs] if len(xs) > 1 else xs[0][i:i + 1], training=False)
            for i in range(len(xs[0]))]
    return np.concatenate([np.asarray(row) for row in rows], axis=0)


def _convert_with_onnx2tf(onnx2tf, onnx_file: Path, beats: np.ndarray, expected: np.ndarray, length: int):
    """Run onnx2tf with each configuration in turn; return (keras model, options, layout, error)."""
    failures = []
    for attempt in _ONNX2TF_ATTEMPTS:
        options = dict(not_use_onnxsim=True, non_verbose=True, verbosity="error", disable_model_save=True,
                       **attempt)
        recursion_limit = sys.getrecursionlimit()
        with captured_output() as captured:
            try:
                model = onnx2tf.convert(input_onnx_file_path=str(onnx_file),
                                        output_folder_path=str(onnx_file.parent / "onnx2tf"), **options)
                beat_input = next(i for i in model.inputs if not _is_difference(i))
                layout = _layout_of(tuple(beat_input.shape), length)
                error = max_error(_keras_logits(model, _feeds(model, beats, layout)), expected)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - onnx2tf calls sys.exit(1) on errors
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else last_error_line(captured())
                failures.append(f"{attempt or 'defaults'}: {reason[:160]}")
                continue
            finally:
                sys.setrecursionlimit(recursion_limit)
        if error <= LOGIT_TOLERANCE:
            return model, options, layout, error
        failures.append(f"{attempt or 'defaults'}: max relative |Δ logit| {error:.1e}")
    raise ExportError(f"{onnx_file.name}: onnx2tf produced no TensorFlow model that matches ONNX Runtime "
                      f"({'; '.join(failures)})")


def _save_saved_model(tf, model, path: Path) -> None:
    """Save the model's forward pass as a SavedModel with a ``serving_default`` signature.

    A plain ``tf.Module`` holding one ``tf.function``: saving the Keras model itself traces every one of its
    (TFOpLambda) layers and takes ~14 s for the VGG instead of ~0.3 s. The weights are graph constants captured by
    the function (onnx2tf creates no variables); any variables are tracked anyway.
    """
    module = tf.Module()
    module.tracked_variables = list(model.variables)
    if len(model.inputs) == 1:
        spec = model.inputs[0]
        serve = tf.function(lambda beats: model(beats, training=False),
                            input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name="beats")])
    else:  # the beat and its first difference, named in the signature (LiteRT orders a signature's inputs by name)
        beat, = (i for i in model.inputs if not _is_difference(i))
        difference, = (i for i in model.inputs if _is_difference(i))

        def forward(beats, beat_difference):
            return model([beat_difference if _is_difference(i) else beats for i in model.inputs], training=False)

        serve = tf.function(forward, input_signature=[
            tf.TensorSpec(beat.shape, beat.dtype, name="beats"),
            tf.TensorSpec(difference.shape, difference.dtype, name=DIFFERENCE_INPUT)])
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve.get_concrete_function()})


def _configure(tf, converter, quantize: str, calibration: list[np.ndarray] | None) -> None:
    """``calibration``: the full-INT8 calibration inputs in the SavedModel's layout, the beats and, for a two-input
    model, their first difference."""
    if quantize == "none":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    elif quantize == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    else:
        def representative_dataset():
            for i in range(len(calibration[0])):
                if len(calibration) == 1:
                    yield [calibration[0][i:i + 1]]
                else:  # by signature name: the converter's order of two inputs is its own
                    yield {"beats": calibration[0][i:i + 1], DIFFERENCE_INPUT: calibration[1][i:i + 1]}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8


def _tensor_info(interpreter) -> dict:
    inputs, (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    inp, = (i for i in inputs if DIFFERENCE_INPUT not in i["name"])
    difference = [i for i in inputs if DIFFERENCE_INPUT in i["name"]]

    def scale(tensor) -> dict:
        return {"scale": float(tensor["quantization"][0]), "zero_point": int(tensor["quantization"][1])}

    info = {
        "tflite_input_shape": [int(d) for d in inp.get("shape_signature", inp["shape"])],
        "tflite_input_dtype": np.dtype(inp["dtype"]).name,
        "tflite_output_dtype": np.dtype(out["dtype"]).name,
    }
    if difference:
        info["tflite_second_input"] = {"name": DIFFERENCE_INPUT, "what": "first difference of the z-normalised beat",
                                       "shape": [int(d) for d in difference[0].get("shape_signature",
                                                                                     difference[0]["shape"])]}
    if np.dtype(inp["dtype"]).kind in "iu" or np.dtype(out["dtype"]).kind in "iu":
        info["quantization"] = {"input": scale(inp), **({"difference": scale(difference[0])} if difference else {}),
                                "output": scale(out)}
    return info


def ort_error(onnx_path: Path, what: str, exc: Exception) -> ExportError:
    """One line for an ONNX Runtime failure on the export's graphs (ORT raises its own exception types)."""
    reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else repr(exc)
    return ExportError(f"{onnx_path}: ONNX Runtime cannot {what} ({reason})")


# -------------------------------------------------------------------------------------------------- conversion

@dataclass
class Conversion:
    """One export's shared state: the toolchain (``tf``, ``onnx2tf``), its temporary directory, the mode, the source
    model's metadata and path, the target path, the z-normalised ``calibration`` beats (full INT8; TensorFlow's
    calibration sees the ``representative`` ones among them), the ``verify`` beats onnx2tf's output is checked on, and
    the beats the gates compare on (``gate_beats``) with ONNX Runtime's logits of them (``expected``)."""

    tf: object
    onnx2tf: object
    tmp: Path
    quantize: str
    metadata: dict
    onnx_path: Path
    target: Path
    calibration: np.ndarray | None
    verify: np.ndarray
    gate_beats: np.ndarray
    expected: np.ndarray
    representative: np.ndarray | None = None

    @property
    def length(self) -> int:
        return int(self.metadata["input_length"])

    def build(self, candidate: dict, clips: dict) -> dict:
        """Convert one candidate graph and gate it. ``candidate``: ``source`` (the ONNX file), ``competitions`` (how
        many were rewritten to one winner), ``two_inputs`` and ``expected`` (ONNX Runtime's logits of the verification
        beats for that graph); ``clips``: the calibration ranges of its inputs (``beats``, ``difference``)."""
        tf, quantize, representative = self.tf, self.quantize, self.representative
        source, competitions, two_inputs = candidate["source"], candidate["competitions"], candidate["two_inputs"]
        work = self.tmp / f"candidate-{competitions}-{int(two_inputs)}"
        work.mkdir()
        model, options, layout, keras_error = _convert_with_onnx2tf(self.onnx2tf, source, self.verify,
                                                                    candidate["expected"], self.length)
        calibrated = None
        if quantize == "int8-full":
            beat_clip, difference_clip = clips.get("beats"), clips.get("difference")
            calibrated = [_to_layout(np.clip(representative, beat_clip["low"], beat_clip["high"]) if beat_clip
                                     else representative, layout)]
            if two_inputs:
                difference = np.diff(representative, axis=1)
                calibrated.append(_to_layout(np.clip(difference, difference_clip["low"], difference_clip["high"])
                                             if difference_clip else difference, layout))
        with captured_output() as captured:
            try:
                _save_saved_model(tf, model, work / "saved_model")
                converter = tf.lite.TFLiteConverter.from_saved_model(str(work / "saved_model"))
                _configure(tf, converter, quantize, calibrated)
                model_bytes = bytes(converter.convert())
            except Exception as exc:  # noqa: BLE001 - converter errors come as several types
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else last_error_line(captured())
                raise ExportError(f"{self.onnx_path}: TFLite conversion ({quantize}) failed: {reason[:200]}") from None
        del model
        with captured_output():  # LiteRT announces its XNNPACK delegate on stderr
            info = _tensor_info(interpreter_class()(model_content=model_bytes))
        versions = dict(self.metadata.get("versions") or {})
        versions.update({"tensorflow": tf.__version__, "onnx2tf": self.onnx2tf.__version__})
        stored = dict(self.metadata, format="tflite", quantize=quantize, tflite_input_layout=layout, **info,
                      onnx2tf_options={k: v for k, v in options.items() if k not in ("non_verbose", "verbosity")},
                      source_onnx=self.onnx_path.name, versions=versions)
        if quantize == "int8-full":
            drawn = len(representative) < len(self.calibration)
            stored["calibration"] = {"beats": int(len(representative)), "split": "train",
                                     **({"drawn_from": int(len(self.calibration)), "seed": 0} if drawn else {}),
                                     "preprocessing": self.metadata.get("preprocessing"),
                                     **{f"{'input' if key == 'beats' else key}_clipped":
                                        {k: clip_[k] for k in ("percentile", "low", "high")}
                                        for key, clip_ in clips.items() if clip_}}
        if competitions:
            stored["competitions"] = f"{competitions} rewritten to one winner each (ArgMax/ArgMin)"
        plain, model_bytes = model_bytes, embed_metadata(model_bytes, stored)
        # Load the final bytes exactly as users will (metadata read-back included); compare with ONNX Runtime.
        written = work / self.target.name
        written.write_bytes(model_bytes)
        try:
            with captured_output():
                actual = TFLitePredictor(written).logits(self.gate_beats)  # raw logits of normalised beats
        except EcgcnnError as exc:
            raise ExportError(f"{self.target}: the converted model does not load ({exc})") from None
        error, agreement, problem = parity(quantize, actual, self.expected)
        return dict(bytes=model_bytes, plain=plain, metadata=stored, info=info, options=options, layout=layout,
                    keras_error=keras_error, error=error, agreement=agreement, problem=problem,
                    competitions=competitions, two_inputs=two_inputs, source=source)
