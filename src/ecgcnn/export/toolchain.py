"""The converter stack's process-level plumbing for the TFLite export: importing onnx2tf/TensorFlow quietly (and
undoing onnx2tf's side effects of import), capturing what they print, and ONNX Runtime's constant folding.

Importing onnx2tf has process-wide side effects; the recursion limit (raised to 2**31-1), the warning filters (all
ignored) and the global Python/NumPy random states are restored after the import, while ``TF_USE_LEGACY_KERAS=1`` and
``TF_CPP_MIN_LOG_LEVEL=3`` stay set in ``os.environ``.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..core.errors import optional_import


@contextlib.contextmanager
def captured_output():
    """Route Python- and C-level stdout/stderr into a buffer; yields a callable returning what was captured.

    onnx2tf prints progress tables and TensorFlow/MLIR write their logs straight to file descriptors 1 and 2.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    sink = tempfile.TemporaryFile(mode="w+b")
    text = io.StringIO()
    saved: list[int] = []
    try:
        for fd in (1, 2):
            try:
                saved.append(os.dup(fd))
                os.dup2(sink.fileno(), fd)
            except OSError:  # no such descriptor (embedded interpreters): Python-level capture only
                break

        def captured() -> str:
            sink.flush()
            sink.seek(0)
            return sink.read().decode("utf-8", "replace") + text.getvalue()

        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield captured
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=False):
            os.dup2(copy, fd)
            os.close(copy)
        sink.close()


def last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "error" in line.lower():
            return line[:200]
    return lines[-1][:200] if lines else "no message"


def import_toolchain():
    """Import the converter stack quietly, undoing onnx2tf's process-wide side effects of import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    modules = {}
    recursion_limit = sys.getrecursionlimit()
    py_random, np_random = random.getstate(), np.random.get_state()
    try:
        with warnings.catch_warnings(), captured_output():
            for name in ("onnx", "onnxruntime", "tensorflow", "onnx2tf"):
                # a missing module is named (tf_keras, onnx_graphsurgeon, ...)
                modules[name] = optional_import(name, "tflite")
    finally:
        # onnx2tf sets the recursion limit to 2**31-1 (a deep recursion would then crash the interpreter),
        # ignores every warning category globally and reseeds Python's and NumPy's global generators on import.
        sys.setrecursionlimit(recursion_limit)
        random.setstate(py_random)
        np.random.set_state(np_random)
    modules["tensorflow"].get_logger().setLevel("ERROR")
    return modules


def fold_constants(ort, source: Path, target: Path) -> None:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), sess_options=options, providers=["CPUExecutionProvider"])
