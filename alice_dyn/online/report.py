"""The adaptive-vs-static report: from two run summaries to one JSON-ready document and its text.

Layer: online (above ``framework``, physics-free). Everything here is a pure function of run
summaries (:class:`~alice_dyn.framework.runtime.RunSummary`), the schedule and the workflow's
accuracy counts: :func:`mode_report` (one run), :func:`burst_load` and :func:`compare` (the two
runs against each other), :func:`comparison_report` (the whole document),
:func:`format_online_report` (the end-of-run table) and :func:`json_safe`. The keys are
documented in ``docs/online_report.md``; times are ms (latencies, service) or s (arrivals, wall).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from alice_dyn.framework.online import Burst, ReplaySchedule
from alice_dyn.framework.runtime import PROCESSED, RunSummary, TimeframeRecord

#: the order of the two runs (and of their lines in the text report)
MODES = ("static", "adaptive")
#: how percentiles are computed (``numpy.percentile(..., method=PERCENTILE_METHOD)``)
PERCENTILE_METHOD = "linear"
#: keys of a mode's object that an ``online_accuracy`` metric may not take (it gets ``metric_``)
_RESERVED = {
    "mode", "output", "config_key_values", "p50_latency_ms", "p99_latency_ms", "max_latency_ms",
    "mean_latency_ms", "mean_service_ms", "burst_service_ms", "timeframes_in", "timeframes_out",
    "timeframes_failed", "timeframes_incomplete", "fraction_over_budget", "p99_within_budget",
    "max_backlog", "accuracy", "accuracy_error", "metrics", "wall_s", "error", "per_timeframe",
}  # fmt: skip

#: per timeframe id, metric name -> ``(n_correct, n_total)`` (a workflow's ``online_accuracy``)
Counts = dict[int, dict[str, tuple[int, int]]]


def _ratio(n_correct: int, n_total: int) -> float | None:
    return n_correct / n_total if n_total > 0 else None


def _pooled(counts: Counts | None, tf_ids: set[int]) -> dict[str, float | None]:
    """Metric -> pooled n_correct / n_total over the timeframes ``tf_ids``."""
    if counts is None:
        return {}
    sums: dict[str, list[int]] = {}
    for tf, metrics in counts.items():
        if tf not in tf_ids:
            continue
        for k, (c, t) in metrics.items():
            s = sums.setdefault(k, [0, 0])
            s[0] += c
            s[1] += t
    return {k: _ratio(c, t) for k, (c, t) in sums.items()}


def service_ms(recs: Sequence[Any]) -> list[float | None]:
    """Per timeframe record (timeslice order), the time it took once it entered:
    ``done - max(arrival, previous done)``, ms (0 if it finished before the one ahead of it;
    ``None`` if it did not finish). One timeframe at a time (inline, interleaved) that is its
    processing time; with timeframes in flight together (multi-process) the interval between
    finishes."""
    took: list[float | None] = []
    prev = -math.inf
    for r in recs:
        if r.arrival_s is None or r.done_s is None:
            took.append(None)
            continue
        took.append(max(1e3 * (r.done_s - max(r.arrival_s, prev)), 0.0))
        prev = max(prev, r.done_s)
    return took


def _service_stats(
    recs: Sequence[TimeframeRecord], took_per_tf: Sequence[float | None], bursts: Sequence[Burst]
) -> dict[str, float | None]:
    """``mean_service_ms`` over the finished timeframes and ``burst_service_ms`` over those that
    arrived inside a burst (``bursts``: s after this run's first arrival), ms."""
    start = min((r.arrival_s for r in recs if r.arrival_s is not None), default=0.0)
    took, in_burst = [], []
    for r, ms in zip(recs, took_per_tf, strict=True):
        if ms is not None:
            took.append(ms)
            since = r.arrival_s - start
            in_burst.append(any(b.start_s <= since < b.end_s for b in bursts))
    took_a, burst_a = np.asarray(took, dtype=float), np.asarray(in_burst, dtype=bool)
    return {
        "mean_service_ms": float(took_a.mean()) if took_a.size else None,
        "burst_service_ms": float(took_a[burst_a].mean()) if burst_a.any() else None,
    }


def _latency_stats(lat: np.ndarray) -> dict[str, float | None]:
    """p50, p99, max and mean of the latencies ``lat``, ms (``None`` without any)."""

    def pct(q: float) -> float | None:
        return float(np.percentile(lat, q, method=PERCENTILE_METHOD)) if lat.size else None

    return {
        "p50_latency_ms": pct(50),
        "p99_latency_ms": pct(99),
        "max_latency_ms": float(lat.max()) if lat.size else None,
        "mean_latency_ms": float(lat.mean()) if lat.size else None,
    }


def _budget_stats(
    lat: np.ndarray, p99_ms: float | None, budget_ms: float | None
) -> dict[str, float | bool | None]:
    """The fraction of latencies ``lat`` over the budget and whether the p99 is within it
    (``None`` without a budget or without latencies), ms."""
    return {
        "fraction_over_budget": (
            float(np.mean(lat > budget_ms)) if budget_ms is not None and lat.size else None
        ),
        "p99_within_budget": (
            (p99_ms <= budget_ms) if budget_ms is not None and p99_ms is not None else None
        ),
    }


def _timeframe_rows(
    recs: Sequence[TimeframeRecord],
    took_per_tf: Sequence[float | None],
    counts: Counts | None,
    t0: float,
) -> list[dict[str, Any]]:
    """The ``per_timeframe`` rows; arrivals in s after ``t0``."""
    rows = []
    for r, ms in zip(recs, took_per_tf, strict=True):
        metrics = {}
        if counts is not None and r.tf_id in counts:
            metrics = {k: _ratio(c, t) for k, (c, t) in counts[r.tf_id].items()}
        rows.append(
            {
                "tf_id": r.tf_id,
                "timeslice": r.timeslice,
                "status": r.status,
                "arrival_s": None if r.arrival_s is None else r.arrival_s - t0,
                "latency_ms": r.latency_ms,
                "service_ms": ms,
                "backlog": r.backlog,
                "accuracy": metrics.get("accuracy"),
                "metrics": metrics,
                "reports": r.reports,
            }
        )
    return rows


def mode_report(
    mode: str,
    summary: RunSummary,
    budget_ms: float | None,
    output: str,
    config_key_values: Sequence[str],
    counts: Counts | None,
    accuracy_error: str | None,
    first_arrival_s: float | None = None,
    bursts: Sequence[Burst] = (),
) -> dict[str, Any]:
    """The report object of one run (keys in ``docs/online_report.md``, in this order); arrival
    times are relative to ``first_arrival_s`` (default: this run's first arrival), s; ``bursts``:
    the schedule's bursts (s after the first arrival), for the time per timeframe inside them."""
    recs = sorted(summary.timeframes.values(), key=lambda r: r.timeslice)
    arrivals = [r.arrival_s for r in recs if r.arrival_s is not None]
    t0 = first_arrival_s if first_arrival_s is not None else min(arrivals, default=0.0)
    lat = np.asarray([r.latency_ms for r in recs if r.latency_ms is not None], dtype=float)
    took_per_tf = service_ms(recs)
    latency = _latency_stats(lat)
    pooled = _pooled(counts, {r.tf_id for r in recs})
    out: dict[str, Any] = {
        "mode": mode,
        "output": output,
        "config_key_values": list(config_key_values),
        **latency,
        **_service_stats(recs, took_per_tf, bursts),
        "timeframes_in": len(recs),
        "timeframes_out": sum(1 for r in recs if r.status == PROCESSED and r.done_s is not None),
        "timeframes_failed": summary.count("failed"),
        "timeframes_incomplete": summary.count("incomplete"),
        **_budget_stats(lat, latency["p99_latency_ms"], budget_ms),
        "max_backlog": max((r.backlog for r in recs), default=0),
        "accuracy": pooled.get("accuracy") if counts is not None else None,
        "accuracy_error": accuracy_error,
        "metrics": pooled,
        "wall_s": summary.wall_seconds,
        "error": str(summary.error) if summary.error is not None else None,
    }
    for k, v in pooled.items():
        if k != "accuracy":
            out[f"metric_{k}" if k in _RESERVED else k] = v
    out["per_timeframe"] = _timeframe_rows(recs, took_per_tf, counts, t0)
    return out


def burst_load(schedule: ReplaySchedule, reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``burst_interval_ms``: the arrival interval in the fastest burst (ms, ``None`` without
    bursts); ``keeps_up_in_bursts``: per run, whether its time per timeframe in the bursts
    (``burst_service_ms``) was below that interval, i.e. whether the burst was within what the
    run could process (``None`` when unknown)."""
    if not schedule.bursts:
        return {"burst_interval_ms": None, "keeps_up_in_bursts": None}
    interval = 1e3 / (schedule.rate_hz * max(b.factor for b in schedule.bursts))
    keeps = {
        m: None if r["burst_service_ms"] is None else bool(r["burst_service_ms"] < interval)
        for m, r in reports.items()
    }
    return {"burst_interval_ms": interval, "keeps_up_in_bursts": keeps}


def compare(static: dict[str, Any], adaptive: dict[str, Any], budget_ms: float | None) -> dict:
    """``accuracy_loss_pp``, ``target_checks`` and ``target_met`` from the two mode objects."""
    loss = None
    if static["accuracy"] is not None and adaptive["accuracy"] is not None:
        loss = 100.0 * (static["accuracy"] - adaptive["accuracy"])
    checks: dict[str, bool | None] = {
        "adaptive_p99_within_budget": adaptive["p99_within_budget"],
        "no_timeframe_lost": all(
            m["timeframes_in"] == m["timeframes_out"] and m["error"] is None
            for m in (static, adaptive)
        )
        and static["timeframes_in"] == adaptive["timeframes_in"],
        "accuracy_loss_below_1pp": None if loss is None else loss < 1.0,
        "static_p99_over_budget": (
            None if static["p99_within_budget"] is None else not static["p99_within_budget"]
        ),
    }
    return {
        "accuracy_loss_pp": loss,
        "target_checks": checks,
        "target_met": all(v is True for v in checks.values()),
    }


def run_order(side_by_side: bool, interleaved: bool) -> str | list[str]:
    """The report's ``run_order``: ``"side_by_side"``, ``"interleaved"`` or the list of modes."""
    return "side_by_side" if side_by_side else "interleaved" if interleaved else list(MODES)


def comparison_report(
    reports: dict[str, dict[str, Any]],
    schedule: ReplaySchedule,
    budget_ms: float | None,
    *,
    workflow: str,
    inputs: Sequence[str],
    runner: str,
    side_by_side: bool,
    interleaved: bool,
    cores: dict[str, int] | None,
    warmup: dict[str, Any],
    modes_declared: Sequence[str],
) -> dict[str, Any]:
    """The whole report (top-level keys in ``docs/online_report.md``, in this order) from the
    two runs' :func:`mode_report` objects and how the runs were made."""
    return {
        "workflow": workflow,
        "inputs": list(inputs),
        "rate_hz": schedule.rate_hz,
        "bursts": [b.as_dict() for b in schedule.bursts],
        "budget_ms": budget_ms,
        "n_timeframes": max(reports[m]["timeframes_in"] for m in MODES),
        **burst_load(schedule, reports),
        "runner": runner,
        "run_order": run_order(side_by_side, interleaved),
        "side_by_side": bool(side_by_side),
        "interleaved": bool(interleaved),
        "cores": cores,
        "warmup": warmup,
        "modes_declared": sorted(modes_declared),
        "percentile_method": PERCENTILE_METHOD,
        "adaptive": reports["adaptive"],
        "static": reports["static"],
        **compare(reports["static"], reports["adaptive"], budget_ms),
    }


# --------------------------------------------------------------------------------------------
# text


def _fmt(v: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "-" if v is None else format(v, spec) + unit


def _percent(v: float | None, spec: str) -> str:
    """A fraction as percent (``-`` when unknown)."""
    return _fmt(None if v is None else 100 * v, spec, "%")


_HEAD = (
    f"{'mode':<9} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'>budget':>8} {'in':>5} "
    f"{'out':>5} {'backlog':>7} {'accuracy':>9}"
)


def _mode_line(mode: str, m: dict[str, Any]) -> str:
    """One run's row of the table."""
    return (
        f"{mode:<9} {_fmt(m['p50_latency_ms']):>9} {_fmt(m['p99_latency_ms']):>9} "
        f"{_fmt(m['max_latency_ms']):>9} {_percent(m['fraction_over_budget'], '.1f'):>8} "
        f"{m['timeframes_in']:>5} {m['timeframes_out']:>5} {m['max_backlog']:>7} "
        f"{_percent(m['accuracy'], '.2f'):>9}"
    )


def _schedule_line(report: dict[str, Any]) -> str:
    """Rate, bursts, budget and the percentile method."""
    bursts = ", ".join(
        f"{b['factor']:g}x {b['duration_s']:g} s @ {b['start_s']:g} s" for b in report["bursts"]
    )
    return (
        f"rate {report['rate_hz']:g} Hz{', bursts ' + bursts if bursts else ''}; budget "
        f"{_fmt(report['budget_ms'], 'g')} ms; p99 by numpy.percentile "
        f"(method={report['percentile_method']!r})"
    )


def _burst_line(report: dict[str, Any]) -> str | None:
    """The fastest burst's interval against each run's time per timeframe there (``None``
    unless all are known)."""
    if not (report.get("burst_interval_ms") and all(report[m]["burst_service_ms"] for m in MODES)):
        return None
    return (
        f"in the bursts: a timeframe every {report['burst_interval_ms']:.1f} ms (the fastest "
        "burst); per timeframe "
        + ", ".join(f"{m} {report[m]['burst_service_ms']:.1f} ms" for m in MODES)
        + " (a run keeps up while it takes less than the interval)"
    )


def _verdict_line(report: dict[str, Any]) -> str:
    """Accuracy loss and whether the target was met (else the checks that failed)."""
    failed = [k for k, v in report["target_checks"].items() if v is not True]
    return (
        f"accuracy loss (static - adaptive): {_fmt(report['accuracy_loss_pp'], '.2f')} pp; "
        f"target met: {'yes' if report['target_met'] else 'no (' + ', '.join(failed) + ')'}"
    )


def format_online_report(report: dict[str, Any]) -> str:
    """The short end-of-run table."""
    lines = [_HEAD, "-" * len(_HEAD)]
    lines += [_mode_line(mode, report[mode]) for mode in MODES]
    lines.append(_schedule_line(report))
    burst = _burst_line(report)
    if burst is not None:
        lines.append(burst)
    lines.append(_verdict_line(report))
    return "\n".join(lines)


def json_safe(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


__all__ = [
    "MODES",
    "PERCENTILE_METHOD",
    "Counts",
    "burst_load",
    "compare",
    "comparison_report",
    "format_online_report",
    "json_safe",
    "mode_report",
    "run_order",
    "service_ms",
]
