"""PNG plots of the tracking and PID evaluations (hist + mplhep, ALICE style).

Layer: QA presentation. Each ``plot_*`` function draws one figure from the JSON-ready result
of :func:`alice_dyn.qa.evaluate_tracking.evaluate_tracking` or
:func:`alice_dyn.qa.evaluate_pid.evaluate_pid` and writes it to a path; figures are built
with :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state, no display needed), and the
ALICE style is applied only inside each function.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import hist
import matplotlib
import mplhep
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from alice_dyn.physics.bethe_bloch import (
    ALEPH_RECONSTRUCTION,
    MIP_RECONSTRUCTION,
    aleph_bethe_bloch,
    beta_of,
)
from alice_dyn.physics.particles import MASSES_GEV, N_SPECIES_PID, SPECIES

SPECIES_LABELS = {"e": "e", "mu": r"$\mu$", "pi": r"$\pi$", "K": "K", "p": "p", "d": "d"}
COLORS = ("tab:orange", "tab:purple", "tab:red", "tab:green", "tab:blue", "tab:brown")
LABEL = "ALICE-like simulation, alice_dyn"


def _figure(size: tuple[float, float] | None = None) -> tuple[Figure, object]:
    fig = Figure(figsize=size)  # None: the style's size (ALICE: 12 x 9 in)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _label(ax, text: str = LABEL) -> None:
    ax.text(0.04, 0.95, text, transform=ax.transAxes, ha="left", va="top", fontsize=20)


def _log_x(ax, lo: float, hi: float) -> None:
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xticks([v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if lo <= v <= hi])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72, bbox_inches="tight")
    return path


def _values(rows: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=np.float64)


def _edges(rows: list[dict], lo: str, hi: str) -> np.ndarray:
    return np.array([rows[0][lo], *(r[hi] for r in rows)], dtype=np.float64)


def _errorbar(ax, rows, lo, hi, key, label=None, scale=1.0, **kw) -> None:
    """Points at the bin centres (geometric, for log axes) with the bin width as x error;
    empty bins (``None``) are left out."""
    edges = _edges(rows, lo, hi)
    x = np.sqrt(edges[:-1] * edges[1:])
    y = _values(rows, key) * scale
    err_key = key + "_err"
    yerr = _values(rows, err_key) * scale if err_key in rows[0] else np.zeros_like(y)
    ok = np.isfinite(y)
    xerr = np.array([x - edges[:-1], edges[1:] - x])[:, ok]
    kw.setdefault("marker", "o")
    ax.errorbar(x[ok], y[ok], yerr=np.nan_to_num(yerr[ok]), xerr=xerr, ls="none",
                label=label, **kw)  # fmt: skip


def _styled(func: Callable) -> Callable:
    def wrapper(*args, **kwargs):
        with matplotlib.style.context(mplhep.style.ALICE):
            return func(*args, **kwargs)

    wrapper.__doc__, wrapper.__name__ = func.__doc__, func.__name__
    return wrapper


# --- tracking -------------------------------------------------------------------------------------
@_styled
def plot_efficiency_vs_pt(result: dict, path: str | os.PathLike[str]) -> Path:
    """Tracking efficiency of findable particles vs true pT."""
    fig, ax = _figure()
    rows = result["efficiency_vs_pt"]
    _errorbar(ax, rows, "pt_lo", "pt_hi", "efficiency", label="efficiency")
    _log_x(ax, rows[0]["pt_lo"], rows[-1]["pt_hi"])
    ax.set_ylim(0.0, 1.15)
    ax.set_xlabel(r"$p_\mathrm{T}^\mathrm{true}$ (GeV/$c$)")
    ax.set_ylabel("tracking efficiency")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    _label(ax, LABEL + "\nfindable: |η| < 0.9, ≥ 70 TPC clusters")
    return _save(fig, path)


@_styled
def plot_fake_clone_vs_pt(result: dict, path: str | os.PathLike[str]) -> Path:
    """Fake and clone rates vs reconstructed pT."""
    fig, ax = _figure()
    rows = result["fake_clone_vs_pt"]
    _errorbar(ax, rows, "pt_lo", "pt_hi", "fake_rate", label="fake rate", color="tab:red",
              zorder=3)  # fmt: skip
    _errorbar(ax, rows, "pt_lo", "pt_hi", "clone_rate", label="clone rate", color="tab:blue",
              marker="s", markerfacecolor="none", markersize=12)  # fmt: skip
    _log_x(ax, rows[0]["pt_lo"], rows[-1]["pt_hi"])
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$p_\mathrm{T}^\mathrm{reco}$ (GeV/$c$)")
    ax.set_ylabel("fraction of (non-looper-leg) tracks")
    ax.legend(loc="upper right", fontsize=22)
    _label(ax)
    return _save(fig, path)


@_styled
def plot_pt_resolution_vs_pt(result: dict, path: str | os.PathLike[str]) -> Path:
    """Relative pT resolution (core sigma and RMS) vs true pT."""
    fig, ax = _figure()
    rows = result["resolution_vs_pt"]
    _errorbar(ax, rows, "pt_lo", "pt_hi", "sigma_core", scale=100.0, label="Gaussian core σ")
    _errorbar(ax, rows, "pt_lo", "pt_hi", "rms", scale=100.0, label="RMS", color="gray",
              marker="s", markerfacecolor="none")  # fmt: skip
    _log_x(ax, rows[0]["pt_lo"], rows[-1]["pt_hi"])
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$p_\mathrm{T}^\mathrm{true}$ (GeV/$c$)")
    ax.set_ylabel(r"$\sigma(p_\mathrm{T})/p_\mathrm{T}$ (%)")
    ax.legend(loc="upper right", fontsize=22)
    _label(ax)
    return _save(fig, path)


# --- PID ------------------------------------------------------------------------------------------
def _hist2d(h: dict) -> hist.Hist:
    out = hist.Hist(hist.axis.Variable(h["x_edges"]), hist.axis.Variable(h["y_edges"]))
    out.view()[...] = np.asarray(h["counts"], dtype=np.float64)
    return out


def _draw2d(ax, h: dict) -> None:
    hh = _hist2d(h)
    vmax = max(float(hh.values().max()), 1.0)
    # empty bins are invalid for the log scale and stay blank
    art = mplhep.hist2dplot(
        hh, ax=ax, norm=LogNorm(vmin=1.0, vmax=max(vmax, 2.0)), flow=None, cbar=False
    )
    ax.figure.colorbar(art.pcolormesh, ax=ax, pad=0.02, label="tracks")


@_styled
def plot_dedx_vs_p(result: dict, path: str | os.PathLike[str]) -> Path:
    """TPC dE/dx (fTPCSignal) vs fTPCInnerParam with the expected bands per species."""
    fig, ax = _figure()
    h = result["histograms"]["dedx_vs_p"]
    _draw2d(ax, h)
    p = np.geomspace(h["x_edges"][0], h["x_edges"][-1], 300)
    for s in range(N_SPECIES_PID):
        exp = MIP_RECONSTRUCTION * aleph_bethe_bloch(p / MASSES_GEV[s], ALEPH_RECONSTRUCTION)
        ax.plot(p, exp, color=COLORS[s], lw=2, label=SPECIES_LABELS[SPECIES[s]])
    _log_x(ax, p[0], p[-1])
    ax.set_ylim(h["y_edges"][0], h["y_edges"][-1])
    ax.set_xlabel(r"$p_\mathrm{TPC}$ (GeV/$c$)")
    ax.set_ylabel("TPC dE/dx (arb. units, MIP = 50)")
    ax.legend(loc="upper right", fontsize=20)
    _label(ax)
    return _save(fig, path)


@_styled
def plot_beta_vs_p(result: dict, path: str | os.PathLike[str]) -> Path:
    """TOF beta vs fTPCInnerParam with the expected curves per species."""
    fig, ax = _figure()
    h = result["histograms"]["beta_vs_p"]
    _draw2d(ax, h)
    p = np.geomspace(h["x_edges"][0], h["x_edges"][-1], 300)
    for s in range(N_SPECIES_PID):
        ax.plot(p, beta_of(p, MASSES_GEV[s]), color=COLORS[s], lw=2,
                label=SPECIES_LABELS[SPECIES[s]])  # fmt: skip
    _log_x(ax, p[0], p[-1])
    ax.set_ylim(h["y_edges"][0], h["y_edges"][-1])
    ax.set_xlabel(r"$p_\mathrm{TPC}$ (GeV/$c$)")
    ax.set_ylabel(r"TOF $\beta$")
    ax.legend(loc="lower right", fontsize=20)
    _label(ax)
    return _save(fig, path)


@_styled
def plot_pid_efficiency_purity(result: dict, path: str | os.PathLike[str]) -> Path:
    """Efficiency and purity of the n-sigma decision vs p, one marker colour per species."""
    fig = Figure(figsize=(22.0, 9.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    edges = result["p_edges"]
    for ax, key in zip(axes, ("efficiency", "purity"), strict=True):
        for s, (name, sp) in enumerate(result["per_species"].items()):
            shift = 1.0 + 0.02 * (s - 2)  # spread the species apart within a bin
            rows = [{**b, "p_lo": b["p_lo"] * shift, "p_hi": b["p_hi"] * shift}
                    for b in sp["vs_p"]]  # fmt: skip
            _errorbar(ax, rows, "p_lo", "p_hi", key, label=SPECIES_LABELS.get(name, name),
                      color=COLORS[s], capsize=0)  # fmt: skip
        _log_x(ax, edges[0], edges[-1])
        ax.set_ylim(0.0, 1.3)
        ax.set_xlabel(r"$p_\mathrm{TPC}$ (GeV/$c$)")
        ax.set_ylabel(f"n$\\sigma$ PID {key}")
        ax.axhline(1.0, color="gray", lw=0.8, ls=":")
        _label(ax, f"{LABEL}\nn$\\sigma$ PID {key}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.9), ncols=5,
               fontsize=24, frameon=False)  # fmt: skip
    return _save(fig, path)


TRACKING_PLOTS = {
    "efficiency_vs_pt.png": plot_efficiency_vs_pt,
    "fake_clone_vs_pt.png": plot_fake_clone_vs_pt,
    "pt_resolution_vs_pt.png": plot_pt_resolution_vs_pt,
}
PID_PLOTS = {
    "dedx_vs_p.png": plot_dedx_vs_p,
    "beta_vs_p.png": plot_beta_vs_p,
    "pid_efficiency_purity_vs_p.png": plot_pid_efficiency_purity,
}


def make_tracking_plots(result: dict, outdir: str | os.PathLike[str]) -> list[Path]:
    """Write the tracking plots (PNG) into ``outdir``; returns their paths."""
    return [f(result, Path(outdir) / name) for name, f in TRACKING_PLOTS.items()]


def make_pid_plots(result: dict, outdir: str | os.PathLike[str]) -> list[Path]:
    """Write the PID plots (PNG) into ``outdir``; returns their paths."""
    return [f(result, Path(outdir) / name) for name, f in PID_PLOTS.items()]
