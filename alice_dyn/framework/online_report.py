"""Adaptive-vs-static online report: one workflow replayed twice under the same schedule.

Layer: framework (physics-free). ``alice-dyn run WORKFLOW --online ...`` calls
:func:`run_online_comparison`: the workflow runs first in its ``static`` configuration, then in
its ``adaptive`` one, each replayed on the same :class:`~alice_dyn.framework.online.ReplaySchedule`
with the same latency budget. A workflow module may declare

* ``online_modes() -> {"adaptive": "Group.key=v;...", "static": "..."}``: configKeyValues
  applied over the user's (absent: both runs use the user's configuration);
* ``online_accuracy(output, inputs) -> {tf_id: {metric: (n_correct, n_total)}}``: per-timeframe
  counts, ``"accuracy"`` the headline (absent, or raising
  :class:`~alice_dyn.framework.online.NoTruthError`: accuracy ``null``).

With ``side_by_side=True`` (``--side-by-side``) the two configurations run at the same time
instead, each in its own process pinned to its own CPU core, started together on the same
schedule: on a shared machine whose speed drifts from minute to minute both then see the same
conditions (each process does its own untimed warm-up first).

With ``interleaved=True`` (``--interleaved``) both configurations run in this process, pinned
to one core, timeframe by timeframe in turn (static then adaptive on even timeslices, adaptive
then static on odd ones), each replay on its own
:class:`~alice_dyn.framework.online.ReplayClock`: real time while its own workflow works,
stopped while the other's works, the waits for the next arrival jumped over. Each timeframe of
one run is processed within a timeframe's time of the same timeframe of the other, so a machine
whose speed drifts within seconds slows both alike; the latencies are those of a real-time
replay at the speed the work had.

The report (JSON keys in ``docs/online_report.md``) has latency percentiles, accounting,
accuracy and per-timeframe rows for both runs; :func:`make_online_plots` draws it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import multiprocessing as mp
import multiprocessing.connection
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from alice_dyn.framework.executable import configure_specs, run_specs
from alice_dyn.framework.online import (
    Burst,
    Clock,
    NoTruthError,
    OnlineOptions,
    ReplayClock,
    ReplaySchedule,
    quiet_gc,
)
from alice_dyn.framework.runner_inline import iter_inline
from alice_dyn.framework.runtime import PROCESSED, RunSummary
from alice_dyn.framework.spec import SpecError

#: the order of the two runs
MODES = ("static", "adaptive")
#: side by side: the first arrival, s after both processes passed the start barrier (room for
#: the workflow's init, e.g. loading models)
SIDE_BY_SIDE_START_S = 2.0
#: how percentiles are computed (``numpy.percentile(..., method=PERCENTILE_METHOD)``)
PERCENTILE_METHOD = "linear"
#: keys of a mode's object that an ``online_accuracy`` metric may not take (it gets ``metric_``)
_RESERVED = {
    "mode", "output", "config_key_values", "p50_latency_ms", "p99_latency_ms", "max_latency_ms",
    "mean_latency_ms", "mean_service_ms", "burst_service_ms", "timeframes_in", "timeframes_out",
    "timeframes_failed", "timeframes_incomplete", "fraction_over_budget", "p99_within_budget",
    "max_backlog", "accuracy", "accuracy_error", "metrics", "wall_s", "error", "per_timeframe",
}  # fmt: skip


def static_output(output: str) -> str:
    """``reco.root`` -> ``reco.static.root`` (``.static`` before the suffix)."""
    p = Path(output)
    return str(p.with_name(f"{p.stem}.static{p.suffix}"))


def online_modes_of(module: ModuleType) -> dict[str, str]:
    """The workflow's ``online_modes()`` (``{}`` when it has none), checked."""
    fn = getattr(module, "online_modes", None)
    if fn is None:
        return {}
    modes = fn()
    if not isinstance(modes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in modes.items()
    ):
        raise SpecError("online_modes() must return a dict {mode: 'Group.key=value;...'}")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SpecError(f"online_modes(): unknown mode(s) {sorted(unknown)}; use {list(MODES)}")
    return modes


def run_workflow_online(
    module: ModuleType,
    inputs: Sequence[str],
    output: str,
    online: OnlineOptions | None,
    *,
    config_key_values: Sequence[str] = (),
    config_files: Sequence[str] = (),
    runner: str = "inline",
    pipeline: dict[str, int] | None = None,
    forwarding_policy: str = "dangling",
    max_timeframes: int | None = None,
    queue_depth: int = 4,
    timeout_s: float | None = None,
    progress: bool | None = False,
) -> RunSummary:
    """Define the workflow for ``output``, configure it (INI files, then ``config_key_values``)
    and run it with ``runner``, in online mode unless ``online`` is ``None``."""
    return run_specs(
        module.define_workflow(list(inputs), output), runner=runner,
        config_key_values=config_key_values, config_files=config_files, pipeline=pipeline,
        forwarding_policy=forwarding_policy, max_timeframes=max_timeframes, progress=progress,
        queue_depth=queue_depth, timeout_s=timeout_s, online=online,
    )  # fmt: skip


def accuracy_of(
    module: ModuleType, output: str, inputs: Sequence[str]
) -> tuple[dict[int, dict[str, tuple[int, int]]] | None, str | None]:
    """``(counts, why_none)``: the workflow's ``online_accuracy`` counts, or ``None`` and why."""
    fn = getattr(module, "online_accuracy", None)
    if fn is None:
        return None, "the workflow defines no online_accuracy(output, inputs)"
    try:
        counts = fn(output, list(inputs))
    except NoTruthError as exc:
        return None, f"no truth: {exc}"
    except Exception as exc:  # the latency report stays valid; say why accuracy is missing
        print(f"warning: online_accuracy({output}) failed: {type(exc).__name__}: {exc}",
              file=sys.stderr)  # fmt: skip
        return None, f"online_accuracy failed: {type(exc).__name__}: {exc}"
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for tf, metrics in counts.items():
        out[int(tf)] = {str(k): (int(v[0]), int(v[1])) for k, v in metrics.items()}
    return out, None


def _ratio(n_correct: int, n_total: int) -> float | None:
    return n_correct / n_total if n_total > 0 else None


def _pooled(counts: dict[int, dict[str, tuple[int, int]]] | None, tf_ids: set[int]) -> dict:
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


def mode_report(
    mode: str,
    summary: RunSummary,
    budget_ms: float | None,
    output: str,
    config_key_values: Sequence[str],
    counts: dict[int, dict[str, tuple[int, int]]] | None,
    accuracy_error: str | None,
    first_arrival_s: float | None = None,
    bursts: Sequence[Burst] = (),
) -> dict[str, Any]:
    """The report object of one run (keys in ``docs/online_report.md``); arrival times are
    relative to ``first_arrival_s`` (default: this run's first arrival), s; ``bursts``: the
    schedule's bursts (s after the first arrival), for the time per timeframe inside them."""
    recs = sorted(summary.timeframes.values(), key=lambda r: r.timeslice)
    arrivals = [r.arrival_s for r in recs if r.arrival_s is not None]
    t0 = first_arrival_s if first_arrival_s is not None else min(arrivals, default=0.0)
    lat = np.asarray([r.latency_ms for r in recs if r.latency_ms is not None], dtype=float)
    took_per_tf = service_ms(recs)
    start = min(arrivals, default=0.0)
    took, in_burst = [], []
    for r, ms in zip(recs, took_per_tf, strict=True):
        if ms is not None:
            took.append(ms)
            since = r.arrival_s - start
            in_burst.append(any(b.start_s <= since < b.end_s for b in bursts))
    took_a, burst_a = np.asarray(took, dtype=float), np.asarray(in_burst, dtype=bool)

    def pct(q: float) -> float | None:
        return float(np.percentile(lat, q, method=PERCENTILE_METHOD)) if lat.size else None

    p99 = pct(99)
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
    pooled = _pooled(counts, {r.tf_id for r in recs})
    out: dict[str, Any] = {
        "mode": mode,
        "output": output,
        "config_key_values": list(config_key_values),
        "p50_latency_ms": pct(50),
        "p99_latency_ms": p99,
        "max_latency_ms": float(lat.max()) if lat.size else None,
        "mean_latency_ms": float(lat.mean()) if lat.size else None,
        "mean_service_ms": float(took_a.mean()) if took_a.size else None,
        "burst_service_ms": float(took_a[burst_a].mean()) if burst_a.any() else None,
        "timeframes_in": len(recs),
        "timeframes_out": sum(1 for r in recs if r.status == PROCESSED and r.done_s is not None),
        "timeframes_failed": summary.count("failed"),
        "timeframes_incomplete": summary.count("incomplete"),
        "fraction_over_budget": (
            float(np.mean(lat > budget_ms)) if budget_ms is not None and lat.size else None
        ),
        "p99_within_budget": (p99 <= budget_ms) if budget_ms is not None and p99 is not None
        else None,
        "max_backlog": max((r.backlog for r in recs), default=0),
        "accuracy": pooled.get("accuracy") if counts is not None else None,
        "accuracy_error": accuracy_error,
        "metrics": pooled,
        "wall_s": summary.wall_seconds,
        "error": str(summary.error) if summary.error is not None else None,
    }  # fmt: skip
    for k, v in pooled.items():
        if k != "accuracy":
            out[f"metric_{k}" if k in _RESERVED else k] = v
    out["per_timeframe"] = rows
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


def warm_up(
    module: ModuleType,
    inputs: Sequence[str],
    output: str,
    ckv: Sequence[str],
    n: int,
    config_files: Sequence[str] = (),
    forwarding_policy: str = "dangling",
) -> dict[str, Any] | None:
    """``n`` untimed timeframes of one configuration, inline, into a temporary directory (JIT
    compilation, imports and file caches then fall on no timed run)."""
    if not n:
        return None
    print(f"== warm-up: {n} timeframe(s), not timed", flush=True)
    with tempfile.TemporaryDirectory(prefix="alice_dyn_warmup_") as tmp:
        warm = run_workflow_online(
            module, inputs, str(Path(tmp) / f"warmup{Path(output).suffix}"), None,
            config_key_values=ckv, config_files=config_files,
            forwarding_policy=forwarding_policy, max_timeframes=n, progress=False,
        )  # fmt: skip
    return {
        "timeframes": len(warm.timeframes),
        "wall_s": warm.wall_seconds,
        "error": str(warm.error) if warm.error is not None else None,
    }


def usable_cores() -> list[int]:
    """The CPU cores this process may use, in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def side_by_side_cores() -> dict[str, int]:
    """``{mode: core}``: the first two CPU cores this process may use."""
    allowed = usable_cores()
    if len(allowed) < 2:
        raise ValueError(f"side by side runs need 2 CPU cores, this process has {len(allowed)}")
    return dict(zip(MODES, allowed[:2], strict=True))


def _side_by_side_child(conn, barrier, core, workflow_file, inputs, out, ckv, opts, warm_n, kw):
    """One configuration in its own process: pinned to ``core``, one thread for numba and
    PyTorch, warm-up, then the timed replay once both processes are ready."""
    try:
        with one_core_one_thread(core):
            from alice_dyn.framework.workflows import load_workflow

            module = load_workflow(workflow_file)
            warm = warm_up(module, inputs, out, ckv, warm_n, kw["config_files"],
                           kw["forwarding_policy"])  # fmt: skip
            barrier.wait(timeout=900)
            # both replays start at the same moment, after time for the workflow's init
            opts = dataclasses.replace(opts, start_s=time.monotonic() + SIDE_BY_SIDE_START_S)
            summary = run_workflow_online(
                module, inputs, out, opts, config_key_values=ckv, progress=False, **kw
            )
        conn.send(("ok", summary, warm))
    except BaseException:  # report everything to the parent, which names the mode
        conn.send(("error", traceback.format_exc(), None))
    finally:
        conn.close()


def _run_side_by_side(
    module: ModuleType,
    inputs: Sequence[str],
    outs: dict[str, str],
    ckvs: dict[str, list[str]],
    opts: OnlineOptions,
    warm_n: int,
    cores: dict[str, int],
    kw: dict[str, Any],
) -> dict[str, tuple[RunSummary, dict[str, Any] | None]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(MODES))
    procs, conns = {}, {}
    for mode in MODES:
        recv, send = ctx.Pipe(duplex=False)
        procs[mode] = ctx.Process(
            target=_side_by_side_child,
            args=(send, barrier, cores[mode], module.__file__, list(inputs), outs[mode],
                  ckvs[mode], opts, warm_n, kw),
            name=f"alice-dyn online {mode}",
        )  # fmt: skip
        procs[mode].start()
        send.close()
        conns[mode] = recv
    results: dict[str, Any] = {}
    try:
        pending = {conns[m]: m for m in MODES}
        while pending:
            for c in mp.connection.wait(list(pending)):
                mode = pending.pop(c)
                try:
                    results[mode] = c.recv()
                except EOFError:
                    procs[mode].join(timeout=5)
                    code = procs[mode].exitcode
                    results[mode] = ("error", f"the process died (exit code {code})", None)
                if results[mode][0] != "ok":
                    barrier.abort()  # the other process must not wait for this one
    finally:
        for p in procs.values():
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    errors = {m: str(r[1]) for m, r in results.items() if r[0] != "ok"}
    if errors:
        first = "; ".join(f"{m}: {e.strip().splitlines()[-1]}" for m, e in errors.items())
        raise RuntimeError(
            f"side by side online run failed ({first})\n" + "\n".join(errors.values())
        )
    return {m: (results[m][1], results[m][2]) for m in MODES}


@contextlib.contextmanager
def one_core_one_thread(core: int) -> Iterator[None]:
    """This process on CPU ``core``, numba and PyTorch on one thread; restored afterwards."""
    import numba
    import torch

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = (numba.get_num_threads(), torch.get_num_threads())
    try:
        if affinity is not None:
            os.sched_setaffinity(0, {core})
        numba.set_num_threads(1)
        torch.set_num_threads(1)
        yield
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        numba.set_num_threads(threads[0])
        torch.set_num_threads(threads[1])


def _run_interleaved(
    module: ModuleType,
    inputs: Sequence[str],
    outs: dict[str, str],
    ckvs: dict[str, list[str]],
    opts: OnlineOptions,
    warm_n: int,
    core: int,
    kw: dict[str, Any],
) -> dict[str, tuple[RunSummary, dict[str, Any] | None]]:
    """Both configurations in this process on ``core``, one timeframe of each in turn, each on
    its own :class:`ReplayClock` (module docstring)."""
    files, policy = kw["config_files"], kw["forwarding_policy"]
    warm = {m: warm_up(module, inputs, outs[m], ckvs[m], warm_n, files, policy) for m in MODES}
    clocks = {m: ReplayClock() for m in MODES}
    steps = {}
    for m in MODES:
        topology, store = configure_specs(
            module.define_workflow(list(inputs), outs[m]), ckvs[m], files, policy
        )
        steps[m] = iter_inline(
            topology, store, max_timeframes=kw["max_timeframes"], progress=False,
            online=dataclasses.replace(opts, clock=clocks[m]), quiet_gc_online=False,
        )  # fmt: skip
    summaries: dict[str, RunSummary] = {}
    with contextlib.ExitStack() as stack:
        stack.enter_context(one_core_one_thread(core))
        stack.callback(lambda: [g.close() for g in steps.values()])
        for k in itertools.count():
            if len(summaries) == len(MODES):
                break
            if k == 1:  # after both workflows' init (first step): freeze it, collector off
                stack.enter_context(quiet_gc())
            for m in MODES if k % 2 == 0 else MODES[::-1]:
                if m in summaries:
                    continue
                with clocks[m].running():
                    try:
                        next(steps[m])
                    except StopIteration as done:
                        summaries[m] = done.value
    return {m: (summaries[m], warm[m]) for m in MODES}


def run_online_comparison(
    module: ModuleType,
    workflow: str,
    inputs: Sequence[str],
    output: str,
    schedule: ReplaySchedule,
    budget_ms: float | None,
    *,
    config_key_values: Sequence[str] = (),
    config_files: Sequence[str] = (),
    runner: str = "inline",
    pipeline: dict[str, int] | None = None,
    forwarding_policy: str = "dangling",
    max_timeframes: int | None = None,
    n_timeframes: int | None = None,
    queue_depth: int = 4,
    timeout_s: float | None = None,
    progress: bool | None = False,
    clock: Clock | None = None,
    warmup_timeframes: int = 1,
    side_by_side: bool = False,
    interleaved: bool = False,
) -> tuple[dict[str, Any], dict[str, RunSummary]]:
    """Run ``static`` then ``adaptive`` under ``schedule`` (or both at once, each on its own
    core, with ``side_by_side``; or in turn, one timeframe each, on one core, with
    ``interleaved``); the report and both summaries.

    The adaptive run writes ``output``, the static one :func:`static_output` of it.
    ``n_timeframes``: length of the replay when known (caps the backlog ``pc.timing`` shows near
    the end). ``warmup_timeframes``: first, each configuration processes that many timeframes
    inline, untimed, into a temporary directory, so that one-off costs of the process (JIT
    compilation, imports, file caches) fall on neither timed run (0: no warm-up)."""
    modes = online_modes_of(module)
    n_cap = max_timeframes if n_timeframes is None else n_timeframes
    if max_timeframes is not None and n_cap is not None:
        n_cap = min(n_cap, max_timeframes)
    if warmup_timeframes < 0:
        raise ValueError(f"--warmup-tf must be >= 0, not {warmup_timeframes}")
    ckvs = {m: [*config_key_values, *([modes[m]] if modes.get(m) else [])] for m in MODES}
    warmup: dict[str, Any] = {"timeframes_per_mode": warmup_timeframes}
    outs = {m: output if m == "adaptive" else static_output(output) for m in MODES}
    for out in outs.values():
        Path(out).resolve().parent.mkdir(parents=True, exist_ok=True)
    run_kw = dict(
        config_files=config_files, runner=runner, pipeline=pipeline,
        forwarding_policy=forwarding_policy, max_timeframes=max_timeframes,
        queue_depth=queue_depth, timeout_s=timeout_s,
    )  # fmt: skip
    summaries: dict[str, RunSummary] = {}
    cores: dict[str, int] | None = None
    if side_by_side and interleaved:
        raise ValueError("--side-by-side and --interleaved exclude each other")
    if side_by_side or interleaved:
        if clock is not None:
            raise ValueError(
                "interleaved runs keep their own replay clocks" if interleaved
                else "side by side runs need the real clock (two processes)"
            )  # fmt: skip
        if interleaved:
            if runner != "inline":
                raise ValueError("interleaved runs need the inline runner")
            core = usable_cores()[0]
            cores = {m: core for m in MODES}
            print(f"== online replay, static and adaptive configurations in turn on core "
                  f"{core} -> {outs['static']}, {outs['adaptive']} (interleaved)",
                  flush=True)  # fmt: skip
            run_pair = functools.partial(_run_interleaved, core=core)
        else:
            cores = side_by_side_cores()
            for mode in MODES:
                print(f"== online replay, {mode} configuration on core {cores[mode]} -> "
                      f"{outs[mode]} (side by side)", flush=True)  # fmt: skip
            run_pair = functools.partial(_run_side_by_side, cores=cores)
        results = run_pair(
            module, inputs, outs, ckvs, OnlineOptions(schedule, budget_ms, n_cap),
            warmup_timeframes, kw=run_kw,
        )  # fmt: skip
        for mode in MODES:
            summaries[mode], warmup[mode] = results[mode]
    else:
        for mode in MODES:
            warmup[mode] = warm_up(module, inputs, outs[mode], ckvs[mode], warmup_timeframes,
                                   config_files, forwarding_policy)  # fmt: skip
        for mode in MODES:
            opts = OnlineOptions(schedule, budget_ms, n_cap, clock)
            print(f"== online replay, {mode} configuration -> {outs[mode]}", flush=True)
            summaries[mode] = run_workflow_online(
                module, inputs, outs[mode], opts, config_key_values=ckvs[mode],
                progress=progress, **run_kw,
            )  # fmt: skip
    for mode in MODES:
        if warmup[mode] is None:  # no warm-up: only timeframes_per_mode
            del warmup[mode]
    reports: dict[str, dict[str, Any]] = {}
    t0 = None
    if side_by_side:  # one time axis for both (CLOCK_MONOTONIC is system-wide)
        firsts = [r.arrival_s for m in MODES for r in summaries[m].timeframes.values()]
        t0 = min((a for a in firsts if a is not None), default=None)
    for mode in MODES:
        summary, out = summaries[mode], outs[mode]
        counts, why = accuracy_of(module, out, inputs) if summary.ok else (None, "run failed")
        reports[mode] = mode_report(
            mode, summary, budget_ms, out, ckvs[mode], counts, why, t0, schedule.bursts
        )
    report: dict[str, Any] = {
        "workflow": workflow,
        "inputs": list(inputs),
        "rate_hz": schedule.rate_hz,
        "bursts": [b.as_dict() for b in schedule.bursts],
        "budget_ms": budget_ms,
        "n_timeframes": max(reports[m]["timeframes_in"] for m in MODES),
        **burst_load(schedule, reports),
        "runner": runner,
        "run_order": (
            "side_by_side" if side_by_side else "interleaved" if interleaved else list(MODES)
        ),
        "side_by_side": bool(side_by_side),
        "interleaved": bool(interleaved),
        "cores": cores,
        "warmup": warmup,
        "modes_declared": sorted(modes),
        "percentile_method": PERCENTILE_METHOD,
        "adaptive": reports["adaptive"],
        "static": reports["static"],
        **compare(reports["static"], reports["adaptive"], budget_ms),
    }
    return report, summaries


def _fmt(v: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "-" if v is None else format(v, spec) + unit


def format_online_report(report: dict[str, Any]) -> str:
    """The short end-of-run table."""
    head = (
        f"{'mode':<9} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'>budget':>8} {'in':>5} "
        f"{'out':>5} {'backlog':>7} {'accuracy':>9}"
    )
    lines = [head, "-" * len(head)]
    for mode in MODES:
        m = report[mode]
        over = m["fraction_over_budget"]
        over_s = _fmt(None if over is None else 100 * over, ".1f", "%")
        acc = m["accuracy"]
        acc_s = _fmt(None if acc is None else 100 * acc, ".2f", "%")
        lines.append(
            f"{mode:<9} {_fmt(m['p50_latency_ms']):>9} {_fmt(m['p99_latency_ms']):>9} "
            f"{_fmt(m['max_latency_ms']):>9} {over_s:>8} "
            f"{m['timeframes_in']:>5} {m['timeframes_out']:>5} {m['max_backlog']:>7} "
            f"{acc_s:>9}"
        )
    bursts = ", ".join(
        f"{b['factor']:g}x {b['duration_s']:g} s @ {b['start_s']:g} s" for b in report["bursts"]
    )
    loss = report["accuracy_loss_pp"]
    failed = [k for k, v in report["target_checks"].items() if v is not True]
    lines.append(
        f"rate {report['rate_hz']:g} Hz{', bursts ' + bursts if bursts else ''}; budget "
        f"{_fmt(report['budget_ms'], 'g')} ms; p99 by numpy.percentile "
        f"(method={report['percentile_method']!r})"
    )
    if report.get("burst_interval_ms") and all(report[m]["burst_service_ms"] for m in MODES):
        lines.append(
            f"in the bursts: a timeframe every {report['burst_interval_ms']:.1f} ms (the fastest "
            "burst); per timeframe "
            + ", ".join(f"{m} {report[m]['burst_service_ms']:.1f} ms" for m in MODES)
            + " (a run keeps up while it takes less than the interval)"
        )
    lines.append(
        f"accuracy loss (static - adaptive): {_fmt(loss, '.2f')} pp; target met: "
        f"{'yes' if report['target_met'] else 'no (' + ', '.join(failed) + ')'}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# plots


def _figure(size: tuple[float, float] = (10.0, 5.5)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _shade_bursts(ax, report: dict[str, Any]) -> None:
    for k, b in enumerate(report["bursts"]):
        ax.axvspan(b["start_s"], b["start_s"] + b["duration_s"], color="tab:gray", alpha=0.2,
                   label="burst" if k == 0 else None)  # fmt: skip


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    return path


def _rows(report: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    return [r for r in report[mode]["per_timeframe"] if r["arrival_s"] is not None]


_COLORS = {"static": "tab:red", "adaptive": "tab:blue"}


def _name(report: dict[str, Any]) -> str:
    return (
        Path(report["workflow"]).stem if report["workflow"].endswith(".py") else report["workflow"]
    )


def plot_latency(report: dict[str, Any], path: Path) -> Path:
    """Latency per timeframe vs arrival time, both runs, budget line, bursts shaded."""
    fig, ax = _figure()
    _shade_bursts(ax, report)
    for mode in MODES:
        rows = [r for r in _rows(report, mode) if r["latency_ms"] is not None]
        ax.plot([r["arrival_s"] for r in rows], [r["latency_ms"] for r in rows], ".-", ms=3,
                lw=0.8, color=_COLORS[mode], label=mode)  # fmt: skip
    if report["budget_ms"] is not None:
        ax.axhline(report["budget_ms"], color="black", ls="--", lw=1, label="budget")
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{_name(report)}: latency per timeframe")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_rate(report: dict[str, Any], path: Path) -> Path:
    """Scheduled arrival rate and the rate the timeframes actually entered at."""
    bursts = [Burst(b["factor"], b["duration_s"], b["start_s"]) for b in report["bursts"]]
    schedule = ReplaySchedule(report["rate_hz"], bursts)
    rows = _rows(report, "adaptive")
    t_end = 1.02 * max([r["arrival_s"] for r in rows] + [b.end_s for b in bursts], default=1.0)
    t = np.linspace(0.0, t_end, 1000)
    fig, ax = _figure()
    _shade_bursts(ax, report)
    ax.step(t, schedule.rate_at(t), where="post", color="black", label="schedule")
    arr = np.asarray([r["arrival_s"] for r in rows])
    if arr.size > 1:
        width = max(t_end / 40, 1.0 / report["rate_hz"])
        edges = np.arange(0.0, t_end + width, width)
        counts, _ = np.histogram(arr, edges)
        ax.stairs(counts / width, edges, color="tab:blue", label="arrivals (binned)")
    ax.set_xlabel("time since the first arrival (s)")
    ax.set_ylabel("timeframes / s")
    ax.set_title(f"{_name(report)}: arrival rate")
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_exit_fractions(report: dict[str, Any], outdir: Path) -> list[Path]:
    """Stacked ``exit_fractions`` per timeframe of the adaptive run, one plot per processor."""
    rows = _rows(report, "adaptive")
    procs = sorted({p for r in rows for p, rep in r["reports"].items() if "exit_fractions" in rep})
    paths = []
    for proc in procs:
        pts = [
            (r["arrival_s"], r["reports"][proc]["exit_fractions"])
            for r in rows
            if isinstance(r["reports"].get(proc, {}).get("exit_fractions"), list)
        ]
        n = max((len(f) for _, f in pts), default=0)
        if not pts or n == 0:
            continue
        x = np.asarray([a for a, _ in pts])
        y = np.zeros((n, len(pts)))
        for j, (_, f) in enumerate(pts):
            y[: len(f), j] = f
        fig, ax = _figure()
        ax.stackplot(x, y, labels=[f"exit {k}" for k in range(n)], alpha=0.85)
        _shade_bursts(ax, report)
        ax.set_xlabel("arrival time (s)")
        ax.set_ylabel("fraction of items")
        ax.set_title(f"{_name(report)} (adaptive): exit fractions of {proc}")
        ax.legend(loc="upper right", fontsize="small")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in proc)
        paths.append(_save(fig, outdir / f"online_exit_fractions_{safe}.png"))
    return paths


def plot_accuracy(report: dict[str, Any], path: Path, window: int = 5) -> Path | None:
    """Accuracy per timeframe (rolling mean over ``window`` timeframes), both runs."""
    if all(report[m]["accuracy"] is None for m in MODES):
        return None
    fig, ax = _figure()
    _shade_bursts(ax, report)
    for mode in MODES:
        rows = [r for r in _rows(report, mode) if r["accuracy"] is not None]
        if not rows:
            continue
        x = np.asarray([r["arrival_s"] for r in rows])
        y = np.asarray([r["accuracy"] for r in rows])
        k = min(window, len(y))
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(x[k - 1 :], 100 * smooth, color=_COLORS[mode], label=f"{mode} ({k}-TF mean)")
    ax.set_xlabel("arrival time (s)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{_name(report)}: accuracy per timeframe")
    ax.legend(loc="lower left")
    return _save(fig, path)


def make_online_plots(report: dict[str, Any], outdir: str | os.PathLike[str]) -> list[Path]:
    """All PNG plots of an online report into ``outdir``."""
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
    "accuracy_of",
    "compare",
    "format_online_report",
    "json_safe",
    "make_online_plots",
    "mode_report",
    "online_modes_of",
    "run_online_comparison",
    "run_workflow_online",
    "static_output",
]
