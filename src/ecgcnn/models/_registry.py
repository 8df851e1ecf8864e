"""Model registry: one file per architecture, each registered by ``@register_model``.

All models take ``(batch, in_channels, 140)`` beats and return ``(batch, num_classes)`` logits, and share the
constructor signature ``(num_classes=5, in_channels=1, dropout=0.3)``; an architecture may take further keyword
arguments (the ensemble's ``members``), which checkpoints store with the others. A registered name may also be a
function returning a configured instance (a size variant such as ``base-cnn-small``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn
from torch.nn.utils import parametrize

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Class decorator adding an architecture to the registry under ``name``."""

    def decorator(factory):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    return list(_REGISTRY)


def build_model(name: str, num_classes: int = 5, dropout: float = 0.3, in_channels: int = 1, **extra) -> nn.Module:
    """Instantiate a registered architecture. Unknown names raise ``ValueError`` listing the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}")
    kwargs = {"num_classes": num_classes, "in_channels": in_channels, "dropout": dropout, **extra}
    model = _REGISTRY[name](**kwargs)
    model.model_name = name  # the registered name, also for size variants built by a function
    model.init_kwargs = kwargs  # lets fold_for_export rebuild it
    return model


def model_accepts(name: str, argument: str) -> bool:
    """Whether the architecture's constructor takes ``argument`` (e.g. ``seed`` for random-kernel models)."""
    return argument in inspect.signature(_REGISTRY[name]).parameters


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fold_for_export(model: nn.Module) -> nn.Module:
    """An eval-mode copy with parametrizations (weight norm) folded into plain weights, so exporters see convs.

    The copy is rebuilt from the registry rather than deep-copied: deep copies of parametrized modules share
    state with the original, and folding them would break it.
    """
    copy_ = build_model(model.model_name, **model.init_kwargs)
    copy_.load_state_dict(model.state_dict())
    model = copy_.eval()
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for tensor_name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
    return model
