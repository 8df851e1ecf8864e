"""PyTorch checkpoint → ONNX, verified in three steps.

Verification after every export: (1) ``torch.onnx.export``, (2) ``onnx.checker``, (3) ONNX Runtime against PyTorch
on real training beats: max |Δ logit| ≤ 1e-4 and identical top-1. A failed step leaves no ``.onnx`` behind.

The graph has input ``beats`` ``(batch, 1, 140)`` with a dynamic batch axis and output ``logits`` ``(batch, C)``.
The checkpoint's metadata travels in ``metadata_props`` under the key ``ecgcnn`` (JSON).
The file is written to ``<output_dir>/<run>.onnx`` (:func:`ecgcnn.core.layout.onnx_path`).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..core.errors import ExportError, optional_import
from ..core.fileio import atomic_path
from ..core.layout import onnx_path
from ..core.memory import CHECK_BATCH
from ..core.preprocess import normalize_beats
from ..data.dataset import load_dataset
from ..models import fold_for_export
from ..runtimes.checkpoint import model_from_checkpoint
from ..runtimes.metadata import METADATA_KEY, recorded_data, run_name
from ..runtimes.onnx import OnnxPredictor

INPUT_NAME = "beats"
OUTPUT_NAME = "logits"
LOGIT_TOLERANCE = 1e-4


def export_onnx(checkpoint: str | os.PathLike, output_dir: str | os.PathLike = "outputs/onnx", opset: int = 17,
                reference_beats: np.ndarray | None = None, log=print) -> Path:
    """Export a checkpoint to ``<output_dir>/<run>.onnx`` and verify it on ``reference_beats`` (default: the
    training beats of the data the model records). Returns the path."""
    onnx = optional_import("onnx", "onnx")
    optional_import("onnxruntime", "onnx")
    model, metadata = model_from_checkpoint(checkpoint)
    model = fold_for_export(model)
    length = metadata["input_length"]
    if reference_beats is None:
        reference_beats = load_dataset(recorded_data(metadata), load_test=False).x_train  # never test labels
    reference = normalize_beats(reference_beats)[:, None, :]
    target = onnx_path(output_dir, run_name(metadata))  # a recipe's run: best.onnx

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
        # the checkpoint's test metrics were measured on the PyTorch model, not on this file: they stay behind
        stored = {**{k: v for k, v in metadata.items() if k != "metrics"}, "format": "onnx", "opset": opset}
        if getattr(model, "cpu_batch", None):  # the architecture's own call size on the CPU (runtimes/onnx.py)
            stored["cpu_batch"] = int(model.cpu_batch)
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
            expected = np.concatenate([model(torch.from_numpy(reference[i:i + CHECK_BATCH])).numpy()
                                       for i in range(0, len(reference), CHECK_BATCH)])
        actual = OnnxPredictor(tmp).logits(reference[:, 0, :])
        max_diff = float(np.abs(actual - expected).max())
        same_top1 = bool((actual.argmax(1) == expected.argmax(1)).all())
        if max_diff > LOGIT_TOLERANCE or not same_top1:
            raise ExportError(f"{target}: ONNX Runtime disagrees with PyTorch (max |Δ logit| {max_diff:.2e}, "
                              f"tolerance {LOGIT_TOLERANCE:.0e}; top-1 identical: {same_top1})")
        log(f"[3/3] ONNX Runtime vs PyTorch on {len(reference)} real beats: max |Δ logit| {max_diff:.2e} "
            f"(≤ {LOGIT_TOLERANCE:.0e}), top-1 identical")
    log(f"saved {target} ({target.stat().st_size / 1024:.1f} KiB)")
    return target
