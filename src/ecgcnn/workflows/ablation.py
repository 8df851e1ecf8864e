"""``ecgcnn ablation``: what each technique of the recipes adds, measured on validation, confirmed on test.

Validation figure: nested cross-validation over the 500 training beats only. Each outer fold is held out while the
whole variant (its members, their epoch choice, its teacher) is trained on the other beats; the held-out
predictions of all outer folds cover every training beat once. Test figure: the variant trained by the normal
protocol (``ecgcnn train``) on all 500 beats and scored once on the test split, after all validation figures exist.
Variants are cumulative; the distilled row's teacher is, per outer fold, the previous ensemble row's model.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .. import data as data_mod
from ..config import AUGMENTATION, RECIPES, TrainConfig
from ..errors import EcgcnnError
from ..evaluate import classification_metrics
from ..fileio import write_json_atomic, write_text_atomic
from ..layout import checkpoint_path
from ..models import fold_for_export
from ..preprocess import normalize_beats
from ..reporting.markdown import sync_readme
from ..training import fit_on_subset, train

# The rows build up to the recipes, which are taken from config.RECIPES rather than written again.
_ENSEMBLE = RECIPES["cnn-ensemble"]
_SMALL = RECIPES["edge"]
_BALANCED = {k: v for k, v in _ENSEMBLE.items() if k not in AUGMENTATION and k != "folds"}
_AUG = AUGMENTATION
_DISTIL = {"distill_weight": 0.7, "distill_temperature": 2.0}

# (key, label, TrainConfig settings). "teacher": key of an earlier ensemble row. Rows equal to a recipe say so.
VARIANTS: list[tuple[str, str, dict]] = [
    ("plain", "base-cnn, plain cross-entropy (the seed's training, 60 epochs)",
     {"model": _BALANCED["model"], "epochs": _BALANCED["epochs"]}),
    ("balanced", "+ class-balanced loss (count^-0.5)", _BALANCED),
    ("augmented", "+ augmentation (jitter, scaling, shift)", {**_BALANCED, **_AUG}),
    ("ensemble-augmented", "+ 5-fold ensemble", _ENSEMBLE),
    ("ensemble", "the same ensemble without augmentation", {**_BALANCED, "folds": _ENSEMBLE["folds"]}),
    ("small", "base-cnn-small, class-balanced loss, 80 epochs", _SMALL),
    ("small-augmented", "+ augmentation", {**_SMALL, **_AUG}),
    ("distilled", "base-cnn-small (no augmentation) + distillation from the augmented ensemble",
     {**_SMALL, **_DISTIL, "teacher": "ensemble-augmented"}),
    # Random-kernel models: fixed kernels, ridge head (alpha by leave-one-out inside the fitting beats), then
    # refit on every fitting beat (nothing to early-stop).
    ("hydra", "Hydra (k=8, g=64 random kernels), ridge head, refit on all beats", {"model": "hydra", "refit": True}),
    ("hydra-balanced", "+ class-balanced ridge (count^-0.5)", {"model": "hydra", "refit": True,
                                                               "class_balance": 0.5}),
    ("minirocket", "MiniRocket, ridge head, refit on all beats", {"model": "minirocket", "refit": True}),
]


VARIANT_KEYS = tuple(key for key, _, _ in VARIANTS)


def _config(settings: dict, seed: int, epochs: int | None, output_dir: str, data_dir) -> TrainConfig:
    merged = dict(settings)
    if epochs is not None:
        merged["epochs"] = epochs
    return TrainConfig(**merged, seed=seed, output_dir=output_dir, data_dir=data_dir, progress=False)


def recipe_of(settings: dict) -> str | None:
    """The recipe a row reproduces exactly (teacher aside), if any: equal training configurations."""

    def comparable(values: dict) -> dict:
        config = TrainConfig(**{k: v for k, v in values.items() if k not in ("teacher", "recipe")}).as_dict()
        return {k: v for k, v in config.items() if k != "teacher"}

    for name, recipe in RECIPES.items():
        if recipe and comparable(recipe) == comparable(settings):
            return name
    return None


def run_ablation(seed: int = 0, outer_folds: int = 5, epochs: int | None = None, output_dir: str = "outputs/ablation",
                 results_dir: str = "results/ablation", data_dir: str | None = None, variants=None,
                 readme: str | None = None, validation_only: bool = False, log=print) -> dict:
    unknown = [v for v in variants or () if v not in VARIANT_KEYS]
    if unknown or variants == []:
        raise EcgcnnError(f"--variants {' '.join(unknown)}: expected some of {', '.join(VARIANT_KEYS)}")
    variants = [v for v in VARIANTS if variants is None or v[0] in variants]
    torch.manual_seed(seed)
    dataset = data_mod.load_dataset(data_dir, load_test=False)
    beats = torch.from_numpy(normalize_beats(dataset.x_train)).unsqueeze(1)
    labels = torch.from_numpy(dataset.y_train)
    outer = data_mod.stratified_folds(dataset.y_train, outer_folds, seed + 7919)  # not any run's own split
    rows, fold_models = [], {}
    for key, label, settings in variants:
        started = time.perf_counter()
        teacher_key = settings.get("teacher")
        cfg = _config({**settings, "teacher": None}, seed, epochs, output_dir, data_dir)
        if teacher_key and teacher_key not in fold_models:
            raise EcgcnnError(f"ablation row {key!r} distils from {teacher_key!r}, which must run before it")
        predictions = np.empty(len(labels), dtype=np.int64)
        fold_models[key] = []
        for k, (inner_idx, held_out) in enumerate(outer):
            teacher = fold_models[teacher_key][k] if teacher_key else None
            model = fit_on_subset(cfg, beats, labels, inner_idx, teacher, torch.device("cpu"))
            model = fold_for_export(model)
            with torch.no_grad():
                predictions[held_out] = model(beats[held_out]).argmax(1).numpy()
            fold_models[key].append(model)
        val = classification_metrics(dataset.y_train, predictions)
        rows.append({"key": key, "label": label, "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
                     "cv_seconds": round(time.perf_counter() - started, 1)})
        log(f"ablation {key}: nested-CV accuracy {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f} "
            f"({rows[-1]['cv_seconds']:.0f} s)")
    fold_models.clear()
    for row, (_, _, settings) in zip(rows, variants, strict=True):
        row["recipe"] = recipe_of(settings)
    if validation_only:
        return {"command": f"ecgcnn ablation --seed {seed} --validation-only", "seed": seed,
                "outer_folds": outer_folds, "rows": rows}

    # Confirmation on test, after every validation figure exists: the normal protocol, all 500 beats.
    for row, (key, _, settings) in zip(rows, variants, strict=True):
        teacher_key = settings.get("teacher")
        teacher = str(checkpoint_path(output_dir, teacher_key)) if teacher_key else None
        cfg = replace(_config({**settings, "teacher": teacher}, seed, epochs, output_dir, data_dir), recipe=key)
        metrics = train(cfg)
        row.update(test_accuracy=metrics["test"]["accuracy"], test_macro_f1=metrics["test"]["macro_f1"],
                   test_per_class_f1=[c["f1"] for c in metrics["test"]["per_class"]])
    summary = {"command": f"ecgcnn ablation --seed {seed}" + (f" --epochs {epochs}" if epochs else "")
               + (f" --outer-folds {outer_folds}" if outer_folds != 5 else ""),
               "seed": seed, "outer_folds": outer_folds, "rows": rows}
    results = Path(results_dir)
    write_json_atomic(results / "ablation.json", summary)
    markdown = render_ablation(summary)
    write_text_atomic(results / "ablation.md", markdown)
    if readme and Path(readme).is_file() and len(variants) == len(VARIANTS):  # only a complete table
        sync_readme(Path(readme), markdown, results, section="ablation")
    return summary


def render_ablation(summary: dict) -> str:
    lines = [f"Generated by `{summary['command']}`. Validation: nested {summary['outer_folds']}-fold cross-validation "
             "over the 500 training beats (every choice inside each fold). Test: the same variant trained on all 500 "
             "beats by `ecgcnn train`, scored once on the 4,500 test beats.", "",
             "| variant | validation accuracy | validation macro-F1 | test accuracy | test macro-F1 |",
             "|---|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        label = r["label"] + (f" = **recipe {r['recipe']}**" if r.get("recipe") else "")
        test = (f"{100 * r['test_accuracy']:.2f} % | {r['test_macro_f1']:.3f}" if "test_accuracy" in r
                else "not run | not run")
        lines.append(f"| {label} | {100 * r['val_accuracy']:.2f} % | {r['val_macro_f1']:.3f} | {test} |")
    return "\n".join(lines) + "\n"
