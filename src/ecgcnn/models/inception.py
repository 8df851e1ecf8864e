"""InceptionTime (Fawaz et al., 2019): six inception modules with two residual shortcuts."""

import torch
from torch import nn

from ._registry import register_model


class InceptionModule(nn.Module):
    """Bottleneck(32) → parallel convs k=9/19/39 and MaxPool→1×1 conv → concat (4×32) → BN → ReLU."""

    def __init__(self, in_channels: int, filters: int = 32, bottleneck: int = 32, kernels=(9, 19, 39)):
        super().__init__()
        # The seed applies the bottleneck in every module, the first (1 input channel) included.
        self.bottleneck = nn.Conv1d(in_channels, bottleneck, 1, bias=False)
        self.branches = nn.ModuleList(nn.Conv1d(bottleneck, filters, k, padding=k // 2, bias=False) for k in kernels)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1),
                                         nn.Conv1d(in_channels, filters, 1, bias=False))
        self.bn = nn.BatchNorm1d(filters * (len(kernels) + 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        z = self.bottleneck(x)
        out = torch.cat([branch(z) for branch in self.branches] + [self.pool_branch(x)], dim=1)
        return self.relu(self.bn(out))


class Shortcut(nn.Module):
    """Residual projection: 1×1 conv + BN so channel counts match."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv1d(in_channels, out_channels, 1, bias=False), nn.BatchNorm1d(out_channels))

    def forward(self, x):
        return self.proj(x)


@register_model("inception")
class InceptionTime(nn.Module):
    """Block1-3 → + shortcut(input) → ReLU; Block4-6 → + shortcut → ReLU; GAP→FC(64)→ReLU→Dropout→FC."""

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3, filters: int = 32):
        super().__init__()
        width = filters * 4
        self.stage1 = nn.Sequential(InceptionModule(in_channels, filters), InceptionModule(width, filters),
                                    InceptionModule(width, filters))
        self.shortcut1 = Shortcut(in_channels, width)
        self.stage2 = nn.Sequential(InceptionModule(width, filters), InceptionModule(width, filters),
                                    InceptionModule(width, filters))
        self.shortcut2 = Shortcut(width, width)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width, 64), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                  nn.Linear(64, num_classes))

    def forward(self, x):
        x = self.relu(self.stage1(x) + self.shortcut1(x))
        x = self.relu(self.stage2(x) + self.shortcut2(x))
        return self.head(self.pool(x))
