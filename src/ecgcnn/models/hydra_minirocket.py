"""Hydra + MiniRocket: both models' features side by side and one ridge head.

Dempster, Schmidt & Webb (2023) recommend Hydra's counts concatenated with MultiRocket's features; here with
MiniRocket, the project's own. Each part keeps its kernels and its standardisation, fitted exactly as in its own file
(:class:`~ecgcnn.models.hydra.Hydra`, :class:`~ecgcnn.models.minirocket.MiniRocket`); the head is one ridge
classifier over the concatenated features (alpha by leave-one-out on the fitting beats only), stored split by
columns in the parts' own heads: Hydra's head holds its columns and the intercept, MiniRocket's its columns and a
zero bias. The logits are the sum of the two parts' outputs, so each part exports as it does alone (Hydra's
block-by-block head, MiniRocket's comparisons) and the ONNX graph still takes the beat's first difference where
Hydra does (export/difference.py).

Input: ``(B, in_channels, L)`` beats, z-normalised outside the graph.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._registry import register_model
from ._ridge import DEFAULT_ALPHAS, fit_head
from .hydra import Hydra
from .minirocket import MiniRocket


@register_model("hydra-minirocket")
class HydraMiniRocket(nn.Module):
    """Hydra's ``k x g`` kernels and MiniRocket's ``num_features`` PPV features, one ridge head over both."""

    cpu_batch = Hydra.cpu_batch
    torch_cpu_batch = Hydra.torch_cpu_batch

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3, k: int = 8, g: int = 64,
                 num_features: int = 9996, seed: int = 0, input_length: int = 140):
        super().__init__()
        del dropout  # the uniform constructor; nothing is trained by gradient here
        self.hydra = Hydra(num_classes, in_channels, k=k, g=g, seed=seed, input_length=input_length)
        self.minirocket = MiniRocket(num_classes, in_channels, num_features=num_features, seed=seed,
                                     input_length=input_length)
        self.num_features = self.hydra.num_features + self.minirocket.num_features

    def forward(self, x: torch.Tensor, dx: torch.Tensor | None = None) -> torch.Tensor:
        return self.hydra(x, dx) + self.minirocket(x)

    def mult_adds(self) -> int:
        """Both parts' multiply-accumulates (each counts its convolutions and its columns of the head)."""
        return self.hydra.mult_adds() + self.minirocket.mult_adds()

    @torch.no_grad()
    def transform(self, beats: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """Standardised features of many beats (Hydra's columns, then MiniRocket's), in batches."""
        return torch.cat([self.hydra.transform(beats, batch_size), self.minirocket.transform(beats, batch_size)], 1)

    @torch.no_grad()
    def fit_closed_form(self, beats: torch.Tensor, labels: torch.Tensor, class_balance: float = 0.0,
                        seed: int = 0, alphas=DEFAULT_ALPHAS) -> dict:
        """Fit both parts' standardisations (and MiniRocket's biases, drawn with ``seed``) and the one ridge head on
        ``beats`` (N, C, L) only; alpha by leave-one-out on them. Afterwards ``self(beats)`` returns the ridge
        decision values."""
        beats = torch.as_tensor(beats, dtype=torch.float32)
        labels_np = np.asarray(torch.as_tensor(labels), dtype=np.int64)
        feats = np.concatenate([self.hydra.fit_features(beats), self.minirocket.fit_features(beats, seed)], axis=1)
        head = nn.Linear(self.num_features, self.hydra.head.out_features)
        report = fit_head(head, feats, labels_np, class_balance, alphas, self.num_features)
        split = self.hydra.num_features
        self.hydra.head.weight.copy_(head.weight[:, :split])
        self.hydra.head.bias.copy_(head.bias)
        self.minirocket.head.weight.copy_(head.weight[:, split:])
        self.minirocket.head.bias.zero_()
        return report
