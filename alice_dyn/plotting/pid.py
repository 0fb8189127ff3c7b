"""Plots of the PID evaluation: dE/dx and TOF beta vs p, n-sigma efficiency and purity vs p.

Layer: presentation. Each ``plot_*`` draws one figure from the JSON-ready result of
:func:`alice_dyn.qa.evaluate_pid.evaluate_pid` in the one style of
:mod:`alice_dyn.plotting.style` and writes it to a path; :func:`make_pid_plots` writes them all
into a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import hist
import mplhep
import numpy as np
from matplotlib.colors import LogNorm

from alice_dyn.physics.bethe_bloch import (
    ALEPH_RECONSTRUCTION,
    MIP_RECONSTRUCTION,
    aleph_bethe_bloch,
    beta_of,
)
from alice_dyn.physics.particles import MASSES_GEV, N_SPECIES_PID, SPECIES
from alice_dyn.plotting import style


def _hist2d(h: dict) -> hist.Hist:
    """The result's ``{x_edges, y_edges, counts}`` as a :class:`hist.Hist`."""
    out = hist.Hist(hist.axis.Variable(h["x_edges"]), hist.axis.Variable(h["y_edges"]))
    out.view()[...] = np.asarray(h["counts"], dtype=np.float64)
    return out


def _draw2d(ax, h: dict) -> None:
    """The 2-D histogram ``h`` on a log colour scale (empty bins blank) with a colour bar."""
    hh = _hist2d(h)
    vmax = max(float(hh.values().max()), 1.0)
    art = mplhep.hist2dplot(
        hh, ax=ax, norm=LogNorm(vmin=1.0, vmax=max(vmax, 2.0)), flow=None, cbar=False
    )
    ax.figure.colorbar(art.pcolormesh, ax=ax, pad=0.02, label="tracks")


@style.styled
def plot_dedx_vs_p(result: dict, path: str | os.PathLike[str]) -> Path:
    """TPC dE/dx (fTPCSignal) vs fTPCInnerParam with the expected bands per species."""
    fig, ax = style.figure()
    h = result["histograms"]["dedx_vs_p"]
    _draw2d(ax, h)
    p = np.geomspace(h["x_edges"][0], h["x_edges"][-1], 300)
    for s in range(N_SPECIES_PID):
        exp = MIP_RECONSTRUCTION * aleph_bethe_bloch(p / MASSES_GEV[s], ALEPH_RECONSTRUCTION)
        ax.plot(p, exp, color=style.COLORS[s], lw=2, label=style.SPECIES_LABELS[SPECIES[s]])
    style.log_x(ax, p[0], p[-1])
    ax.set_ylim(h["y_edges"][0], h["y_edges"][-1])
    ax.set_xlabel(r"$p_\mathrm{TPC}$ (GeV/$c$)")
    ax.set_ylabel("TPC dE/dx (arb. units, MIP = 50)")
    ax.legend(loc="upper right", fontsize=20)
    style.label(ax)
    return style.save(fig, path)


@style.styled
def plot_beta_vs_p(result: dict, path: str | os.PathLike[str]) -> Path:
    """TOF beta vs fTPCInnerParam with the expected curves per species."""
    fig, ax = style.figure()
    h = result["histograms"]["beta_vs_p"]
    _draw2d(ax, h)
    p = np.geomspace(h["x_edges"][0], h["x_edges"][-1], 300)
    for s in range(N_SPECIES_PID):
        ax.plot(p, beta_of(p, MASSES_GEV[s]), color=style.COLORS[s], lw=2,
                label=style.SPECIES_LABELS[SPECIES[s]])  # fmt: skip
    style.log_x(ax, p[0], p[-1])
    ax.set_ylim(h["y_edges"][0], h["y_edges"][-1])
    ax.set_xlabel(r"$p_\mathrm{TPC}$ (GeV/$c$)")
    ax.set_ylabel(r"TOF $\beta$")
    ax.legend(loc="lower right", fontsize=20)
    style.label(ax)
    return style.save(fig, path)


@style.styled
def plot_pid_efficiency_purity(result: dict, path: str | os.PathLike[str]) -> Path:
    """Efficiency and purity of the n-sigma decision vs p, one marker colour per species."""
    fig, axes = style.figure((22.0, 9.0), 1, 2, sharey=True)
    axes = axes[0]
    edges = result["p_edges"]
    for ax, key in zip(axes, ("efficiency", "purity"), strict=True):
        for s, (name, sp) in enumerate(result["per_species"].items()):
            shift = 1.0 + 0.02 * (s - 2)  # spread the species apart within a bin
            rows = [{**b, "p_lo": b["p_lo"] * shift, "p_hi": b["p_hi"] * shift}
                    for b in sp["vs_p"]]  # fmt: skip
            style.errorbar(ax, rows, "p_lo", "p_hi", key,
                           label=style.SPECIES_LABELS.get(name, name), color=style.COLORS[s],
                           capsize=0)  # fmt: skip
        style.log_x(ax, edges[0], edges[-1])
        ax.set_ylim(0.0, 1.3)
        ax.set_xlabel(r"$p_\mathrm{TPC}$ (GeV/$c$)")
        ax.set_ylabel(f"n$\\sigma$ PID {key}")
        ax.axhline(1.0, color="gray", lw=0.8, ls=":")
        style.label(ax, f"{style.LABEL}\nn$\\sigma$ PID {key}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.9), ncols=5,
               fontsize=24, frameon=False)  # fmt: skip
    return style.save(fig, path)


#: file name -> the function drawing it
PID_PLOTS = {
    "dedx_vs_p.png": plot_dedx_vs_p,
    "beta_vs_p.png": plot_beta_vs_p,
    "pid_efficiency_purity_vs_p.png": plot_pid_efficiency_purity,
}


def make_pid_plots(result: dict, outdir: str | os.PathLike[str]) -> list[Path]:
    """Write the PID plots (PNG) into ``outdir``; returns their paths."""
    return [f(result, Path(outdir) / name) for name, f in PID_PLOTS.items()]


__all__ = [
    "PID_PLOTS",
    "make_pid_plots",
    "plot_beta_vs_p",
    "plot_dedx_vs_p",
    "plot_pid_efficiency_purity",
]
