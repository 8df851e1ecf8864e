"""The annotation's files and its human-readable summary."""

from __future__ import annotations

import os

from ..core.fileio import write_json_atomic, write_text_atomic
from .pipeline import AnnotationResult
from .windows import ECG5000_LENGTH


def write_csv(result: AnnotationResult, path: str | os.PathLike) -> None:
    """The rows as CSV (atomic: the file appears complete or not at all)."""
    write_text_atomic(path, result.csv_text())


def write_summary(summary: dict, path: str | os.PathLike) -> None:
    write_json_atomic(path, summary)


def format_summary(summary: dict) -> str:
    """The summary as a few human-readable lines."""
    lines = [f"{summary['beats']} beats in {summary['duration_s'] / 60:.1f} min at {summary['fs_hz']:g} Hz; "
             f"{summary['classified']} classified, {summary['rejected']} rejected"
             + (" (" + ", ".join(f"{k} {v}" for k, v in summary["rejected_by_reason"].items()) + ")"
                if summary["rejected_by_reason"] else "")]
    if summary["mean_heart_rate_bpm"] is not None:
        lines.append(f"mean heart rate {summary['mean_heart_rate_bpm']:.1f} bpm")
    pol = summary["polarity"]
    lines.append(f"polarity: {pol['recording']} ({'detected' if pol['mode'] == 'auto' else 'given'}; "
                 f"{100 * pol['upright_fraction']:.0f}% of QRS upright)")
    if summary.get("unfamiliar"):
        lines.append(f"{summary['unfamiliar']} labelled beats flagged 'unfamiliar': unlike every beat the model was "
                     f"trained on, so their labels are guesses")
    familiarity = summary.get("familiarity")
    if familiarity:
        ratio, limit = familiarity["residual_ratio"], familiarity["limit"]
        if familiarity["familiar"] is False:
            lines.append(f"these beats are unlike the training beats (another patient or lead, noise or an unusual "
                         f"rate): their median shape residual is {ratio:.2f}x the training beats' (the training beats "
                         f"re-cut from clean recordings: at most {limit:.2f}x); treat the labels as unverified guesses")
        elif familiarity["familiar"]:
            lines.append(f"beats like the training beats: median shape residual {ratio:.2f}x the training beats' "
                         f"(re-cut training beats: up to {limit:.2f}x)")
        else:
            lines.append(f"median shape residual {ratio:.2f}x the training beats' (1 = the training beats as the "
                         f"dataset holds them; this model records no limit to judge it by)")
    measured = summary.get("model_measured")
    if measured:
        lines.append(f"this model file, measured by '{measured['command']}' on {measured['beats']} ECG5000 test beats "
                     f"(one patient, one lead): {100 * measured['official_accuracy']:.1f} % on the dataset's windows, "
                     f"{100 * measured['recut_accuracy']:.1f} % re-cut from a recording, "
                     f"{100 * measured['noise_12db_worst_accuracy']:.1f} % with the worst NSTDB noise at 12 dB; "
                     f"other patients and leads are not measured")
    elif "model_measured" in summary:
        length = summary.get("model_input_length", ECG5000_LENGTH)
        how = ("measure it: ecgcnn stress MODEL" if length == ECG5000_LENGTH else
               f"ecgcnn stress measures models of {ECG5000_LENGTH}-sample R-to-R windows; this one reads {length}")
        lines.append(f"no stress figures recorded for this model file ({how}); it was judged, if at all, on the "
                     f"dataset's own windows only")
    width = max((len(name) for name in summary["beats_per_class"]), default=0)
    for name, entry in summary["beats_per_class"].items():
        lines.append(f"  {entry['label']}  {name:<{width}}  {entry['count']:>7}  {entry['percent']:6.2f}%")
    return "\n".join(lines)
