"""MiniRocket (Dempster, Schmidt & Webb, 2021): fixed kernels, data-drawn biases, PPV features, a ridge head.

Written from the paper's description:

* the 84 kernels of length 9 whose weights are -1 except for three weights of 2 (all C(9, 3) placements);
* dilations exponentially spaced from 1 to ``(L - 1) / (9 - 1)`` (at most 32 before removing duplicates), the
  features per kernel shared out over the dilations in proportion to how often each dilation occurs;
* half of the kernel/dilation combinations use 'same' zero padding, the other half only the valid outputs
  (alternating);
* biases: for every kernel/dilation combination, quantiles of its convolution output on one randomly chosen
  training beat, at the low-discrepancy quantiles ``frac(j * golden ratio)``;
* features: PPV, the proportion of (valid) outputs above the bias, then a ridge classifier on standardised
  features (here a ``nn.Linear`` fitted in closed form by :meth:`MiniRocket.fit_closed_form`, alpha by leave-one-out
  on the fitting beats only).

Export: PPV is written as ``((conv > bias).float() * valid_mask).sum(time) * (1 / n)`` - comparisons, no sigmoid -
so the graph exports to ONNX (opset 17) and converts to TFLite (onnx2tf). The masks (84 x 140 per dilation) are
most of the FP32 file (~0.7 of 1.1 MiB). Input: ``(B, in_channels, L)`` beats, z-normalised outside.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register_model
from ._ridge import DEFAULT_ALPHAS, fit_head

KERNEL_LENGTH = 9
NUM_KERNELS = 84
MAX_DILATIONS = 32
GOLDEN_RATIO = (1 + math.sqrt(5)) / 2


def minirocket_kernels() -> torch.Tensor:
    """(84, 9): weights -1, with 2 at each of the C(9, 3) choices of three positions (each kernel sums to 0)."""
    kernels = -torch.ones(NUM_KERNELS, KERNEL_LENGTH)
    for row, positions in enumerate(itertools.combinations(range(KERNEL_LENGTH), 3)):
        kernels[row, list(positions)] = 2.0
    return kernels


def minirocket_dilations(input_length: int, num_features: int) -> tuple[list[int], list[int]]:
    """Unique dilations and the number of features (biases) per kernel at each."""
    per_kernel = num_features // NUM_KERNELS
    num_dilations = min(MAX_DILATIONS, per_kernel)
    max_exponent = math.log2((input_length - 1) / (KERNEL_LENGTH - 1))
    raw = np.floor(2.0 ** np.linspace(0.0, max_exponent, num_dilations)).astype(np.int64)
    dilations, counts = np.unique(raw, return_counts=True)
    per_dilation = np.floor(counts * per_kernel / num_dilations).astype(np.int64)
    remainder = per_kernel - int(per_dilation.sum())
    for i in range(remainder):  # share out what flooring dropped, smallest dilations first
        per_dilation[i % len(per_dilation)] += 1
    return [int(d) for d in dilations], [int(f) for f in per_dilation]


@register_model("minirocket")
class MiniRocket(nn.Module):
    """``num_features`` (rounded down to a multiple of 84) PPV features of the 84 fixed kernels."""

    def __init__(self, num_classes: int = 5, in_channels: int = 1, dropout: float = 0.3, num_features: int = 9996,
                 seed: int = 0, input_length: int = 140):
        super().__init__()
        del dropout  # the uniform constructor; nothing is trained by gradient here
        if num_features < NUM_KERNELS:
            raise ValueError(f"minirocket needs num_features >= {NUM_KERNELS}, got {num_features}")
        self.seed, self.input_length, self.in_channels = seed, input_length, in_channels
        self.dilations, self.features_per_dilation = minirocket_dilations(input_length, num_features)
        self.num_features = NUM_KERNELS * sum(self.features_per_dilation)
        kernels = minirocket_kernels()
        generator = torch.Generator().manual_seed(seed)
        positions = torch.arange(input_length)
        for i, (d, f) in enumerate(zip(self.dilations, self.features_per_dilation, strict=True)):
            half = (KERNEL_LENGTH - 1) * d // 2
            if input_length - 2 * half < 1:
                raise ValueError(f"input_length {input_length} too short for dilation {d}")
            weight = kernels[:, None, :].repeat(1, in_channels, 1)
            if in_channels > 1:  # each kernel/dilation combination sums a random non-empty subset of channels
                sizes = torch.randint(1, min(in_channels, KERNEL_LENGTH) + 1, (NUM_KERNELS,), generator=generator)
                mask = torch.zeros(NUM_KERNELS, in_channels)
                for row in range(NUM_KERNELS):
                    mask[row, torch.randperm(in_channels, generator=generator)[: int(sizes[row])]] = 1.0
                weight = weight * mask[:, :, None]
            self.register_buffer(f"kernels_{i}", weight)
            # Kernel j uses padding at dilation i when i + j is even (half the combinations, alternating): it averages
            # over all L outputs of the 'same' convolution; the others only over the outputs without padding.
            unpadded = ((positions >= half) & (positions < input_length - half)).float()
            padded = torch.tensor([(i + j) % 2 == 0 for j in range(NUM_KERNELS)])
            valid = torch.where(padded[:, None], torch.ones(input_length), unpadded)  # (84, L)
            self.register_buffer(f"valid_{i}", valid[None])  # (1, 84, L), 0/1
            self.register_buffer(f"inv_count_{i}", 1.0 / valid.sum(1)[None])  # (1, 84)
            self.register_buffer(f"biases_{i}", torch.zeros(f, 1, NUM_KERNELS, 1))  # bias r of kernel j: [r, 0, j, 0]
        self.register_buffer("feature_mean", torch.zeros(self.num_features))
        self.register_buffer("feature_std", torch.ones(self.num_features))
        self.head = nn.Linear(self.num_features, num_classes)
        nn.init.zeros_(self.head.weight)  # fitted in closed form; zeros keep construction independent of torch's RNG
        nn.init.zeros_(self.head.bias)

    # ------------------------------------------------------------------------------------------------ features

    def _conv(self, x: torch.Tensor, i: int) -> torch.Tensor:
        d = self.dilations[i]
        return F.conv1d(x, getattr(self, f"kernels_{i}"), dilation=d, padding=(KERNEL_LENGTH - 1) * d // 2)

    def ppv(self, x: torch.Tensor) -> torch.Tensor:
        """Raw PPV features (B, num_features), ordered dilation, bias index, kernel.

        PPV = (number of valid outputs > bias) * (1 / number of valid outputs): an integer sum, exact in any order,
        then one multiply, so every runtime gets the same value. Written with 3-D (B, 84, L) tensors and rank-3
        constants only. onnx2tf (NCW -> NWC) mis-converts the alternatives tried: a 4-D broadcast of all biases
        at once, and - without the multiply by the (1, 84, L) mask - the reduction over time (it sums over the
        kernels instead), both with a separate unpadded convolution and with the bias inside the convolution.
        """
        feats = []
        for i in range(len(self.dilations)):
            conv = self._conv(x, i)  # (B, 84, L)
            valid, inv_count = getattr(self, f"valid_{i}"), getattr(self, f"inv_count_{i}")
            biases = getattr(self, f"biases_{i}")
            for r in range(self.features_per_dilation[i]):
                feats.append(((conv > biases[r]).float() * valid).sum(-1) * inv_count)  # biases[r]: (1, 84, 1)
        return torch.cat(feats, dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return (self.ppv(x) - self.feature_mean) / self.feature_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def mult_adds(self) -> int:
        """Multiply-accumulates per beat: the 84 kernels' 'same' convolutions at every dilation (a function here,
        which torchinfo does not count) and the head."""
        convolutions = len(self.dilations) * NUM_KERNELS * self.in_channels * KERNEL_LENGTH * self.input_length
        return convolutions + self.num_features * self.head.out_features

    @torch.no_grad()
    def transform(self, beats: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """Standardised features of many beats, in batches (bounded memory)."""
        return torch.cat([self.features(beats[i:i + batch_size]) for i in range(0, beats.shape[0], batch_size)])

    # ------------------------------------------------------------------------------------------------ fitting

    @torch.no_grad()
    def fit_biases(self, beats: torch.Tensor, seed: int = 0) -> None:
        """Biases from quantiles of each kernel/dilation's (valid) output on one training beat drawn with ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        feature_index = 0
        for i, f in enumerate(self.features_per_dilation):
            picks = torch.randint(0, beats.shape[0], (NUM_KERNELS,), generator=generator)
            conv = self._conv(beats[picks], i).double()  # (picked beat, kernel, L)
            valid = getattr(self, f"valid_{i}")[0] > 0  # (84, L)
            biases = torch.empty(f, 1, NUM_KERNELS, 1, dtype=torch.float64)
            for j in range(NUM_KERNELS):
                n = torch.arange(feature_index + 1, feature_index + f + 1, dtype=torch.float64)
                biases[:, 0, j, 0] = torch.quantile(conv[j, j][valid[j]], torch.frac(n * GOLDEN_RATIO))
                feature_index += f
            getattr(self, f"biases_{i}").copy_(biases.float())

    @torch.no_grad()
    def fit_closed_form(self, beats: torch.Tensor, labels: torch.Tensor, class_balance: float = 0.0,
                        seed: int = 0, alphas=DEFAULT_ALPHAS, batch_size: int = 128) -> dict:
        """Fit biases, standardisation and the ridge head on ``beats`` (N, C, L) only; alpha by leave-one-out.

        Afterwards ``self(beats)`` returns the ridge decision values. ``seed`` draws the beats the biases come from.
        """
        labels_np = np.asarray(torch.as_tensor(labels), dtype=np.int64)
        feats = self.fit_features(beats, seed, batch_size)
        return fit_head(self.head, feats, labels_np, class_balance, alphas, self.num_features)

    @torch.no_grad()
    def fit_features(self, beats: torch.Tensor, seed: int = 0, batch_size: int = 128) -> np.ndarray:
        """Fit the biases and the standardisation on ``beats`` (N, C, L); returns their standardised features (N, p),
        float64."""
        beats = torch.as_tensor(beats, dtype=torch.float32)
        self.fit_biases(beats, seed=seed)
        ppv = torch.cat([self.ppv(beats[i:i + batch_size]) for i in range(0, beats.shape[0], batch_size)])
        ppv = ppv.double()
        mean = ppv.mean(0)
        std = ppv.std(0)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
        self.feature_mean.copy_(mean.float())
        self.feature_std.copy_(std.float())
        return ((ppv.float() - self.feature_mean) / self.feature_std).double().numpy()
