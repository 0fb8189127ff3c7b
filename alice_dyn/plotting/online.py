"""Plots of the online (adaptive vs static) report of ``alice-dyn run --online``.

Layer: presentation. Each function draws the JSON-ready report of
:func:`alice_dyn.online.run_online_comparison` (keys in ``docs/online_report.md``) and reads
nothing else: no import of ``framework`` or ``online`` (the scheduled rate is drawn from the
report's ``rate_hz`` and ``bursts``). :func:`make_online_plots` writes all of them. Figures come
from :func:`alice_dyn.plotting.style.figure`, in the one style
(:func:`~alice_dyn.plotting.style.styled`), and are written by
:func:`~alice_dyn.plotting.style.save`. Times on the x axes are s after the first arrival,
latencies ms.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from alice_dyn.plotting.style import figure, save, styled

#: the size of every online plot, inches (wide: time runs along x)
SIZE = (10.0, 5.5)
#: resolution of the online plots, dots per inch
DPI = 80
#: the report's two runs, in the order they are drawn
MODES = ("static", "adaptive")
#: one colour per run
COLORS = {"static": "tab:red", "adaptive": "tab:blue"}


def _shade_bursts(ax, report: dict[str, Any]) -> None:
    """The schedule's bursts as grey bands (labelled once)."""
    for k, b in enumerate(report["bursts"]):
        ax.axvspan(b["start_s"], b["start_s"] + b["duration_s"], color="tab:gray", alpha=0.2,
                   label="burst" if k == 0 else None)  # fmt: skip


def _rows(report: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """The run's ``per_timeframe`` rows that arrived."""
    return [r for r in report[mode]["per_timeframe"] if r["arrival_s"] is not None]


def _burst_ends_s(report: dict[str, Any]) -> list[float]:
    """When each burst ends, s after the first arrival."""
    return [b["start_s"] + b["duration_s"] for b in report["bursts"]]


def _scheduled_rate(report: dict[str, Any], t: np.ndarray) -> np.ndarray:
    """The schedule's arrival rate at the times ``t`` (s after the first arrival), Hz: the base
    rate, times the factor inside a burst (``start_s <= t < start_s + duration_s``)."""
    rate = np.full(np.shape(t), float(report["rate_hz"]))
    for b, end in zip(report["bursts"], _burst_ends_s(report), strict=True):
        rate[(t >= b["start_s"]) & (t < end)] = report["rate_hz"] * b["factor"]
    return rate


def _name(report: dict[str, Any]) -> str:
    """The workflow's name for titles (a path's stem)."""
    workflow = report["workflow"]
    return Path(workflow).stem if workflow.endswith(".py") else workflow


@styled
def plot_latency(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Latency per timeframe (ms) vs arrival time (s), both runs, budget line, bursts shaded."""
    fig, ax = figure(SIZE)
    _shade_bursts(ax, report)
    for mode in MODES:
        rows = [r for r in _rows(report, mode) if r["latency_ms"] is not None]
        ax.plot([r["arrival_s"] for r in rows], [r["latency_ms"] for r in rows], ".-", ms=3,
                lw=0.8, color=COLORS[mode], label=mode)  # fmt: skip
    if report["budget_ms"] is not None:
        ax.axhline(report["budget_ms"], color="black", ls="--", lw=1, label="budget")
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{_name(report)}: latency per timeframe")
    ax.legend(loc="upper left", fontsize="small")
    return save(fig, path, dpi=DPI)


@styled
def plot_rate(report: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Scheduled arrival rate and the rate the timeframes actually entered at (Hz)."""
    rows = _rows(report, "adaptive")
    t_end = 1.02 * max([r["arrival_s"] for r in rows] + _burst_ends_s(report), default=1.0)
    t = np.linspace(0.0, t_end, 1000)
    fig, ax = figure(SIZE)
    _shade_bursts(ax, report)
    ax.step(t, _scheduled_rate(report, t), where="post", color="black", label="schedule")
    arr = np.asarray([r["arrival_s"] for r in rows])
    if arr.size > 1:
        width = max(t_end / 40, 1.0 / report["rate_hz"])
        edges = np.arange(0.0, t_end + width, width)
        counts, _ = np.histogram(arr, edges)
        ax.stairs(counts / width, edges, color="tab:blue", label="arrivals (binned)")
    ax.set_xlabel("time since the first arrival (s)")
    ax.set_ylabel("timeframes / s")
    ax.set_title(f"{_name(report)}: arrival rate")
    ax.legend(loc="upper right", fontsize="small")
    return save(fig, path, dpi=DPI)


def _exit_fraction_points(
    rows: list[dict[str, Any]], proc: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(arrival_s, fractions)``: the processor's ``exit_fractions`` per timeframe, as an
    ``(n_exits, n_timeframes)`` array (shorter lists padded with 0); ``None`` if it has none."""
    pts = [
        (r["arrival_s"], r["reports"][proc]["exit_fractions"])
        for r in rows
        if isinstance(r["reports"].get(proc, {}).get("exit_fractions"), list)
    ]
    n = max((len(f) for _, f in pts), default=0)
    if not pts or n == 0:
        return None
    y = np.zeros((n, len(pts)))
    for j, (_, f) in enumerate(pts):
        y[: len(f), j] = f
    return np.asarray([a for a, _ in pts]), y


@styled
def plot_exit_fractions(report: dict[str, Any], outdir: str | os.PathLike[str]) -> list[Path]:
    """Stacked ``exit_fractions`` per timeframe of the adaptive run, one plot per processor."""
    rows = _rows(report, "adaptive")
    procs = sorted({p for r in rows for p, rep in r["reports"].items() if "exit_fractions" in rep})
    paths = []
    for proc in procs:
        points = _exit_fraction_points(rows, proc)
        if points is None:
            continue
        x, y = points
        fig, ax = figure(SIZE)
        ax.stackplot(x, y, labels=[f"exit {k}" for k in range(len(y))], alpha=0.85)
        _shade_bursts(ax, report)
        ax.set_xlabel("arrival time (s)")
        ax.set_ylabel("fraction of items")
        ax.set_title(f"{_name(report)} (adaptive): exit fractions of {proc}")
        ax.legend(loc="upper right", fontsize="x-small")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in proc)
        paths.append(save(fig, Path(outdir) / f"online_exit_fractions_{safe}.png", dpi=DPI))
    return paths


@styled
def plot_accuracy(
    report: dict[str, Any], path: str | os.PathLike[str], window: int = 5
) -> Path | None:
    """Accuracy per timeframe (%, rolling mean over ``window`` timeframes), both runs; ``None``
    when neither run has an accuracy."""
    if all(report[m]["accuracy"] is None for m in MODES):
        return None
    fig, ax = figure(SIZE)
    _shade_bursts(ax, report)
    for mode in MODES:
        rows = [r for r in _rows(report, mode) if r["accuracy"] is not None]
        if not rows:
            continue
        x = np.asarray([r["arrival_s"] for r in rows])
        y = np.asarray([r["accuracy"] for r in rows])
        k = min(window, len(y))
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1 :], 100 * smooth, color=COLORS[mode], label=f"{mode} ({k}-TF mean)")
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{_name(report)}: accuracy per timeframe")
    ax.legend(loc="lower left", fontsize="small")
    return save(fig, path, dpi=DPI)


def make_online_plots(report: dict[str, Any], outdir: str | os.PathLike[str]) -> list[Path]:
    """All PNG plots of an online report into ``outdir`` (file names in
    ``docs/online_report.md``)."""
    outdir = Path(outdir)
    paths = [
        plot_latency(report, outdir / "online_latency.png"),
        plot_rate(report, outdir / "online_rate.png"),
    ]
    paths += plot_exit_fractions(report, outdir)
    acc = plot_accuracy(report, outdir / "online_accuracy.png")
    if acc is not None:
        paths.append(acc)
    return paths


__all__ = [
    "make_online_plots",
    "plot_accuracy",
    "plot_exit_fractions",
    "plot_latency",
    "plot_rate",
]
