"""``ecgcnn annotate``: a raw recording in, one labelled row per beat out.

    ecgcnn annotate chf07.hea                                  # CSV of labelled beats on standard output
    ecgcnn annotate holter.csv pretrained:edge.onnx --fs 250 --output beats.csv --json summary.json --plot strip.html

Every output path is checked before any work is done; user errors raise :class:`EcgcnnError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import sys

from ..annotate.detection import DEFAULT_CHUNK_S
from ..annotate.pipeline import POLARITIES, annotate_signal
from ..annotate.plot import check_plot_path, plot_strip
from ..annotate.readers import read_recording
from ..annotate.writers import format_summary, write_csv, write_summary
from ..core.errors import EcgcnnError
from ..core.fileio import check_output_file
from ..runtimes import load_predictor
from ..runtimes.pretrained import DEFAULT_MODEL, default_model_help, measured_figures
from ._parser import NONNEGATIVE_FLOAT, POSITIVE_FLOAT


def _number_or_name(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


def _float_text(text: str) -> float:
    """--fs as given (checked by the reader, whose message names the file)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of Hz, got {text!r}") from None


EXAMPLES = ("ecgcnn annotate record.hea pretrained:edge --output beats.csv --json summary.json --plot strip.html",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("record", help="WFDB record (NAME or NAME.hea), .csv/.txt with one signal column, or .npy")
    parser.add_argument("model_file", nargs="?", default=DEFAULT_MODEL,
                        help="model file (.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite] ("
                             + default_model_help() + ")")
    parser.add_argument("--fs", type=_float_text, default=None,
                        help="sampling frequency in Hz (required for CSV/TXT/NPY; WFDB headers carry it)")
    parser.add_argument("--channel", type=_number_or_name, default=None,
                        help="signal channel: 1-based number or name (WFDB signal name such as MLII); default: "
                             "the first")
    parser.add_argument("--column", type=_number_or_name, default=None,
                        help="CSV/TXT column: header name or 1-based number (needed when there are several)")
    parser.add_argument("--polarity", choices=POLARITIES, default="auto",
                        help="QRS direction of the recording: normal (upright, as lead II), inverted, or detected")
    parser.add_argument("--output", default=None, help="write the beats CSV here (default: standard output)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the summary to this JSON file")
    parser.add_argument("--plot", default=None, help="also draw a strip: .html (self-contained) or .png")
    parser.add_argument("--plot-start", type=NONNEGATIVE_FLOAT, default=0.0, help="strip start in seconds")
    parser.add_argument("--plot-seconds", type=POSITIVE_FLOAT, default=30.0, help="strip length in seconds")
    parser.add_argument("--chunk-seconds", type=POSITIVE_FLOAT, default=DEFAULT_CHUNK_S,
                        help="signal processed per chunk (memory; the result does not depend on it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _check_outputs(args) -> None:
    paths = {}
    for flag, value in (("--output", args.output), ("--json", args.json_out), ("--plot", args.plot)):
        if value is None:
            continue
        path = check_output_file(value, flag, inputs=(args.record,))
        if flag == "--plot":
            check_plot_path(path)
        resolved = path.resolve()
        if resolved in paths:
            raise EcgcnnError(f"{flag} {value}: the same file as {paths[resolved]}; expected distinct output files")
        paths[resolved] = flag


def run(args) -> int:
    _check_outputs(args)
    recording = read_recording(args.record, fs=args.fs, channel=args.channel, column=args.column)
    if args.plot and args.plot_start >= recording.duration_s:
        raise EcgcnnError(f"--plot-start {args.plot_start:g}: the recording {args.record} lasts "
                          f"{recording.duration_s:.1f} s; expected a start inside it")
    predictor = load_predictor(args.model_file)
    progress = None if getattr(args, "no_progress", False) else True
    result = annotate_signal(recording.signal, recording.fs, predictor, polarity=args.polarity,
                             chunk_seconds=args.chunk_seconds, progress=progress)
    summary = result.summary(source=f"{recording.source} ({recording.channel_name})",
                             model=getattr(predictor, "describe", lambda: str(args.model_file))())
    summary["model_measured"] = measured_figures(predictor.path) if predictor.path else None
    if args.output:
        write_csv(result, args.output)
    else:
        sys.stdout.write(result.csv_text())
    if args.json_out:
        write_summary(summary, args.json_out)
    if args.plot:
        plot_strip(result, recording.signal, args.plot, start_s=args.plot_start, seconds=args.plot_seconds,
                   title=f"{recording.source} ({recording.channel_name})")
    print(format_summary(summary), file=sys.stderr)
    written = [p for p in (args.output, args.json_out, args.plot) if p]
    if written:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 0
