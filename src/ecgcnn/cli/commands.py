"""The commands: parse → call the library → print. Output paths are checked before any work starts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from ..bench.run import bench, format_table
from ..core.errors import EcgcnnError
from ..core.fileio import check_output_file, write_json_atomic, write_text_atomic
from ..core.formats import QUANTIZE_MODES, runtime_for
from ..core.provenance import machine_info
from ..data import ucr as data
from ..evaluation.metrics import evaluate_predictor
from ..evaluation.summary import model_summary
from ..export.micro import export_micro
from ..export.onnx import export_onnx
from ..export.tflite import export_tflite
from ..runtimes import load_predictor
from ..runtimes.pretrained import read_manifest, resolve_model_path
from ..training import train
from ..training.config import FLAG_FIELDS, TrainConfig, recipe_settings
from ..workflows.ablation import render_ablation, run_ablation
from ..workflows.pack import pack_pretrained
from ..workflows.pipeline import PipelineConfig, run_pipeline
from .annotate import run_annotate
from .serve import run_serve
from .stress import run_stress_command


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_train(args) -> int:
    settings = recipe_settings(args.recipe) if args.recipe else {}
    explicit = {f.name: getattr(args, f.name) for f in FLAG_FIELDS if getattr(args, f.name) is not None}
    config = TrainConfig(**{**settings, **explicit}, data_dir=args.data_dir, output_dir=args.output_dir,
                         device=args.device, resume=args.resume, progress=not args.no_progress)
    train(config)
    return 0


def cmd_evaluate(args) -> int:
    if args.json_out:
        check_output_file(args.json_out, "--json")
    predictor = load_predictor(args.model_file, device=args.device)
    dataset = data.load_dataset(args.data_dir)
    print(f"data: {dataset.source}")
    metrics = evaluate_predictor(predictor, dataset.x_test, dataset.y_test, progress=True)
    print(f"model: {predictor.describe()}")
    print(metrics["report"])
    print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  ({metrics['n']} test beats)")
    if args.json_out:
        write_json_atomic(args.json_out, {"model_file": str(args.model_file), "format": predictor.format,
                                          "model": predictor.model_name, **metrics})
    return 0


def cmd_predict(args) -> int:
    if args.output:
        check_output_file(args.output, "--output", inputs=(args.input,))
    predictor = load_predictor(args.model_file, device=args.device)
    beats = data.read_beats_csv(args.input, length=predictor.input_length, resample=args.resample,
                                label_column=args.label_column)
    probabilities = predictor.predict_proba(beats.values)
    flat = data.flat_beats(beats.values)
    names = predictor.class_names
    header = ["row", "line", "predicted_label", "predicted_class"] + [f"p_{label}" for label in predictor.labels] \
        + ["warning"]
    lines = [",".join(header)]
    for row, (line_no, probs, is_flat) in enumerate(zip(beats.line_numbers, probabilities, flat, strict=True), start=1):
        k = int(probs.argmax())
        warning = "flat beat: constant values cannot be z-normalised; prediction meaningless" if is_flat else ""
        lines.append(",".join([str(row), str(line_no), str(predictor.labels[k]), f'"{names[k]}"']
                              + [f"{p:.6f}" for p in probs] + [f'"{warning}"' if warning else ""]))
    text = "\n".join(lines) + "\n"
    if flat.any():
        _stderr(f"warning: {int(flat.sum())} flat beat(s) (constant values, e.g. line "
                f"{beats.line_numbers[int(np.flatnonzero(flat)[0])]}): their predictions are meaningless")
    if args.output:
        write_text_atomic(args.output, text)
        _stderr(f"{len(probabilities)} predictions -> {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args) -> int:
    if args.export_format == "micro":
        for path in export_micro(args.model_file, args.output_dir, name=args.name, arena_size=args.arena_size,
                                 arena_note="given at export (--arena-size)"):
            print(f"wrote {path}")
        return 0
    if args.export_format == "onnx":
        export_onnx(resolve_model_path(args.checkpoint), args.output_dir, opset=args.opset, data_dir=args.data_dir)
        return 0
    source = resolve_model_path(args.model_file)
    runtime = runtime_for(source)
    if runtime == "tflite":
        raise EcgcnnError(f"{source}: already a TFLite model; export from its .onnx or .pth")
    modes = list(QUANTIZE_MODES) if "all" in args.quantize else list(dict.fromkeys(args.quantize))
    dataset = data.load_dataset(args.data_dir, load_test=False)  # calibration and checks: training beats only
    if runtime == "torch":  # ONNX is the intermediate step, kept beside the TFLite files
        source = export_onnx(source, args.output_dir, reference_beats=dataset.x_train)
    print(f"calibration and verification: {len(dataset.x_train)} training beats from {dataset.source}")
    for mode in modes:
        export_tflite(source, args.output_dir, quantize=mode, calibration_beats=dataset.x_train)
    return 0


def cmd_bench(args) -> int:
    if args.json_out:
        check_output_file(args.json_out, "--json")
    files = [str(resolve_model_path(path)) for path in args.model_files]
    for path in files:  # fail before measuring anything
        runtime_for(path)
        if not Path(path).is_file():
            raise EcgcnnError(f"{path}: model file not found")
    rows = bench(files, threads=args.threads, batch_sizes=args.batch_sizes, warmup=args.warmup, runs=args.runs,
                 data_dir=args.data_dir, baseline=not args.no_baseline, max_seconds=args.max_seconds, log=_stderr)
    machine = machine_info()
    print(f"{machine['cpu']}, {machine['logical_cores']} logical cores, {args.threads} thread(s)")
    print(format_table(rows))
    if args.json_out:
        write_json_atomic(args.json_out, {"machine": machine, "threads": args.threads, "rows": rows})
    return 0


def cmd_pipeline(args) -> int:
    if args.readme and not Path(args.readme).is_file():
        raise EcgcnnError(f"--readme {args.readme}: file not found")
    config = PipelineConfig(seeds=list(dict.fromkeys(args.seeds)), models=list(dict.fromkeys(args.models)),
                            epochs=args.epochs, output_dir=args.output_dir, results_dir=args.results_dir,
                            data_dir=args.data_dir, skip_train=args.skip_train, threads=args.threads,
                            bench_runs=args.bench_runs, bench_warmup=args.bench_warmup,
                            bench_seconds=args.bench_seconds, batch_sizes=tuple(args.batch_sizes),
                            readme=args.readme or None, readme_section=args.readme_section)
    return run_pipeline(config)


def cmd_summary(args) -> int:
    print(model_summary(args.model))
    return 0


def cmd_data(args) -> int:
    if args.data_command == "download":
        destination = data.download_archive(args.url or data.ARCHIVE_URL, args.dest)
        print(f"verified ECG5000 (shape, class counts, checksums) -> {destination}")
        print(f"use it with: ecgcnn train --data-dir {destination}")
        return 0
    dataset = data.load_dataset(args.data_dir)
    print(f"source: {dataset.source}")
    for split, y in (("train", dataset.y_train), ("test", dataset.y_test)):
        counts = np.bincount(y, minlength=len(data.ORIGINAL_LABELS)).tolist()
        print(f"{split}: {len(y)} beats of {data.INPUT_LENGTH} samples, class counts {counts}")
    return 0


def cmd_pretrained(args) -> int:
    if args.pretrained_command == "pack":
        pack_pretrained(args.run_root, args.seed, data_dir=args.data_dir, noise_file=args.noise_file)
        return 0
    manifest = read_manifest()
    directory = resolve_model_path("pretrained:edge").parent if manifest.get("models") else None
    for name, entry in manifest["models"].items():
        print(f"pretrained:{name}  recipe {entry['recipe']}, seed {entry['seed']}, commit {manifest.get('commit')}")
        for fmt, info in entry["files"].items():
            test = info["test"]
            recall = test.get("per_class_recall")
            recall_text = ("  recall per class " + " ".join(f"{r:.2f}" for r in recall)) if recall else ""
            print(f"  {fmt:17s} {os.path.join(str(directory), info['file'])}  {info['bytes'] / 1024:,.0f} KiB  "
                  f"test accuracy {test['accuracy']:.4f}  macro-F1 {test['macro_f1']:.4f}{recall_text}")
            stress = info.get("stress")
            if stress:
                print(f"  {'':17s} stress ({stress['beats']} test beats): re-cut from a recording "
                      f"{stress['recut_accuracy']:.4f}, worst NSTDB noise at 12 dB "
                      f"{stress['noise_12db_worst_accuracy']:.4f}  ({stress['command']})")
    return 0


def cmd_ablation(args) -> int:
    summary = run_ablation(seed=args.seed, outer_folds=args.outer_folds, epochs=args.epochs,
                           output_dir=args.output_dir, results_dir=args.results_dir, data_dir=args.data_dir,
                           variants=args.variants, readme=args.readme or None,
                           validation_only=args.validation_only)
    print(render_ablation(summary))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "export": cmd_export,
            "bench": cmd_bench, "pipeline": cmd_pipeline, "summary": cmd_summary, "data": cmd_data,
            "pretrained": cmd_pretrained, "ablation": cmd_ablation, "serve": run_serve, "annotate": run_annotate,
            "stress": run_stress_command}
