"""The architectures (one file each) and their registry (``_registry``). Importing this package registers them all,
in the order shown to users."""

# The import order is the registration order, which is the order shown to users.
# isort: off
from . import base_cnn, vgg, inception, tcn, ensemble, hydra, minirocket, hydra_minirocket  # noqa: F401 - registration
# isort: on
from ._registry import build_model, count_parameters, fold_for_export, list_models, model_accepts, register_model

__all__ = ["build_model", "list_models", "register_model", "count_parameters", "fold_for_export", "model_accepts"]
