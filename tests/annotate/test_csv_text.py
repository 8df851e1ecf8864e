"""annotate's CSV text against the ``csv`` module writing the same rows (the reference), with labels and class names
that need quoting, flagged and classified beats, a NaN RR interval, and rates that do not divide samples evenly."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from ecgcnn.annotate.pipeline import CSV_COLUMNS, AnnotationResult

pytestmark = pytest.mark.fast


def _reference(result: AnnotationResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i in range(len(result.positions)):
        sample = int(np.round(result.positions[i]))
        k = int(result.class_index[i])
        rr = float(result.rr_s[i])
        p = float(result.probabilities[i, k]) if k >= 0 else None
        writer.writerow([i + 1, sample, format(sample / result.fs, ".4f"), "" if np.isnan(rr) else format(rr, ".4f"),
                         result.labels[k] if k >= 0 else "", result.class_names[k] if k >= 0 else "",
                         format(p, ".4f") if k >= 0 else "", result.flags[i]])
    return buffer.getvalue()


@pytest.mark.parametrize(("labels", "names"), [
    ([1, 2, 3], ["N (normal)", "PVC", "other"]),
    (["N", "V, wide", 'say "S"'], ["normal", "ventricular, wide", "line\nbreak"]),
    ([0, 7, 12], ["", " padded ", "x"]),
])
@pytest.mark.parametrize("fs", [250.0, 360.0, 128.0, 1000.0 / 3.0])
def test_csv_text_is_what_the_csv_module_writes(labels, names, fs):
    rng = np.random.default_rng(len(names[0]) + int(fs))
    n = 500
    positions = np.sort(rng.uniform(0, 3_000_000, n))
    class_index = rng.integers(-1, len(labels), n)
    probabilities = rng.dirichlet(np.ones(len(labels)), n).astype(np.float32)
    probabilities[class_index < 0] = np.nan
    flags = np.where(class_index < 0, rng.choice(["rr_short", "rr_long", "flat"], n), "").astype(object)
    flags[(class_index >= 0) & (rng.random(n) < 0.1)] = "unfamiliar"
    rr = np.append(np.diff(positions) / fs, np.nan)
    result = AnnotationResult(fs=fs, n_samples=3_000_001, positions=positions, rr_s=rr, class_index=class_index,
                              probabilities=probabilities, flags=flags, labels=labels, class_names=names)
    text = result.csv_text()
    assert text == _reference(result)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [row["class_name"] for row in parsed] == [names[k] if k >= 0 else "" for k in class_index]
