"""Fast tier (mutation-tested, see docs/mutation.md): annotate's files and the summary it prints.

The expected text is written out here by hand from the summary's figures (the oracle is the wording the docs show,
not ``format_summary`` itself)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgcnn.annotate import writers
from ecgcnn.annotate.pipeline import AnnotationResult

pytestmark = pytest.mark.fast


def _summary(**changes):
    summary = {
        "beats": 1234, "duration_s": 754.2, "fs_hz": 360.0, "classified": 1200, "rejected": 34,
        "rejected_by_reason": {"rr_long": 30, "flat": 4}, "mean_heart_rate_bpm": 98.17,
        "polarity": {"recording": "inverted", "mode": "auto", "upright_fraction": 0.126},
        "unfamiliar": 0,
        "beats_per_class": {"N (normal)": {"label": 1, "count": 1100, "percent": 91.6667},
                            "PVC": {"label": 3, "count": 100, "percent": 8.3333}},
    }
    return {**summary, **changes}


MEASURED = {"command": "ecgcnn stress pretrained:edge", "beats": 4500, "official_accuracy": 0.9413,
            "recut_accuracy": 0.86379, "noise_12db_worst_accuracy": 0.68963}


def test_summary_lines_say_the_figures():
    assert writers.format_summary(_summary()).splitlines() == [
        "1234 beats in 12.6 min at 360 Hz; 1200 classified, 34 rejected (rr_long 30, flat 4)",
        "mean heart rate 98.2 bpm",
        "polarity: inverted (detected; 13% of QRS upright)",
        "  1  N (normal)     1100   91.67%",
        "  3  PVC             100    8.33%",
    ]


def test_summary_without_rejections_or_heart_rate_and_a_given_polarity():
    text = writers.format_summary(_summary(
        rejected=0, rejected_by_reason={}, mean_heart_rate_bpm=None, fs_hz=128.5,
        polarity={"recording": "normal", "mode": "normal", "upright_fraction": 1.0},
        beats_per_class={"V": {"label": "V", "count": 7, "percent": 100.0}}))
    assert text == ("1234 beats in 12.6 min at 128.5 Hz; 1200 classified, 0 rejected\n"
                    "polarity: normal (given; 100% of QRS upright)\n"
                    "  V  V        7  100.00%")


def test_summary_names_unfamiliar_beats_and_what_the_model_file_was_measured_on():
    lines = writers.format_summary(_summary(unfamiliar=17, model_measured=MEASURED)).splitlines()
    assert lines[3] == ("17 labelled beats flagged 'unfamiliar': unlike every beat the model was trained on, so their "
                        "labels are guesses")
    assert lines[4] == ("this model file, measured by 'ecgcnn stress pretrained:edge' on 4500 ECG5000 test beats (one "
                        "patient, one lead): 94.1 % on the dataset's windows, 86.4 % re-cut from a recording, 69.0 % "
                        "with the worst NSTDB noise at 12 dB; other patients and leads are not measured")
    unmeasured = writers.format_summary(_summary(model_measured=None)).splitlines()
    assert unmeasured[3] == ("no stress figures recorded for this model file (measure it: ecgcnn stress MODEL); it was "
                             "judged, if at all, on the dataset's own windows only")
    other = writers.format_summary(_summary(model_measured=None, model_input_length=96)).splitlines()
    assert other[3] == ("no stress figures recorded for this model file (ecgcnn stress measures models of 140-sample "
                        "R-to-R windows; this one reads 96); it was judged, if at all, on the dataset's own windows "
                        "only")
    assert not any("stress" in line or "unfamiliar" in line for line in writers.format_summary(_summary()).split("\n"))


def test_summary_says_how_familiar_the_recording_is():
    unlike = writers.format_summary(_summary(familiarity={"residual_ratio": 7.04, "limit": 3.74, "familiar": False}))
    assert unlike.splitlines()[3] == (
        "these beats are unlike the training beats (another patient or lead, noise or an unusual rate): their median "
        "shape residual is 7.04x the training beats' (the training beats re-cut from clean recordings: at most 3.74x); "
        "treat the labels as unverified guesses")
    like = writers.format_summary(_summary(familiarity={"residual_ratio": 1.55, "limit": 3.74, "familiar": True}))
    assert like.splitlines()[3] == ("beats like the training beats: median shape residual 1.55x the training beats' "
                                    "(re-cut training beats: up to 3.74x)")
    unjudged = writers.format_summary(_summary(familiarity={"residual_ratio": 2.0, "limit": None, "familiar": None}))
    assert unjudged.splitlines()[3] == ("median shape residual 2.00x the training beats' (1 = the training beats as "
                                        "the dataset holds them; this model records no limit to judge it by)")
    assert "residual" not in writers.format_summary(_summary(familiarity=None))


def test_summary_with_no_class_rows():
    assert writers.format_summary(_summary(beats_per_class={})).splitlines()[-1].startswith("polarity: ")


def test_files_are_written_whole(tmp_path):
    result = AnnotationResult(fs=250.0, n_samples=1000, positions=np.array([100.0, 300.4]),
                              rr_s=np.array([0.8016, np.nan]), class_index=np.array([0, -1]),
                              probabilities=np.array([[0.75, 0.25], [np.nan, np.nan]], np.float32),
                              flags=np.array(["", "last"], dtype=object), labels=[1, 2], class_names=["N", "V"])
    writers.write_csv(result, tmp_path / "beats.csv")
    assert (tmp_path / "beats.csv").read_text() == (
        "beat,sample,time_s,rr_s,label,class_name,probability,flag\n"
        "1,100,0.4000,0.8016,1,N,0.7500,\n"
        "2,300,1.2000,,,,,last\n")
    writers.write_summary({"beats": 2, "model": "edge", "nested": {"x": [1, 2]}}, tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text()) == {"beats": 2, "model": "edge", "nested": {"x": [1, 2]}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beats.csv", "s.json"]  # no temporary files left
