"""The one plotting style of alice_dyn and the helpers every figure uses.

Layer: presentation. Figures are :class:`matplotlib.figure.Figure` objects on an Agg canvas (no
pyplot state, no display needed), drawn inside mplhep's ALICE style (:func:`styled`), labelled
with :data:`LABEL`, and written as PNG by :func:`save` (the parent folder is made).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import mplhep
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

LABEL = "ALICE-like simulation, alice_dyn"
SPECIES_LABELS = {"e": "e", "mu": r"$\mu$", "pi": r"$\pi$", "K": "K", "p": "p", "d": "d"}
#: one colour per species, in the order e, mu, pi, K, p, d
COLORS = ("tab:orange", "tab:purple", "tab:red", "tab:green", "tab:blue", "tab:brown")
DPI = 72


def styled(func: Callable) -> Callable:
    """Draw ``func``'s figure in the ALICE style (applied only inside the call)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any):
        with matplotlib.style.context(mplhep.style.ALICE):
            return func(*args, **kwargs)

    return wrapper


def figure(size: tuple[float, float] | None = None, nrows: int = 1, ncols: int = 1, **kw: Any):
    """``(fig, ax)`` (an array of axes when ``nrows * ncols > 1``); ``size`` in inches
    (``None``: the style's, ALICE: 12 x 9)."""
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    if nrows * ncols == 1:
        return fig, fig.add_subplot()
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def label(ax, text: str = LABEL, fontsize: float = 20) -> None:
    """The figure's provenance label, top left inside the axes."""
    ax.text(0.04, 0.95, text, transform=ax.transAxes, ha="left", va="top", fontsize=fontsize)


def log_x(ax, lo: float, hi: float) -> None:
    """Logarithmic x axis from ``lo`` to ``hi`` with plain-number ticks (GeV/c axes)."""
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xticks([v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if lo <= v <= hi])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def save(fig: Figure, path: str | os.PathLike[str], dpi: int = DPI) -> Path:
    """Write ``fig`` as PNG to ``path`` (its folder made); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def values(rows: list[dict], key: str) -> np.ndarray:
    """``rows[i][key]`` as float64, ``None`` -> NaN."""
    return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=np.float64)


def edges(rows: list[dict], lo: str, hi: str) -> np.ndarray:
    """Bin edges of consecutive bins given as ``rows[i][lo]``/``rows[i][hi]``."""
    return np.array([rows[0][lo], *(r[hi] for r in rows)], dtype=np.float64)


def errorbar(ax, rows: list[dict], lo: str, hi: str, key: str, label=None, scale=1.0, **kw):
    """Points at the bin centres (geometric, for log axes) with the bin width as x error and
    ``rows[i][key + "_err"]`` as y error when present; empty bins (``None``) left out."""
    e = edges(rows, lo, hi)
    x = np.sqrt(e[:-1] * e[1:])
    y = values(rows, key) * scale
    err_key = key + "_err"
    yerr = values(rows, err_key) * scale if err_key in rows[0] else np.zeros_like(y)
    ok = np.isfinite(y)
    xerr = np.array([x - e[:-1], e[1:] - x])[:, ok]
    kw.setdefault("marker", "o")
    ax.errorbar(x[ok], y[ok], yerr=np.nan_to_num(yerr[ok]), xerr=xerr, ls="none", label=label, **kw)
