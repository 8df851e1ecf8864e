"""``ecgcnn annotate``: a raw recording in, one labelled row per beat out; or many recordings into a folder.

    ecgcnn annotate chf07.hea                                  # CSV of labelled beats on standard output
    ecgcnn annotate holter.csv pretrained:edge.onnx --fs 250 --output beats.csv --json summary.json --plot strip.html
    ecgcnn annotate archive/ --output-dir beats/ --jobs 2      # every record of a folder (resumable; archive.csv)

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
from ..runtimes.pretrained import DEFAULT_MODEL, default_model_help, is_pretrained_spec, measured_fields
from ..workflows.archive import RecordOptions, annotate_archive, expand_records
from ._parser import NONNEGATIVE_FLOAT, POSITIVE_FLOAT, POSITIVE_INT, number_or_name


def _float_text(text: str) -> float:
    """--fs as given (checked by the reader, whose message names the file)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of Hz, got {text!r}") from None


EXAMPLES = ("ecgcnn annotate record.hea pretrained:edge.tflite --output beats.csv --json summary.json --plot "
            "strip.html",
            "ecgcnn annotate holter/*.hea --output-dir beats/ --jobs 2",
            "ecgcnn annotate --manifest records.txt --output-dir beats/ --cluster tcp://scheduler:8786")
MODEL_SUFFIXES = (".pth", ".onnx", ".tflite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="RECORD [RECORD ...] [MODEL]",
                        help="recordings: WFDB records (NAME or NAME.hea), .csv/.txt with one signal column, .npy; "
                             "also directories and globs (with --output-dir). Then, optionally, the model: a file "
                             "(.pth, .onnx, .tflite) or pretrained:NAME[.onnx|.tflite] (" + default_model_help() + ")")
    parser.add_argument("--manifest", default=None,
                        help="a text file naming one record per line (relative to the file's folder), with "
                             "--output-dir")
    parser.add_argument("--output-dir", default=None,
                        help="annotate many records: <name>.csv and <name>.json per record, archive.csv over all; "
                             "finished records are kept on a rerun")
    parser.add_argument("--jobs", type=POSITIVE_INT, default=1,
                        help="records annotated in parallel, one process each (with --output-dir)")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS",
                        help="run the records on an existing Dask cluster (e.g. tcp://scheduler:8786; needs the "
                             "'cluster' extra; records and --output-dir must be reachable from the workers)")
    parser.add_argument("--fs", type=_float_text, default=None,
                        help="sampling frequency in Hz (required for CSV/TXT/NPY; WFDB headers carry it)")
    parser.add_argument("--channel", type=number_or_name, default=None,
                        help="signal channel: 1-based number or name (WFDB signal name such as MLII); default: "
                             "the first")
    parser.add_argument("--column", type=number_or_name, default=None,
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


def _split_inputs(args) -> tuple[list[str], str]:
    """The records and the model: the last input is the model when it names one."""
    inputs = list(args.inputs)
    model = DEFAULT_MODEL
    if inputs and (is_pretrained_spec(inputs[-1]) or inputs[-1].lower().endswith(MODEL_SUFFIXES)):
        model = inputs.pop()
    return inputs, model


def run(args) -> int:
    records, args.model_file = _split_inputs(args)
    many = args.output_dir is not None or args.manifest is not None or len(records) != 1
    if many:
        return _run_many(args, records)
    if args.jobs != 1 or args.cluster:
        raise EcgcnnError("--jobs and --cluster annotate many records: expected --output-dir")
    args.record = records[0]
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
    summary.update(measured_fields(predictor))
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


def _run_many(args, records: list[str]) -> int:
    if args.output_dir is None:
        raise EcgcnnError(f"{len(records) or 'no'} records given: expected one record, or --output-dir for many")
    for flag, value in (("--output", args.output), ("--json", args.json_out), ("--plot", args.plot)):
        if value is not None:
            raise EcgcnnError(f"{flag} names one record's file; with --output-dir every record gets <name>.csv and "
                              f"<name>.json there")
    if args.jobs != 1 and args.cluster:
        raise EcgcnnError("--jobs and --cluster: expected one of them (the cluster has its own workers)")
    paths = expand_records(records, args.manifest)
    options = RecordOptions(model=args.model_file, fs=args.fs, channel=args.channel, column=args.column,
                            polarity=args.polarity, chunk_seconds=args.chunk_seconds)
    rows = annotate_archive(paths, args.output_dir, options, jobs=args.jobs, cluster=args.cluster,
                            progress=not args.no_progress)
    failed = sum(row["status"] != "ok" for row in rows)
    beats = sum(int(row.get("beats") or 0) for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} records annotated ({beats} beats) -> {args.output_dir}/"
          + (f"; {failed} failed (see archive.csv)" if failed else ""), file=sys.stderr)
    return min(failed, 125)  # the exit status: how many records failed
