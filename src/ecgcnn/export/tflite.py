"""ONNX → TFLite through onnx2tf, in four flavours, verified and with the ecgcnn metadata embedded.

Pipeline of :func:`export_tflite` (everything intermediate lives in a temporary directory that is removed):

1. the ONNX model is loaded (external data included) and written as one self-contained file into the temporary
   directory - onnx2tf rewrites the file it is given in place, so it never sees the caller's file;
2. ONNX Runtime's *basic* graph optimisation (constant folding, identity elimination, Conv+BN fusion: standard
   ONNX ops only, portable) folds the shape arithmetic the TorchScript exporter emits for ``F.pad`` in the TCN
   (ConstantOfShape/Concat/Reshape/Slice/Transpose/Cast into a constant pad vector). Without it onnx2tf mis-maps
   the computed pad vector onto the NWC tensor and the TCN conversion fails (``136 vs 140`` in a residual Add).
   For ``int8-full`` more than one graph may be converted (Hydra's competitions with one winner each, the beat's
   first difference as a second int8 input) and one file is kept: :mod:`ecgcnn.export.full_int8`; with
   ``held_out`` the kept file, or a twin converted the same way, is then gated on beats the model was not fitted on
   (:class:`HeldOut`, built by :mod:`ecgcnn.workflows.held_out`);
   Steps 3 to 6 run once for each graph converted (:class:`ecgcnn.export.converter.Conversion`);
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
     caller's training beats, at most :data:`CALIBRATION_BEATS` of them, z-normalised with
     :func:`~ecgcnn.core.preprocess.normalize_beats` exactly as at inference, fed one by one in the SavedModel's NWC
     layout), ``TFLITE_BUILTINS_INT8`` only, int8 input and output - what TFLite Micro needs; the input/output scale
     and zero point are logged;

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
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import ExportError, ModelFileError
from ..core.fileio import write_bytes_atomic
from ..core.formats import QUANTIZE_MODES
from ..core.layout import tflite_path
from ..core.preprocess import normalize_beats
from ..runtimes.flatbuffer import embed_metadata
from ..runtimes.metadata import METADATA_KEY, parse_metadata_json
from ..runtimes.tflite import TFLitePredictor
from .converter import Conversion, ort_error
from .full_int8 import convert_like, describe, export_full_int8
from .parity import onnx_logits, parity
from .toolchain import captured_output, fold_constants, import_toolchain

_VERIFY_BEATS = 8
# Full INT8: TensorFlow's calibration runs the instrumented float graph once per representative beat: Hydra on FordA
# (500 samples) took about 10 minutes per converted graph for its 3,601 training beats, and still ~8 for 1,000 of them
# (with another job on the second core). tf.lite.RepresentativeDataset asks for "a few hundred samples randomly
# chosen"; where there are more training beats than this (ECG5000 has exactly this many), the calibration sees this
# many of them, drawn once (seed 0); the input's clip and every gate still use all of them.
CALIBRATION_BEATS = 500


def representative_rows(beats: int) -> np.ndarray:
    """Which training beats TFLite's full-INT8 calibration sees: all, or :data:`CALIBRATION_BEATS` of them drawn
    without replacement by ``np.random.default_rng(0)``, in their order."""
    if beats <= CALIBRATION_BEATS:
        return np.arange(beats)
    return np.sort(np.random.default_rng(0).choice(beats, CALIBRATION_BEATS, replace=False))


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

@dataclass(frozen=True)
class HeldOut:
    """The full-INT8 held-out check: ``beats``, training beats the model was not fitted on, and ``onnx``, a twin of
    the model (its recipe fitted on ``fit_beats`` only), or None where the model itself was not fitted on ``beats``
    (a network's validation beats); beats raw, as the training beats are given; ``how`` says how they were split, in
    a few words. A head fitted on the training beats (Hydra's ridge) keeps wide margins on exactly those beats, so an
    int8 file agrees with ONNX Runtime there more than on beats it has not seen."""

    onnx: Path | None
    fit_beats: np.ndarray
    beats: np.ndarray
    how: str


def export_tflite(onnx_path: str | os.PathLike, output_dir: str | os.PathLike = "outputs/tflite",
                  quantize: str = "none", calibration_beats: np.ndarray | None = None, log=print,
                  held_out: HeldOut | None = None) -> Path:
    """Convert an ecgcnn ONNX model to ``<output_dir>/<stem>[_fp16|_int8|_int8_full].tflite``; returns the path.

    ``calibration_beats`` ``(N, 140)`` (raw training beats; z-normalised here as at inference) are required for
    ``int8-full`` and, when given, also serve as verification beats for the other modes. ``held_out`` (``int8-full``
    only, :class:`HeldOut`): training beats the model was not fitted on, where the kept file (or a twin converted the
    way it was) must pass the same gates; the file is refused where they fail, else the figures are written into its
    metadata (``held_out``).
    """
    onnx_path = Path(onnx_path)
    if quantize not in QUANTIZE_MODES:
        raise ExportError(f"unknown quantisation mode {quantize!r}; choose one of {', '.join(QUANTIZE_MODES)}")
    target = tflite_path(output_dir, onnx_path.stem, quantize)
    if quantize == "int8-full" and (calibration_beats is None or len(calibration_beats) == 0):
        raise ExportError("full-integer INT8 (int8-full) needs calibration beats: pass the training beats")
    for path in (onnx_path, *([held_out.onnx] if held_out and held_out.onnx and quantize == "int8-full" else [])):
        if not Path(path).is_file():
            raise ModelFileError(f"{path}: ONNX file not found")
    mods = import_toolchain()
    with tempfile.TemporaryDirectory(prefix="ecgcnn-tflite-") as tmp_name:
        tmp = Path(tmp_name)
        conversion, raw, folded, expected_verify = _prepare(mods, onnx_path, tmp / "model", quantize, target,
                                                            calibration_beats)
        if quantize == "int8-full":
            kept = export_full_int8(mods["onnx"], conversion, raw, folded, log)
            if held_out is not None and kept["problem"] is None:
                kept = _held_out_check(mods, kept, held_out, tmp / "held-out", raw, target, log)
        else:
            kept = conversion.build(dict(source=folded, competitions=0, two_inputs=False, expected=expected_verify),
                                    {})
        if kept["problem"]:
            raise ExportError(f"{target}: {kept['problem']}")

    write_bytes_atomic(target, kept["bytes"])
    _report(log, target, tflite_path(output_dir, onnx_path.stem, "none"), quantize, kept["layout"], kept["options"],
            kept["keras_error"], kept["error"], kept["agreement"], len(conversion.gate_beats), kept["info"])
    return target


def _prepare(mods: dict, onnx_path: Path, tmp: Path, quantize: str, target: Path, calibration_beats,
             gate_beats=None) -> tuple[Conversion, Path, Path, np.ndarray]:
    """The :class:`Conversion` of ``onnx_path`` (copied and constant-folded under ``tmp``), its raw and folded copies
    and ONNX Runtime's logits of the verification beats. The gates compare on ``gate_beats`` (raw) where given, else
    on the calibration beats (else on fixed noise)."""
    onnx, ort = mods["onnx"], mods["onnxruntime"]
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
    gate = _calibration(gate_beats, length) if gate_beats is not None else calibration
    gate = verify if gate is None else gate
    tmp.mkdir(parents=True)
    raw, folded = tmp / "model.onnx", tmp / "folded" / f"{onnx_path.stem}.onnx"
    onnx.save(proto, str(raw))  # self-contained copy: onnx2tf rewrites its input file in place
    del proto
    folded.parent.mkdir()
    try:
        fold_constants(ort, raw, folded)
        expected_verify, expected = onnx_logits(raw, verify), onnx_logits(raw, gate)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise ort_error(onnx_path, "load the model", exc) from None
    conversion = Conversion(tf=mods["tensorflow"], onnx2tf=mods["onnx2tf"], tmp=tmp, quantize=quantize,
                            metadata=metadata, onnx_path=onnx_path, target=target, calibration=calibration,
                            verify=verify, gate_beats=gate, expected=expected,
                            representative=(calibration[representative_rows(len(calibration))]
                                            if calibration is not None else None))
    return conversion, raw, folded, expected_verify


def _held_out_check(mods: dict, kept: dict, held_out: HeldOut, tmp: Path, raw: Path, target: Path, log) -> dict:
    """``kept`` (converted from ``raw``) refused where it fails the gates on the held-out beats (or its twin,
    converted the way ``kept`` was, fails them); else with the figures in its metadata."""
    if held_out.onnx is None:  # the model itself was not fitted on these beats: the kept file is gated on them
        tmp.mkdir()
        beats = _calibration(held_out.beats, int(kept["metadata"]["input_length"]))
        written = tmp / target.name
        written.write_bytes(kept["bytes"])
        try:
            with captured_output():
                actual = TFLitePredictor(written).logits(beats)
            expected = onnx_logits(raw, beats)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            raise ort_error(target, "check the held-out beats", exc) from None
        _, agreement, problem = parity("int8-full", actual, expected)
        subject, whose = "the file", "the model"
    else:
        twin, twin_raw, folded, _ = _prepare(mods, held_out.onnx, tmp, "int8-full", target, held_out.fit_beats,
                                             gate_beats=held_out.beats)
        built = convert_like(mods["onnx"], twin, twin_raw, folded, kept)
        beats, agreement, problem = twin.gate_beats, built["agreement"], built["problem"]
        subject, whose = f"a twin ({held_out.how}), converted the same way ({describe(kept)}),", "it"
    log(f"full INT8 held-out check: {subject} gives ONNX Runtime's class on {100 * agreement:.1f} % of the "
        f"{len(beats)} training beats {whose} was not fitted on" + (f" ({held_out.how})" if held_out.onnx is None
                                                                     else ""))
    if problem:
        model = "a twin of this model" if held_out.onnx is not None else "this model"
        return dict(kept, problem=f"held-out check: on the {len(beats)} training beats {model} was not fitted on "
                                  f"({held_out.how}{', converted the same way' if held_out.onnx else ''}): "
                                  f"{problem}; on beats it has not seen, this file would change more than its gate "
                                  f"on the training beats shows")
    figures = {"how": held_out.how, "beats": len(beats), "agreement": round(float(agreement), 4),
               "checked": "a twin converted the same way" if held_out.onnx is not None else "this file"}
    return dict(kept, bytes=embed_metadata(kept["plain"], {**kept["metadata"], "held_out": figures}))


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
