"""annotate's result object and pipeline in small, exact cases: rows and summary of a hand-made result whose every
figure is worked out here by hand, the progress bars, and :func:`annotate_signal` on stitched recordings with a
model written in the test (its probabilities are a known function of the window), so that each row can be
predicted from the construction."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from ecgcnn.annotate import pipeline
from ecgcnn.annotate.detection import upright_fraction
from ecgcnn.annotate.pipeline import AnnotationResult
from ecgcnn.core.errors import EcgcnnError
from ecgcnn.core.novelty import fit_novelty

from ..synthetic_ecg import FS, synthetic_record

pytestmark = pytest.mark.fast


def _hand_made() -> AnnotationResult:
    fs = 250.0
    # rr: 0.25 s (the lower bound, in range), 2.5 s (the upper bound, in range), 0.2 s (short), 3.0 s (long), NaN
    positions = np.array([100.4, 162.9, 787.9, 837.6, 1587.6])
    rr = np.array([62.5 / fs, 625.0 / fs, 50.0 / fs, 750.0 / fs, np.nan])
    probabilities = np.array([[0.7, 0.2, 0.1], [np.nan] * 3, [0.05, 0.15, 0.8], [0.33335, 0.6666, 0.00005],
                              [np.nan] * 3], dtype=np.float32)
    return AnnotationResult(fs=fs, n_samples=2000, positions=positions, rr_s=rr,
                            class_index=np.array([0, -1, 2, 1, -1]), probabilities=probabilities,
                            flags=np.array(["", "rr_short", "", "unfamiliar", "last_beat"], dtype=object),
                            labels=[1, "b", 3], class_names=["N", "V", "S"], polarity={"mode": "auto"},
                            detector="det 1.0")


def test_rows_hold_the_hand_worked_values():
    rows = _hand_made().rows()
    assert rows == [
        {"beat": 1, "sample": 100, "time_s": 0.4, "rr_s": 0.25, "label": 1, "class_name": "N",
         "probability": 0.7, "flag": ""},
        {"beat": 2, "sample": 163, "time_s": 0.652, "rr_s": 2.5, "label": "", "class_name": "", "probability": "",
         "flag": "rr_short"},
        {"beat": 3, "sample": 788, "time_s": 3.152, "rr_s": 0.2, "label": 3, "class_name": "S",
         "probability": 0.8, "flag": ""},
        {"beat": 4, "sample": 838, "time_s": 3.352, "rr_s": 3.0, "label": "b", "class_name": "V",
         "probability": 0.6666, "flag": "unfamiliar"},
        {"beat": 5, "sample": 1588, "time_s": 6.352, "rr_s": "", "label": "", "class_name": "", "probability": "",
         "flag": "last_beat"},
    ]
    assert all(isinstance(row["rr_s"], float) for row in rows[:4]) and isinstance(rows[0]["time_s"], float)


def test_rows_round_to_four_decimals():
    result = AnnotationResult(fs=360.0, n_samples=4000, positions=np.array([461.0, 3001.0]),
                              rr_s=np.array([2540.0 / 360.0, np.nan]), class_index=np.array([0, 0]),
                              probabilities=np.array([[0.123456, 0.876544]] * 2, np.float32), flags=np.array(
                                  ["", "last_beat"], dtype=object), labels=[0, 1], class_names=["a", "b"])
    first = result.rows()[0]
    assert (first["time_s"], first["rr_s"], first["probability"]) == (1.2806, 7.0556, 0.1235)  # 461/360 = 1.28056


def test_summary_counts_and_rates_worked_by_hand():
    summary = _hand_made().summary(source="rec.npy", model="edge")
    assert summary == {
        "source": "rec.npy", "model": "edge", "fs_hz": 250.0, "duration_s": 8.0, "detector": "det 1.0",
        "polarity": {"mode": "auto"}, "qrs_position": 3.35, "beats": 5, "classified": 3, "rejected": 2,
        "rejected_by_reason": {"last_beat": 1, "rr_short": 1}, "unfamiliar": 1, "familiarity": None,
        "mean_heart_rate_bpm": 43.6,  # 60 / mean(0.25, 2.5) s: both bounds are in range
        "beats_per_minute": 37.5,  # 5 beats in 8 s
        "beats_per_class": {"N": {"label": 1, "count": 1, "percent": 33.33},
                            "V": {"label": "b", "count": 1, "percent": 33.33},
                            "S": {"label": 3, "count": 1, "percent": 33.33}},
    }
    assert list(summary["rejected_by_reason"]) == ["last_beat", "rr_short"]  # in the order of FLAGS
    judged = _hand_made()
    # classified beats 0, 2, 3 have residuals 0.3, 0.9, 0.5 (median 0.5); beat 1 was not classified and does not count
    judged.residual = np.array([0.3, 100.0, 0.9, 0.5, np.nan])
    judged.novelty = {"median_residual": 0.2, "recording_limit": 2.4}
    assert judged.summary()["familiarity"] == {"residual_ratio": 2.5, "limit": 2.4, "familiar": False}
    judged.novelty = {"median_residual": 0.25, "recording_limit": 2.4}
    assert judged.summary()["familiarity"] == {"residual_ratio": 2.0, "limit": 2.4, "familiar": True}
    # the verdict follows the figures as reported (2 decimals), so the JSON never contradicts itself
    judged.novelty = {"median_residual": 0.5 / 2.4011, "recording_limit": 2.4049}  # under the limit
    assert judged.summary()["familiarity"] == {"residual_ratio": 2.4, "limit": 2.4, "familiar": True}
    judged.novelty = {"median_residual": 0.5 / 2.4049, "recording_limit": 2.4011}  # above it, equal as shown
    assert judged.summary()["familiarity"] == {"residual_ratio": 2.4, "limit": 2.4, "familiar": True}
    judged.class_index = np.full(5, -1)  # nothing classified: nothing to judge
    assert judged.summary()["familiarity"] is None
    bare = _hand_made().summary()
    assert "source" not in bare and "model" not in bare
    precise = AnnotationResult(fs=300.0, n_samples=1001, positions=np.array([10.0, 310.5, 650.0]),
                               rr_s=np.array([300.5 / 300.0, 339.5 / 300.0, np.nan]), class_index=np.array([0, 1, 1]),
                               probabilities=np.full((3, 2), 0.5, np.float32),
                               flags=np.array(["", "", ""], dtype=object), labels=[0, 1],
                               class_names=["x", "y"]).summary()
    assert precise["duration_s"] == 3.337  # 1001 / 300 = 3.33667
    assert precise["mean_heart_rate_bpm"] == 56.2  # 60 / 1.06667 s = 56.25, shown to one decimal
    assert precise["beats_per_minute"] == 53.9  # 3 beats in 3.33667 s = 53.946
    assert precise["beats_per_class"]["y"] == {"label": 1, "count": 2, "percent": 66.67}
    assert precise["rejected_by_reason"] == {} and precise["unfamiliar"] == 0


def test_summary_of_nothing():
    empty = AnnotationResult(fs=250.0, n_samples=0, positions=np.zeros(0), rr_s=np.zeros(0),
                             class_index=np.zeros(0, np.int64), probabilities=np.zeros((0, 2), np.float32),
                             flags=np.zeros(0, dtype=object), labels=[1, 2], class_names=["a", "b"]).summary()
    assert empty["mean_heart_rate_bpm"] is None and empty["beats_per_minute"] is None
    assert empty["beats_per_class"] == {"a": {"label": 1, "count": 0, "percent": 0.0},
                                        "b": {"label": 2, "count": 0, "percent": 0.0}}
    only_out_of_range = _hand_made()
    only_out_of_range.rr_s = np.array([0.1, 0.2, 2.6, 3.0, np.nan])
    assert only_out_of_range.summary()["mean_heart_rate_bpm"] is None


def test_summary_rounds_each_figure_to_its_own_decimals():
    result = _hand_made()
    result.n_samples = 1999  # 7.996 s
    result.rr_s = np.array([0.3, 0.7, 0.7, 0.7, np.nan])  # mean 0.6: 100 bpm exactly
    summary = result.summary()
    assert summary["duration_s"] == 7.996 and summary["mean_heart_rate_bpm"] == 100.0
    assert summary["beats_per_minute"] == round(60 * 5 / 7.996, 1) == 37.5
    result.rr_s = np.array([0.7, 0.7, 0.7, 0.7, np.nan])
    assert result.summary()["mean_heart_rate_bpm"] == 85.7  # 85.714...


# --------------------------------------------------------------------------------------------------- progress bars

class _Bar:
    made: list[_Bar] = []

    def __init__(self, **kwargs):
        self.kwargs, self.n, self.updates, self.closed = kwargs, 0, [], False
        _Bar.made.append(self)

    def update(self, step):
        self.updates.append(step)
        self.n += step

    def close(self):
        self.closed = True


def test_progress_true_draws_one_bar_per_stage(monkeypatch):
    _Bar.made = []
    monkeypatch.setattr(pipeline, "tqdm", _Bar)
    update, close = pipeline._progress_callback(True)
    update("detect", 100, 1000)
    update("detect", 350, 1000)
    update("classify", 4, 9)
    update("classify", 9, 9)
    detect, classify = _Bar.made
    assert detect.kwargs == {"total": 1000, "desc": "detect", "unit": "sample", "unit_scale": True, "disable": None,
                             "leave": False}
    assert classify.kwargs == {"total": 9, "desc": "classify", "unit": "beat", "unit_scale": True, "disable": None,
                               "leave": False}
    assert (detect.updates, classify.updates) == ([100, 250], [4, 5])
    assert not detect.closed and close() is None and detect.closed and classify.closed


def test_progress_off_or_a_callable(monkeypatch):
    monkeypatch.setattr(pipeline, "tqdm", lambda **kwargs: pytest.fail("no bar was asked for"))
    for off in (None, False):
        update, close = pipeline._progress_callback(off)
        assert update is None and close() is None
    seen = []
    update, close = pipeline._progress_callback(lambda *args: seen.append(args))
    update("detect", 1, 2)
    assert seen == [("detect", 1, 2)] and close() is None


# ------------------------------------------------------------------------------------- annotate_signal, with a probe

class Probe:
    """A model written here: it records every window it is given, the thread it runs on and whether two calls ever
    overlap, and answers probabilities that are a fixed function of the window (softmax of its first, middle and
    last values), so that each row of the result can be traced to the window it came from."""

    def __init__(self, labels=(1, 2, 3), metadata=None, input_length=140, with_metadata=True):
        self.labels, self.input_length = list(labels), input_length
        if with_metadata:
            self.metadata = {} if metadata is None else metadata
        self.windows: list[np.ndarray] = []
        self.answers: list[np.ndarray] = []
        self.threads: set[str] = set()
        self.active, self.overlapped = 0, False
        self._lock = threading.Lock()

    def predict_proba(self, windows):
        with self._lock:
            self.active += 1
            self.overlapped |= self.active > 1
        try:
            self.threads.add(threading.current_thread().name)
            time.sleep(0.002)
            w = np.asarray(windows, dtype=np.float64)
            logits = np.stack([w[:, 0], w[:, w.shape[1] // 2], w[:, -1]], axis=1)[:, : len(self.labels)]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            answer = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            self.windows.append(np.array(windows))
            self.answers.append(answer)
            return answer
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture(scope="module")
def record():
    signal, peaks, symbols = synthetic_record(40.0, seed=5)
    return signal, peaks


def _matched(found: np.ndarray, truth: np.ndarray, fs: float) -> int:
    return int(sum(np.min(np.abs(found - t)) <= 0.05 * fs for t in truth))


def test_every_classified_beat_gets_the_answer_for_its_own_window(record, monkeypatch):
    signal, peaks = record
    monkeypatch.setattr(pipeline, "BATCH", 7)  # many batches, and batches that span chunks
    probe = Probe()
    result = pipeline.annotate_signal(signal, FS, probe, chunk_seconds=9.0)
    assert _matched(result.positions, peaks, FS) == len(peaks) == len(result)
    classified = result.class_index >= 0
    assert classified.sum() == len(result) - 1 and result.flags[-1] == "last_beat"  # every RR is in range here
    assert result.class_index.dtype == np.int64 and result.probabilities.dtype == np.float32
    assert max(len(w) for w in probe.windows) == 7
    np.testing.assert_array_equal(result.probabilities[classified], np.concatenate(probe.answers))
    np.testing.assert_array_equal(result.class_index[classified], np.concatenate(probe.answers).argmax(axis=1))
    assert result.class_index[-1] == -1 and np.isnan(result.probabilities[-1]).all() and result.label[-1] == ""
    assert not probe.overlapped and {name.split("_")[0] for name in probe.threads} == {"ecgcnn-annotate-model"}
    # each window holds its own beat, QRS pointing down near the start, at the scale of the recording
    windows = np.concatenate(probe.windows)
    assert windows.dtype == np.float32 and windows.shape == (len(result) - 1, 140)
    assert np.all(np.argmin(windows[:, :70], axis=1) <= 8)  # (the next beat's QRS closes the window)
    for window, r in zip(windows, result.samples[:-1], strict=True):
        height = signal[r] - np.median(signal[r - int(0.12 * FS):r - int(0.06 * FS)])
        assert 0.75 * height < -window.min() < 1.25 * height
    assert result.polarity == {"mode": "auto", "recording": "normal", "negated": True,
                               "upright_fraction": round(upright_fraction(signal, FS, 9.0), 4)}
    np.testing.assert_allclose(result.rr_s[:-1], np.diff(result.positions) / FS)
    assert np.isnan(result.rr_s[-1]) and result.n_samples == len(signal) and result.fs == FS


def test_a_python_list_and_the_other_polarity(record):
    signal, _ = record
    automatic = Probe()
    as_array = pipeline.annotate_signal(signal, FS, automatic)
    as_list = pipeline.annotate_signal(signal.tolist(), FS, Probe())
    assert as_list.csv_text() == as_array.csv_text()
    forced = Probe()  # the negated recording, said to be inverted: not negated again, so the same windows
    inverted = pipeline.annotate_signal(-signal, FS, forced, polarity="inverted")
    assert inverted.polarity["recording"] == "inverted" and inverted.polarity["negated"] is False
    assert inverted.polarity["mode"] == "inverted"
    np.testing.assert_array_equal(inverted.positions, as_array.positions)
    np.testing.assert_array_equal(np.concatenate(forced.windows), np.concatenate(automatic.windows))
    normal = pipeline.annotate_signal(-signal, FS, Probe(), polarity="normal")
    assert normal.polarity == {"mode": "normal", "recording": "normal", "negated": True,
                               "upright_fraction": round(upright_fraction(-signal, FS), 4)}


def test_half_upright_votes_count_as_upright(record, monkeypatch):
    signal, _ = record
    monkeypatch.setattr(pipeline, "upright_fraction", lambda *args: 0.5)
    assert pipeline.annotate_signal(signal, FS, Probe()).polarity["recording"] == "normal"
    monkeypatch.setattr(pipeline, "upright_fraction", lambda *args: 0.4999)
    assert pipeline.annotate_signal(signal, FS, Probe()).polarity["recording"] == "inverted"


def test_labels_and_class_names_from_the_model(record):
    signal, _ = record
    plain = pipeline.annotate_signal(signal[: int(6 * FS)], FS, Probe(labels=np.array([4, 9]), with_metadata=False))
    assert plain.labels == [4, 9] and all(type(v) is int for v in plain.labels) and plain.class_names == ["4", "9"]
    named = pipeline.annotate_signal(signal[: int(6 * FS)], FS,
                                     Probe(labels=["N", "V"], metadata={"class_names": ["normal", "ventricular"]}))
    assert named.labels == ["N", "V"] and named.class_names == ["normal", "ventricular"]
    assert set(named.label[named.class_index >= 0]) <= {"N", "V"}


def test_the_models_novelty_reference_flags_beats(record, dataset):
    signal, _ = record
    reference = fit_novelty(dataset.x_train)  # as training stores it in a model's metadata
    everything = dict(reference, threshold=[-math.inf, -math.inf])
    nothing = dict(reference, threshold=[math.inf, math.inf])
    flagged = pipeline.annotate_signal(signal, FS, Probe(metadata={"novelty": everything}))
    usable = flagged.flags != "last_beat"
    assert np.all(flagged.flags[usable] == "unfamiliar") and np.all(flagged.class_index[usable] >= 0)
    assert flagged.summary()["unfamiliar"] == len(flagged) - 1
    assert not np.any(pipeline.annotate_signal(signal, FS, Probe(metadata={"novelty": nothing})).flags ==
                      "unfamiliar")


def test_progress_is_reported_per_stage(record):
    signal, _ = record
    seen = []
    result = pipeline.annotate_signal(signal, FS, Probe(), chunk_seconds=10.0, progress=lambda *a: seen.append(a))
    stages = [s for s, _, _ in seen]
    assert stages[0] == "detect" and stages[-1] == "classify" and set(stages) == {"detect", "classify"}
    assert stages.index("classify") > max(i for i, s in enumerate(stages) if s == "detect")
    assert seen[-1] == ("classify", len(result) - 1, len(result) - 1)
    assert [d for s, d, _ in seen if s == "classify"] == sorted(d for s, d, _ in seen if s == "classify")


def test_bad_arguments_are_refused_in_one_line(record):
    signal, _ = record
    with pytest.raises(EcgcnnError) as info:
        pipeline.annotate_signal(signal, FS, Probe(), polarity="up")
    assert str(info.value) == "polarity 'up': expected one of auto, normal, inverted"
    for chunk in (0, -1.0, math.nan, math.inf, "10", None):
        with pytest.raises(EcgcnnError) as info:
            pipeline.annotate_signal(signal, FS, Probe(), chunk_seconds=chunk)
        assert str(info.value) == f"chunk_seconds {chunk!r}: expected a positive number of seconds"
    assert len(pipeline.annotate_signal(signal[: int(5 * FS)], FS, Probe(), chunk_seconds=1)) > 0  # an int is fine
    with pytest.raises(EcgcnnError) as info:
        pipeline.annotate_signal(signal[:100], FS, Probe())
    assert str(info.value).startswith("signal: the signal has 100 samples")


def test_a_pause_longer_than_a_chunk_and_another_window_length(record):
    """A 12-second pause (low noise, no beats) with 5-second chunks: the chunks without an R-peak are skipped and
    the beats after them are classified; the windows have the model's own length."""
    signal, peaks = record
    cut = int(15 * FS)
    pause = 0.005 * np.random.default_rng(1).normal(size=int(12 * FS))
    paused = np.concatenate([signal[:cut], pause, signal[cut:]])
    truth = np.concatenate([peaks[peaks < cut - 0.1 * FS], peaks[peaks > cut + 0.1 * FS] + len(pause)])
    probe, seen = Probe(input_length=100), []
    result = pipeline.annotate_signal(paused, FS, probe, chunk_seconds=5.0, progress=lambda *a: seen.append(a))
    assert _matched(result.positions, truth, FS) == len(truth) == len(result)
    before = int(np.sum(result.positions < cut))
    assert result.flags[before - 1] == "rr_long"  # the beat whose window would span the pause
    after = np.arange(before, len(result) - 1)
    assert len(after) > 10 and np.all(result.class_index[after] >= 0) and np.all(result.flags[after] == "")
    assert all(w.shape[1] == 100 for w in probe.windows)
    # one "classify" report per chunk that holds an R-peak (the last beat's excluded: it has no window)
    chunk = 5.0 * FS
    holding = len(np.unique(np.floor(result.positions[:-1] / chunk)))
    assert sum(stage == "classify" for stage, _, _ in seen) == holding


def test_summary_of_a_short_record_with_one_classified_beat():
    result = AnnotationResult(fs=250.0, n_samples=200, positions=np.array([50.0, 150.0]),
                              rr_s=np.array([0.4, np.nan]), class_index=np.array([1, -1]),
                              probabilities=np.array([[0.2, 0.8], [np.nan, np.nan]], np.float32),
                              flags=np.array(["", "last_beat"], dtype=object), labels=[0, 1], class_names=["a", "b"])
    summary = result.summary()
    assert summary["duration_s"] == 0.8 and summary["beats_per_minute"] == 150.0  # 2 beats in 0.8 s
    assert summary["beats_per_class"]["b"] == {"label": 1, "count": 1, "percent": 100.0}
    assert summary["mean_heart_rate_bpm"] == 150.0


def test_a_recording_without_beats_gives_no_rows(record, monkeypatch):
    signal, _ = record
    monkeypatch.setattr(pipeline, "r_peaks", lambda *args: np.zeros(0))  # (the detector has its own tests)
    probe = Probe()
    result = pipeline.annotate_signal(signal, FS, probe)
    assert len(result) == 0 and result.rr_s.shape == (0,) and result.probabilities.shape == (0, 3)
    assert result.class_index.shape == result.flags.shape == (0,) and probe.windows == []
    assert result.rows() == [] and result.summary()["beats"] == 0


def test_the_result_names_the_detector_and_its_version(record):
    import importlib.metadata  # noqa: PLC0415

    signal, _ = record
    result = pipeline.annotate_signal(signal[: int(6 * FS)], FS, Probe())
    assert result.detector == f"sleepecg {importlib.metadata.version('sleepecg')} detect_heartbeats"


def test_the_upright_fraction_is_kept_to_four_decimals(record):
    """15 two-second blocks, five of them negated: 10 of 15 blocks vote upright (their QRS is the largest
    excursion), a fraction with no end of decimals."""
    signal, _ = record
    part = signal[: int(30 * FS)].copy()
    block = int(2 * FS)
    for k in (1, 4, 7, 10, 13):
        part[k * block:(k + 1) * block] *= -1
    result = pipeline.annotate_signal(part, FS, Probe())
    assert result.polarity["upright_fraction"] == 0.6667 and result.polarity["recording"] == "normal"


def test_full_batches_go_to_the_model_while_the_next_chunks_are_cut(record, monkeypatch):
    """Batches of exactly BATCH windows (the last one: what is left), the first sent before the last chunk is cut:
    the model works while the recording is still being windowed."""
    signal, _ = record
    monkeypatch.setattr(pipeline, "BATCH", 7)
    events = []

    class Logged(Probe):
        def predict_proba(self, windows):
            events.append(("model", len(windows)))
            return super().predict_proba(windows)

    result = pipeline.annotate_signal(signal, FS, Logged(), chunk_seconds=3.0,
                                      progress=lambda stage, done, total: events.append((stage, done)))
    sizes = [size for kind, size in events if kind == "model"]
    classified = int((result.class_index >= 0).sum())
    assert sizes == [7] * (classified // 7) + ([classified % 7] if classified % 7 else [])
    chunks = [i for i, (kind, _) in enumerate(events) if kind == "classify"]
    first_call = next(i for i, (kind, _) in enumerate(events) if kind == "model")
    assert first_call < chunks[len(chunks) // 2]  # not all held back to the end
