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


def test_an_output_where_no_file_can_be_made_is_one_line_before_any_work(cli, tmp_path, dataset, monkeypatch):
    """/proc accepts no new file, even from root (for whom os.access says yes everywhere): the message names the
    output the user gave, not a temporary name, and the model is never loaded."""
    beats = tmp_path / "beats.csv"
    np.savetxt(beats, dataset.x_test[:3], delimiter=",")
    for output in ("/proc/ecgcnn-test.csv", "/proc/no/such/dir/out.csv"):
        result = cli("predict", "pretrained:edge.tflite", "--input", beats, "--output", output)
        assert_one_line_error(result, f"--output {output}: cannot create a file in /proc")
        assert ".csv." not in result.err  # no temporary name
    assert_one_line_error(cli("annotate", tmp_path / "missing.npy", "--fs", "250", "--output-dir",
                              "/proc/ecgcnn-out"), "missing.npy")


def test_a_refused_training_leaves_no_run_folder_and_no_lock(cli, tmp_path, official_tables):
    """Bad data is refused before the run's folder and its lock exist."""
    data = tmp_path / "data"
    data.mkdir()
    train, test = official_tables["train"].copy(), official_tables["test"]
    train[7, 0] = 9  # a label the dataset does not have
    for name, table in (("ECG5000_TRAIN.txt", train), ("ECG5000_TEST.txt", test)):
        np.savetxt(data / name, table, fmt="%.8g")
    out = tmp_path / "out"
    result = cli("train", "--model", "base-cnn-small", "--epochs", "1", "--data-dir", data, "--output-dir", out)
    assert_one_line_error(result, "ECG5000_TRAIN.txt, line 8", "label 9")
    assert not out.exists()


def test_training_data_a_model_cannot_take_is_one_line_and_nothing_is_made(cli, tmp_path):
    """Each refusal names what cannot be done; none leaves a run folder behind. Chinatown's beats have 24 samples
    (VGG pools by 2 five times); a file of one beat per class leaves no validation beats; folds need two beats of
    every class."""
    out = tmp_path / "runs"
    assert_one_line_error(cli("train", "--model", "vgg", "--dataset", "Chinatown", "--epochs", "1",
                              "--output-dir", out), "--model vgg cannot take beats of 24 samples in 2 classes")
    one_each = tmp_path / "one_each.csv"
    rows = [f"{label}," + ",".join(str(v) for v in np.random.default_rng(k).normal(size=20))
            for k, label in enumerate("ABCDAB")]
    one_each.write_text("\n".join(rows[:4]) + "\n")
    test = tmp_path / "test.csv"
    test.write_text("\n".join(rows[4:]) + "\n")
    assert_one_line_error(cli("train", "--model", "base-cnn", "--train", one_each, "--test", test,
                              "--output-dir", out), "no validation beats can be held out of 4 training beats")
    assert_one_line_error(cli("train", "--model", "base-cnn", "--folds", "2", "--train", one_each, "--test", test,
                              "--output-dir", out), "class 'A' has 1 training beat(s): with --folds 2")
    assert not out.exists()


def test_a_closed_form_model_refit_on_every_beat_trains_on_one_beat_per_class(cli, tmp_path):
    """With one beat per class nothing can be held out; a network cannot choose its epoch (refused above), but
    `best` (Hydra, ridge alpha by leave-one-out, refit on every beat) has nothing to choose on held-out beats. The
    classes are six sinusoids; the test beats are noisy copies, so their labels are the construction's."""
    import json  # noqa: PLC0415 - this test only

    from ecgcnn.runtimes import load_predictor  # noqa: PLC0415

    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 64)
    shapes = {c: np.sin(2 * np.pi * (k + 1) * t + k) for k, c in enumerate("ABCDEF")}
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("".join(f"{c}," + ",".join(f"{v:.6f}" for v in s) + "\n" for c, s in shapes.items()))
    noisy = [(c, s + rng.normal(0, 0.1, len(s))) for c, s in shapes.items() for _ in range(5)]
    test.write_text("".join(f"{c}," + ",".join(f"{v:.6f}" for v in s) + "\n" for c, s in noisy))
    out = tmp_path / "runs"
    result = cli("train", "--recipe", "best", "--train", train, "--test", test, "--output-dir", out, "--no-progress")
    assert result.code == 0, result
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert metrics["val"] == {} and metrics["split"]["val"] == 0 and metrics["split"]["train"] == 6
    predicted = load_predictor(out / "best" / "best_best.pth").predict(np.array([s for _, s in noisy]))
    assert list(predicted) == [c for c, _ in noisy]
    # a network still needs held-out beats to choose its epoch: refused, nothing made
    assert_one_line_error(cli("train", "--recipe", "edge", "--train", train, "--test", test, "--output-dir",
                              tmp_path / "edge"), "no validation beats can be held out of 6 training beats")
    assert not (tmp_path / "edge").exists()


def test_a_reader_that_goes_away_is_no_error(tmp_path):
    """`ecgcnn pretrained list | head -1`: the command stops quietly when its reader closes the pipe (`true` closes
    it before the command has written anything)."""
    import subprocess  # noqa: PLC0415 - this test only
    import sys  # noqa: PLC0415

    result = subprocess.run(f"'{sys.executable}' -m ecgcnn pretrained list | true; echo ${{PIPESTATUS[0]}}",
                            shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "141" and result.stderr == "", result


def test_training_settings_that_do_not_fit_the_beats_are_one_line_and_leave_no_run_folder(cli, tmp_path):
    """ECG200's beats have 96 samples: a tail swap from sample 95 on has no tail, and re-cutting needs ECG5000's
    convention (140 samples cut at the R-peak)."""
    out = tmp_path / "out"
    result = cli("train", "--model", "hydra", "--dataset", "ECG200", "--tail-swap", "95", "--output-dir", out)
    assert_one_line_error(result, "--tail-swap 95", "from 1 to 94", "96 samples")
    result = cli("train", "--model", "hydra", "--dataset", "ECG200", "--recut", "1", "--output-dir", out)
    assert_one_line_error(result, "--recut", "140 samples", "these beats have 96")
    assert not out.exists() or not any(out.iterdir())
