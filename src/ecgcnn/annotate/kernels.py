"""What the detector's band-pass and SleepECG's loops need, without importing the packages they come from.

Importing ``scipy.signal`` (and with it ``scipy.stats``) costs about 1.3 s and 65 MB of every annotate process, and
``sleepecg``'s ``__init__`` about a second (its sleep-staging stack), for a handful of compiled functions. So the
compiled modules are loaded from their own files (:func:`load_extension`), and the band-pass design that
``scipy.signal.butter``/``sosfilt_zi`` would give is written out in NumPy, equal to SciPy's to the last bit (tested
against SciPy itself at 61-2,000 Hz).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np

_LOADED: dict[str, object] = {}  # compiled modules loaded from their files, once per process
_LOCK = threading.Lock()  # the detector's two grids ask for them from two threads at once


def load_extension(package: str, name: str):
    """The compiled module ``package.name`` loaded from its file without running ``package``'s own ``__init__`` (an
    already imported one as it is); ``None`` where no such file is found, it does not load, or the import system
    marks the module absent (``sys.modules[...] = None``). Loaded once per process."""
    full = f"{package}.{name}"
    if full in sys.modules:
        return sys.modules[full]
    with _LOCK:
        if full not in _LOADED:
            _LOADED[full] = _load_from_file(package, name)
        return _LOADED[full]


def _load_from_file(package: str, name: str):
    full = f"{package}.{name}"
    try:
        spec = importlib.util.find_spec(package)  # finds the package; imports only its parents
    except (ImportError, ValueError):
        return None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    found = [Path(folder) / f"{name}{suffix}" for folder in folders for suffix in suffixes]
    found = [path for path in found if path.is_file()]
    if not found:
        return None
    try:
        loader = importlib.machinery.ExtensionFileLoader(full, str(found[0]))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader(full, loader))
        loader.exec_module(module)
    except (ImportError, OSError):
        return None
    return module


def sosfilt_kernel():
    """SciPy's compiled ``_sosfilt(sos, x, zi)`` (filters ``x`` in place; private, pinned in constraints.txt, checked
    by the tests), loaded without importing ``scipy.signal``; ``None`` where it is not there."""
    return getattr(load_extension("scipy.signal", "_sosfilt"), "_sosfilt", None)


def butter_bandpass_sos(low: float, high: float, fs: float) -> np.ndarray:
    """Second-order Butterworth band-pass ``low``-``high`` Hz at ``fs`` as two second-order sections, the design of
    ``scipy.signal.butter(N=2, Wn=(low, high), btype="bandpass", output="sos", fs=fs)`` (analogue prototype, band
    transform, bilinear transform with pre-warped edges, poles paired with their nearest zeros, the section whose
    poles lie nearest the unit circle last, the gain in the first), written out so that annotate need not import
    scipy.signal."""
    if not 0 < low < high < fs / 2:
        raise ValueError(f"band {low}-{high} Hz: expected 0 < low < high < fs / 2 = {fs / 2}")
    warped = 2 * 2.0 * np.tan(np.pi * (2 * np.array([low, high]) / fs) / 2.0)  # SciPy's steps: edges 2 f / fs at fs 2
    bandwidth, centre = warped[1] - warped[0], np.sqrt(warped[0] * warped[1])
    prototype = -np.exp(1j * np.pi * np.array([-1.0, 1.0]) / 4)  # second-order Butterworth poles
    half = prototype * bandwidth / 2
    root = np.sqrt(half ** 2 - centre ** 2)
    analog = np.concatenate((half + root, half - root))  # band-pass poles; two zeros at 0, gain bandwidth^2
    poles = (4.0 + analog) / (4.0 - analog)
    gain = bandwidth ** 2 * np.real(16.0 / np.prod(4.0 - analog))
    upper = sorted(poles[poles.imag > 0], key=lambda p: abs(1 - abs(p)))  # one pole of each conjugate pair
    zeros = [-1.0, -1.0, 1.0, 1.0]  # the analogue zeros at infinity map to -1, those at 0 to +1 (SciPy's order)
    sos = np.zeros((2, 6))
    for index, pole in zip((1, 0), upper, strict=True):  # nearest the unit circle: its two nearest zeros, and last
        pair = [zeros.pop(int(np.argmin([abs(z - pole) for z in zeros]))) for _ in range(2)]
        sos[index, :3] = np.real(np.poly(pair))
        sos[index, 3:] = np.real(np.poly([pole, np.conj(pole)]))
    sos[0, :3] *= gain
    return sos


def sosfilt_initial_state(sos: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfilt_zi(sos)``: each section's steady-state response to a unit step, scaled by the gains
    of the sections before it."""
    state = np.empty((len(sos), 2))
    scale = 1.0
    for index, (b, a) in enumerate(zip(sos[:, :3], sos[:, 3:], strict=True)):
        b, a = b / a[0], a / a[0]
        companion = np.array([[-a[1], -a[2]], [1.0, 0.0]])
        state[index] = scale * np.linalg.solve(np.eye(2) - companion.T, b[1:] - a[1:] * b[0])
        scale *= b.sum() / a.sum()
    return state
