"""Plots of ``alice-dyn evaluate track-net``: rejection and resolution vs FLOPs and vs pT.

Layer: presentation. Draws the JSON-ready result of
:func:`alice_dyn.tracknet.evaluate.evaluate_track_net` in the one style of
:mod:`alice_dyn.plotting.style`; :func:`make_track_net_plots` writes both figures into a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from alice_dyn.plotting import style


def _pct(v: float | None) -> float:
    """Percent, 0 for an undefined number."""
    return 100 * (v or 0)


@style.styled
def plot_vs_flops(r: dict, path: str | os.PathLike[str]) -> Path:
    """Fake rejection, clone rejection (at 99% good efficiency) and q/pT core resolution (%)
    against the average kFLOPs per track, per variant, with the classical chain as lines."""
    cl = r["classical"]
    fig, axes = style.figure((24.0, 7.0), 1, 3)
    axes = axes[0]
    fig.subplots_adjust(wspace=0.35)
    for v, vr in r["variants"].items():
        pts = sorted(vr["points"], key=lambda p: p["flops_mean"])
        fl = [p["flops_mean"] / 1e3 for p in pts]
        axes[0].plot(fl, [_pct(p["reject_fake"]["99"]["fake_rejection"]) for p in pts], "o-",
                     label=v)  # fmt: skip
        axes[1].plot(fl, [_pct(p["reject_bad"]["99"]["clone_rejection"]) for p in pts], "o-",
                     label=v)  # fmt: skip
        axes[2].plot(fl, [_pct(p["q2pt_resolution"]["sigma_core"]) for p in pts], "o-",
                     label=v)  # fmt: skip
    axes[0].axhline(_pct(cl["cuts"]["99"]["fake_rejection"]), color="k", ls="--",
                    label="classical cut")  # fmt: skip
    axes[1].axhline(_pct(cl["cuts"]["99"]["clone_rejection"]), color="k", ls="--",
                    label="classical cut")  # fmt: skip
    axes[2].axhline(_pct(cl["q2pt_resolution"]["sigma_core"]), color="k", ls="--",
                    label="classical fit")  # fmt: skip
    labels = ("fake rejection at 99% eff. (%)", "clone rejection at 99% eff. (%)",
              "q/pT resolution, core (%)")  # fmt: skip
    for ax, lab in zip(axes, labels, strict=True):
        ax.set_xlabel("average kFLOPs per track", fontsize=16)
        ax.set_ylabel(lab, fontsize=16)
        ax.legend(fontsize=11)
    return style.save(fig, path)


@style.styled
def plot_resolution_vs_pt(r: dict, path: str | os.PathLike[str]) -> Path:
    """q/pT core resolution (%) vs true pT: the classical fit and each variant's full network."""
    fig, ax = style.figure((8.0, 6.0))
    bins = r["classical"]["q2pt_resolution"]["vs_pt"]
    centres = [np.sqrt(b["pt_lo"] * b["pt_hi"]) for b in bins]
    ax.plot(centres, [100 * (b["sigma_core"] or np.nan) for b in bins], "ks--", label="classical")
    for v, vr in r["variants"].items():
        bins = vr["points"][0]["q2pt_resolution"]["vs_pt"]
        ax.plot(centres, [100 * (b["sigma_core"] or np.nan) for b in bins], "o-",
                label=f"{v} (full)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("true pT (GeV/c)")
    ax.set_ylabel("q/pT resolution, core (%)")
    ax.legend()
    return style.save(fig, path)


#: file name -> the function drawing it
TRACK_NET_PLOTS = {
    "track_net_vs_flops.png": plot_vs_flops,
    "track_net_resolution_vs_pt.png": plot_resolution_vs_pt,
}


def make_track_net_plots(r: dict, outdir: str | os.PathLike[str]) -> list[Path]:
    """Fake rejection and q/pT resolution against average FLOPs (both variants, classical), and
    the resolution against pT, as PNG in ``outdir``; returns their paths."""
    return [f(r, Path(outdir) / name) for name, f in TRACK_NET_PLOTS.items()]


__all__ = ["TRACK_NET_PLOTS", "make_track_net_plots", "plot_resolution_vs_pt", "plot_vs_flops"]
