"""Plots of the tracking evaluation: efficiency, fake and clone rates, pT resolution vs pT.

Layer: presentation. Each ``plot_*`` draws one figure from the JSON-ready result of
:func:`alice_dyn.qa.evaluate_tracking.evaluate_tracking` in the one style of
:mod:`alice_dyn.plotting.style` and writes it to a path; :func:`make_tracking_plots` writes them
all into a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from alice_dyn.plotting import style


@style.styled
def plot_efficiency_vs_pt(result: dict, path: str | os.PathLike[str]) -> Path:
    """Tracking efficiency of findable particles vs true pT."""
    fig, ax = style.figure()
    rows = result["efficiency_vs_pt"]
    style.errorbar(ax, rows, "pt_lo", "pt_hi", "efficiency", label="efficiency")
    style.log_x(ax, rows[0]["pt_lo"], rows[-1]["pt_hi"])
    ax.set_ylim(0.0, 1.15)
    ax.set_xlabel(r"$p_\mathrm{T}^\mathrm{true}$ (GeV/$c$)")
    ax.set_ylabel("tracking efficiency")
    ax.axhline(1.0, color="gray", lw=0.8, ls=":")
    style.label(ax, style.LABEL + "\nfindable: |η| < 0.9, ≥ 70 TPC clusters")
    return style.save(fig, path)


@style.styled
def plot_fake_clone_vs_pt(result: dict, path: str | os.PathLike[str]) -> Path:
    """Fake and clone rates vs reconstructed pT."""
    fig, ax = style.figure()
    rows = result["fake_clone_vs_pt"]
    style.errorbar(ax, rows, "pt_lo", "pt_hi", "fake_rate", label="fake rate", color="tab:red",
                   zorder=3)  # fmt: skip
    style.errorbar(ax, rows, "pt_lo", "pt_hi", "clone_rate", label="clone rate",
                   color="tab:blue", marker="s", markerfacecolor="none",
                   markersize=12)  # fmt: skip
    style.log_x(ax, rows[0]["pt_lo"], rows[-1]["pt_hi"])
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$p_\mathrm{T}^\mathrm{reco}$ (GeV/$c$)")
    ax.set_ylabel("fraction of (non-looper-leg) tracks")
    ax.legend(loc="upper right", fontsize=22)
    style.label(ax)
    return style.save(fig, path)


@style.styled
def plot_pt_resolution_vs_pt(result: dict, path: str | os.PathLike[str]) -> Path:
    """Relative pT resolution (core sigma and RMS) vs true pT."""
    fig, ax = style.figure()
    rows = result["resolution_vs_pt"]
    style.errorbar(ax, rows, "pt_lo", "pt_hi", "sigma_core", scale=100.0,
                   label="Gaussian core σ")  # fmt: skip
    style.errorbar(ax, rows, "pt_lo", "pt_hi", "rms", scale=100.0, label="RMS", color="gray",
                   marker="s", markerfacecolor="none")  # fmt: skip
    style.log_x(ax, rows[0]["pt_lo"], rows[-1]["pt_hi"])
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$p_\mathrm{T}^\mathrm{true}$ (GeV/$c$)")
    ax.set_ylabel(r"$\sigma(p_\mathrm{T})/p_\mathrm{T}$ (%)")
    ax.legend(loc="upper right", fontsize=22)
    style.label(ax)
    return style.save(fig, path)


#: file name -> the function drawing it
TRACKING_PLOTS = {
    "efficiency_vs_pt.png": plot_efficiency_vs_pt,
    "fake_clone_vs_pt.png": plot_fake_clone_vs_pt,
    "pt_resolution_vs_pt.png": plot_pt_resolution_vs_pt,
}


def make_tracking_plots(result: dict, outdir: str | os.PathLike[str]) -> list[Path]:
    """Write the tracking plots (PNG) into ``outdir``; returns their paths."""
    return [f(result, Path(outdir) / name) for name, f in TRACKING_PLOTS.items()]


__all__ = [
    "TRACKING_PLOTS",
    "make_tracking_plots",
    "plot_efficiency_vs_pt",
    "plot_fake_clone_vs_pt",
    "plot_pt_resolution_vs_pt",
]
