"""Choose the detector's faint-detection fractions (``annotate.detection.FAINT_ALONE`` / ``FAINT_AGREED``) on data
with no test beat in it, and print the table docs/annotate.md quotes.

Selection set: ECG5000's 500 *training* beats stitched into recordings (seeds 0-2: 250/360/500 Hz at RR 0.68-0.92 s,
250 Hz at RR 0.5-2 s, and the project's synthetic baseline wander, muscle and electrode-motion noise at 18 and
12 dB) and 10 synthetic N/S/V records (``tests/synthetic_ecg.py``, seeds 10-19). Rule, fixed before scoring: the
largest mean F1 of Se and PPV (150 ms) whose mean Se is at most 0.001 below keeping every mark (the plain union).

    python scripts/choose_faint.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the synthetic records live with the tests
from ecgcnn.annotate import detection  # noqa: E402
from ecgcnn.data.dataset import load_dataset  # noqa: E402
from ecgcnn.evaluation.noise import add_noise, synthetic_noise  # noqa: E402
from ecgcnn.evaluation.recut import match_peaks, stitch  # noqa: E402
from tests.synthetic_ecg import FS as SYNTHETIC_FS  # noqa: E402
from tests.synthetic_ecg import synthetic_record  # noqa: E402

ALONE = (0.0, 0.2, 0.3, 0.35, 0.4, 0.5)
BOTH = (0.0, 0.05, 0.1, 0.15, 0.2)
MAX_SE_LOSS = 0.001


def selection_records() -> list[tuple[np.ndarray, float, np.ndarray]]:
    beats = load_dataset(load_test=False).x_train.astype(np.float64)  # training beats only
    records = []
    for seed in range(3):
        for fs, rr in ((250, (0.68, 0.92)), (360, (0.68, 0.92)), (500, (0.68, 0.92)), (250, (0.5, 2.0))):
            signal, peaks, _ = stitch(beats, fs, rr, seed)
            records.append((signal, float(fs), peaks))
        for kind in ("bw", "ma", "em"):
            for snr in (18, 12):
                signal, peaks, _ = stitch(beats, 250, (0.68, 0.92), seed)
                noise = synthetic_noise(kind, len(signal), 250, np.random.default_rng(100 + seed))
                records.append((add_noise(signal, 250, peaks, noise, snr), 250.0, peaks))
    for seed in range(10, 20):
        signal, peaks, _ = synthetic_record(300.0, seed)
        records.append((signal, float(SYNTHETIC_FS), peaks))
    return records


def main() -> None:
    prepared = []
    for signal, fs, peaks in selection_records():
        sign = -1.0 if detection.upright_fraction(signal, fs) >= 0.5 else 1.0  # as annotate orients it
        first, second = detection.detect_grid_marks(signal, fs, -sign)
        marks = np.unique(np.concatenate([first, second]))
        refined, depth = detection.refine_marks(signal, fs, marks, sign)
        union = detection._merge_close(refined, depth, fs)
        prepared.append((signal, fs, peaks, union, refined[np.isin(marks, first)], refined[np.isin(marks, second)]))
    rows = []
    for alone in ALONE:
        for both in BOTH:
            scores = []
            for signal, fs, peaks, union, first, second in prepared:
                kept = detection.drop_faint(signal, fs, union, first, second, alone=alone, both=both)
                found = match_peaks(kept, peaks, 0.15 * fs) >= 0
                scores.append((found.mean(), found.sum() / len(kept)))
            se, ppv = np.asarray(scores).T
            rows.append((alone, both, se.mean(), ppv.mean(), ppv.min(), np.mean(2 * se * ppv / (se + ppv))))
    union_se = rows[0][2]  # alone = both = 0: every mark kept
    allowed = [r for r in rows if r[2] >= union_se - MAX_SE_LOSS]
    chosen = max(allowed, key=lambda r: r[5])
    print(f"{len(prepared)} records; union: mean Se {rows[0][2]:.4f}, mean PPV {rows[0][3]:.4f}, "
          f"worst PPV {rows[0][4]:.4f}\n")
    print("| alone | both | mean Se | mean PPV | worst PPV | mean F1 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: -r[5])[:10]:
        mark = " (chosen)" if r is chosen else ""
        print(f"| {r[0]:g} | {r[1]:g} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:.5f}{mark} |")
    print(f"\nchosen: FAINT_ALONE = {chosen[0]:g}, FAINT_AGREED = {chosen[1]:g} "
          f"(in the code: {detection.FAINT_ALONE:g}, {detection.FAINT_AGREED:g})")


if __name__ == "__main__":
    main()
