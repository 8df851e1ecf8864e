"""Choose the detector's interposed-detection bounds (``annotate.detection.INTERPOSED_RR`` / ``INTERPOSED_SIZE`` /
``INTERPOSED_CORRELATION``) on data with no test beat in it, and print the table docs/annotate.md quotes.

Selection set (three seeds each):
- ECG5000's 500 *training* beats stitched into recordings: 250/360/500 Hz at RR 0.68-0.92 s, 250 Hz at RR 0.5-2 s;
- the same at 250 Hz with the project's synthetic baseline wander, muscle and electrode-motion noise
  (``evaluation.noise.synthetic_noise``) and with *bursty* muscle noise (:func:`bursty_emg`: white noise under
  0.3-2 s bursts, as EMG comes with movement), at 18, 12 and 6 dB;
- 10 synthetic N/S/V records (``tests/synthetic_ecg.py``, seeds 10-19) and 10 with *interpolated* PVCs (seeds
  20-29), which split one interval in two as a false detection does.

Rule, fixed before scoring: the largest mean F1 of Se and PPV (150 ms) whose mean Se over all records, and over the
interpolated-PVC records alone, is at most 0.001 below the detector's without the step.

No NSTDB record is in the selection set (``ecgcnn stress`` measures with them). Afterwards, not used to choose, the
script prints the chosen bounds on the training-beat recording with NSTDB's *second* channel (the stress table uses
the first) when the noise file is at hand.

    python scripts/choose_interposed.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the synthetic records live with the tests
from ecgcnn.annotate import detection  # noqa: E402
from ecgcnn.data.dataset import load_dataset  # noqa: E402
from ecgcnn.evaluation.noise import NOISE_KINDS, NSTDB_FS, add_noise, noise_for, noise_path, synthetic_noise  # noqa: E402
from ecgcnn.evaluation.recut import match_peaks, stitch  # noqa: E402
from tests.synthetic_ecg import FS as SYNTHETIC_FS  # noqa: E402
from tests.synthetic_ecg import synthetic_record  # noqa: E402

RR = (0.1, 0.15, 0.2)
SIZE = (0.8, 1.0, 1.2, 1.5, np.inf)
CORRELATION = (0.3, 0.5, 0.7)
MAX_SE_LOSS = 0.001


def bursty_emg(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """White noise under an envelope of bursts (one per 3 s on average, 0.3-2 s long, Hann-shaped, 0.5-2x) over a
    floor of 0.2: muscle noise comes with movement, and its bursts are what a detector mistakes for beats."""
    envelope = np.full(n, 0.2)
    for _ in range(rng.poisson(n / fs / 3.0)):
        length = int(rng.uniform(0.3, 2.0) * fs)
        start = int(rng.integers(0, max(n - length, 1)))
        envelope[start:start + length] += rng.uniform(0.5, 2.0) * np.hanning(length)[: n - start]
    return envelope * rng.standard_normal(n)


def selection_records() -> list[tuple[str, np.ndarray, float, np.ndarray]]:
    beats = load_dataset(load_test=False).x_train.astype(np.float64)  # training beats only
    records = []
    for seed in range(3):
        for fs, rr in ((250, (0.68, 0.92)), (360, (0.68, 0.92)), (500, (0.68, 0.92)), (250, (0.5, 2.0))):
            signal, peaks, _ = stitch(beats, fs, rr, seed)
            records.append(("stitched", signal, float(fs), peaks))
        signal, peaks, _ = stitch(beats, 250, (0.68, 0.92), seed)
        rng = np.random.default_rng(100 + seed)
        noises = {kind: synthetic_noise(kind, len(signal), 250, rng) for kind in NOISE_KINDS}
        noises["bursty ma"] = bursty_emg(len(signal), 250, rng)
        for kind, noise in noises.items():
            for snr in (18, 12, 6):
                records.append((f"synthetic {kind}", add_noise(signal, 250, peaks, noise, snr), 250.0, peaks))
    for seed in range(10, 20):
        signal, peaks, _ = synthetic_record(300.0, seed)
        records.append(("synthetic N/S/V", signal, float(SYNTHETIC_FS), peaks))
    for seed in range(20, 30):
        signal, peaks, _ = synthetic_record(300.0, seed, interpolated=True)
        records.append(("interpolated PVCs", signal, float(SYNTHETIC_FS), peaks))
    return records


def without_step(signal: np.ndarray, fs: float) -> np.ndarray:
    """The R-peaks of :func:`detection.r_peaks` up to (not including) the interposed step."""
    sign = -1.0 if detection.upright_fraction(signal, fs) >= 0.5 else 1.0  # as annotate orients it
    return detection.candidate_peaks(signal, fs, sign)


def score(kept: np.ndarray, peaks: np.ndarray, fs: float) -> tuple[float, float]:
    found = match_peaks(kept, peaks, 0.15 * fs) >= 0
    return float(found.mean()), float(found.sum() / max(len(kept), 1))


def second_channel_check(bounds: tuple) -> None:
    """Measured afterwards, not used to choose: NSTDB's second channel under the training-beat recording."""
    beats = load_dataset(load_test=False).x_train.astype(np.float64)
    with np.load(noise_path()) as f:
        nstdb = {kind: np.asarray(f[kind], dtype=np.float64)[:, 1] for kind in NOISE_KINDS}
    signal, peaks, _ = stitch(beats, 250, (0.68, 0.92), 0)
    rng = np.random.default_rng(0)
    print("\nNSTDB second channel, training beats at 250 Hz (not used to choose): Se / PPV without -> with the step")
    for kind in NOISE_KINDS:
        noise = noise_for(nstdb[kind], len(signal), 250.0, NSTDB_FS, int(rng.integers(0, len(nstdb[kind]))))
        for snr in (12, 6):
            noisy = add_noise(signal, 250, peaks, noise, snr)
            before = without_step(noisy, 250.0)
            after = detection.drop_interposed(noisy, 250.0, before, rr=bounds[0], size=bounds[1],
                                              correlation=bounds[2])
            (se0, ppv0), (se1, ppv1) = score(before, peaks, 250.0), score(after, peaks, 250.0)
            print(f"- {kind} {snr} dB: {se0:.4f} / {ppv0:.4f} -> {se1:.4f} / {ppv1:.4f}")


def main() -> None:
    prepared = [(group, signal, fs, peaks, without_step(signal, fs))
                for group, signal, fs, peaks in selection_records()]
    interpolated = np.array([group == "interpolated PVCs" for group, *_ in prepared])
    rows = []
    for bounds in [None, *itertools.product(RR, SIZE, CORRELATION)]:
        scores = []
        for _, signal, fs, peaks, positions in prepared:
            kept = positions if bounds is None else detection.drop_interposed(
                signal, fs, positions, rr=bounds[0], size=bounds[1], correlation=bounds[2])
            scores.append(score(kept, peaks, fs))
        se, ppv = np.asarray(scores).T
        rows.append((bounds, se.mean(), se[interpolated].mean(), ppv.mean(), ppv.min(),
                     np.mean(2 * se * ppv / (se + ppv))))
    off = rows[0]
    allowed = [r for r in rows if r[1] >= off[1] - MAX_SE_LOSS and r[2] >= off[2] - MAX_SE_LOSS]
    chosen = max(allowed, key=lambda r: r[5])
    print(f"{len(prepared)} records ({int(interpolated.sum())} with interpolated PVCs); without the step: mean Se "
          f"{off[1]:.4f}, interpolated-PVC Se {off[2]:.4f}, mean PPV {off[3]:.4f}, worst PPV {off[4]:.4f}\n")
    print("| RR | size | correlation | mean Se | interpolated-PVC Se | mean PPV | worst PPV | mean F1 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: -r[5])[:12]:
        mark = " (chosen)" if r is chosen else (" (excluded: Se)" if r not in allowed else "")
        bounds = ("off", "", "") if r[0] is None else (f"{r[0][0]:g}", f"{r[0][1]:g}", f"{r[0][2]:g}")
        print(f"| {' | '.join(bounds)} | {r[1]:.4f} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:.5f}{mark} |")
    if chosen[0] is not None:  # the rule bounds the mean: where the chosen step costs or gains, group by group
        print("\nThe chosen bounds per group of records: mean Se / mean PPV without -> with the step")
        kept = {}
        for group, signal, fs, peaks, positions in prepared:
            after = detection.drop_interposed(signal, fs, positions, rr=chosen[0][0], size=chosen[0][1],
                                              correlation=chosen[0][2])
            kept.setdefault(group, []).append((*score(positions, peaks, fs), *score(after, peaks, fs)))
        for group, values in kept.items():
            se0, ppv0, se1, ppv1 = np.asarray(values).mean(axis=0)
            print(f"- {group} ({len(values)}): {se0:.4f} / {ppv0:.4f} -> {se1:.4f} / {ppv1:.4f}")
    if chosen[0] is not None and noise_path().is_file():
        second_channel_check(chosen[0])
    if chosen[0] is not None:
        print(f"\nchosen: INTERPOSED_RR = {chosen[0][0]:g}, INTERPOSED_SIZE = {chosen[0][1]:g}, "
              f"INTERPOSED_CORRELATION = {chosen[0][2]:g} (in the code: {detection.INTERPOSED_RR:g}, "
              f"{detection.INTERPOSED_SIZE:g}, {detection.INTERPOSED_CORRELATION:g})")
    else:
        print("\nchosen: none (the step does not pay on the selection set)")


if __name__ == "__main__":
    main()
