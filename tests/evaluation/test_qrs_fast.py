"""QRS extent on records whose beats are known: synthetic N/A/V records (tests/synthetic_ecg.py, the V complexes
built wide, the others narrow) and single Gaussian complexes of known width."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.evaluation.qrs import qrs_extent_ms
from tests.synthetic_ecg import synthetic_record

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("fs", [250.0, 360.0, 500.0])
def test_ventricular_complexes_come_out_wide_and_the_others_narrow(fs):
    for seed in range(3):
        signal, peaks, symbols = synthetic_record(60, seed, fs=fs)
        widths = qrs_extent_ms(signal, fs, peaks)
        wide = np.array(symbols) == "V"
        assert wide.any() and (~wide).any()
        assert widths[wide].min() >= 120 and widths[~wide].max() <= 90, (widths[wide].min(), widths[~wide].max())


def test_extent_grows_with_the_complex_and_ignores_scale_and_offset():
    fs, t = 360.0, np.arange(int(8 * 360)) / 360.0
    peaks = np.arange(1.0, 7.5, 1.0) * fs
    extents = []
    for sigma in (0.008, 0.016, 0.032):
        signal = sum(np.exp(-0.5 * ((t - p / fs) / sigma) ** 2) for p in peaks)
        widths = qrs_extent_ms(signal, fs, peaks)
        assert np.ptp(widths) <= 1000 / fs + 1e-9  # the same complex everywhere, within a sample
        np.testing.assert_allclose(qrs_extent_ms(-3.0 * signal + 7.0, fs, peaks), widths)
        extents.append(widths.mean())
    assert extents[0] < extents[1] < extents[2]


def test_the_search_stops_halfway_to_a_neighbour():
    """Two narrow complexes 60 ms apart: searched alone, the first one's extent takes in both (126 ms); with its
    neighbour's R-peak given, each extent stops at the midpoint (a complex alone measures 54 ms)."""
    fs = 500.0
    t = np.arange(int(2 * fs)) / fs
    signal = np.exp(-0.5 * ((t - 0.5) / 0.006) ** 2) + np.exp(-0.5 * ((t - 0.56) / 0.006) ** 2)
    widths = qrs_extent_ms(signal, fs, np.array([0.5 * fs, 0.56 * fs]))
    assert (widths < 70).all()
    assert qrs_extent_ms(signal, fs, np.array([0.5 * fs]))[0] > 110


def test_no_r_peaks_no_extents():
    assert qrs_extent_ms(np.zeros(1000), 250.0, np.zeros(0)).shape == (0,)
