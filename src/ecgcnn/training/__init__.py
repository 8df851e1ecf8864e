"""Training: ``run`` (one run and its artifacts), ``loop`` (fit one member), ``resume``, ``lock``,
``distributed``."""

from .run import fit_on_subset, train

__all__ = ["train", "fit_on_subset"]
