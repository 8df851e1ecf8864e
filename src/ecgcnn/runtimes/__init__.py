"""Inference for every format behind one :class:`Predictor`: ``base`` (the contract), one module per backend
(``torch``, ``onnx``, ``tflite``; same constructor) and ``loader`` (``load_predictor``)."""

from .base import Predictor
from .loader import load_predictor

__all__ = ["Predictor", "load_predictor"]
