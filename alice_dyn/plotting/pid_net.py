"""Plots of ``alice-dyn evaluate pid-net``: accuracy vs FLOPs, efficiency and purity vs p.

Layer: presentation. Draws the JSON-ready result of
:func:`alice_dyn.pid.evaluate.evaluate_pid_net` in the one style of
:mod:`alice_dyn.plotting.style`; :func:`make_pid_net_plots` writes both figures into a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from alice_dyn.plotting import style

#: the exit methods drawn, with their colours
METHOD_COLORS = (("sdn", "tab:blue"), ("ztw", "tab:red"))


@style.styled
def plot_accuracy_vs_flops(r: dict, path: str | os.PathLike[str]) -> Path:
    """Accuracy (%) of the SDN and ZTW exits against the average FLOPs (fraction of the full
    network), with the network without exits and n-sigma as lines."""
    fig, ax = style.figure((8.0, 6.0))
    for method, color in METHOD_COLORS:
        pts = sorted(
            (c for c in r["curve"] if c["method"] == method), key=lambda c: c["flops_fraction"]
        )
        ax.plot([c["flops_fraction"] for c in pts], [100 * c["accuracy"] for c in pts], "o-",
                color=color, label=f"{method.upper()} exits")  # fmt: skip
    ax.axhline(100 * r["accuracy_full"], color="k", ls="--", label="network without exits")
    ax.axhline(100 * r["nsigma_accuracy"], color="gray", ls=":", label="n-sigma")
    ax.set_xlabel("average FLOPs / full network")
    ax.set_ylabel("accuracy (%)")
    ax.legend(loc="lower right")
    return style.save(fig, path)


def _or_nan(v: float | None) -> float:
    return np.nan if v is None else v


@style.styled
def plot_efficiency_purity_vs_p(r: dict, path: str | os.PathLike[str]) -> Path:
    """Per species (columns) the efficiency (top) and purity (bottom) vs p of the primary
    network (argmax) and of n-sigma."""
    fig, axes = style.figure((20.0, 7.0), 2, 5, sharex=True)
    for k, (name, rows) in enumerate(r["per_species_vs_p"].items()):
        centres = [0.5 * (b["p_lo"] + b["p_hi"]) for b in rows]
        for row_i, key in enumerate(("efficiency", "purity")):
            a = axes[row_i, k]
            a.plot(centres, [_or_nan(b[key]) for b in rows], "o-", label="network")
            a.plot(centres, [_or_nan(b[key + "_nsigma"]) for b in rows], "s--", label="n-sigma")
            style.log_x(a, rows[0]["p_lo"], rows[-1]["p_hi"])
            a.set_ylim(0, 1.05)
            a.set_title(f"{name} {key}", fontsize=12)
        axes[1, k].set_xlabel("p (GeV/c)")
    axes[0, 0].legend()
    return style.save(fig, path)


#: file name -> the function drawing it
PID_NET_PLOTS = {
    "pid_net_accuracy_vs_flops.png": plot_accuracy_vs_flops,
    "pid_net_efficiency_purity_vs_p.png": plot_efficiency_purity_vs_p,
}


def make_pid_net_plots(r: dict, outdir: str | os.PathLike[str]) -> list[Path]:
    """Accuracy vs FLOPs (SDN, ZTW, full, n-sigma) and efficiency/purity vs p (network vs
    n-sigma) as PNG in ``outdir``; returns their paths."""
    return [f(r, Path(outdir) / name) for name, f in PID_NET_PLOTS.items()]


__all__ = [
    "PID_NET_PLOTS",
    "make_pid_net_plots",
    "plot_accuracy_vs_flops",
    "plot_efficiency_purity_vs_p",
]
