"""One inference interface for every model format.

``load_predictor(path)`` accepts a PyTorch checkpoint (``.pth``), an ONNX model (``.onnx``) or a TFLite model
(``.tflite``) and returns a :class:`Predictor`. Callers always pass beats as ``(N, 140)`` float arrays and get
``(N, num_classes)`` probabilities; layout, batching, preprocessing and (de)quantisation stay inside the wrapper.
``evaluate``, ``predict`` and ``bench`` use only this interface.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import EcgcnnError, ModelFileError

FORMATS = {".pth": "pytorch", ".pt": "pytorch", ".onnx": "onnx", ".tflite": "tflite"}


def normalize_beats(beats: np.ndarray) -> np.ndarray:
    """Per-beat z-normalisation (mean 0, sample std 1), the UCR convention for ECG5000.

    The official beats are already z-normalised, so this is the identity on them (to ~1e-8); it makes the models
    usable on beats recorded at another scale or offset. A flat beat maps to zeros.
    """
    beats = np.asarray(beats, dtype=np.float64)
    mean = beats.mean(axis=1, keepdims=True)
    std = beats.std(axis=1, ddof=1, keepdims=True)
    return ((beats - mean) / np.where(std > 1e-8, std, 1.0)).astype(np.float32)


PREPROCESSING = {"name": "znorm-per-beat", "ddof": 1,
                 "description": "each beat minus its mean, divided by its sample standard deviation"}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Predictor:
    """Base class. Subclasses set ``metadata``, ``format`` and ``path`` and implement ``_logits``."""

    format: str = "?"
    batch_size: int = 1024

    def __init__(self, metadata: dict, path: str | os.PathLike | None = None):
        self.metadata = metadata
        self.path = Path(path) if path is not None else None

    # ---- metadata ---------------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.metadata["model"]

    @property
    def name(self) -> str:
        """The run's name: its recipe (``best``, ``edge``) where it came from one, else the architecture."""
        return (self.metadata.get("config") or {}).get("recipe") or self.model_name

    @property
    def labels(self) -> list[int]:
        """Original dataset label of each output class (ECG5000: 1..5)."""
        return list(self.metadata["labels"])

    @property
    def input_length(self) -> int:
        return int(self.metadata["input_length"])

    @property
    def num_classes(self) -> int:
        return len(self.metadata["labels"])

    # ---- inference --------------------------------------------------------------------------------------------
    def predict_proba(self, beats: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` for beats ``(N, input_length)``."""
        x = self._validate(beats)
        if self.metadata.get("preprocessing", {}).get("name") == PREPROCESSING["name"]:
            x = normalize_beats(x)
        outputs = [self._logits(x[i:i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        logits = np.concatenate(outputs, axis=0) if outputs else np.zeros((0, self.num_classes), np.float32)
        return softmax(logits.astype(np.float64)).astype(np.float32)

    def predict(self, beats: np.ndarray) -> np.ndarray:
        """Predicted class index per beat."""
        return self.predict_proba(beats).argmax(axis=1)

    def _validate(self, beats) -> np.ndarray:
        x = np.asarray(beats, dtype=np.float32)
        if x.ndim == 3 and x.shape[1] == 1:
            x = x[:, 0, :]
        if x.ndim != 2 or x.shape[1] != self.input_length:
            raise EcgcnnError(f"expected beats of shape (N, {self.input_length}), got {tuple(x.shape)}")
        if not np.isfinite(x).all():
            raise EcgcnnError("beats contain NaN or infinite values")
        return np.ascontiguousarray(x)

    def _logits(self, beats: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.model_name} ({self.format}, {self.path})"


def detect_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ModelFileError(f"{path}: unknown model format {suffix or '(no extension)'!r}; "
                             f"expected one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def load_predictor(path: str | os.PathLike, device: str = "cpu", threads: int | None = None) -> Predictor:
    """Open a model file of any supported format (read-only) and return its :class:`Predictor`.

    ``pretrained:best`` / ``pretrained:edge`` (optionally ``.onnx`` / ``.tflite``) name the shipped models."""
    from .pretrained import resolve_model_path  # noqa: PLC0415

    path = resolve_model_path(path)
    fmt = detect_format(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if fmt == "pytorch":
        from .checkpoint import TorchPredictor  # noqa: PLC0415 - keep imports lazy per runtime
        return TorchPredictor.from_file(path, device=device, threads=threads)
    if fmt == "onnx":
        from .export.onnx import OnnxPredictor  # noqa: PLC0415
        return OnnxPredictor(path, device=device, threads=threads)
    from .litert import TFLitePredictor  # noqa: PLC0415
    return TFLitePredictor(path, threads=threads)
