"""``ecgcnn beats``: labelled beats from WFDB records with reference annotations, cut as ``annotate`` cuts.

    ecgcnn beats mitdb/100 mitdb/101 --annotations atr --output beats.tsv

The output is one beat per row, tab separated, with a header: ``record``, ``sample`` (the annotation), ``symbol``,
``label`` (an AAMI EC57 class, or the symbol with ``--labels symbol``), then the window's values ``v1 .. vL``.
Every record and its annotation file are checked before any is cut; the file is written atomically.
"""

from __future__ import annotations

import argparse
import io
import sys

from ..annotate.pipeline import POLARITIES
from ..annotate.readers import read_annotations, read_recording
from ..annotate.reference import reference_beats
from ..annotate.windows import ECG5000_LENGTH
from ..core.errors import EcgcnnError
from ..core.fileio import check_output_file, write_text_atomic
from ._parser import POSITIVE_INT, number_or_name

EXAMPLES = ("ecgcnn beats mitdb/100 mitdb/101 --annotations atr --output beats.tsv",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("records", nargs="+", metavar="RECORD", help="WFDB records (NAME or NAME.hea)")
    parser.add_argument("--annotations", default="atr", help="extension of the reference annotation files")
    parser.add_argument("--output", required=True, help="the labelled beats (.tsv)")
    parser.add_argument("--labels", choices=("aami", "symbol"), default="aami",
                        help="aami: the five EC57 classes N/S/V/F/Q; symbol: the annotation symbols as they are")
    parser.add_argument("--channel", type=number_or_name, default=None,
                        help="signal channel: 1-based number or name (default: the first)")
    parser.add_argument("--polarity", choices=POLARITIES, default="auto", help="QRS direction, as for annotate")
    parser.add_argument("--length", type=POSITIVE_INT, default=ECG5000_LENGTH, help="samples per window")


def run(args) -> int:
    output = check_output_file(args.output, "--output", inputs=tuple(args.records))
    annotations = [read_annotations(record, args.annotations) for record in args.records]  # all checked first
    buffer = io.StringIO()
    buffer.write("\t".join(["record", "sample", "symbol", "label", *(f"v{k}" for k in range(1, args.length + 1))])
                 + "\n")
    total = 0
    for record, (samples, symbols) in zip(args.records, annotations, strict=True):
        recording = read_recording(record, channel=args.channel)
        cut = reference_beats(recording, samples, symbols, length=args.length, polarity=args.polarity,
                              labels=args.labels)
        for sample, symbol, label, window in zip(cut.samples.tolist(), cut.symbols, cut.labels, cut.windows,
                                                 strict=True):
            buffer.write("\t".join([str(record), str(sample), symbol, label, *(f"{v:.6g}" for v in window)]) + "\n")
        total += len(cut.labels)
        counts = {label: cut.labels.count(label) for label in sorted(set(cut.labels))}
        print(f"{record}: {len(cut.labels)} beats " + " ".join(f"{k}={v}" for k, v in counts.items()),
              file=sys.stderr)
    if total == 0:
        raise EcgcnnError(f"no annotated beats could be cut from {', '.join(args.records)}; expected beat "
                          f"annotations (N, V, A, ...) in the .{args.annotations} files")
    write_text_atomic(output, buffer.getvalue())
    print(f"{total} labelled beats -> {output}", file=sys.stderr)
    return 0
