"""A strip of the recording with every R-peak marked by class: a self-contained HTML page (template strip.html,
inline SVG, no network) or a PNG (matplotlib, loaded only for PNG)."""

from __future__ import annotations

import html
import math
import os
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np

from ..core.errors import EcgcnnError
from ..core.fileio import atomic_path, write_text_atomic
from .pipeline import AnnotationResult

PALETTE = ("#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FLAGGED_COLOUR = "#7f7f7f"
PLOT_SUFFIXES = (".html", ".htm", ".png")


def check_plot_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise EcgcnnError(f"--plot {path}: unknown plot type {path.suffix or '(none)'!r}; expected a .html or .png "
                          f"file name")
    return path


def plot_strip(result: AnnotationResult, signal: np.ndarray, path: str | os.PathLike, start_s: float = 0.0,
               seconds: float = 30.0, title: str | None = None) -> Path:
    """A ``seconds``-long strip from ``start_s``: the signal as recorded with each R-peak marked, coloured by class
    (flagged beats grey). ``.html``: a self-contained page (inline SVG; wheel zooms, drag pans, double-click resets;
    no network). ``.png``: matplotlib (Agg)."""
    path = check_plot_path(path)
    fs = result.fs
    lo = int(max(0.0, min(start_s, len(signal) / fs - seconds)) * fs) if len(signal) / fs > seconds else 0
    hi = min(len(signal), lo + int(round(seconds * fs)))
    y = np.asarray(signal[lo:hi], dtype=np.float64)
    t = (lo + np.arange(len(y))) / fs
    samples = result.samples
    inside = np.flatnonzero((samples >= lo) & (samples < hi))
    beats = [(int(i), float(samples[i] / fs), float(signal[samples[i]]), int(result.class_index[i]),
              str(result.flags[i]), float(result.probability[i])) for i in inside]
    title = title or f"ECG strip {t[0]:.1f}-{t[-1]:.1f} s"
    if path.suffix.lower() == ".png":
        _plot_png(path, t, y, beats, result, title)
    else:
        write_text_atomic(path, _strip_html(t, y, beats, result, title))
    return path


def _colour(k: int) -> str:
    return FLAGGED_COLOUR if k < 0 else PALETTE[k % len(PALETTE)]


def _plot_png(path: Path, t, y, beats, result: AnnotationResult, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - third-party, only for PNG
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(15, 3.6), dpi=110)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot(1, 1, 1)
    ax.plot(t, y, color="#222222", linewidth=0.7)
    for k in sorted({b[3] for b in beats}):
        chosen = [b for b in beats if b[3] == k]
        name = result.class_names[k] if k >= 0 else "not classified"
        ax.scatter([b[1] for b in chosen], [b[2] for b in chosen], s=28, color=_colour(k), zorder=3,
                   label=f"{name} ({len(chosen)})", marker="o" if k >= 0 else "x")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("signal")
    ax.set_title(title)
    ax.set_xlim(t[0], t[-1])
    ax.grid(alpha=0.3)
    if beats:
        ax.legend(loc="upper right", fontsize=8, ncol=3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def _strip_html(t, y, beats, result: AnnotationResult, title: str) -> str:
    width, height, margin = 1400, 320, 40
    # At most ~4 points per pixel column: min/max envelope keeps every QRS visible on long strips.
    columns = width * 2
    if len(y) > 2 * columns:
        edges = np.linspace(0, len(y), columns + 1).astype(int)
        idx = np.concatenate([[a + np.argmin(y[a:b]), a + np.argmax(y[a:b])]
                              for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a])
        idx.sort()
        t_plot, y_plot = t[idx], y[idx]
    else:
        t_plot, y_plot = t, y
    t0, t1 = float(t[0]), float(t[-1]) if len(t) > 1 else float(t[0]) + 1.0
    low, high = float(np.min(y)), float(np.max(y))
    span = high - low or 1.0
    low, high = low - 0.08 * span, high + 0.08 * span

    def sx(v):
        return margin + (v - t0) / (t1 - t0) * (width - 2 * margin)

    def sy(v):
        return height - margin - (v - low) / (high - low) * (height - 2 * margin)

    points = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(t_plot.tolist(), y_plot.tolist(), strict=True))
    marks = []
    for index, time_s, value, k, flag, prob in beats:
        name = result.class_names[k] if k >= 0 else f"not classified ({flag})"
        tip = html.escape(f"beat {index + 1} at {time_s:.3f} s: {name}" + (f", p={prob:.2f}" if k >= 0 else ""))
        marks.append(f'<circle cx="{sx(time_s):.1f}" cy="{sy(value):.1f}" r="5" fill="{_colour(k)}" '
                     f'stroke="#fff" stroke-width="1"><title>{tip}</title></circle>')
    ticks = []
    for second in range(int(math.ceil(t0)), int(t1) + 1):
        ticks.append(f'<line x1="{sx(second):.1f}" y1="{margin}" x2="{sx(second):.1f}" y2="{height - margin}" '
                     f'stroke="#eee"/><text x="{sx(second):.1f}" y="{height - margin + 16}" font-size="11" '
                     f'text-anchor="middle">{second}</text>')
    used = sorted({b[3] for b in beats})
    legend = " ".join(f'<span style="color:{_colour(k)}">&#9679; '
                      f'{html.escape(result.class_names[k] if k >= 0 else "not classified")} '
                      f'({sum(1 for b in beats if b[3] == k)})</span>' for k in used)
    page = Template(resources.files(__package__).joinpath("strip.html").read_text(encoding="utf-8"))
    return page.substitute(title=html.escape(title), legend=legend, width=width, height=height, ticks="".join(ticks),
                           points=points, marks="".join(marks), centre=width / 2, label_y=height - 6)
