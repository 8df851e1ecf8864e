"""``results/``: results.json, results.md, per-format classification reports and figures; README kept in sync."""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..core.fileio import write_json_atomic, write_text_atomic
from ..core.formats import FORMAT_NAMES
from ..core.provenance import git_commit, machine_info, report_versions
from .figures import results_figures
from .markdown import render_markdown, sync_readme

DEFAULT_MODELS = ("base-cnn", "vgg", "inception", "tcn")


def aggregate(evaluations: list[dict], bench_rows: list[dict]) -> list[dict]:
    """One row per model × format: accuracy mean ± std over seeds, size, speed and memory."""
    by_key: dict[tuple, list[dict]] = defaultdict(list)
    for e in evaluations:
        by_key[(e["model"], e["format"])].append(e)
    onnx_size = {m: runs[0]["size_bytes"] for (m, f), runs in by_key.items() if f == "onnx"}
    reference = {(e["model"], e["seed"]): np.asarray(e["predictions"]) for e in evaluations
                 if e["format"] == "pytorch" and "predictions" in e}
    speed: dict[tuple, dict] = {}
    for r in bench_rows:
        entry = speed.setdefault((r["model"], r["format"]), {"peak_rss_mib": r["peak_rss_mib"], "by_batch": {}})
        entry["by_batch"][r["batch_size"]] = r
    rows = []
    for (model, fmt), runs in by_key.items():
        acc = np.array([r["accuracy"] for r in runs])
        f1 = np.array([r["macro_f1"] for r in runs])
        agreements = [float((np.asarray(r["predictions"]) == reference[(model, r["seed"])]).mean())
                      for r in runs if "predictions" in r and (model, r["seed"]) in reference]
        s = speed.get((model, fmt), {})
        batches = s.get("by_batch", {})
        b1 = batches.get(1)
        largest = batches[max(batches)] if batches else None
        per_class = [[c["f1"] for c in r["per_class"]] for r in runs if "per_class" in r]
        rows.append({
            "model": model, "format": fmt, "seeds": [r["seed"] for r in runs],
            "per_class_f1_mean": np.mean(per_class, axis=0).tolist() if per_class else None,
            "class_names": [c["name"] for c in runs[0]["per_class"]] if per_class else None,
            "accuracy_runs": acc.tolist(), "accuracy_mean": float(acc.mean()),
            "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "macro_f1_mean": float(f1.mean()), "macro_f1_std": float(f1.std(ddof=1)) if len(f1) > 1 else 0.0,
            "top1_agreement_min": min(agreements) if agreements else None,
            "size_bytes": runs[0]["size_bytes"],
            "size_vs_fp32": runs[0]["size_bytes"] / onnx_size[model] if model in onnx_size else None,
            "latency_b1_p50_ms": b1["p50_ms"] if b1 else None, "latency_b1_p99_ms": b1["p99_ms"] if b1 else None,
            "throughput_beats_per_s": largest["beats_per_s"] if largest else None,
            "throughput_batch": largest["batch_size"] if largest else None,
            "gmac_per_s": largest["gmac_per_s"] if largest else None,
            "peak_rss_mib": s.get("peak_rss_mib"),
        })
    order = {f: i for i, f in enumerate(FORMAT_NAMES)}
    model_order = {m: i for i, m in enumerate(dict.fromkeys(e["model"] for e in evaluations))}
    rows.sort(key=lambda r: (model_order.get(r["model"], 99), order.get(r["format"], 99)))
    return rows


def targets_for(rows: list[dict], timings: dict, cfg) -> list[dict]:
    targets = []
    for model in ("base-cnn", "tcn"):
        r = next((r for r in rows if r["model"] == model and r["format"] == "tflite-int8-full"), None)
        if r and r["latency_b1_p50_ms"] is not None:
            targets.append({"name": f"full-INT8 {model}, batch-1 latency per beat, {cfg.threads} thread(s)",
                            "value": f"{r['latency_b1_p50_ms']:.3f} ms", "target": "≤ 0.1 ms",
                            "met": r["latency_b1_p50_ms"] <= 0.1})
    deployable = [r for r in rows if r["format"] != "pytorch" and r["throughput_beats_per_s"]]
    if deployable:
        best = max(deployable, key=lambda r: r["throughput_beats_per_s"])
        targets.append({"name": f"fastest deployable model ({best['model']} {best['format']}, batch "
                                f"{best['throughput_batch']}, {cfg.threads} thread(s))",
                        "value": f"{best['throughput_beats_per_s']:,.0f} beats/s", "target": "≥ 20,000 beats/s",
                        "met": best["throughput_beats_per_s"] >= 20000})
    # issue #5's bars for the recipes
    best = next((r for r in rows if r["model"] == "best" and r["format"] == "pytorch"), None)
    if best:
        targets.append({"name": f"recipe best, mean test accuracy over {len(best['seeds'])} seed(s)",
                        "value": f"{100 * best['accuracy_mean']:.2f} %", "target": "≥ 95.0 %",
                        "met": best["accuracy_mean"] >= 0.95})
        targets.append({"name": "recipe best, mean test macro-F1", "value": f"{best['macro_f1_mean']:.3f}",
                        "target": "≥ 0.65", "met": best["macro_f1_mean"] >= 0.65})
    edge = next((r for r in rows if r["model"] == "edge" and r["format"] == "tflite-int8-full"), None)
    if edge:
        targets.append({"name": "recipe edge, full-INT8 TFLite file size", "value": f"{edge['size_bytes']:,} bytes",
                        "target": "≤ 100 KB", "met": edge["size_bytes"] <= 100_000})
        targets.append({"name": f"recipe edge, full-INT8 TFLite mean test accuracy over {len(edge['seeds'])} seed(s)",
                        "value": f"{100 * edge['accuracy_mean']:.2f} %", "target": "≥ 94.5 %",
                        "met": edge["accuracy_mean"] >= 0.945})
    total = timings.get("total")
    if total is not None and len(cfg.seeds) == 1:
        epochs = f"{cfg.epochs} epochs" if cfg.epochs is not None else "each model's or recipe's own epochs"
        targets.append({"name": f"pipeline wall time (1 seed, {epochs}, all exports, evaluations, benchmarks)",
                        "value": f"{total / 60:.1f} min", "target": "≤ 15 min", "met": total / 60 <= 15})
    return targets


def write_results(results_dir: Path, cfg, evaluations, bench_rows, failures, timings, readme=None,
                  section: str = "results") -> Path:
    results_dir = Path(results_dir)
    (results_dir / "reports").mkdir(parents=True, exist_ok=True)
    for e in evaluations:
        write_text_atomic(results_dir / "reports" / e["model"] / f"{e['format']}_seed{e['seed']}.txt",
                          f"{e['file']}\n\n{e['report']}\naccuracy {e['accuracy']:.4f}  macro-F1 "
                          f"{e['macro_f1']:.4f}\n")
    rows = aggregate(evaluations, bench_rows)
    eager = [row for row in aggregate(
        [{"model": r["model"], "format": "pytorch-eager", "seed": 0, "accuracy": float("nan"),
          "macro_f1": float("nan"), "size_bytes": 0} for r in bench_rows if r["format"] == "pytorch-eager"],
        bench_rows)]
    config = asdict(cfg)
    summary = {
        "command": "ecgcnn pipeline --seeds " + " ".join(map(str, cfg.seeds))
                   + (f" --models {' '.join(cfg.models)}" if list(cfg.models) != list(DEFAULT_MODELS) else "")
                   + (f" --epochs {cfg.epochs}" if cfg.epochs is not None else "")
                   + (f" --results-dir {cfg.results_dir}" if cfg.results_dir != "results" else "")
                   + (f" --readme-section {section}" if section != "results" else "")
                   + (" --skip-train" if cfg.skip_train else "")
                   + "".join(f" --{key.replace('_', '-')} {value}" for key, value in cfg.data.as_dict().items()),
        "dataset": {"name": cfg.data.train and Path(cfg.data.train).stem or cfg.data.dataset,
                    "test_beats": evaluations[0]["n"] if evaluations else None},
        "date": _dt.datetime.now().strftime("%Y-%m-%d"),
        "commit": git_commit(),
        "machine": machine_info(),
        "versions": report_versions(),
        "config": config,
        "rows": rows,
        "eager": [{"model": e["model"], "latency_b1_p50_ms": e["latency_b1_p50_ms"],
                   "throughput_beats_per_s": e["throughput_beats_per_s"]} for e in eager],
        "targets": targets_for(rows, timings, cfg),
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "failures": [f.__dict__ for f in failures],
        "evaluations": [{k: v for k, v in e.items() if k not in ("report", "predictions")} for e in evaluations],
        "bench": bench_rows,
    }
    write_json_atomic(results_dir / "results.json", summary)
    results_figures(results_dir / "plots", cfg, rows, evaluations)
    markdown = render_markdown(summary)
    write_text_atomic(results_dir / "results.md", markdown)
    if readme and Path(readme).is_file():
        sync_readme(Path(readme), markdown, results_dir, section)
    return results_dir
