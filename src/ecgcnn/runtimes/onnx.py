"""ONNX Runtime inference; the CUDA execution provider when asked for and available, else the CPU."""

from __future__ import annotations

import os
import sys

import numpy as np

from ..core.errors import ModelFileError, optional_import
from ..core.provenance import usable_cores
from .base import Predictor
from .metadata import METADATA_KEY, parse_metadata_json


def open_session(path: str | os.PathLike, device: str = "cpu", threads: int | None = None, quiet: bool = False):
    """An ONNX Runtime session with quiet logging; unreadable files are a one-line :class:`ModelFileError`."""
    ort = optional_import("onnxruntime", "onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if device in ("cuda", "auto"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device == "cuda" and not quiet:
            print("note: CUDA execution provider not available; running ONNX Runtime on the CPU", file=sys.stderr)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(f"{path}: not a loadable ONNX model ({first[:160]})") from None


class OnnxPredictor(Predictor):
    runtime = "onnx"

    def __init__(self, path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
        # One single-threaded session, called from ``threads`` threads at once on the CPU (``run`` is thread-safe and
        # releases the GIL), each on its own small chunk - 16 beats, or the architecture's own ``cpu_batch`` that the
        # exporter records (Hydra: 4). Measured when this replaced one two-thread session on chunks of 64 (2 cores,
        # ``ecgcnn bench --threads 2 --batch-sizes 512``): best.onnx 1,431 -> 3,735 beats/s with its new graph,
        # edge.onnx 37,484 -> 45,448; end to end see results/bench/annotate*.md.
        self.session = open_session(path, device, threads=1)
        metadata = parse_metadata_json(path, self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY))
        super().__init__(metadata, path)
        self.providers = self.session.get_providers()
        if self.providers[0] != "CPUExecutionProvider":
            self.batch_size = 1024  # as TorchPredictor on an accelerator
        else:
            self.batch_size, self.workers = int(metadata.get("cpu_batch") or 16), threads or usable_cores()
        self.input_name = self.session.get_inputs()[0].name

    def _logits(self, beats: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: beats[:, None, :]})[0]


PREDICTOR = OnnxPredictor
