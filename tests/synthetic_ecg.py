"""ECG records built from P-QRS-T waves at known R-peak times (Gaussian waves in the spirit of McSharry et al.'s
ECGSYN): normal beats, premature atrial beats (``A``, AAMI class S: earlier, an inverted P, an aberrant T) and
premature ventricular beats (``V``: no P, a wide QRS, a discordant T, a compensatory pause), each record its own
amplitude, heart rate, baseline wander and noise. Unlike stitched dataset windows, every beat has one unambiguous
R-peak, so a detector's and a classifier's answers are known."""

from __future__ import annotations

import numpy as np

FS = 360
WAVES = {  # (centre s from the R-peak, amplitude mV, width s)
    "N": [(-0.18, 0.12, 0.022), (-0.03, -0.10, 0.008), (0.0, 1.0, 0.009), (0.03, -0.22, 0.009), (0.26, 0.28, 0.045)],
    "A": [(-0.14, -0.09, 0.020), (-0.03, -0.08, 0.008), (0.0, 0.85, 0.009), (0.03, -0.20, 0.009),
          (0.22, -0.16, 0.040)],
    "V": [(0.0, 1.6, 0.022), (0.06, -0.5, 0.022), (0.32, -0.3, 0.070)],
}


def synthetic_record(seconds: float, seed: int, fs: float = FS,
                     interpolated: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(signal in mV, R-peak sample indices, beat symbols N/A/V); 20 % A and 20 % V, never two in a row.
    ``interpolated``: every PVC sits halfway between two normal beats (no compensatory pause), so it splits one
    normal interval in two, as a false detection between two beats would."""
    rng = np.random.default_rng(seed)
    base_rr, gain = rng.uniform(0.75, 0.95), rng.uniform(0.8, 1.2)
    times, symbols, t, previous = [], [], 0.6, "N"
    while t < seconds - 1.5:
        times.append(t)
        symbols.append(previous)
        following = "N" if previous != "N" else str(rng.choice(["N", "A", "V"], p=[0.6, 0.2, 0.2]))
        rr = base_rr * rng.normal(1.0, 0.03)
        if following == "A":
            rr = 0.65 * base_rr
        elif following == "V":
            rr = (0.5 if interpolated else 0.6) * base_rr
        elif previous == "V":  # compensatory pause: the two intervals around the PVC make two normal ones
            rr = 0.5 * base_rr if interpolated else 2 * base_rr - 0.6 * base_rr
        t += rr
        previous = following
    n = int(seconds * fs)
    clock = np.arange(n) / fs
    signal = np.zeros(n)
    for at, symbol in zip(times, symbols, strict=True):
        near = slice(max(int((at - 0.4) * fs), 0), min(int((at + 0.6) * fs), n))
        for centre, amplitude, width in WAVES[symbol]:
            signal[near] += gain * amplitude * np.exp(-0.5 * ((clock[near] - at - centre) / width) ** 2)
    signal += 0.1 * np.sin(2 * np.pi * rng.uniform(0.15, 0.35) * clock + rng.uniform(0, 6.3))  # baseline wander
    signal += rng.normal(0.0, 0.015, n)
    return signal, np.round(np.asarray(times) * fs).astype(int), symbols
