"""``.npy`` recordings of every layout read back as the channel asked for, converted block by block.

The expected channel is NumPy's own indexing of the array that was saved (no reader involved); blocks of a few
samples make every file need several maps and a remainder."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcnn.annotate import readers

pytestmark = pytest.mark.fast
FS = 250.0


def _wave(samples: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / FS
    return np.stack([np.sin(2 * np.pi * (1 + c) * t) + 0.1 * rng.normal(size=samples) for c in range(channels)], 1)


# The dtype each is held in: its own (native byte order) where float64 holds every value exactly, else float64.
HELD = {"<i2": np.int16, ">f4": np.float32, "<f4": np.float32, "<u2": np.uint16, ">f8": np.float64,
        "<f8": np.float64, "<i8": np.float64, ">i4": np.int32}


@pytest.mark.parametrize("dtype", list(HELD))
@pytest.mark.parametrize("layout", ["1-D", "samples x channels", "channels x samples",
                                    "samples x channels, Fortran", "channels x samples, Fortran"])
def test_npy_channels_in_every_layout(tmp_path, monkeypatch, dtype, layout):
    monkeypatch.setattr(readers, "NPY_BLOCK", 7)
    samples, channels = 1003, 3
    scale = 1000.0 if np.dtype(dtype).kind in "iu" else 1.0
    offset = 5000.0 if np.dtype(dtype).kind == "u" else 0.0
    wave = (_wave(samples, channels, seed=len(layout)) * scale + offset).astype(dtype)
    array = {"1-D": wave[:, 0], "samples x channels": wave, "channels x samples": np.ascontiguousarray(wave.T),
             "samples x channels, Fortran": np.asfortranarray(wave),
             "channels x samples, Fortran": np.asfortranarray(wave.T)}[layout]
    path = tmp_path / "rec.npy"
    np.save(path, array)
    assert np.isfortran(np.load(path, mmap_mode="r")) == layout.endswith("Fortran")
    wanted = [1] if layout == "1-D" else [1, 2, 3]
    for channel in wanted:
        expected = array if array.ndim == 1 else (array[:, channel - 1] if layout.startswith("samples")
                                                   else array[channel - 1])
        recording = readers.read_recording(path, fs=FS, channel=channel)
        assert recording.signal.dtype == np.dtype(HELD[dtype]) and recording.signal.shape == (samples,)
        assert recording.channel_name == f"channel {channel}"
        np.testing.assert_array_equal(recording.signal.astype(np.float64), expected.astype(np.float64))
