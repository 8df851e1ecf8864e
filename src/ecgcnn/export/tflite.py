"""ONNX → TFLite through onnx2tf, in four flavours, verified and with the ecgcnn metadata embedded.

Pipeline of :func:`export_tflite` (everything intermediate lives in a temporary directory that is removed):

1. the ONNX model is loaded (external data included) and written as one self-contained file into the temporary
   directory - onnx2tf rewrites the file it is given in place, so it never sees the caller's file;
2. ONNX Runtime's *basic* graph optimisation (constant folding, identity elimination, Conv+BN fusion: standard
   ONNX ops only, portable) folds the shape arithmetic the TorchScript exporter emits for ``F.pad`` in the TCN
   (ConstantOfShape/Concat/Reshape/Slice/Transpose/Cast into a constant pad vector). Without it onnx2tf mis-maps
   the computed pad vector onto the NWC tensor and the TCN conversion fails (``136 vs 140`` in a residual Add).
   For ``int8-full`` a graph with Hydra's competitions rewritten to one winner each
   (:mod:`ecgcnn.export.competition`: at int8 resolution near-equal responses tie) is converted as well, and the file
   that keeps more of ONNX Runtime's classes on the calibration beats is the one gated and written; either is
   compared with the original graph. Where every one-input file is refused and the graph takes the beat's first
   difference (Hydra), the same two are converted once more with that difference as a second int8 input on its own
   grid (:mod:`ecgcnn.export.difference`), and the first that passes is written (TFLite Micro takes one input, so a
   file that passes with one keeps one);
3. ``onnx2tf.convert`` builds a Keras model (``disable_model_save=True``: no SavedModel or FP32/FP16 .tflite of its
   own, which it otherwise always writes; ``not_use_onnxsim=True``: onnxsim is not a dependency and step 2 already
   simplified the graph; ``non_verbose=True``; all stdout/stderr, C++ logs included, is captured). onnx2tf
   transposes NCW to NWC throughout (Conv1d, MaxPool1d, GlobalAveragePool, Pad, Concat on the channel axis), so
   the TFLite input is ``(batch, 140, 1)``. The first configuration tried is ``disable_strict_mode=True`` with the
   dynamic batch kept: onnx2tf's "strict mode" searches reduction axes with a batch-1 dummy inference and, for the
   dynamo exporter's ``Unsqueeze→ReduceMean→Squeeze`` global pooling, picks axes that include the batch axis
   (correct at batch 1, wrong - and output shape ``(1, 5)`` - for larger batches). Each configuration is checked
   against ONNX Runtime on a batch of 8 beats (shape and max |Δ logit|); the next one is tried if it fails:
   strict mode with a dynamic batch, then strict mode with the batch fixed to 1 (``batch_size=1``);
4. the Keras model's forward pass is saved as a SavedModel (``serving_default``) and converted by
   ``tf.lite.TFLiteConverter.from_saved_model``:

   * ``none`` → ``<stem>.tflite``: FP32, ``TFLITE_BUILTINS`` only;
   * ``fp16`` → ``<stem>_fp16.tflite``: ``Optimize.DEFAULT`` + ``supported_types=[tf.float16]`` (FP16 weights,
     dequantised at load; FP32 activations and I/O);
   * ``int8`` → ``<stem>_int8.tflite``: ``Optimize.DEFAULT`` without data = dynamic-range INT8 (int8 weights,
     float activations and I/O), as in the seed;
   * ``int8-full`` → ``<stem>_int8_full.tflite``: static full-integer PTQ calibrated on ``calibration_beats`` (the
     caller's training beats, z-normalised with :func:`~ecgcnn.core.preprocess.normalize_beats` exactly as at
     inference, fed one by one in the SavedModel's NWC layout), ``TFLITE_BUILTINS_INT8`` only, int8 input and output -
     what
     TFLite Micro needs; the input/output scale and zero point are logged;

5. the ``ecgcnn`` JSON from the ONNX ``metadata_props`` is extended with ``format``, ``quantize``,
   ``tflite_input_layout`` (``"NWC"``), ``tflite_input_shape`` (``[-1, 140, 1]``: -1 = dynamic batch), the I/O
   dtypes, the int8 scale/zero point of input and output (``int8-full``), the onnx2tf options used and the
   versions; it is **embedded in the flatbuffer's ``metadata`` table under the name ``ecgcnn``** (no sidecar file)
   and read back by :class:`ecgcnn.runtimes.tflite.TFLitePredictor` with the flatbuffers schema shipped by
   ``ai_edge_litert``, without importing TensorFlow;
6. the final bytes are written to the temporary directory, loaded with
   :class:`~ecgcnn.runtimes.tflite.TFLitePredictor` and compared with ONNX Runtime on the same beats: FP32 must
   agree to ``1e-3`` × max(1, max |logit|) with identical top-1 (else :class:`~ecgcnn.core.errors.ExportError` and no
   file); the other modes report their deviation. Then the file is written atomically (``write_bytes_atomic``)
   and its size logged, with its ratio to the FP32 file of the same stem when that exists in ``output_dir``.

onnx2tf downloads sample images only for 4-D image inputs or its own INT8 calibration; neither path is used here,
so the export never touches the network (importing it: :mod:`ecgcnn.export.toolchain`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import EcgcnnError, ExportError, ModelFileError
from ..core.fileio import write_bytes_atomic
from ..core.formats import DIFFERENCE_INPUT, QUANTIZE_MODES
from ..core.layout import tflite_path
from ..core.preprocess import normalize_beats
from ..runtimes.flatbuffer import embed_metadata
from ..runtimes.metadata import METADATA_KEY, parse_metadata_json
from ..runtimes.tflite import TFLitePredictor, interpreter_class
from .competition import single_winner_competitions
from .difference import difference_input
from .parity import (  # noqa: F401 - the gate's names, re-exported
    LOGIT_TOLERANCE,
    MAX_MEAN_PROBABILITY_ERROR,
    MIN_INT8_AGREEMENT,
    difference_range,
    input_range,
    input_resolution_note,
    max_error,
    on_int8_grid,
    onnx_logits,
    parity,
)
from .toolchain import captured_output, fold_constants, import_toolchain, last_error_line

_VERIFY_BEATS = 8
# onnx2tf configurations, tried in order until one reproduces ONNX Runtime on a batch of beats (see docstring).
_ONNX2TF_ATTEMPTS = (
    {"disable_strict_mode": True},
    {},
    {"batch_size": 1},
)


# ---------------------------------------------------------------------------------------------------- helpers

def _rewritten(onnx, rewrite, source: Path, target: Path):
    """``rewrite`` (changes an ``onnx.ModelProto`` in place; a falsy result: nothing to change) applied to ``source``,
    saved as ``target`` only where it changed something; its result."""
    proto = onnx.load(str(source))
    result = rewrite(proto)
    if result:
        target.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, str(target))
    return result


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


def _calibration(calibration_beats, length: int) -> np.ndarray:
    x = np.asarray(calibration_beats, dtype=np.float32)
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0, :]
    if x.ndim != 2 or x.shape[1] != length or len(x) == 0:
        raise ExportError(f"calibration beats must have shape (N, {length}) with N ≥ 1, got {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise ExportError("calibration beats contain NaN or infinite values")
    return normalize_beats(x)


# ------------------------------------------------------------------------------------------------------ export

def export_tflite(onnx_path: str | os.PathLike, output_dir: str | os.PathLike = "outputs/tflite",
                  quantize: str = "none", calibration_beats: np.ndarray | None = None, log=print) -> Path:
    """Convert an ecgcnn ONNX model to ``<output_dir>/<stem>[_fp16|_int8|_int8_full].tflite``; returns the path.

    ``calibration_beats`` ``(N, 140)`` (raw training beats; z-normalised here as at inference) are required for
    ``int8-full`` and, when given, also serve as verification beats for the other modes.
    """
    onnx_path = Path(onnx_path)
    if quantize not in QUANTIZE_MODES:
        raise ExportError(f"unknown quantisation mode {quantize!r}; choose one of {', '.join(QUANTIZE_MODES)}")
    target = tflite_path(output_dir, onnx_path.stem, quantize)
    if quantize == "int8-full" and (calibration_beats is None or len(calibration_beats) == 0):
        raise ExportError("full-integer INT8 (int8-full) needs calibration beats: pass the training beats")
    if not onnx_path.is_file():
        raise ModelFileError(f"{onnx_path}: ONNX file not found")
    mods = import_toolchain()
    onnx, ort, tf, onnx2tf = mods["onnx"], mods["onnxruntime"], mods["tensorflow"], mods["onnx2tf"]
    try:
        proto = onnx.load(str(onnx_path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for corrupt files
        raise ModelFileError(f"{onnx_path}: not a readable ONNX model ({type(exc).__name__})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    metadata = parse_metadata_json(onnx_path, props.get(METADATA_KEY))
    length = int(metadata["input_length"])
    calibration = _calibration(calibration_beats, length) if calibration_beats is not None else None
    # Verification beats: real (calibration) beats where given, else fixed z-normalised noise.
    if calibration is not None:
        verify = calibration[np.linspace(0, len(calibration) - 1, min(_VERIFY_BEATS, len(calibration))).astype(int)]
    else:
        verify = normalize_beats(np.random.default_rng(0).standard_normal((_VERIFY_BEATS, length)))

    with tempfile.TemporaryDirectory(prefix="ecgcnn-tflite-") as tmp_name:
        tmp = Path(tmp_name)
        raw, folded = tmp / "model.onnx", tmp / f"{onnx_path.stem}.onnx"
        onnx.save(proto, str(raw))  # self-contained copy: onnx2tf rewrites its input file in place
        del proto
        try:
            fold_constants(ort, raw, folded)
            # what onnx2tf converts, and the logits it must reproduce on the verification beats: the graph itself
            # and, for full INT8, Hydra's graph with one winner per competition (the better of the two is kept)
            candidates = [dict(source=folded, competitions=0, two_inputs=False, expected=onnx_logits(raw, verify))]
            single = tmp / "single" / folded.name
            if quantize == "int8-full" and (rewritten := _rewritten(onnx, single_winner_competitions, folded, single)):
                candidates.append(dict(source=single, competitions=rewritten, two_inputs=False,
                                       expected=onnx_logits(single, verify)))
            everything = calibration if calibration is not None else verify
            expected_all = onnx_logits(raw, everything)
            # full INT8 calibrates its input on the training beats, clipped where a spike would coarsen the grid;
            # the gates below still compare on the beats as they are
            clip = input_range(raw, calibration, expected_all) if quantize == "int8-full" else None
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ExportError(f"{onnx_path}: ONNX Runtime cannot load the model "
                              f"({str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc!r})") from None

        def build(candidate: dict, clips: dict) -> dict:
            """Convert one candidate graph and gate it; ``clips``: the calibration ranges of its inputs."""
            source, competitions, two_inputs = candidate["source"], candidate["competitions"], candidate["two_inputs"]
            work = tmp / f"candidate-{competitions}-{int(two_inputs)}"
            work.mkdir()
            model, options, layout, keras_error = _convert_with_onnx2tf(onnx2tf, source, verify,
                                                                        candidate["expected"], length)
            calibrated = None
            if quantize == "int8-full":
                beat_clip, difference_clip = clips.get("beats"), clips.get("difference")
                calibrated = [_to_layout(np.clip(calibration, beat_clip["low"], beat_clip["high"]) if beat_clip
                                         else calibration, layout)]
                if two_inputs:
                    difference = np.diff(calibration, axis=1)
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
                    raise ExportError(f"{onnx_path}: TFLite conversion ({quantize}) failed: {reason[:200]}") from None
            del model
            with captured_output():  # LiteRT announces its XNNPACK delegate on stderr
                info = _tensor_info(interpreter_class()(model_content=model_bytes))
            versions = dict(metadata.get("versions") or {})
            versions.update({"tensorflow": tf.__version__, "onnx2tf": onnx2tf.__version__})
            stored = dict(metadata, format="tflite", quantize=quantize, tflite_input_layout=layout, **info,
                          onnx2tf_options={k: v for k, v in options.items() if k not in ("non_verbose", "verbosity")},
                          source_onnx=onnx_path.name, versions=versions)
            if quantize == "int8-full":
                stored["calibration"] = {"beats": int(len(calibration)), "split": "train",
                                         "preprocessing": metadata.get("preprocessing"),
                                         **{f"{'input' if key == 'beats' else key}_clipped":
                                            {k: clip_[k] for k in ("percentile", "low", "high")}
                                            for key, clip_ in clips.items() if clip_}}
            if competitions:
                stored["competitions"] = f"{competitions} rewritten to one winner each (ArgMax/ArgMin)"
            model_bytes = embed_metadata(model_bytes, stored)
            # Load the final bytes exactly as users will (metadata read-back included); compare with ONNX Runtime.
            written = work / target.name
            written.write_bytes(model_bytes)
            try:
                with captured_output():
                    actual = TFLitePredictor(written).logits(everything)  # raw logits of normalised beats
            except EcgcnnError as exc:
                raise ExportError(f"{target}: the converted model does not load ({exc})") from None
            error, agreement, problem = parity(quantize, actual, expected_all)
            return dict(bytes=model_bytes, info=info, options=options, layout=layout, keras_error=keras_error,
                        error=error, agreement=agreement, problem=problem, competitions=competitions,
                        two_inputs=two_inputs, source=source)

        def describe(b: dict) -> str:
            return (f"{'one winner each' if b['competitions'] else 'every tie counted'}"
                    f"{', the difference as a second input' if b['two_inputs'] else ''}")

        def build_all(group: list[dict], clips: dict) -> tuple[list[dict], list[ExportError]]:
            built, refusals = [], []
            for candidate in group:
                try:
                    built.append(build(candidate, clips))
                except ExportError as exc:
                    refusals.append(exc)
            return built, refusals

        def choose(built: list[dict]) -> dict:
            # a passing file before a refused one, then the larger share of ONNX Runtime's classes (ties: the graph
            # itself): neither way of counting ties wins everywhere (see export/competition.py)
            return max(built, key=lambda b: (b["problem"] is None, b["agreement"]))

        if clip:
            log(f"full INT8 input calibrated on the training beats' values clipped at the {clip['percentile']:g} and "
                f"{100 - clip['percentile']:g} percentiles ({clip['low']:.3g} .. {clip['high']:.3g}): ONNX Runtime "
                f"keeps its class on {100 * clip['kept']:.1f} % of them at that int8 grid, {100 * clip['full']:.1f} % "
                f"at the full range's")
        built, refusals = build_all(candidates, {"beats": clip})
        if built and len(candidates) > 1:
            log("full INT8, Hydra's competitions: " + "; ".join(
                f"{describe(b)}: ONNX Runtime's class on {100 * b['agreement']:.1f} % of the training beats"
                for b in built) + f" -> kept {describe(choose(built))}")
        # Refused with one int8 input: a graph that takes the beat's first difference gets it as a second input on
        # its own grid (export/difference.py); a file that passes with one input keeps one (TFLite Micro takes one).
        two = tmp / "two" / folded.name
        if (quantize == "int8-full" and not any(b["problem"] is None for b in built)
                and _rewritten(onnx, difference_input, folded, two)):
            try:
                difference = np.diff(calibration, axis=1)
                beat_clip = input_range(two, calibration, expected_all, difference)
                on_grid = (on_int8_grid(calibration, beat_clip["low"], beat_clip["high"]) if beat_clip else
                           on_int8_grid(calibration, calibration.min(), calibration.max()))
                difference_clip = difference_range(two, on_grid, difference, expected_all)
                group = [dict(source=two, competitions=0, two_inputs=True, expected=onnx_logits(two, verify))]
                two_single = tmp / "two-single" / folded.name
                if rewritten := _rewritten(onnx, single_winner_competitions, two, two_single):
                    group.append(dict(source=two_single, competitions=rewritten, two_inputs=True,
                                      expected=onnx_logits(two_single, verify)))
            except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
                reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else repr(exc)
                raise ExportError(f"{onnx_path}: ONNX Runtime cannot run the two-input graph ({reason})") from None
            more, more_refusals = build_all(group, {"beats": beat_clip, "difference": difference_clip})
            if more:
                why = f" ({choose(built)['problem']})" if built else ""
                log(f"full INT8 refused with one int8 input{why}; the beat's first difference as a second int8 input: "
                    + "; ".join(f"{describe(b)}: ONNX Runtime's class on {100 * b['agreement']:.1f} % of the "
                                f"training beats" for b in more) + f" -> best {describe(choose(more))}")
            built, refusals = built + more, refusals + more_refusals
        if not built:
            raise refusals[0]
        kept = choose(built)
        model_bytes, info, error, agreement = kept["bytes"], kept["info"], kept["error"], kept["agreement"]
        problem = kept["problem"]
        if problem and quantize == "int8-full":
            problem += input_resolution_note(kept["source"], everything, expected_all, info["quantization"])
        if problem:
            raise ExportError(f"{target}: {problem}")
        options, layout, keras_error = kept["options"], kept["layout"], kept["keras_error"]

    write_bytes_atomic(target, model_bytes)
    _report(log, target, tflite_path(output_dir, onnx_path.stem, "none"), quantize, layout, options, keras_error,
            error, agreement, len(everything), info)
    return target


def _report(log, target: Path, fp32: Path, quantize: str, layout: str, options: dict, keras_error: float,
            error: float, agreement: float, n_verify: int, info: dict) -> None:
    attempt = {k: v for k, v in options.items() if k in ("disable_strict_mode", "batch_size")}
    log(f"onnx2tf {attempt or 'defaults'}: input {layout} {info['tflite_input_shape']}, "
        f"TensorFlow vs ONNX Runtime max relative |Δ logit| {keras_error:.1e}")
    log(f"TFLite ({quantize}) vs ONNX Runtime on {n_verify} beats: max relative |Δ logit| {error:.1e}, "
        f"top-1 agreement {100 * agreement:.2f} %")
    if "quantization" in info:
        q = info["quantization"]
        second = (f"; int8 difference input: scale {q['difference']['scale']:.6g}, zero point "
                  f"{q['difference']['zero_point']}" if "difference" in q else "")
        log(f"int8 input: scale {q['input']['scale']:.6g}, zero point {q['input']['zero_point']}{second}; "
            f"int8 output: scale {q['output']['scale']:.6g}, zero point {q['output']['zero_point']}")
    size = target.stat().st_size
    line = f"saved {target} ({size / 1024:.1f} KiB"
    if quantize != "none" and fp32.is_file():
        line += f", {size / fp32.stat().st_size:.2f}× FP32"
    log(line + ")")
