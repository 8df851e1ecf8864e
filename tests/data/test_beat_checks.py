"""What ``predict`` and ``serve`` refuse or flag in a beats file: label columns first or last (with or without
``--resample``), values beyond float32, and beats with a spike or artefact — flagged on constructions whose answer is
known, and never on the 5,000 official beats (the false-flag rate the threshold was chosen for)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.core.errors import DataError
from ecgcnn.data.beats import outlier_beats, read_beats_csv

from ..conftest import assert_one_line_error

pytestmark = pytest.mark.fast


def _file(path, rows):
    path.write_text("\n".join(",".join(f"{v:g}" for v in row) for row in rows) + "\n")
    return path


def test_no_official_beat_is_flagged_and_spikes_are(dataset):
    official = np.concatenate([dataset.x_train, dataset.x_test])
    assert int(outlier_beats(official).sum()) == 0  # false-flag rate on the official beats: 0 of 5,000
    assert not outlier_beats(official * 1000.0 + 7.0).any()  # gain and offset change nothing
    spiked = official[:50].copy()
    spiked[np.arange(50), np.arange(50) + 40] = 1e6  # one huge sample per beat
    assert outlier_beats(spiked).all()
    moderate = official[:50].copy()
    rows = np.arange(50)
    moderate[rows, 70] = moderate[rows].max(axis=1) + 20 * moderate[rows].std(axis=1)  # 20 SD above the peak
    assert outlier_beats(moderate).all()
    assert not outlier_beats(np.ones((2, 140))).any()  # flat beats are the flat check's, not this one's


def test_label_columns_first_or_last_are_refused_unless_named(tmp_path, dataset):
    pick = np.concatenate([np.flatnonzero(dataset.index_test == k)[:6] for k in range(5)])  # labels 1..5
    x, y = dataset.x_test[pick], dataset.y_test[pick]
    first = _file(tmp_path / "first.csv", [[label, *row] for label, row in zip(y, x, strict=True)])
    last = _file(tmp_path / "last.csv", [[*row, label] for label, row in zip(y, x, strict=True)])
    for path, side in ((first, "first"), (last, "last")):
        for resample in (False, True):
            with pytest.raises(DataError, match=f"141 columns whose {side} holds small whole numbers: a label "
                                                f"column\\? use --label-column {side}"):
                read_beats_csv(path, resample=resample)
        read = read_beats_csv(path, label_column=side)
        np.testing.assert_allclose(read.values, x, rtol=1e-5)
        assert read.labels.tolist() == y.tolist()
    padded = _file(tmp_path / "padded.csv", [[*row, 0, 0] for row in x])  # zero padding is not a label column
    assert read_beats_csv(padded, resample=True).values.shape == (30, 140)


def test_values_beyond_float32_are_refused(tmp_path):
    row = [0.1] * 140
    row[9] = 1e39
    path = _file(tmp_path / "huge.csv", [[0.2] * 140, row])
    with pytest.raises(DataError) as info:
        read_beats_csv(path)
    assert str(info.value) == (f"{path}, line 2, column 10: 1e+39 is beyond the float32 range (|x| <= 3.4e+38); "
                               f"expected an ECG sample")


def test_predict_flags_a_spiked_beat_in_its_warning_column(cli, tmp_path, dataset):
    beats = dataset.x_test[:5].copy()
    beats[2, 60] = 1e6
    path = _file(tmp_path / "beats.csv", beats)
    out = tmp_path / "p.csv"
    result = cli("predict", "pretrained:edge.tflite", "--input", path, "--output", out)
    assert result.code == 0, result
    warnings = [line.rsplit(",", 1)[1] for line in out.read_text().splitlines()[1:]]
    assert [bool(w) for w in warnings] == [False, False, True, False, False]
    assert "spike or artefact" in warnings[2] and "1 beat(s) with a spike or artefact (e.g. line 3)" in result.err
    huge = tmp_path / "huge.csv"
    huge.write_text(path.read_text().replace("1e+06", "1e+39"))
    assert_one_line_error(cli("predict", "pretrained:edge.tflite", "--input", huge), "huge.csv, line 3, column 61",
                          "beyond the float32 range")
