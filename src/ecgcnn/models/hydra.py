"""Hydra (Dempster, Schmidt & Webb, 2023): competing random convolutional kernels, counted, and a ridge head.

Written from the paper's description:

* ``g`` groups of ``k`` random kernels per dilation (length 9, weights ~ N(0, 1), each kernel mean-centred and
  scaled to unit L1 norm), dilations ``2^0 .. 2^floor(log2((L - 1) / (9 - 1)))``, 'same' zero padding;
* half of the groups see the beat, the other half its first difference;
* at every time step each group is a competition: the kernel with the largest response accumulates that response
  ("soft" max count), the kernel with the smallest response gets a count of one ("hard" min count);
* features are square-rooted and standardised with the training features' mean and std taken over the beats where
  the feature is non-zero (a zero count stays zero: sparse scaling in the spirit of the paper), and classified by
  a ridge classifier (here a ``nn.Linear`` fitted in closed form by :meth:`Hydra.fit_closed_form`, alpha by
  leave-one-out on the fitting beats only).

Export: the arg-max/arg-min are written as comparisons with the group's max/min (``ReduceMax``/``ReduceMin``,
``Equal``, ``Cast``, ``Mul``, ``ReduceSum``), not ``ArgMax``/scatter, so the graph exports to ONNX (opset 17) and
converts to TFLite. An exact tie (e.g. an all-zero window) counts for every tied kernel - the same in every runtime.

Input: ``(B, in_channels, L)`` beats, z-normalised outside the graph.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from ._ridge import DEFAULT_ALPHAS, fit_head

KERNEL_LENGTH = 9
# Beats per block of the fit's feature statistics and scaling (bounded float64 temporaries).
_STATS_BLOCK = 4096


def hydra_dilations(input_length: int) -> list[int]:
    """``2^0 .. 2^floor(log2((L - 1) / (9 - 1)))`` (the paper's exponential dilations)."""
    max_exponent = int(math.floor(math.log2((input_length - 1) / (KERNEL_LENGTH - 1))))
    return [2 ** e for e in range(max_exponent + 1)]


@register_model("hydra")
class Hydra(nn.Module):
    """``k`` kernels per group, ``g`` groups per dilation (``g / 2`` on the beat, ``g / 2`` on its difference)."""

    # Beats per runtime call on the CPU, written into exported files (metadata ``cpu_batch``): each convolution's
    # responses are k * g / 2 channels per beat (128 KiB at k=8, g=64, 140 samples), so a few beats already fill a
    # core's cache. best.onnx on two cores: 3,900 beats/s at 4 per call, 3,300 at 8, 2,700 at 16.
    cpu_batch = 4
    # PyTorch's per-call overhead is larger: best.pth annotating 2 hours of ECG (one PyTorch thread, 2 cores) took 42 s
    # at 4 beats per call, 30 s at 16 and 64 s at 64 (the base class's); the same probabilities.
    torch_cpu_batch = 16

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3, k: int = 8, g: int = 64,
                 seed: int = 0, input_length: int = 140):
        super().__init__()
        del dropout  # the uniform constructor; nothing is trained by gradient here
        if k < 2 or g < 2 or g % 2:
            raise ValueError(f"hydra needs k >= 2 and an even g >= 2, got k={k}, g={g}")
        if input_length < KERNEL_LENGTH:  # no dilation fits: the model would have no features at all
            raise ValueError(f"hydra needs beats of at least {KERNEL_LENGTH} samples, got {input_length}")
        self.k, self.g, self.seed, self.input_length = k, g, seed, input_length
        self.in_channels = in_channels
        self.dilations = hydra_dilations(input_length)
        generator = torch.Generator().manual_seed(seed)
        half = g // 2
        for i, _ in enumerate(self.dilations):
            for source in ("x", "dx"):
                w = torch.randn(half * k, 1, KERNEL_LENGTH, generator=generator, dtype=torch.float64)
                w = w - w.mean(-1, keepdim=True)
                w = w / w.abs().sum(-1, keepdim=True)
                if in_channels > 1:  # each group sums a random non-empty subset of the channels
                    sizes = torch.randint(1, in_channels + 1, (half,), generator=generator)
                    mask = torch.zeros(half, in_channels, dtype=torch.float64)
                    for h in range(half):
                        mask[h, torch.randperm(in_channels, generator=generator)[: int(sizes[h])]] = 1.0
                    w = w * mask.repeat(k, 1)[:, :, None]  # channel j * half + h belongs to group h
                self.register_buffer(f"kernels_{i}_{source}", w.float())
        self.num_features = len(self.dilations) * g * k * 2
        self.register_buffer("feature_mean", torch.zeros(self.num_features))
        self.register_buffer("feature_std", torch.ones(self.num_features))
        self.head = nn.Linear(self.num_features, num_classes)
        nn.init.zeros_(self.head.weight)  # fitted in closed form; zeros keep construction independent of torch's RNG
        nn.init.zeros_(self.head.bias)

    # ------------------------------------------------------------------------------------------------ features

    def _group_counts(self, inp: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
        """Soft max counts then hard min counts (B, 2 * k * groups) of one dilation on one input.

        Channel ``j * groups + h`` of ``weight`` is kernel ``j`` of group ``h``, so the responses reshape to
        ``(B, k, groups, T)`` and every competition is one reduction over the kernel axis (``ReduceMax``/``ReduceMin``
        in ONNX) and one comparison. Written as ``k`` channel slices with chains of elementwise maxima instead, the
        ONNX graph had ~10x the operators; ONNX Runtime ran it 1.35x slower at 4 beats per call (the same
        probabilities to 1e-6). onnx2tf converts this graph (its parity gates check every file).
        """
        groups = weight.shape[0] // self.k
        z = F.conv1d(inp, weight, dilation=dilation, padding=(KERNEL_LENGTH - 1) * dilation // 2)
        z = z.reshape(z.shape[0], self.k, groups, z.shape[-1])
        soft_max = ((z == z.amax(1, keepdim=True)).float() * z).sum(-1)
        hard_min = (z == z.amin(1, keepdim=True)).float().sum(-1)
        return torch.cat([soft_max.flatten(1), hard_min.flatten(1)], dim=1)

    def _blocks(self, x: torch.Tensor, dx: torch.Tensor | None = None):
        """``(first feature, counts)`` of each dilation and input in feature order: the columns
        ``first .. first + 2 * k * g / 2`` of :meth:`counts`. ``dx``: the first difference of ``x`` where it is given
        rather than taken from ``x`` (e.g. at a finer resolution than an int8 ``x`` keeps)."""
        dx = x[..., 1:] - x[..., :-1] if dx is None else dx
        first = 0
        for i, d in enumerate(self.dilations):
            for source, inp in (("x", x), ("dx", dx)):
                yield first, self._group_counts(inp, getattr(self, f"kernels_{i}_{source}"), d)
                first += self.k * self.g  # soft and hard counts of g / 2 groups (a Python int, also when traced)

    def counts(self, x: torch.Tensor) -> torch.Tensor:
        """Raw Hydra features (before the square root and the standardisation)."""
        return torch.cat([block for _, block in self._blocks(x)], dim=1)

    def _scale(self, counts: torch.Tensor, columns: slice = slice(None)) -> torch.Tensor:
        """Square root and sparse standardisation of ``counts``, the features ``columns`` of :meth:`counts`."""
        root = counts.clamp(min=0).sqrt()
        return (root - self.feature_mean[columns]) * (counts > 0).float() / self.feature_std[columns]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self._scale(self.counts(x))

    def mult_adds(self) -> int:
        """Multiply-accumulates per beat: the convolutions (``k * g / 2`` kernels of 9 taps per dilation, on the beat
        and on its one shorter difference) and the head. Both are functions here, which torchinfo does not count."""
        kernels = self.k * self.g // 2
        convolutions = sum(kernels * self.in_channels * KERNEL_LENGTH * (self.input_length - shorter)
                           for _ in self.dilations for shorter in (0, 1))
        return convolutions + self.num_features * self.head.out_features

    def forward(self, x: torch.Tensor, dx: torch.Tensor | None = None) -> torch.Tensor:
        # The head is applied block by block and summed (the same map as ``head(features(x))``, to rounding): in a
        # full-INT8 file each tensor has one scale, and one concatenation of every block's features would make soft
        # sums and hard counts of every dilation share it (export/competition.py tells the rest).
        logits = self.head.bias
        for first, block in self._blocks(x, dx):
            columns = slice(first, first + self.k * self.g)
            logits = logits + F.linear(self._scale(block, columns), self.head.weight[:, columns])
        return logits

    # ------------------------------------------------------------------------------------------------ fitting

    @torch.no_grad()
    def transform(self, beats: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """Standardised features of many beats, in batches (bounded memory)."""
        return torch.cat([self.features(beats[i:i + batch_size]) for i in range(0, beats.shape[0], batch_size)])

    @torch.no_grad()
    def fit_closed_form(self, beats: torch.Tensor, labels: torch.Tensor, class_balance: float = 0.0,
                        seed: int = 0, alphas=DEFAULT_ALPHAS, batch_size: int = 32) -> dict:
        """Fit the standardisation and the ridge head on ``beats`` (N, C, L) only; alpha by leave-one-out on them.

        Afterwards ``self(beats)`` returns the ridge decision values. Deterministic (``seed`` is accepted for the
        uniform interface; Hydra's kernels come from the constructor's ``seed``).
        """
        del seed
        labels_np = np.asarray(torch.as_tensor(labels), dtype=np.int64)
        feats = self.fit_features(beats, batch_size)
        return fit_head(self.head, feats, labels_np, class_balance, alphas, self.num_features)

    @torch.no_grad()
    def fit_features(self, beats: torch.Tensor, batch_size: int = 32) -> np.ndarray:
        """Fit the standardisation on ``beats`` (N, C, L); returns their standardised features (N, p), float64."""
        beats = torch.as_tensor(beats, dtype=torch.float32)
        counts = torch.cat([self.counts(beats[i:i + batch_size]) for i in range(0, beats.shape[0], batch_size)])
        # mean and std of each feature over the beats where it is non-zero (the sparse scaling), summed in float64 a
        # block of beats at a time: with many beats (a user's recordings) whole-matrix float64 temporaries of
        # (beats x features) would take several times the memory of the counts themselves
        blocks = counts.split(_STATS_BLOCK)
        n_nonzero = sum((block > 0).sum(0) for block in blocks).clamp(min=1)
        mean = sum((block.double().clamp(min=0).sqrt() * (block > 0)).sum(0) for block in blocks) / n_nonzero
        var = sum((((block.double().clamp(min=0).sqrt() - mean) * (block > 0)) ** 2).sum(0)
                  for block in blocks) / n_nonzero
        std = var.sqrt()
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        self.feature_mean.copy_(mean.float())
        self.feature_std.copy_(std.float())
        feats = np.empty(tuple(counts.shape), dtype=np.float64)
        for first, block in zip(range(0, len(counts), _STATS_BLOCK), blocks, strict=True):
            feats[first:first + len(block)] = self._scale(block).double().numpy()
        return feats
