"""`ecgcnn beats`: labelled beats from annotated WFDB records, cut exactly as `annotate` cuts them.

The record is built here from official test beats at known R-peaks, its annotations written with wfdb; the AAMI
classes are the EC57 table written out below (not the module's), and "the same windows as annotate" is checked
through annotate itself: the default model gives each of our windows the probability annotate reports for the beat
it found at that R-peak."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from ecgcnn.evaluation.recut import stitch
from ecgcnn.runtimes import load_predictor

from ..conftest import assert_one_line_error

wfdb = pytest.importorskip("wfdb")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
FS = 250
EC57 = {"N": "N", "L": "N", "R": "N", "e": "N", "j": "N", "A": "S", "a": "S", "J": "S", "S": "S", "V": "V", "E": "V",
        "F": "F", "/": "Q", "f": "Q", "Q": "Q"}


@pytest.fixture(scope="module")
def record(tmp_path_factory, dataset):
    folder = tmp_path_factory.mktemp("annotated")
    signal, peaks, _ = stitch(dataset.x_test[:60], fs=FS, seed=3)
    symbols = [list(EC57)[k % len(EC57)] for k in range(len(peaks))]  # every beat symbol, four times
    samples = np.round(peaks).astype(int)
    extra_samples, extra_symbols = [int(samples[5]) + 40, int(samples[20]) + 30], ["+", "~"]  # not beats
    all_samples = np.concatenate([samples, extra_samples])
    all_symbols = symbols + extra_symbols
    sort = np.argsort(all_samples, kind="stable")
    here = os.getcwd()
    try:
        os.chdir(folder)
        wfdb.wrsamp("rec", fs=FS, units=["mV"], sig_name=["ECG"], p_signal=signal[:, None], fmt=["16"],
                    adc_gain=[2000.0], baseline=[0])
        wfdb.wrann("rec", "atr", sample=all_samples[sort], symbol=[all_symbols[i] for i in sort])
    finally:
        os.chdir(here)
    return folder / "rec", samples, symbols


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_annotated_beat_with_a_window_is_a_labelled_row(cli, record, tmp_path):
    rec, samples, symbols = record
    out = tmp_path / "beats.tsv"
    result = cli("beats", rec, "--annotations", "atr", "--output", out)
    assert result.code == 0, result
    rows = _rows(out)
    # The last beat has no next R-peak, a beat whose window (QRS at 3.35 of 140 samples of one RR) would start
    # before the recording has none either; the rhythm and noise annotations are not beats.
    keep = [i for i in range(len(samples) - 1) if samples[i] - 3.35 * (samples[i + 1] - samples[i] - 1) / 139 >= 0]
    assert len(keep) >= len(samples) - 2
    assert [int(r["sample"]) for r in rows] == samples[keep].tolist()
    assert [r["symbol"] for r in rows] == [symbols[i] for i in keep]
    assert [r["label"] for r in rows] == [EC57[symbols[i]] for i in keep]
    assert {r["record"] for r in rows} == {str(rec)}
    assert len(rows[0]) == 4 + 140
    symbol_rows = tmp_path / "symbols.tsv"
    assert cli("beats", rec, "--output", symbol_rows, "--labels", "symbol").code == 0
    assert [r["label"] for r in _rows(symbol_rows)] == [symbols[i] for i in keep]


def test_the_windows_are_the_ones_annotate_classifies(cli, record, tmp_path):
    rec, samples, _ = record
    out = tmp_path / "beats.tsv"
    assert cli("beats", rec, "--output", out).code == 0
    windows = np.asarray([[float(r[f"v{k}"]) for k in range(1, 141)] for r in _rows(out)])
    annotated = tmp_path / "annotate.csv"
    assert cli("annotate", f"{rec}.hea", "--output", annotated, "--no-progress").code == 0
    with open(annotated, newline="", encoding="utf-8") as fh:
        found = {int(r["sample"]): float(r["probability"]) for r in csv.DictReader(fh) if r["probability"]}
    predictor = load_predictor("pretrained:edge.tflite")  # annotate's default
    probabilities = predictor.predict_proba(windows).max(axis=1)
    matched = 0
    for sample, p in zip([int(r["sample"]) for r in _rows(out)], probabilities.tolist(), strict=True):
        near = [s for s in found if abs(s - sample) <= 1]
        if near:
            matched += 1
            assert abs(found[near[0]] - p) <= 2e-4, (sample, found[near[0]], p)
    assert matched >= 0.9 * (len(samples) - 1)


def test_a_record_without_annotations_is_one_line_and_nothing_is_written(cli, record, tmp_path):
    rec, _, _ = record
    out = tmp_path / "beats.tsv"
    assert_one_line_error(cli("beats", rec, "--annotations", "ecg", "--output", out), "no annotation file rec.ecg")
    assert not out.exists()
    data = tmp_path / "signal.npy"
    np.save(data, np.zeros(1000))
    assert_one_line_error(cli("beats", rec, data, "--output", out), "signal.npy", "WFDB records")
    assert not out.exists()
