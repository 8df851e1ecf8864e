"""Ensemble: several registered models behind one input, averaging their logits. Exports as a single graph."""

import torch
from torch import nn

from ._registry import build_model, register_model


@register_model("ensemble")
class Ensemble(nn.Module):
    """``members`` names a registered architecture per member (e.g. five ``"base-cnn"``); output = mean logits."""

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3,
                 members: tuple[str, ...] | list[str] = ("base-cnn",)):
        super().__init__()
        if not members or "ensemble" in members:
            raise ValueError(f"ensemble members must be one or more base architectures, got {list(members)}")
        self.members = nn.ModuleList(build_model(name, num_classes=num_classes, in_channels=in_channels,
                                                 dropout=dropout) for name in members)

    def forward(self, x):
        return torch.stack([member(x) for member in self.members]).mean(0)
