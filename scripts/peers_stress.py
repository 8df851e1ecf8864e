"""The peers under the same stress: aeon's HydraClassifier and MiniRocketClassifier, fitted on the 500 training beats
with their defaults, judged by ``ecgcnn.evaluation.stress`` on the same recordings as ecgcnn's own files.

Runs in the peers' environment (aeon 1.6 needs pandas<3.1; ``make peers`` builds ``.venv-peers`` from
constraints-peers.txt)::

    make peers
    .venv-peers/bin/python scripts/peers_stress.py --beats 1500 --json results/stress/peers.json \
        --markdown results/stress/peers.md

Each peer is wrapped as a predictor (z-normalised raw windows in, probabilities out) and goes through annotate's
path exactly as a model file does. Rows: official windows, re-cut at 250/360/500 Hz, gain/offset, inverted, RR
0.5-2 s (``--noise`` adds the NSTDB rows; the noise file must have been fetched with ``ecgcnn stress --fetch-noise``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from aeon.classification.convolution_based import HydraClassifier, MiniRocketClassifier

from ecgcnn.core.fileio import write_json_atomic, write_text_atomic
from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.data.dataset import load_dataset
from ecgcnn.data.ucr import CLASS_NAMES, ORIGINAL_LABELS
from ecgcnn.evaluation.stress import run_stress, subset
from ecgcnn.reporting.stress import render_stress


class AeonPredictor:
    """An aeon classifier behind ecgcnn's predictor interface (what annotate and the stress rows need)."""

    def __init__(self, name: str, classifier, num_classes: int):
        self.name, self.classifier, self.num_classes = name, classifier, num_classes
        self.labels = list(ORIGINAL_LABELS)
        self.input_length = 140
        self.metadata = {"class_names": list(CLASS_NAMES), "model": name}
        self.format = "aeon"
        self.path = None

    def predict_proba(self, beats: np.ndarray) -> np.ndarray:
        x = normalize_beats(beats)[:, None, :].astype(np.float64)
        proba = np.zeros((len(x), self.num_classes), np.float32)
        if len(x):
            proba[:, self.classifier.classes_.astype(int)] = self.classifier.predict_proba(x)
        return proba

    def predict_indices(self, beats: np.ndarray) -> np.ndarray:
        return self.predict_proba(beats).argmax(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beats", type=int, default=None, help="stratified subset of the test beats")
    parser.add_argument("--seed", type=int, default=0, help="the stress recordings' seed (and the peers' own)")
    parser.add_argument("--noise", action="store_true", help="also the NSTDB noise rows")
    parser.add_argument("--json", dest="json_out", default=None)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    data = load_dataset()
    chosen = subset(data.index_test, args.beats, args.seed)
    models = []
    for name, make in (("aeon HydraClassifier", lambda: HydraClassifier(random_state=args.seed, n_jobs=1)),
                       ("aeon MiniRocketClassifier", lambda: MiniRocketClassifier(random_state=args.seed,
                                                                                   n_jobs=1))):
        started = time.perf_counter()
        classifier = make().fit(normalize_beats(data.x_train)[:, None, :].astype(np.float64), data.index_train)
        fit_s = time.perf_counter() - started
        predictor = AeonPredictor(name, classifier, len(ORIGINAL_LABELS))
        print(f"{name} (fit {fit_s:.1f} s), {len(chosen)} test beats:", flush=True)
        table = run_stress(predictor, data.x_test[chosen], data.index_test[chosen], seed=args.seed,
                           with_noise=args.noise, log=print)
        models.append({"model_file": name, "format": "aeon 1.6", "model": name, "size_bytes": None,
                       "fit_seconds": round(fit_s, 1), **table})
    report = {"command": "scripts/peers_stress.py" + (f" --beats {args.beats}" if args.beats else "")
              + (" --noise" if args.noise else ""), "models": models}
    markdown = render_stress(report)
    if args.json_out:
        write_json_atomic(args.json_out, report)
    if args.markdown:
        write_text_atomic(args.markdown, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
