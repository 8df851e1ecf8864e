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

from .errors import EcgcnnError
from .fileio import write_json_atomic, write_text_atomic

# (key, label, TrainConfig settings). "teacher": key of an earlier ensemble row.
VARIANTS: list[tuple[str, str, dict]] = [
    ("plain", "base-cnn, plain cross-entropy (seed training, recipe epochs)", {"model": "base-cnn"}),
    ("balanced", "+ class-balanced loss (count^-0.5)", {"model": "base-cnn", "class_balance": 0.5}),
    ("augmented", "+ augmentation (jitter, scaling, shift)", {"recipe_base": "best", "folds": 1}),
    ("best", "+ 5-fold ensemble = recipe best", {"recipe_base": "best"}),
    ("small", "base-cnn-small, balanced + augmented, no teacher", {"recipe_base": "edge", "teacher": None,
                                                                     "distill_weight": 0.0}),
    ("edge", "+ distillation from the ensemble = recipe edge", {"recipe_base": "edge", "teacher": "best"}),
]


def _config(settings: dict, seed: int, epochs: int | None, output_dir: str, data_dir):
    from .recipes import RECIPES, recipe_settings  # noqa: PLC0415
    from .train import TrainConfig  # noqa: PLC0415

    settings = dict(settings)
    base = settings.pop("recipe_base", None)
    merged = recipe_settings(base, output_dir) if base else {"epochs": RECIPES["best"]["epochs"]}
    merged.update(settings)
    if epochs is not None:
        merged["epochs"] = epochs
    return TrainConfig(**merged, seed=seed, output_dir=output_dir, data_dir=data_dir, progress=False)


def run_ablation(seed: int = 0, outer_folds: int = 5, epochs: int | None = None, output_dir: str = "outputs/ablation",
                 results_dir: str = "results/ablation", data_dir: str | None = None, variants=None,
                 log=print) -> dict:
    from . import data as data_mod  # noqa: PLC0415
    from .evaluate import classification_metrics  # noqa: PLC0415
    from .models import fold_for_export  # noqa: PLC0415
    from .runtime import normalize_beats  # noqa: PLC0415
    from .train import fit_on_subset, train  # noqa: PLC0415

    variants = [v for v in VARIANTS if variants is None or v[0] in variants]
    if not variants:
        raise EcgcnnError(f"--variants: expected some of {', '.join(k for k, _, _ in VARIANTS)}")
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

    # Confirmation on test, after every validation figure exists: the normal protocol, all 500 beats.
    for row, (key, _, settings) in zip(rows, variants):
        teacher_key = settings.get("teacher")
        teacher = str(Path(output_dir) / teacher_key / f"{teacher_key}_best.pth") if teacher_key else None
        cfg = replace(_config({**settings, "teacher": teacher}, seed, epochs, output_dir, data_dir), recipe=key)
        metrics = train(cfg)
        row.update(test_accuracy=metrics["test"]["accuracy"], test_macro_f1=metrics["test"]["macro_f1"])
    summary = {"command": f"ecgcnn ablation --seed {seed}" + (f" --epochs {epochs}" if epochs else ""),
               "seed": seed, "outer_folds": outer_folds, "rows": rows}
    results = Path(results_dir)
    write_json_atomic(results / "ablation.json", summary)
    write_text_atomic(results / "ablation.md", render_ablation(summary))
    return summary


def render_ablation(summary: dict) -> str:
    lines = [f"Generated by `{summary['command']}`. Validation: nested {summary['outer_folds']}-fold cross-validation "
             "over the 500 training beats (every choice inside each fold). Test: the same variant trained on all 500 "
             "beats by `ecgcnn train`, scored once on the 4,500 test beats.", "",
             "| variant | validation accuracy | validation macro-F1 | test accuracy | test macro-F1 |",
             "|---|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        lines.append(f"| {r['label']} | {100 * r['val_accuracy']:.2f} % | {r['val_macro_f1']:.3f} | "
                     f"{100 * r['test_accuracy']:.2f} % | {r['test_macro_f1']:.3f} |")
    return "\n".join(lines) + "\n"
