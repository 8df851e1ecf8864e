"""Bring your own data, end to end through the command line: annotated WFDB records → ``ecgcnn beats`` → ``train
--group-by record`` → ``annotate`` of a record no training beat came from; and a dataset with text labels and
another beat length through train → predict → evaluate → export.

The records are built here from official test beats at known R-peaks with known classes (normal beats annotated
``N``, R-on-T PVCs ``V``), so the expected beats and classes are the construction's, not the code's."""

from __future__ import annotations

import collections
import csv
import itertools
import json
import os

import numpy as np
import pytest

from ecgcnn.evaluation.recut import stitch
from ecgcnn.runtimes import load_predictor

from ..conftest import assert_one_line_error
from ..synthetic_ecg import FS as SYNTHETIC_FS
from ..synthetic_ecg import synthetic_record

wfdb = pytest.importorskip("wfdb")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
FS = 250
MATCH_S = 0.15  # a detection within 150 ms of an annotated beat is that beat (EC57)


def _write_record(folder, name: str, beats: np.ndarray, symbols: list[str], seed: int):
    signal, peaks, order = stitch(beats, fs=FS, seed=seed)
    here = os.getcwd()
    try:
        os.chdir(folder)
        wfdb.wrsamp(name, fs=FS, units=["mV"], sig_name=["ECG"], p_signal=signal[:, None], fmt=["16"],
                    adc_gain=[2000.0], baseline=[0])
        wfdb.wrann(name, "atr", sample=np.round(peaks).astype(int), symbol=[symbols[i] for i in order])
    finally:
        os.chdir(here)
    return folder / name, np.round(peaks).astype(int), [symbols[i] for i in order]


SYMBOL = {0: "N", 1: "V"}  # ECG5000 normal and R-on-T PVC (ventricular)


@pytest.fixture(scope="module")
def records(tmp_path_factory, dataset):
    """Four training records of 60 beats (30 N, 30 V) and a held-out record of 160 (80, 80); no beat in two
    records."""
    folder = tmp_path_factory.mktemp("records")
    pools = {k: np.flatnonzero(dataset.index_test == k) for k in SYMBOL}
    made = []
    for r, counts in enumerate([(30, 30)] * 4 + [(80, 80)]):
        start = {k: sum(c[i] for c in [(30, 30)] * r) for i, k in enumerate(SYMBOL)}
        chosen = np.concatenate([pools[k][start[k]:start[k] + n] for k, n in zip(SYMBOL, counts, strict=True)])
        symbols = [SYMBOL[int(dataset.index_test[i])] for i in chosen]
        made.append(_write_record(folder, f"rec{r}", dataset.x_test[chosen], symbols, seed=r))
    return made


def _csv(path, delimiter=","):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def _annotate_and_match(cli, record, model, fs: float, tmp_path):
    """``annotate`` of ``record`` (path, true R-peaks, symbols): the rows, the detection-to-truth distances, which true
    beats were found and which detections are true beats (within :data:`MATCH_S`)."""
    out = tmp_path / "annotated.csv"
    assert cli("annotate", f"{record[0]}.hea", model, "--output", out, "--no-progress").code == 0
    rows = _csv(out)
    detected = np.asarray([int(r["sample"]) for r in rows])
    distance = np.abs(detected[:, None] - record[1][None, :])
    return rows, distance, distance.min(axis=0) <= MATCH_S * fs, distance.min(axis=1) <= MATCH_S * fs


def test_annotated_records_to_a_model_that_annotates_an_unseen_record(cli, records, tmp_path):
    training, held_out = records[:4], records[4]
    beats = tmp_path / "beats.tsv"
    assert cli("beats", *(r[0] for r in training), "--output", beats).code == 0
    result = cli("train", "--recipe", "best", "--train", beats, "--group-by", "record", "--test-fraction", "0.25",
                 "--output-dir", tmp_path / "runs", "--no-progress")
    assert result.code == 0, result.err[-2000:]
    model = tmp_path / "runs" / "best" / "best_best.pth"
    metadata = load_predictor(model).metadata
    assert metadata["labels"] == ["N", "V"] and metadata["input_length"] == 140  # AAMI classes of N, A, V
    assert metadata["dataset"]["spec"] == {"train": str(beats), "group_by": "record"}  # 0.25 is the default
    # inter-patient: the test split is whole records, none of them in training
    metrics = json.loads((tmp_path / "runs" / "best" / "metrics.json").read_text())
    per_record = {}
    for row in _csv(beats, "\t"):
        per_record[row["record"]] = per_record.get(row["record"], 0) + 1
    assert len(per_record) == 4 and metrics["split"]["test"] in per_record.values()  # one whole record held out

    rows, distance, matched, true_positive_detections = _annotate_and_match(cli, held_out, model, FS, tmp_path)
    truth, symbols = held_out[1], held_out[2]
    sensitivity, ppv = matched.mean(), true_positive_detections.mean()
    # Stitched dataset windows: some R-on-T PVC windows hold a deeper trough mid-beat, so the construction's R-peak is
    # ambiguous; Se and PPV 0.97-1.0 here. Issue 22's 0.99 is checked on records with unambiguous R-peaks below.
    assert sensitivity >= 0.97 and ppv >= 0.97, (sensitivity, ppv)
    nearest = distance.argmin(axis=0)
    aami = {"N": "N", "V": "V"}
    classified = [(rows[nearest[j]]["label"], aami[symbols[j]]) for j in range(len(truth))
                  if matched[j] and rows[nearest[j]]["label"] != ""]
    agreement = np.mean([got == want for got, want in classified])
    per_class = {c: np.mean([got == want for got, want in classified if want == c]) for c in "NV"}
    assert len(classified) >= 0.95 * len(truth) and agreement >= 0.95 and min(per_class.values()) >= 0.9, \
        (len(classified), agreement, per_class)


def _synthetic_record(folder, name: str, seconds: float, seed: int):
    """Writes ``name`` (.hea/.dat/.atr) of :func:`synthetic_record` and returns (path, R-peak samples, symbols)."""
    signal, peaks, symbols = synthetic_record(seconds, seed)
    here = os.getcwd()
    try:
        os.chdir(folder)
        wfdb.wrsamp(name, fs=SYNTHETIC_FS, units=["mV"], sig_name=["ECG"], p_signal=signal[:, None], fmt=["16"],
                    adc_gain=[1000.0], baseline=[0])
        wfdb.wrann(name, "atr", sample=peaks, symbol=symbols)
    finally:
        os.chdir(here)
    return folder / name, peaks, symbols


def test_annotated_n_s_v_records_round_trip(cli, tmp_path):
    """Issue 22's round trip on records with N, S (``A``) and V annotations: ``beats`` of four records, ``train
    --group-by record``, ``annotate`` of a fifth record: every annotated beat found and its AAMI class given back."""
    folder = tmp_path / "records"
    folder.mkdir()
    training = [_synthetic_record(folder, f"syn{r}", 150.0, seed=r) for r in range(4)]
    held_out = _synthetic_record(folder, "held", 300.0, seed=99)
    beats = tmp_path / "beats.tsv"
    assert cli("beats", *(r[0] for r in training), "--output", beats).code == 0
    result = cli("train", "--recipe", "best", "--train", beats, "--group-by", "record", "--output-dir",
                 tmp_path / "runs", "--no-progress")
    assert result.code == 0, result.err[-2000:]
    model = tmp_path / "runs" / "best" / "best_best.pth"
    assert load_predictor(model).metadata["labels"] == ["N", "S", "V"]

    rows, distance, found, real = _annotate_and_match(cli, held_out, model, SYNTHETIC_FS, tmp_path)
    truth, symbols = held_out[1], held_out[2]
    assert found.mean() >= 0.99 and real.mean() >= 0.99, (found.mean(), real.mean())  # issue 22's bar
    nearest = distance.argmin(axis=0)
    aami = {"N": "N", "A": "S", "V": "V"}
    labelled = [j for j in range(len(truth)) if found[j] and rows[nearest[j]]["label"] != ""]
    assert len(labelled) >= 0.98 * len(truth), (len(labelled), len(truth))  # the last beat has no window
    for cls in "NSV":
        of_class = [rows[nearest[j]]["label"] == cls for j in labelled if aami[symbols[j]] == cls]
        assert len(of_class) >= 20 and np.mean(of_class) >= 0.95, (cls, len(of_class), np.mean(of_class))

    # The stress table of this model judges it on its own held-out records' beats (not ECG5000's): three classes,
    # and re-cut from recordings the clean, separable N/S/V beats keep the classes annotate gave back above.
    report_file = tmp_path / "stress.json"
    result = cli("stress", model, "--no-noise", "--json", report_file)
    assert result.code == 0, result.err[-2000:]
    report = json.loads(report_file.read_text())
    assert report["data"] == "beats"
    stressed = {r["condition"]: r for r in report["models"][0]["rows"]}
    per_record = collections.Counter(row["record"] for row in _csv(beats, "\t")).values()
    whole_records = {sum(c) for n in range(1, len(per_record)) for c in itertools.combinations(per_record, n)}
    assert stressed["official"]["beats"] in whole_records  # the held-out records' beats, not ECG5000's 4,500
    assert len(stressed["official"]["per_class_recall"]) == 3
    for condition in ("recut-250", "recut-360", "recut-500", "inverted"):
        row = stressed[condition]
        assert row["sensitivity"] >= 0.98 and row["accuracy"] >= 0.9 and min(row["per_class_recall"]) >= 0.8, \
            (condition, row["sensitivity"], row["accuracy"], row["per_class_recall"])


def test_text_labels_another_length_predict_evaluate_export(cli, tmp_path, dataset):
    """ECG5000 beats resampled to 100 samples with text labels: the model speaks the data's language."""
    pytest.importorskip("onnxruntime")
    names = {0: "normal", 1: "ron-t", 2: "pvc", 3: "sp-eb", 4: "ub"}
    x = np.stack([np.interp(np.linspace(0, 139, 100), np.arange(140), b) for b in dataset.x_train[:300]])
    train = tmp_path / "mine.csv"
    with open(train, "w", encoding="utf-8") as fh:
        fh.write(",".join([*(f"t{k}" for k in range(100)), "class"]) + "\n")
        for beat, k in zip(x, dataset.index_train[:300], strict=True):
            fh.write(",".join(f"{v:.5f}" for v in beat) + f",{names[int(k)]}\n")
    runs = tmp_path / "runs"
    result = cli("train", "--recipe", "edge", "--epochs", "2", "--train", train, "--label-column", "last",
                 "--output-dir", runs, "--no-progress")
    assert result.code == 0, result.err[-2000:]
    model = runs / "edge" / "edge_best.pth"
    predictor = load_predictor(model)
    present = sorted({names[int(k)] for k in dataset.index_train[:300]})
    assert predictor.labels == present and predictor.input_length == 100

    beats = tmp_path / "beats.csv"
    np.savetxt(beats, x[:5], delimiter=",", fmt="%.5f")
    out = tmp_path / "pred.csv"
    assert cli("predict", model, "--input", beats, "--output", out).code == 0
    predicted = [r["predicted_label"] for r in _csv(out)]
    assert predicted == list(predictor.predict(x[:5].astype(np.float32)))
    assert set(predicted) <= set(present)

    # evaluate without data options scores the model's own held-out beats (the seeded split it recorded)
    evaluated = cli("evaluate", model, "--json", tmp_path / "e.json")
    assert evaluated.code == 0, evaluated.err
    scored = json.loads((tmp_path / "e.json").read_text())
    counts = np.bincount(dataset.index_train[:300])
    assert scored["n"] == sum(min(round(0.25 * n), n - 1) for n in counts if n)  # the default 25 %, stratified
    assert [c["label"] for c in scored["per_class"]] == present
    assert_one_line_error(cli("evaluate", model, "--dataset", "ECG5000"), "takes beats of 100 samples")

    assert cli("export", "onnx", model, "--output-dir", tmp_path / "onnx").code == 0
    onnx = load_predictor(tmp_path / "onnx" / "edge.onnx")
    assert onnx.labels == present and onnx.class_names == present
    np.testing.assert_allclose(onnx.predict_proba(x[:20]), predictor.predict_proba(x[:20]), atol=1e-5)
