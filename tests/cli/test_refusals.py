"""Silent wrong answers made loud: an output that is the input, a plot outside the recording. Each refusal is one
line, exit 2, and the input file is left as it was."""

from __future__ import annotations

import numpy as np

from tests.conftest import assert_one_line_error


def test_predict_refuses_to_overwrite_its_input(cli, tmp_path, dataset):
    beats = tmp_path / "beats.csv"
    np.savetxt(beats, dataset.x_test[:3], delimiter=",")
    before = beats.read_bytes()
    assert_one_line_error(cli("predict", "pretrained:edge.tflite", "--input", beats, "--output", beats),
                          "--output", "is the input file")
    assert beats.read_bytes() == before
    same = tmp_path / "." / "beats.csv"  # the same file under another spelling
    assert_one_line_error(cli("predict", "pretrained:edge.tflite", "--input", beats, "--output", same),
                          "is the input file")


def test_annotate_refuses_a_plot_start_after_the_recording(cli, tmp_path):
    fs = 250.0
    t = np.arange(int(20 * fs)) / fs
    signal = -np.exp(-0.5 * (((t % 0.8) - 0.1) / 0.01) ** 2)  # 20 s of beats every 0.8 s
    record = tmp_path / "r.npy"
    np.save(record, signal)
    plot = tmp_path / "strip.html"
    assert_one_line_error(cli("annotate", record, "pretrained:edge.tflite", "--fs", "250", "--plot", plot,
                              "--plot-start", "400", "--output", tmp_path / "b.csv"), "--plot-start 400", "20.0 s")
    assert not plot.exists() and not (tmp_path / "b.csv").exists()
    assert_one_line_error(cli("annotate", record, "pretrained:edge.tflite", "--fs", "250", "--output", record),
                          "is the input file")
