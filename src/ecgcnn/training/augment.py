"""Training-time augmentation of z-normalised beats ``(batch, channels, length)``, vectorised, seeded.

Each technique is off at 0. Shift (edge-padded, in samples) and window slicing (a random window of
``1 - window`` of the beat, stretched back to full length) are one resampling step; amplitude scaling and
Gaussian jitter follow. Only training batches are augmented; validation, test and inference never are.
:func:`add_tail_swaps` instead adds rows to the training side of each split before training (seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.preprocess import normalize_beats


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


def add_tail_swaps(beats: np.ndarray, labels: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], at: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One tail-swapped copy of every training beat of every split, appended: samples ``at`` onwards come from
    another training beat of the same split (any class), shifted to continue the beat's own sample ``at - 1``; the
    label stays the beat's. Validation beats get none (they stay beats that exist).

    Why: the class of a beat is in its QRS (the first samples of a window); what follows (ST segment, T and P waves)
    is the one training patient's and differs from patient to patient. Trained on the windows as they are, a model
    can learn that patient's late waves as "normal" (docs/training.md). Beats are z-normalised first and the copies
    are returned z-normalised. Returns the extended beats and labels and the splits with each copy's row added to
    the training side it came from; 0 for ``at`` adds nothing.
    """
    beats = np.asarray(beats)
    if at <= 0:
        return beats, labels, splits
    if not 1 <= at <= beats.shape[1] - 2:
        raise ValueError(f"tail swap at sample {at}: expected 1 to {beats.shape[1] - 2} for beats of "
                         f"{beats.shape[1]} samples")
    z = normalize_beats(beats).astype(np.float64)
    x, y, total, extended = [z], [np.asarray(labels)], len(z), []
    rng = np.random.default_rng([seed, 7])
    for train_idx, val_idx in splits:
        idx = np.asarray(train_idx)
        if len(idx) < 2:  # no other beat to take a tail from
            extended.append((idx, val_idx))
            continue
        donors = idx[(np.arange(len(idx)) + rng.integers(1, len(idx), size=len(idx))) % len(idx)]  # never itself
        copies = z[idx].copy()
        copies[:, at:] = z[donors, at:] - z[donors, at:at + 1] + z[idx, at - 1:at]
        x.append(copies)
        y.append(np.asarray(labels)[idx])
        extended.append((np.concatenate([idx, total + np.arange(len(idx))]), val_idx))
        total += len(idx)
    return normalize_beats(np.concatenate(x)), np.concatenate(y), extended
