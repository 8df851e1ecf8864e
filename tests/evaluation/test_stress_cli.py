"""``ecgcnn stress`` end to end on a shipped file (small subset, no noise file needed), and its refusals."""

from __future__ import annotations

import json

import numpy as np

from ecgcnn import load_predictor
from ecgcnn.evaluation.stress import subset
from ecgcnn.runtimes.pretrained import measured_figures, resolve_model_path
from ecgcnn.serve.app import model_card
from tests.conftest import assert_one_line_error
from tests.synthetic_ecg import FS as SYNTHETIC_FS
from tests.synthetic_ecg import synthetic_record


def test_stress_command_writes_json_and_markdown(cli, tmp_path, dataset):
    out_json, out_md = tmp_path / "s.json", tmp_path / "s.md"
    result = cli("stress", "pretrained:edge.tflite", "--beats", "90", "--no-noise", "--json", out_json,
                 "--markdown", out_md)
    assert result.code == 0, result
    report = json.loads(out_json.read_text())
    rows = {r["condition"]: r for r in report["models"][0]["rows"]}
    assert list(rows) == ["official", "recut-250", "recut-360", "recut-500", "gain-offset", "inverted", "rr-0.5-2"]
    # the official row is an independent count: the file's own predictions on the same stratified subset
    chosen = subset(dataset.index_test, 90, 0)
    predicted = load_predictor("pretrained:edge.tflite").predict_indices(dataset.x_test[chosen])
    assert rows["official"]["accuracy"] == np.mean(predicted == dataset.index_test[chosen])
    assert rows["gain-offset"]["accuracy"] == rows["recut-250"]["accuracy"]  # z-normalised windows: invariant
    assert rows["inverted"]["polarity"] == "normal" and rows["recut-250"]["polarity"] == "inverted"
    assert "| `pretrained:edge.tflite` |" in out_md.read_text()


def test_stress_refusals(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ECGCNN_NOISE_FILE", str(tmp_path / "absent.npz"))
    assert_one_line_error(cli("stress"), "expected at least one model file")
    assert_one_line_error(cli("stress", "pretrained:edge.tflite", "--beats", "30"), "fetch-noise")
    assert_one_line_error(cli("stress", "nope.onnx", "--no-noise"), "nope.onnx")
    blocked = tmp_path / "file"
    blocked.write_text("x")
    assert_one_line_error(cli("stress", "pretrained:edge.tflite", "--json", blocked / "x.json"), "--json")
    assert not list(tmp_path.glob("*.json"))


def test_stress_judges_a_model_on_its_own_data_or_refuses(cli, tmp_path):
    """A model of other data is judged on that data's test beats, so beats that cannot be stitched into a recording
    (not 140-sample R-to-R windows) are refused in one line, as are models of different data in one command."""
    assert cli("train", "--recipe", "best", "--dataset", "Chinatown", "--output-dir", tmp_path / "runs",
               "--no-progress").code == 0
    model = tmp_path / "runs" / "best" / "best_best.pth"
    out = tmp_path / "s.json"
    assert_one_line_error(cli("stress", model, "--no-noise", "--json", out), "140 samples", "Chinatown have 24")
    assert_one_line_error(cli("stress", "pretrained:edge.tflite", model, "--no-noise"), "record different data")
    assert_one_line_error(cli("stress", "pretrained:edge.tflite", "--dataset", "Chinatown", "--no-noise"),
                          "takes beats of 140 samples", "Chinatown have 24")
    assert not out.exists()
    # annotate runs such a model, and its summary does not send the user to a command that refuses it
    record = tmp_path / "record.npy"
    np.save(record, synthetic_record(30.0, seed=0)[0].astype(np.float32))
    result = cli("annotate", record, model, "--fs", str(SYNTHETIC_FS), "--output", tmp_path / "a.csv", "--no-progress")
    assert result.code == 0, result.err[-1000:]
    assert ("no stress figures recorded for this model file (ecgcnn stress measures models of 140-sample R-to-R "
            "windows; this one reads 24)") in result.err


def test_measured_figures_belong_to_the_very_file(tmp_path):
    """A shipped file's manifest entry, matched by content: a copy finds it, a changed byte does not."""
    path = resolve_model_path("pretrained:edge.tflite")
    copy = tmp_path / "edge.tflite"
    copy.write_bytes(path.read_bytes())
    assert measured_figures(copy) == measured_figures(path)
    changed = bytearray(path.read_bytes())
    changed[-1] ^= 1
    copy.write_bytes(bytes(changed))
    assert measured_figures(copy) is None


def test_served_model_card_metrics_are_the_files_own(dataset):
    """/v1/model's figures for a shipped .tflite are that file's own accuracy, counted here from its predictions
    (not its checkpoint's, which an exported file used to inherit)."""
    predictor = load_predictor("pretrained:edge.tflite")
    card = model_card(predictor, "-", 10, 10)
    predicted = predictor.predict_indices(dataset.x_test)
    assert card["metrics"]["test"]["accuracy"] == np.mean(predicted == dataset.index_test)
    recall = [np.mean(predicted[dataset.index_test == c] == c) for c in range(5)]
    np.testing.assert_allclose(card["per_class_recall"], recall)
