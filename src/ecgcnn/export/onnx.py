"""PyTorch checkpoint → ONNX, verified in three steps, and the ONNX Runtime predictor.

Verification after every export: (1) ``torch.onnx.export``, (2) ``onnx.checker``, (3) ONNX Runtime against PyTorch
on real training beats: max |Δ logit| ≤ 1e-4 and identical top-1. A failed step leaves no ``.onnx`` behind.

The graph has input ``beats`` ``(batch, 1, 140)`` with a dynamic batch axis and output ``logits`` ``(batch, C)``.
The checkpoint's metadata travels in ``metadata_props`` under the key ``ecgcnn`` (JSON).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import ExportError, MissingExtraError, ModelFileError
from ..runtime import Predictor

METADATA_KEY = "ecgcnn"
INPUT_NAME = "beats"
OUTPUT_NAME = "logits"
LOGIT_TOLERANCE = 1e-4


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise MissingExtraError("onnx", module) from None


def export_onnx(checkpoint: str | os.PathLike, output_dir: str | os.PathLike = "outputs/onnx", opset: int = 17,
                reference_beats: np.ndarray | None = None, data_dir: str | None = None, log=print) -> Path:
    """Export a checkpoint to ``<output_dir>/<model>.onnx`` and verify it. Returns the path."""
    onnx = _require("onnx")
    import torch  # noqa: PLC0415

    from ..checkpoint import model_from_checkpoint  # noqa: PLC0415
    from ..fileio import atomic_path  # noqa: PLC0415
    from ..models import fold_for_export  # noqa: PLC0415
    from ..runtime import normalize_beats  # noqa: PLC0415

    model, metadata = model_from_checkpoint(checkpoint)
    model = fold_for_export(model)
    length = metadata["input_length"]
    if reference_beats is None:
        from ..data import load_dataset  # noqa: PLC0415

        reference_beats = load_dataset(data_dir, load_test=False).x_train  # real beats, never test labels
    reference = normalize_beats(reference_beats)[:, None, :]
    run_name = (metadata.get("config") or {}).get("recipe") or metadata["model"]  # a recipe's run: best.onnx
    target = Path(output_dir) / f"{run_name}.onnx"

    with atomic_path(target) as tmp:
        # (1) export. The TorchScript exporter writes a plain opset-17 graph (GlobalAveragePool, no dynamic-axes
        # ReduceMean) that onnx2tf converts cleanly; the dynamo exporter is the fallback where it is gone.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(model, (torch.zeros(1, 1, length),), str(tmp), input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
            except TypeError:  # pragma: no cover - torch without the TorchScript exporter
                torch.onnx.export(model, (torch.zeros(2, 1, length),), str(tmp), input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], opset_version=opset, dynamo=True,
                                  dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
        proto = onnx.load(str(tmp))
        stored = dict(metadata, format="onnx", opset=opset)
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(stored), "model": metadata["model"],
                                            "labels": json.dumps(metadata["labels"])})
        proto.producer_name = "ecgcnn"
        onnx.save(proto, str(tmp))
        log(f"[1/3] torch.onnx.export -> {target} (opset {opset}, dynamic batch)")
        # (2) structural check
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"{target}: onnx.checker rejected the graph: {str(exc).splitlines()[0]}") from None
        log("[2/3] onnx.checker: graph is valid")
        # (3) numerical parity with PyTorch on real beats
        with torch.no_grad():
            expected = model(torch.from_numpy(reference)).numpy()
        actual = OnnxPredictor(tmp, metadata=stored, quiet=True).logits(reference[:, 0, :])
        max_diff = float(np.abs(actual - expected).max())
        same_top1 = bool((actual.argmax(1) == expected.argmax(1)).all())
        if max_diff > LOGIT_TOLERANCE or not same_top1:
            raise ExportError(f"{target}: ONNX Runtime disagrees with PyTorch (max |Δ logit| {max_diff:.2e}, "
                              f"tolerance {LOGIT_TOLERANCE:.0e}; top-1 identical: {same_top1})")
        log(f"[3/3] ONNX Runtime vs PyTorch on {len(reference)} real beats: max |Δ logit| {max_diff:.2e} "
            f"(≤ {LOGIT_TOLERANCE:.0e}), top-1 identical")
    log(f"saved {target} ({target.stat().st_size / 1024:.1f} KiB)")
    return target


def parse_metadata(path, text: str | None) -> dict:
    """The ``ecgcnn`` JSON of an ONNX model's metadata_props, checked."""
    if not text:
        raise ModelFileError(f"{path}: ONNX model has no ecgcnn metadata (export it with 'ecgcnn export onnx')")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: ecgcnn metadata is not valid JSON") from None
    for key in ("model", "labels", "input_length"):
        if key not in metadata:
            raise ModelFileError(f"{path}: ecgcnn metadata lacks {key!r}")
    return metadata


class OnnxPredictor(Predictor):
    """ONNX Runtime inference; CUDA execution provider when asked for and available, else CPU."""

    format = "onnx"

    def __init__(self, path, device: str = "cpu", threads: int | None = None, metadata: dict | None = None,
                 quiet: bool = False):
        ort = _require("onnxruntime")
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
                print("note: CUDA execution provider not available; running ONNX Runtime on the CPU")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelFileError(f"{path}: not a loadable ONNX model ({first[:160]})") from None
        if metadata is None:
            metadata = parse_metadata(path, self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY))
        super().__init__(metadata, path)
        self.providers = self.session.get_providers()
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, beats: np.ndarray) -> np.ndarray:
        """Raw logits for already preprocessed beats ``(n, length)``."""
        return self._logits(np.ascontiguousarray(beats, dtype=np.float32))

    def _logits(self, beats: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: beats[:, None, :]})[0]
