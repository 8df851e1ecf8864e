"""ecgcnn: heartbeat (ECG5000) classifiers trained honestly and shipped to PyTorch, ONNX Runtime and TFLite.

The Python API in four names::

    from ecgcnn import load_predictor, load_dataset, build_model, list_models
    predictor = load_predictor("pretrained:edge")      # any .pth / .onnx / .tflite file, or a shipped model
    labels = predictor.predict(beats)                   # (N, 140) raw beats -> dataset labels 1..5

Importing ``ecgcnn`` does not import torch: ``build_model`` and ``list_models`` load it on first use, so
``.onnx`` and ``.tflite`` files can be used where torch is not installed.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

from .data.dataset import load_dataset
from .runtimes import Predictor, load_predictor

_FROM_MODELS = ("build_model", "list_models")
__all__ = ["__version__", "load_predictor", "Predictor", "load_dataset", *_FROM_MODELS]


def __getattr__(name: str) -> Any:
    if name in _FROM_MODELS:  # torch-backed, loaded on demand (PEP 562)
        return getattr(importlib.import_module(".models", __name__), name)
    raise AttributeError(f"module 'ecgcnn' has no attribute {name!r}")
