"""TFLite / LiteRT inference behind the common :class:`~ecgcnn.runtimes.base.Predictor` interface.

:class:`TFLitePredictor` opens any ``.tflite`` written by :func:`ecgcnn.export.tflite.export_tflite` (FP32, FP16,
dynamic-range INT8 and full-integer INT8) with the LiteRT interpreter (``ai_edge_litert``; ``tf.lite.Interpreter``
only where LiteRT is not installed). Callers pass ``(N, 140)`` float beats and get ``(N, 5)`` probabilities; three
things stay inside the wrapper:

* **layout** - onnx2tf turns the ONNX ``(batch, 1, 140)`` (NCW) input into NWC ``(batch, 140, 1)``; the layout is
  read from the interpreter's input shape (and recorded in the metadata as ``tflite_input_layout``);
* **batching** - beats run in chunks of :attr:`TFLitePredictor.batch_size` (64). A model whose input has a dynamic
  batch axis (``shape_signature[0] == -1``, what the exporter writes) is resized to the chunk (re-allocated only
  when the chunk size changes) and invoked once per chunk. A model with a fixed batch (e.g. 1) is resized only
  after a one-time probe proves that the resized graph still computes every beat independently (a fixed-batch
  graph may have the batch baked into a Reshape or a reduction); otherwise beats run one invoke each;
* **(de)quantisation** - for full-integer models the float beats are quantised with the input tensor's scale and
  zero point, and the int8 logits are dequantised with the output tensor's, so ``_logits`` always returns float
  logits;
* **a second input** - a full-INT8 file of Hydra may take the beat's first difference as an input of its own
  (:data:`~ecgcnn.core.formats.DIFFERENCE_INPUT`, on its own int8 grid; ``ecgcnn.export.difference`` says why): it
  is computed here from the z-normalised beat and quantised with that input's scale and zero point.

Metadata: the exporter embeds the ``ecgcnn`` JSON in the flatbuffer's ``metadata`` table (entry name ``ecgcnn``);
:mod:`ecgcnn.runtimes.flatbuffer` reads and writes it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np

from ..core.errors import MissingExtraError, ModelFileError, optional_import
from ..core.formats import DIFFERENCE_INPUT
from ..core.provenance import usable_cores
from .base import Predictor
from .flatbuffer import has_tflite_identifier, read_tflite_metadata

# Relative tolerance of the one-time probe that decides whether a fixed-batch model may be resized.
_PROBE_RTOL = 1e-4


# ------------------------------------------------------------------------------------------------ optional imports

def interpreter_class():
    """The LiteRT ``Interpreter`` class (TensorFlow's only as a fallback)."""
    try:
        return optional_import("ai_edge_litert.interpreter", "litert").Interpreter
    except MissingExtraError:
        return optional_import("tensorflow", "litert", package="ai-edge-litert").lite.Interpreter


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence file descriptor 2 (native code's stderr) for the duration; Python exceptions still carry errors."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# ------------------------------------------------------------------------------------------------------ predictor

def _layout(shape, length: int) -> str:
    """Input layout from the interpreter's input shape (batch first)."""
    dims = tuple(int(d) for d in shape[1:])
    if dims == (length, 1):
        return "NWC"
    if dims == (1, length):
        return "NCW"
    if dims == (length,):
        return "NW"
    raise ValueError(f"unsupported input shape {tuple(int(d) for d in shape)}")


class TFLitePredictor(Predictor):
    """LiteRT inference on the CPU (XNNPACK for float models); every quantisation mode of the exporter."""

    runtime = "tflite"
    # Beats per invoke (the base class's 64): on two cores, 8-32 beats per invoke were within ~10 % of the fastest
    # setting for every model and mode, while 1024 was up to 2.4x slower (TCN, INT8); 64 is 8-10 % faster than 16 for
    # both shipped full-INT8 files (one and two threads).

    def __init__(self, path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
        # ``device`` is accepted for the common constructor; LiteRT runs on the CPU here (XNNPACK for floats).
        # ``threads`` None: every usable core, as ONNX Runtime and PyTorch do (LiteRT's own default is one thread).
        threads = threads or usable_cores()
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: model file not found")
        interpreter_cls = interpreter_class()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelFileError(f"{path}: cannot read file ({exc.strerror or exc})") from None
        if not has_tflite_identifier(data):
            raise ModelFileError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")
        try:
            # The interpreter verifies the flatbuffer; a truncated or damaged file fails here.
            with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on stderr, for every model
                interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
                interpreter.allocate_tensors()
        except Exception as exc:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError with multi-line text
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{path}: not a loadable TFLite model ({first[:160]})") from None
        super().__init__(read_tflite_metadata(path, data), path)
        self.interpreter = interpreter
        self.threads = threads
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        difference = [d for d in inputs if DIFFERENCE_INPUT in d["name"]]
        if len(outputs) != 1 or len(inputs) - len(difference) != 1 or len(difference) > 1:
            raise ModelFileError(f"{path}: expected one input (the beat, and optionally its first difference "
                                 f"'{DIFFERENCE_INPUT}') and one output tensor, found {len(inputs)} and {len(outputs)}")
        self._in = next(d for d in inputs if DIFFERENCE_INPUT not in d["name"])
        self._out = outputs[0]
        # every input with what it is fed: the beat, or its first difference (one sample shorter)
        self._inputs = [(self._in, False)] + [(d, True) for d in difference]
        try:
            self.layout = _layout(self._in["shape"], self.input_length)
            if difference and _layout(difference[0]["shape"], self.input_length - 1) != self.layout:
                raise ValueError("the difference input's layout differs from the beat's")
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc} for beats of length {self.input_length}") from None
        if int(self._out["shape"][-1]) != self.num_classes:
            raise ModelFileError(f"{path}: model outputs {int(self._out['shape'][-1])} classes but its metadata "
                                 f"lists {self.num_classes} labels")
        signature = self._in.get("shape_signature", self._in["shape"])
        self.dynamic_batch = len(signature) > 0 and int(signature[0]) == -1
        self._allocated = int(self._in["shape"][0])
        # None: not probed yet (fixed-batch models only); True/False: batched resize is (not) trustworthy.
        self._resizable: bool | None = True if self.dynamic_batch else None
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])

    # ---- description -------------------------------------------------------------------------------------------
    @property
    def quantize(self) -> str:
        return str(self.metadata.get("quantize", "?"))

    # ---- (de)quantisation -----------------------------------------------------------------------------------------
    def _quantize(self, x: np.ndarray, detail: dict) -> np.ndarray:
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            return x.astype(dtype, copy=False)
        scale, zero_point = detail["quantization"]
        if not scale:
            raise ModelFileError(f"{self.path}: integer input tensor without quantisation parameters")
        info = np.iinfo(dtype)
        q = x.astype(np.float64)  # in place from here: one buffer for 24 hours of beats
        q /= scale
        np.round(q, out=q)
        q += zero_point
        np.clip(q, info.min, info.max, out=q)
        return q.astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output_dtype.kind == "f":
            return y.astype(np.float32, copy=False)
        scale, zero_point = self._out["quantization"]
        if not scale:
            raise ModelFileError(f"{self.path}: integer output tensor without quantisation parameters")
        return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)

    # ---- inference ---------------------------------------------------------------------------------------------
    def _shape_input(self, beats: np.ndarray) -> list[np.ndarray]:
        """What each input tensor is given for these z-normalised beats (N, L), in the order of ``_inputs``."""
        shaped = []
        for detail, is_difference in self._inputs:
            x = np.diff(beats, axis=1) if is_difference else beats
            if self.layout == "NWC":
                x = x[:, :, None]
            elif self.layout == "NCW":
                x = x[:, None, :]
            shaped.append(np.ascontiguousarray(self._quantize(x, detail)))
        return shaped

    def _resize(self, batch: int) -> None:
        if batch != self._allocated:
            for detail, _ in self._inputs:
                shape = [batch, *(int(d) for d in detail["shape"][1:])]
                self.interpreter.resize_tensor_input(detail["index"], shape, strict=self.dynamic_batch)
            self.interpreter.allocate_tensors()
            self._allocated = batch

    def _run(self, xs: list[np.ndarray]) -> np.ndarray:
        for (detail, _), x in zip(self._inputs, xs, strict=True):
            self.interpreter.set_tensor(detail["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out["index"])

    def _run_one_by_one(self, xs: list[np.ndarray]) -> np.ndarray:
        self._resize(1)
        return np.concatenate([self._run([x[i:i + 1] for x in xs]) for i in range(len(xs[0]))], axis=0)

    def _probe_resize(self) -> bool:
        """For a fixed-batch model: does a batch of 3 give the same rows as three single-beat runs?"""
        rng = np.random.default_rng(0)
        probe = self._shape_input(rng.standard_normal((3, self.input_length)).astype(np.float32))
        try:
            single = self._dequantize(self._run_one_by_one(probe))
            self._resize(3)
            batched = self._run(probe)
            ok = batched.shape == single.shape and np.allclose(
                self._dequantize(batched), single, rtol=_PROBE_RTOL,
                atol=_PROBE_RTOL * max(1.0, float(np.abs(single).max())))
        except Exception:  # noqa: BLE001 - the interpreter refuses some resizes; then we loop
            ok = False
        if not ok:
            self._allocated = -1  # force a clean re-allocation at the original batch
            self._resize(1)
        return ok

    def _logits(self, beats: np.ndarray) -> np.ndarray:
        n = len(beats)
        if n == 0:
            return np.zeros((0, self.num_classes), np.float32)
        x = self._shape_input(beats)
        if self._resizable is None:
            self._resizable = self._probe_resize()
        if self._resizable:
            self._resize(n)
            y = self._run(x)
        else:
            y = self._run_one_by_one(x)
        return self._dequantize(y.reshape(n, -1))


PREDICTOR = TFLitePredictor
