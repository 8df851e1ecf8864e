"""Training-time augmentation of z-normalised beats ``(batch, channels, length)``, vectorised, seeded.

Each technique is off at 0. Shift (edge-padded, in samples) and window slicing (a random window of
``1 - window`` of the beat, stretched back to full length) are one resampling step; amplitude scaling and
Gaussian jitter follow. Only training batches are augmented; validation, test and inference never are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Augment:
    jitter: float = 0.0  # std of additive Gaussian noise (beats have unit std)
    scale: float = 0.0   # std of a per-beat amplitude factor around 1
    shift: int = 0       # largest time shift in samples, either direction
    window: float = 0.0  # fraction of the beat cut away by window slicing

    @property
    def enabled(self) -> bool:
        return bool(self.jitter or self.scale or self.shift or self.window)


def augment_batch(x: torch.Tensor, aug: Augment, generator: torch.Generator) -> torch.Tensor:
    """A randomly transformed copy of ``x``; draws come from ``generator`` only (reproducible per seed)."""
    if not aug.enabled:
        return x
    batch, _, length = x.shape
    if aug.shift or aug.window:
        kept = (1.0 - aug.window) * (length - 1)
        start = torch.rand(batch, 1, generator=generator) * (length - 1 - kept)
        offset = torch.randint(-aug.shift, aug.shift + 1, (batch, 1), generator=generator).float()
        grid = torch.linspace(0.0, 1.0, length).unsqueeze(0)
        pos = (start + grid * kept - offset).clamp(0, length - 1).to(x.device)
        left = pos.floor().long()
        right = (left + 1).clamp(max=length - 1)
        frac = (pos - left).unsqueeze(1)
        index = left.unsqueeze(1).expand_as(x)
        x = torch.gather(x, 2, index) * (1 - frac) + torch.gather(x, 2, right.unsqueeze(1).expand_as(x)) * frac
    if aug.scale:
        x = x * (1.0 + aug.scale * torch.randn(batch, 1, 1, generator=generator)).to(x.device)
    if aug.jitter:
        x = x + aug.jitter * torch.randn(x.shape, generator=generator).to(x.device)
    return x
