"""The one inference contract: raw ``(N, 140)`` beats in, ``(N, num_classes)`` probabilities out.

Every backend (``torch``, ``onnx``, ``tflite``) subclasses :class:`Predictor` with the same constructor
``(path, device="cpu", threads=None)`` and implements only ``_logits`` on preprocessed beats; layout, batching,
preprocessing and (de)quantisation stay inside. ``predict`` returns dataset labels (1..5), as scikit-learn does.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core.formats import format_name
from ..core.preprocess import PREPROCESSING, normalize_beats
from ..core.validation import check_beats
from .metadata import run_name


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Predictor:
    """Base class. Subclasses set ``runtime`` and ``metadata`` and implement ``_logits``."""

    runtime: str = "?"
    # Beats per call on the CPU. Small chunks keep the activations in cache: on two cores, 64 beats per call against
    # 1024 was 2.4x faster for best.onnx, 2.2x for best.pth, 1.75x for edge.pth and about the same for edge.onnx, and
    # best.onnx's peak memory fell from 2.0 GB to 0.2 GB (the same probabilities). Accelerators set their own
    # (TorchPredictor on CUDA/MPS: 1024), and so may an architecture (Hydra: ``cpu_batch`` for ONNX Runtime,
    # ``torch_cpu_batch`` for PyTorch).
    batch_size: int = 64
    # Chunks classified at once, one per thread. A backend whose single-threaded calls may overlap (ONNX Runtime on
    # the CPU) sets it to its cores: each core then works on its own chunk in cache, instead of every operator being
    # split across the cores and joined again.
    workers: int = 1

    def __init__(self, metadata: dict, path: str | os.PathLike | None = None):
        self.metadata = metadata
        self.path = Path(path) if path is not None else None
        self._pool: ThreadPoolExecutor | None = None

    # ---- description --------------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.metadata["model"]

    @property
    def name(self) -> str:
        """The run's name: its recipe (``best``, ``edge``) where it came from one, else the architecture."""
        return run_name(self.metadata)

    @property
    def format(self) -> str:
        """The format's table name: ``pytorch``, ``onnx``, ``tflite-fp32`` ... ``tflite-int8-full``."""
        return format_name(self.runtime, self.metadata.get("quantize"))

    @property
    def labels(self) -> list[int]:
        """Original dataset label of each output class (ECG5000: 1..5)."""
        return list(self.metadata["labels"])

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata.get("class_names") or [str(label) for label in self.labels])

    @property
    def input_length(self) -> int:
        return int(self.metadata["input_length"])

    @property
    def num_classes(self) -> int:
        return len(self.metadata["labels"])

    def describe(self) -> str:
        return f"{self.name} ({self.format}, {self.path})"

    # ---- inference ----------------------------------------------------------------------------------------------
    def preprocess(self, beats) -> np.ndarray:
        """Checked beats, normalised as the model was trained (``znorm-per-beat``)."""
        x = check_beats(beats, self.input_length)
        if self.metadata.get("preprocessing", {}).get("name") == PREPROCESSING["name"]:
            x = normalize_beats(x)
        return x

    def logits(self, preprocessed: np.ndarray) -> np.ndarray:
        """Raw float logits for beats that are already preprocessed, in batches of :attr:`batch_size`."""
        x = check_beats(preprocessed, self.input_length)
        chunks = [x[i:i + self.batch_size] for i in range(0, len(x), self.batch_size)]
        if self.workers > 1 and len(chunks) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ecgcnn-model")
            outputs = list(self._pool.map(self._logits, chunks))  # in chunk order
        else:
            outputs = [self._logits(chunk) for chunk in chunks]
        return np.concatenate(outputs, axis=0) if outputs else np.zeros((0, self.num_classes), np.float32)

    def predict_proba(self, beats) -> np.ndarray:
        """Class probabilities ``(N, num_classes)`` for raw beats ``(N, input_length)``."""
        return softmax(self.logits(self.preprocess(beats)).astype(np.float64)).astype(np.float32)

    def predict_indices(self, beats) -> np.ndarray:
        """Predicted class index (0..num_classes-1) per beat."""
        return self.predict_proba(beats).argmax(axis=1)

    def predict(self, beats) -> np.ndarray:
        """Predicted dataset label (ECG5000: 1..5) per beat."""
        return np.asarray(self.labels)[self.predict_indices(beats)]

    def _logits(self, beats: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
