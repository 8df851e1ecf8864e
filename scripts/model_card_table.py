#!/usr/bin/env python3
"""The per-class recall table of docs/model-card.md, measured: every shipped model file scored on the test beats.

    python scripts/model_card_table.py                               # print the section
    python scripts/model_card_table.py --write docs/model-card.md    # replace its <!-- model-card:... --> section

Each shipped file (``pretrained:best``, ``pretrained:edge``; checkpoint, ONNX and full-INT8 TFLite) is scored with
``ecgcnn.evaluation.metrics.evaluate_predictor``, exactly what ``ecgcnn evaluate pretrained:NAME`` prints. The manifest
records F1 per class but not recall, so recall is measured here. tests/test_docs.py checks that the committed
section is what this script measures (to one beat per class: another CPU may round one beat differently).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ecgcnn import load_dataset, load_predictor
from ecgcnn.evaluation.metrics import evaluate_predictor
from ecgcnn.reporting.markdown import sync_readme
from ecgcnn.runtimes.pretrained import read_manifest

SECTION = "model-card"
# format -> pretrained:NAME suffix
SPEC_SUFFIX = {"pytorch": "", "onnx": ".onnx", "tflite-int8-full": ".tflite", "tflite-fp16": ".tflite"}


def measure(dataset=None) -> list[dict]:
    """One row per shipped file: per-class hits, support and predicted counts on the test split."""
    dataset = dataset if dataset is not None else load_dataset()
    rows = []
    for name, entry in read_manifest()["models"].items():
        for fmt, info in entry["files"].items():
            spec = f"pretrained:{name}{SPEC_SUFFIX[fmt]}"
            metrics = evaluate_predictor(load_predictor(spec), dataset.x_test, dataset.index_test)
            matrix = np.asarray(metrics["confusion_matrix"])
            rows.append({"spec": spec, "model": name, "format": fmt, "file": info["file"],
                         "classes": [f"{c['label']} {c['name']}" for c in metrics["per_class"]],
                         "labels": [c["label"] for c in metrics["per_class"]],
                         "hits": np.diag(matrix).tolist(), "support": matrix.sum(1).tolist(),
                         "predicted": matrix.sum(0).tolist()})
    return rows


def never_predicted(rows: list[dict]) -> dict[str, list[int]]:
    """Per model: the labels that none of its shipped files assigns to any test beat."""
    result: dict[str, list[int]] = {}
    for row in rows:
        none = {label for label, n in zip(row["labels"], row["predicted"], strict=True) if n == 0}
        result[row["model"]] = sorted(none if row["model"] not in result else none & set(result[row["model"]]))
    return result


def render(rows: list[dict]) -> str:
    n_test = sum(rows[0]["support"])
    lines = [f"Recall per class on the {n_test:,} test beats (recognised / beats of that class), measured by "
             "`python scripts/model_card_table.py`:", "",
             "| shipped model | format | " + " | ".join(rows[0]["classes"]) + " |",
             "|---|---|" + "---:|" * len(rows[0]["classes"])]
    for row in rows:
        cells = [f"{100 * h / s:.1f} % ({h}/{s})" for h, s in zip(row["hits"], row["support"], strict=True)]
        lines.append(f"| `{row['spec']}` | {row['format']} | " + " | ".join(cells) + " |")
    lines.append("")
    for model, labels in never_predicted(rows).items():
        for label in labels:
            lines.append(f"`pretrained:{model}` never predicts class {label}: none of its shipped files assigns "
                         f"class {label} to any test beat.")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, default=None,
                        help=f"replace the <!-- {SECTION}:start/end --> part of this Markdown file (default: print)")
    args = parser.parse_args(argv)
    markdown = render(measure())
    if args.write:
        sync_readme(args.write, markdown, Path("results"), section=SECTION)
    else:
        print(markdown, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
