"""Model summaries: torchinfo's layer table plus parameters, size and MACs per beat."""

from __future__ import annotations

import torch
from torchinfo import summary

from ..data.ucr import INPUT_LENGTH
from ..models import build_model, count_parameters, fold_for_export


def macs_per_beat(model: torch.nn.Module, length: int = INPUT_LENGTH) -> int:
    """Multiply-accumulate operations for one beat (convolutions and linear layers), from torchinfo.

    Weight norm is folded first: torchinfo does not count parametrized convolutions. A model that convolves with
    functions rather than modules (Hydra, MiniRocket: fixed kernels) counts its own (``mult_adds``): torchinfo sees
    only modules.
    """
    if hasattr(model, "mult_adds"):
        return int(model.mult_adds())
    return int(summary(fold_for_export(model), input_size=(1, 1, length), verbose=0).total_mult_adds)


def model_summary(name: str, num_classes: int = 5) -> str:
    model = build_model(name, num_classes=num_classes).eval()
    stats = summary(fold_for_export(model), input_size=(1, 1, INPUT_LENGTH), verbose=0, depth=4,
                    col_names=("input_size", "output_size", "num_params", "mult_adds"))
    params = count_parameters(model)
    return (f"{stats}\n{name}: {params:,} parameters ({params * 4 / 2**20:.2f} MiB as float32), "
            f"{macs_per_beat(model):,} MACs per beat")
