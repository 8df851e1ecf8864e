"""Beats as a recording delivers them: stitch labelled beats back into a continuous ECG, then cut them again.

ECG5000's windows were cut by an automatic annotator whose end point depends on the class: a normal beat's window
ends where the next QRS begins (sample ~139 of 140), an abnormal one's often *after* the next, premature and wide,
complex (a deep deflection near sample 135). A model can learn where the window ends instead of what the beat looks
like. A recording has no such windows: ``annotate`` cuts every beat by one convention (:mod:`ecgcnn.annotate.windows`).

:func:`stitch` undoes the dataset's cut. Each beat contributes its *R-to-R part*: from the start of its window to
the point that lies :data:`~ecgcnn.annotate.windows.QRS_POSITION` samples before the next QRS, so that the next beat's
QRS lands where the next QRS was. The next QRS is the deepest point of the last :data:`TAIL` samples when it is at
least half as deep as the beat's own QRS (an abnormal beat's trailing complex); otherwise it lies just beyond the
window (a normal beat: the whole window is kept). Parts are put in a seeded random order (shuffled neighbours), each
given its own RR interval drawn uniformly from ``rr_range_s``; the true R-peak of every beat (its QRS minimum,
mapped into the recording) is returned with it. The time map is piecewise linear, as a heart changes its rate
(:func:`time_map`): systole (QRS, ST, T wave) changes its duration with the square root of RR, diastole absorbs the
rest.

:func:`recut_windows` cuts a recording at given R-peaks with annotate's own cutter (no detector): what training on
re-cut beats uses. The stress evaluation (:mod:`ecgcnn.evaluation.stress`) instead runs the whole annotate path
(detector, refinement, windows) and matches its beats to the true R-peaks.
"""

from __future__ import annotations

import numpy as np

from ..annotate.windows import QRS_POSITION, beat_windows, qrs_positions
from ..core.novelty import novelty_scores, residual_ratio
from ..core.preprocess import normalize_beats
from .noise import add_noise, mixed_synthetic_noise

TAIL = 25  # samples at the end of a 140-sample window searched for a trailing QRS
TRAILING_DEPTH = 0.5  # a trailing complex at least this fraction as deep as the leading QRS ends the R-to-R part
NOMINAL_RR_S = 0.8  # ECG5000's beats: ~0.8 s each at 250 Hz (140 samples after interpolation from ~200)
SYSTOLE = 0.55  # the share of a part that keeps its nominal duration when the RR interval changes


def rr_part_ends(beats: np.ndarray) -> np.ndarray:
    """Where each beat's R-to-R part ends, in window samples (exclusive, fractional): see the module docstring."""
    x = np.asarray(beats, dtype=np.float64)
    length = x.shape[1]
    lead = x[:, :20].min(axis=1)
    tail = x[:, -TAIL:]
    deepest = tail.argmin(axis=1)
    trailing = tail[np.arange(len(x)), deepest]
    has_trailing = (lead < 0) & (trailing <= TRAILING_DEPTH * lead)
    position = (length - TAIL + deepest).astype(np.float64)
    ends = np.where(has_trailing, position - QRS_POSITION * (length - 1) / 139, float(length - 1))
    return np.maximum(ends, length / 2)


def stitch(beats: np.ndarray, fs: float = 250.0, rr_range_s: tuple[float, float] = (0.68, 0.92), seed: int = 0,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A continuous recording of ``beats`` (N, L) in a random order.

    Returns ``(signal, r_peaks, order)``: the signal (float64), the true R-peak of the k-th beat of the recording
    (sub-sample position) and ``order[k]``, the index into ``beats`` of that beat.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(beats, dtype=np.float64)
    order = rng.permutation(len(x))
    ends = rr_part_ends(x)
    qrs = qrs_positions(x)
    rr = rng.uniform(rr_range_s[0], rr_range_s[1], size=len(x))
    parts, r_peaks, at = [], [], 0
    for k, i in enumerate(order):
        samples = max(int(round(rr[k] * fs)), 8)
        knots_x, knots_t = time_map(ends[i], samples, fs)
        grid = np.interp(np.arange(samples), knots_t, knots_x)  # window coordinate of each recording sample
        parts.append(np.interp(grid, np.arange(x.shape[1]), x[i]))
        r_peaks.append(at + np.interp(qrs[i], knots_x, knots_t))
        at += samples
    return np.concatenate(parts), np.asarray(r_peaks), order


def time_map(end: float, samples: int, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the piecewise-linear map from a part's window coordinates ``[0, end]`` to recording samples
    ``[0, samples]``. Systole (the first :data:`SYSTOLE` of the part) lasts ``SYSTOLE * NOMINAL_RR_S`` at the nominal
    rate and scales with the square root of RR (Bazett's QT law), at most 3/4 of the beat; diastole takes the rest."""
    nominal = NOMINAL_RR_S * fs
    head = min(SYSTOLE * nominal * np.sqrt(samples / nominal), 0.75 * samples)
    return np.array([0.0, SYSTOLE * end, end]), np.array([0.0, head, float(samples)])


def recut_windows(beats: np.ndarray, fs: float = 250.0, rr_range_s: tuple[float, float] = (0.68, 0.92),
                  seed: int = 0, length: int | None = None, snr_db: float | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``beats`` stitched by :func:`stitch` and cut again at their true R-peaks by annotate's cutter; with
    ``snr_db``, synthetic noise (:func:`~ecgcnn.evaluation.noise.mixed_synthetic_noise`) is added at that SNR first.

    Returns ``(windows, index)``: one window per beat that annotate would classify (every beat but the last of the
    recording, and any the cutter flags) and the index into ``beats`` of the beat each window belongs to."""
    length = length or np.asarray(beats).shape[1]
    signal, r_peaks, order = stitch(beats, fs, rr_range_s, seed)
    if snr_db is not None:
        noise = mixed_synthetic_noise(len(signal), fs, np.random.default_rng([seed, 1]))
        signal = add_noise(signal, fs, r_peaks, noise, snr_db)
    windows, flags = beat_windows(signal, fs, r_peaks, sign=1.0, length=length)
    usable = np.flatnonzero(flags == "")
    return windows[usable], order[usable]


def match_peaks(found: np.ndarray, truth: np.ndarray, tolerance: float) -> np.ndarray:
    """For each true R-peak, the index of the detection matched to it (``-1``: missed).

    Each detection is paired with its nearest true peak; the pairs are taken closest first (a tie: the detection
    listed first), and a true peak keeps the first detection within ``tolerance`` samples that claims it. A
    detection whose nearest true peak is already taken stays unmatched: a double detection does not take a
    neighbour's peak."""
    found = np.asarray(found, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    match = np.full(len(truth), -1, np.int64)
    if not len(found) or not len(truth):
        return match
    nearest = np.clip(np.searchsorted(truth, found), 1, len(truth) - 1)
    left = nearest - 1
    pick = np.where(np.abs(truth[left] - found) <= np.abs(truth[nearest] - found), left, nearest)
    if len(truth) == 1:
        pick = np.zeros(len(found), np.int64)
    distance = np.abs(truth[pick] - found)
    for j in np.argsort(distance, kind="stable"):
        if distance[j] <= tolerance and match[pick[j]] < 0:
            match[pick[j]] = j
    return match


TRAIN_RATES = (250.0, 360.0, 500.0)  # re-cut copies for training cycle through these sampling rates
TRAIN_RR_S = (0.5, 1.5)  # ... and draw RR intervals from this range (wider than the stress test's 0.68-0.92 s)
MAX_TRAIN_SNR_DB = 30.0


def add_recut_copies(beats: np.ndarray, labels: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
                     copies: int, seed: int, min_snr_db: float = 0.0,
                     ) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Training beats as annotate would cut them from a recording, appended to the dataset's own windows.

    For every (train, validation) split, each side is stitched on its own (neighbours never cross from validation
    to training) ``copies`` times, at the rates of :data:`TRAIN_RATES` in turn with RR drawn from
    :data:`TRAIN_RR_S`, and re-cut by :func:`recut_windows`. With ``min_snr_db`` > 0 every copy but the first gets
    synthetic noise at an SNR drawn from ``[min_snr_db, 30]`` dB. Returns the extended beats and labels and the splits
    with the new rows' indices added to the side they came from."""
    if copies <= 0:
        return beats, labels, splits
    x, y = [np.asarray(beats)], [np.asarray(labels)]
    total = len(labels)
    extended = []
    for s, (train_idx, val_idx) in enumerate(splits):
        sides = []
        for side, idx in enumerate((train_idx, val_idx)):
            added = [idx]
            for c in range(copies if len(idx) > 1 else 0):
                copy_seed = seed * 7919 + s * 101 + side * 53 + c
                snr = (float(np.random.default_rng(copy_seed).uniform(min_snr_db, MAX_TRAIN_SNR_DB))
                       if min_snr_db > 0 and c > 0 else None)
                windows, which = recut_windows(np.asarray(beats)[idx], TRAIN_RATES[c % len(TRAIN_RATES)],
                                               TRAIN_RR_S, seed=copy_seed, snr_db=snr)
                x.append(windows.astype(np.asarray(beats).dtype))
                y.append(np.asarray(labels)[idx][which])
                added.append(total + np.arange(len(which)))
                total += len(which)
            sides.append(np.concatenate(added))
        extended.append((sides[0], sides[1]))
    return np.concatenate(x), np.concatenate(y), extended


LIMIT_RATES = (250.0, 360.0, 500.0)  # the recordings of the training beats that recording_limit scores


def recording_limit(beats: np.ndarray, reference: dict, seed: int = 0) -> float | None:
    """The largest :func:`~ecgcnn.core.novelty.residual_ratio` of ``beats`` (the training beats, as the dataset
    holds them) stitched into clean recordings at each of :data:`LIMIT_RATES` (RR from :data:`TRAIN_RR_S`) and cut
    again by annotate's cutter: how far the training patient's own beats drift from the reference when a recording
    delivers them. None when no recording gives a ratio (too few beats to window)."""
    ratios = []
    for k, fs in enumerate(LIMIT_RATES):
        windows, _ = recut_windows(beats, fs, TRAIN_RR_S, seed=seed + k)
        residual, _ = novelty_scores(normalize_beats(windows), reference)
        ratios.append(residual_ratio(residual, reference))
    known = [r for r in ratios if r is not None]
    return float(max(known)) if known else None


def recording_reference(reference: dict, beats: np.ndarray, seed: int = 0, recut: bool = True) -> dict:
    """``reference`` made ready to judge whole recordings: the median residual of ``beats``, the dataset's own
    training beats (not the re-cut or noisy copies a recipe may have fitted the reference on too, which would raise
    the median), and, with ``recut`` (beats in ECG5000's convention), their :func:`recording_limit`."""
    residual, _ = novelty_scores(normalize_beats(beats), reference)
    completed = {**reference, "median_residual": float(np.median(residual))}
    limit = recording_limit(beats, completed, seed) if recut else None
    return {**completed, "recording_limit": limit} if limit is not None else completed


# ------------------------------------------- the first construction (kept for scripts/bench_annotate.py and tests)

def follows_convention(beats: np.ndarray) -> np.ndarray:
    """True for beats that an R-to-R cutter can reproduce: the QRS minimum in the first 12 samples and no deflection
    in the last 20 deeper than half of it. Most normal ECG5000 beats pass; most abnormal ones do not, because their
    window ends *after* the next (premature, wide) QRS, at about sample 135 of 140."""
    x = np.asarray(beats, dtype=np.float64)
    head = x[:, :15].min(axis=1)
    return (x[:, :20].argmin(axis=1) < 12) & (x[:, -20:].min(axis=1) > 0.5 * head)


def synthesize_recording(beats: np.ndarray, fs: float = 250.0, rr_range_s: tuple[float, float] = (0.6, 1.0),
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Undo ECG5000's cutting: stretch each 140-sample beat linearly back to a random RR interval in
    ``rr_range_s`` and concatenate them. Returns the recording and the true (sub-sample) QRS position of each beat
    (its own minimum, mapped back)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(beats, dtype=np.float64)
    length = x.shape[1]
    qrs = qrs_positions(x)
    parts, truth, at = [], [], 0
    for beat, q in zip(x, qrs, strict=True):
        samples = int(round(rng.uniform(*rr_range_s) * fs))
        parts.append(np.interp(np.linspace(0, length - 1, samples), np.arange(length), beat))
        truth.append(at + q * (samples - 1) / (length - 1))
        at += samples
    return np.concatenate(parts), np.asarray(truth)
