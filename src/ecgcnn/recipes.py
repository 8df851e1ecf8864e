"""Named training recipes: plain data over :class:`~ecgcnn.train.TrainConfig`.

``ecgcnn train --recipe NAME`` starts from the recipe; flags given explicitly on the command line override it.
Every choice in a recipe was made on the 500 training beats (nested cross-validation, see ``ecgcnn ablation``);
none looked at the test split.
"""

from __future__ import annotations

from dataclasses import fields

from .errors import EcgcnnError

_AUGMENT = {"jitter": 0.03, "scale": 0.1, "shift": 5}

RECIPES: dict[str, dict] = {
    # The seed's training, for reference: one model, 20 % validation split, plain cross-entropy.
    "seed": {},
    # Headline model: a 5-fold ensemble (each member early-stopped on its own held-out fold, so all 500 beats
    # train and all 500 choose), augmented, with a class-balanced loss for the rare classes.
    "best": {"model": "base-cnn", "epochs": 60, "class_balance": 0.5, **_AUGMENT, "folds": 5},
    # Edge model: the half-width base CNN, class-balanced, on the beats as they are. In nested cross-validation
    # neither augmentation nor distillation from the best ensemble helped it (see ``ecgcnn ablation``); both stay
    # available as flags (--jitter ..., --teacher).
    "edge": {"model": "base-cnn-small", "epochs": 80, "class_balance": 0.5},
}


def list_recipes() -> list[str]:
    return list(RECIPES)


def recipe_settings(name: str, output_dir: str = "outputs") -> dict:
    """The TrainConfig fields a recipe sets (with ``{output_dir}`` filled in), plus ``recipe=name``."""
    from .train import TrainConfig  # noqa: PLC0415

    if name not in RECIPES:
        raise EcgcnnError(f"--recipe {name!r}: expected one of {', '.join(RECIPES)}")
    known = {f.name for f in fields(TrainConfig)}
    settings = dict(RECIPES[name])
    unknown = set(settings) - known
    if unknown:  # a programming error in RECIPES, caught by the tests
        raise ValueError(f"recipe {name!r} sets unknown fields {sorted(unknown)}")
    if isinstance(settings.get("teacher"), str):
        settings["teacher"] = settings["teacher"].format(output_dir=output_dir)
    return {**settings, "recipe": None if name == "seed" else name}
