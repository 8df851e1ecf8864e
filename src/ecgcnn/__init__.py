"""ecgcnn: heartbeat (ECG5000) classifiers trained honestly and shipped to PyTorch, ONNX Runtime and TFLite.

The Python API in four names::

    from ecgcnn import load_predictor, load_dataset, build_model, list_models
    predictor = load_predictor("pretrained:edge")      # any .pth / .onnx / .tflite file, or a shipped model
    labels = predictor.predict(beats)                   # (N, 140) raw beats -> dataset labels 1..5
"""

__version__ = "0.1.0"

from .data import load_dataset  # noqa: E402
from .models import build_model, list_models  # noqa: E402
from .runtimes import Predictor, load_predictor  # noqa: E402

__all__ = ["__version__", "load_predictor", "Predictor", "load_dataset", "build_model", "list_models"]
