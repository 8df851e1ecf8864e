"""PyTorch eager inference of a checkpoint (or of an in-memory model, for training and benchmarks)."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..core.errors import EcgcnnError
from ..core.memory import release_free_heap
from ..models import build_model, fold_for_export
from .base import Predictor
from .checkpoint import model_from_checkpoint


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU. An unavailable explicit choice is an error."""
    mps = getattr(torch.backends, "mps", None)
    mps_available = bool(mps is not None and mps.is_available())
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise EcgcnnError("--device cuda: CUDA is not available on this machine (use --device cpu or auto)")
    if device == "mps" and not mps_available:
        raise EcgcnnError("--device mps: MPS is not available on this machine (use --device cpu or auto)")
    if device not in ("cpu", "cuda", "mps"):
        raise EcgcnnError(f"--device {device!r}: expected auto, cpu, cuda or mps")
    return torch.device(device)


class TorchPredictor(Predictor):
    runtime = "torch"

    def __init__(self, path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
        model, metadata = model_from_checkpoint(path)
        self._setup(model, metadata, path, device, threads)

    @classmethod
    def from_model(cls, model: torch.nn.Module, metadata: dict, device: str = "cpu",
                   threads: int | None = None) -> TorchPredictor:
        """A predictor around an in-memory model (training's final scoring, benchmarks of random weights)."""
        predictor = cls.__new__(cls)
        predictor._setup(model, metadata, None, device, threads)
        return predictor

    def _setup(self, model, metadata, path, device, threads) -> None:
        Predictor.__init__(self, metadata, path)
        self.device = resolve_device(device)
        if self.device.type != "cpu":
            self.batch_size = 1024  # an accelerator wants large calls; the CPU keeps the base class's small ones
        else:  # or the architecture's own, where PyTorch was measured faster with it (Hydra)
            self.batch_size = int(getattr(model, "torch_cpu_batch", None) or self.batch_size)
        if threads:
            torch.set_num_threads(threads)
        # Inference only: fold weight norm once instead of recomputing it on every call.
        self.model = fold_for_export(model).to(self.device).eval()

    @torch.inference_mode()
    def _logits(self, beats: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(beats).unsqueeze(1).to(self.device)
        logits = self.model(x).float().cpu().numpy()
        if self.device.type == "cpu":
            release_free_heap()  # the call's freed activations, fragmented in malloc's arenas (core/memory.py)
        return logits


def random_weights_predictor(metadata: dict, threads: int | None = None) -> TorchPredictor:
    """The architecture in ``metadata`` with fresh weights: the eager baseline of benchmarks (speed only)."""
    return TorchPredictor.from_model(build_model(metadata["model"], **metadata["model_kwargs"]), metadata,
                                     threads=threads)


PREDICTOR = TorchPredictor  # what the loader opens .pth files with
