"""The online comparison harness: one workflow replayed in its static and adaptive configurations.

Layer: online (above ``framework``, physics-free). ``alice-dyn run WORKFLOW --online ...``
calls :func:`run_online_comparison`: both configurations are replayed on the same
:class:`~alice_dyn.framework.online.ReplaySchedule` with the same latency budget, and
:mod:`alice_dyn.online.report` turns the two run summaries into the report. A workflow module
may declare

* ``online_modes() -> {"adaptive": "Group.key=v;...", "static": "..."}``: configKeyValues
  applied over the user's (absent: both runs use the user's configuration);
* ``online_accuracy(output, inputs) -> {tf_id: {metric: (n_correct, n_total)}}``: per-timeframe
  counts, ``"accuracy"`` the headline (absent, or raising
  :class:`~alice_dyn.framework.online.NoTruthError`: accuracy ``null``).

Three run orders, each after an untimed warm-up of each configuration (:func:`warm_up`):

* sequential (default): ``static``, then ``adaptive``, in this process;
* ``side_by_side=True`` (``--side-by-side``): both at the same time, each in its own process
  pinned to its own CPU core, started together on the same schedule: on a shared machine whose
  speed drifts from minute to minute both then see the same conditions (each process does its
  own warm-up first);
* ``interleaved=True`` (``--interleaved``): both in this process, pinned to one core, timeframe
  by timeframe in turn (static then adaptive on even timeslices, adaptive then static on odd
  ones), each replay on its own :class:`~alice_dyn.framework.online.ReplayClock`: real time
  while its own workflow works, stopped while the other's works, the waits for the next arrival
  jumped over. Each timeframe of one run is processed within a timeframe's time of the same
  timeframe of the other, so a machine whose speed drifts within seconds slows both alike; the
  latencies are those of a real-time replay at the speed the work had.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import multiprocessing as mp
import sys
import tempfile
import time
import traceback
from collections.abc import Generator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import ModuleType
from typing import Any

from alice_dyn.framework.executable import configure_specs, run_specs
from alice_dyn.framework.online import (
    Clock,
    NoTruthError,
    OnlineOptions,
    ReplayClock,
    ReplaySchedule,
    quiet_gc,
)
from alice_dyn.framework.runner_inline import iter_inline
from alice_dyn.framework.runtime import RunSummary
from alice_dyn.framework.spec import SpecError
from alice_dyn.online.cores import one_core_one_thread, side_by_side_cores, usable_cores
from alice_dyn.online.report import MODES, Counts, comparison_report, mode_report

#: side by side: the first arrival, s after both processes passed the start barrier (room for
#: the workflow's init, e.g. loading models)
SIDE_BY_SIDE_START_S = 2.0
#: side by side: how long a process waits for the other at the start barrier, s
SIDE_BY_SIDE_BARRIER_S = 900

#: per mode: the run's summary and its warm-up record (``None``: no warm-up)
Runs = dict[str, tuple[RunSummary, dict[str, Any] | None]]


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How each configuration's run is made, the same for both (the options of
    :func:`~alice_dyn.framework.executable.run_specs` other than the configuration, the output
    and the replay); picklable, for the side-by-side processes. ``timeout_s``: s."""

    config_files: Sequence[str] = ()
    runner: str = "inline"
    pipeline: dict[str, int] | None = None
    forwarding_policy: str = "dangling"
    max_timeframes: int | None = None
    queue_depth: int = 4
    timeout_s: float | None = None

    def kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments of ``run_specs``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# --------------------------------------------------------------------------------------------
# one configuration


def static_output(output: str) -> str:
    """``reco.root`` -> ``reco.static.root`` (``.static`` before the suffix)."""
    p = Path(output)
    return str(p.with_name(f"{p.stem}.static{p.suffix}"))


def mode_outputs(output: str) -> dict[str, str]:
    """``{mode: output file}``: the adaptive run writes ``output``, the static one
    :func:`static_output` of it."""
    return {m: output if m == "adaptive" else static_output(output) for m in MODES}


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


def mode_config_key_values(
    config_key_values: Sequence[str], modes: dict[str, str]
) -> dict[str, list[str]]:
    """``{mode: configKeyValues}``: the user's, then the mode's from ``online_modes()``."""
    return {m: [*config_key_values, *([modes[m]] if modes.get(m) else [])] for m in MODES}


def replay_length(max_timeframes: int | None, n_timeframes: int | None) -> int | None:
    """Timeframes the replay will have (``None``: unknown): ``n_timeframes`` (default:
    ``max_timeframes``), at most ``max_timeframes``."""
    n = max_timeframes if n_timeframes is None else n_timeframes
    if max_timeframes is not None and n is not None:
        n = min(n, max_timeframes)
    return n


def run_workflow_online(
    module: ModuleType,
    inputs: Sequence[str],
    output: str,
    online: OnlineOptions | None,
    *,
    config_key_values: Sequence[str] = (),
    settings: RunSettings = RunSettings(),
    progress: bool | None = False,
) -> RunSummary:
    """Define the workflow for ``output``, configure it (INI files, then ``config_key_values``)
    and run it as ``settings`` say, in online mode unless ``online`` is ``None``."""
    return run_specs(
        module.define_workflow(list(inputs), output), config_key_values=config_key_values,
        progress=progress, online=online, **settings.kwargs(),
    )  # fmt: skip


def accuracy_of(
    module: ModuleType, output: str, inputs: Sequence[str]
) -> tuple[Counts | None, str | None]:
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
    out: Counts = {}
    for tf, metrics in counts.items():
        out[int(tf)] = {str(k): (int(v[0]), int(v[1])) for k, v in metrics.items()}
    return out, None


def warm_up(
    module: ModuleType,
    inputs: Sequence[str],
    output: str,
    ckv: Sequence[str],
    n: int,
    settings: RunSettings = RunSettings(),
) -> dict[str, Any] | None:
    """``n`` untimed timeframes of one configuration, inline (with the run's INI files and
    forwarding policy), into a temporary directory (JIT compilation, imports and file caches
    then fall on no timed run)."""
    if not n:
        return None
    print(f"== warm-up: {n} timeframe(s), not timed", flush=True)
    with tempfile.TemporaryDirectory(prefix="alice_dyn_warmup_") as tmp:
        inline = RunSettings(settings.config_files, forwarding_policy=settings.forwarding_policy,
                             max_timeframes=n)  # fmt: skip
        warm = run_workflow_online(
            module, inputs, str(Path(tmp) / f"warmup{Path(output).suffix}"), None,
            config_key_values=ckv, settings=inline,
        )  # fmt: skip
    return {
        "timeframes": len(warm.timeframes),
        "wall_s": warm.wall_seconds,
        "error": str(warm.error) if warm.error is not None else None,
    }


# --------------------------------------------------------------------------------------------
# the three run orders


@dataclasses.dataclass(frozen=True)
class Replay:
    """What both configurations' replays share: the workflow, its inputs, per mode the output
    and ``--configKeyValues``, the replay options, the warm-up length and the run settings."""

    module: ModuleType
    inputs: Sequence[str]
    outs: dict[str, str]
    ckvs: dict[str, list[str]]
    opts: OnlineOptions
    warm_n: int
    settings: RunSettings

    def warm_up(self, mode: str) -> dict[str, Any] | None:
        """The untimed warm-up of ``mode`` (:func:`warm_up`)."""
        return warm_up(
            self.module, self.inputs, self.outs[mode], self.ckvs[mode], self.warm_n,
            self.settings,
        )  # fmt: skip


def _run_sequential(r: Replay, progress: bool | None) -> Runs:
    """Both warm-ups, then the static replay, then the adaptive one, in this process."""
    warm = {m: r.warm_up(m) for m in MODES}
    summaries = {}
    for mode in MODES:
        print(f"== online replay, {mode} configuration -> {r.outs[mode]}", flush=True)
        summaries[mode] = run_workflow_online(
            r.module, r.inputs, r.outs[mode], dataclasses.replace(r.opts),
            config_key_values=r.ckvs[mode], settings=r.settings, progress=progress,
        )  # fmt: skip
    return {m: (summaries[m], warm[m]) for m in MODES}


def _side_by_side_child(
    conn: Connection,
    barrier: Any,
    core: int,
    workflow_file: str,
    inputs: list[str],
    out: str,
    ckv: list[str],
    opts: OnlineOptions,
    warm_n: int,
    settings: RunSettings,
) -> None:
    """One configuration in its own process: pinned to ``core``, one thread for numba and
    PyTorch, warm-up, then the timed replay once both processes are ready; sends
    ``("ok", summary, warm-up)`` or ``("error", traceback, None)`` through ``conn``."""
    try:
        with one_core_one_thread(core):
            from alice_dyn.framework.workflows import load_workflow

            module = load_workflow(workflow_file)
            warm = warm_up(module, inputs, out, ckv, warm_n, settings)
            barrier.wait(timeout=SIDE_BY_SIDE_BARRIER_S)
            # both replays start at the same moment, after time for the workflow's init
            opts = dataclasses.replace(opts, start_s=time.monotonic() + SIDE_BY_SIDE_START_S)
            summary = run_workflow_online(
                module, inputs, out, opts, config_key_values=ckv, settings=settings,
            )  # fmt: skip
        conn.send(("ok", summary, warm))
    except BaseException:  # report everything to the parent, which names the mode
        conn.send(("error", traceback.format_exc(), None))
    finally:
        conn.close()


def _receive_all(
    procs: dict[str, BaseProcess], conns: dict[str, Connection], barrier: Any
) -> dict[str, tuple]:
    """Each child's message, by mode, as it comes; a child that dies or fails aborts the start
    barrier, so that the other does not wait for it."""
    results: dict[str, tuple] = {}
    pending = {conns[m]: m for m in MODES}
    while pending:
        for c in wait(list(pending)):
            mode = pending.pop(c)
            try:
                results[mode] = c.recv()
            except EOFError:
                procs[mode].join(timeout=5)
                code = procs[mode].exitcode
                results[mode] = ("error", f"the process died (exit code {code})", None)
            if results[mode][0] != "ok":
                barrier.abort()  # the other process must not wait for this one
    return results


def _raise_if_failed(results: dict[str, tuple]) -> None:
    """One ``RuntimeError`` naming every mode whose process failed, with their tracebacks."""
    errors = {m: str(r[1]) for m, r in results.items() if r[0] != "ok"}
    if errors:
        first = "; ".join(f"{m}: {e.strip().splitlines()[-1]}" for m, e in errors.items())
        raise RuntimeError(
            f"side by side online run failed ({first})\n" + "\n".join(errors.values())
        )


def _run_side_by_side(r: Replay, cores: dict[str, int]) -> Runs:
    """Both configurations at once, each in its own (spawned) process on its own core."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(MODES))
    procs, conns = {}, {}
    for mode in MODES:
        recv, send = ctx.Pipe(duplex=False)
        procs[mode] = ctx.Process(
            target=_side_by_side_child,
            args=(send, barrier, cores[mode], r.module.__file__, list(r.inputs), r.outs[mode],
                  r.ckvs[mode], r.opts, r.warm_n, r.settings),
            name=f"alice-dyn online {mode}",
        )  # fmt: skip
        procs[mode].start()
        send.close()
        conns[mode] = recv
    try:
        results = _receive_all(procs, conns, barrier)
    finally:
        for p in procs.values():
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    _raise_if_failed(results)
    return {m: (results[m][1], results[m][2]) for m in MODES}


def _interleaved_steps(
    r: Replay, clocks: dict[str, ReplayClock]
) -> dict[str, Generator[int, None, RunSummary]]:
    """Per mode, its inline run as a generator of timeslices (:func:`iter_inline`) on its own
    replay clock; the collector is left to the driver."""
    steps = {}
    for m in MODES:
        topology, store = configure_specs(
            r.module.define_workflow(list(r.inputs), r.outs[m]), r.ckvs[m],
            r.settings.config_files, r.settings.forwarding_policy,
        )  # fmt: skip
        steps[m] = iter_inline(
            topology, store, max_timeframes=r.settings.max_timeframes, progress=False,
            online=dataclasses.replace(r.opts, clock=clocks[m]), quiet_gc_online=False,
        )  # fmt: skip
    return steps


def _step_in_turn(
    steps: dict[str, Generator[int, None, RunSummary]],
    clocks: dict[str, ReplayClock],
    stack: contextlib.ExitStack,
) -> dict[str, RunSummary]:
    """One timeslice of each run in turn (the order flips every timeslice), each while its own
    clock runs, until both ended; the collector goes quiet after both runs' init."""
    summaries: dict[str, RunSummary] = {}
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
    return summaries


def _run_interleaved(r: Replay, core: int) -> Runs:
    """Both configurations in this process on ``core``, one timeframe of each in turn, each on
    its own :class:`ReplayClock` (module docstring)."""
    warm = {m: r.warm_up(m) for m in MODES}
    clocks = {m: ReplayClock() for m in MODES}
    steps = _interleaved_steps(r, clocks)
    with contextlib.ExitStack() as stack:
        stack.enter_context(one_core_one_thread(core))
        stack.callback(lambda: [g.close() for g in steps.values()])
        summaries = _step_in_turn(steps, clocks, stack)
    return {m: (summaries[m], warm[m]) for m in MODES}


def _check_run_order(
    clock: Clock | None, runner: str, warmup_timeframes: int, side_by_side: bool, interleaved: bool
) -> None:
    """``ValueError`` for options the chosen run order cannot take."""
    if warmup_timeframes < 0:
        raise ValueError(f"--warmup-tf must be >= 0, not {warmup_timeframes}")
    if side_by_side and interleaved:
        raise ValueError("--side-by-side and --interleaved exclude each other")
    if (side_by_side or interleaved) and clock is not None:
        raise ValueError(
            "interleaved runs keep their own replay clocks" if interleaved
            else "side by side runs need the real clock (two processes)"
        )  # fmt: skip
    if interleaved and runner != "inline":
        raise ValueError("interleaved runs need the inline runner")


def _replay(
    r: Replay, *, side_by_side: bool, interleaved: bool, progress: bool | None
) -> tuple[Runs, dict[str, int] | None]:
    """Both runs in the chosen order; with the cores they ran on (``None``: not pinned)."""
    outs = r.outs
    if interleaved:
        core = usable_cores()[0]
        print(f"== online replay, static and adaptive configurations in turn on core "
              f"{core} -> {outs['static']}, {outs['adaptive']} (interleaved)",
              flush=True)  # fmt: skip
        return _run_interleaved(r, core), {m: core for m in MODES}
    if side_by_side:
        cores = side_by_side_cores()
        for mode in MODES:
            print(f"== online replay, {mode} configuration on core {cores[mode]} -> "
                  f"{outs[mode]} (side by side)", flush=True)  # fmt: skip
        return _run_side_by_side(r, cores), cores
    return _run_sequential(r, progress), None


# --------------------------------------------------------------------------------------------
# the comparison


def _warmup_record(warm_n: int, runs: Runs) -> dict[str, Any]:
    """The report's ``warmup``: the timeframes per mode, and each mode's warm-up if it had one."""
    warmup: dict[str, Any] = {"timeframes_per_mode": warm_n}
    warmup.update({m: runs[m][1] for m in MODES if runs[m][1] is not None})
    return warmup


def _first_arrival_s(summaries: dict[str, RunSummary]) -> float | None:
    """The earliest arrival of either run, s (one time axis: CLOCK_MONOTONIC is system-wide)."""
    firsts = [r.arrival_s for m in MODES for r in summaries[m].timeframes.values()]
    return min((a for a in firsts if a is not None), default=None)


def _mode_reports(
    module: ModuleType,
    inputs: Sequence[str],
    outs: dict[str, str],
    ckvs: dict[str, list[str]],
    summaries: dict[str, RunSummary],
    schedule: ReplaySchedule,
    budget_ms: float | None,
    first_arrival_s: float | None,
) -> dict[str, dict[str, Any]]:
    """Each run's :func:`mode_report`, with the workflow's accuracy counts of its output."""
    reports = {}
    for mode in MODES:
        summary, out = summaries[mode], outs[mode]
        counts, why = accuracy_of(module, out, inputs) if summary.ok else (None, "run failed")
        reports[mode] = mode_report(
            mode, summary, budget_ms, out, ckvs[mode], counts, why, first_arrival_s,
            schedule.bursts,
        )  # fmt: skip
    return reports


def run_online_comparison(
    module: ModuleType,
    workflow: str,
    inputs: Sequence[str],
    output: str,
    schedule: ReplaySchedule,
    budget_ms: float | None,
    *,
    config_key_values: Sequence[str] = (),
    settings: RunSettings = RunSettings(),
    n_timeframes: int | None = None,
    progress: bool | None = False,
    clock: Clock | None = None,
    warmup_timeframes: int = 1,
    side_by_side: bool = False,
    interleaved: bool = False,
) -> tuple[dict[str, Any], dict[str, RunSummary]]:
    """Run ``static`` then ``adaptive`` under ``schedule`` (or both at once, each on its own
    core, with ``side_by_side``; or in turn, one timeframe each, on one core, with
    ``interleaved``); the report and both summaries.

    The adaptive run writes ``output``, the static one :func:`static_output` of it; both run
    as ``settings`` say (runner, lanes, INI files, ``max_timeframes``...).
    ``budget_ms``: latency budget, ms. ``n_timeframes``: length of the replay when known (caps
    the backlog ``pc.timing`` shows near the end). ``warmup_timeframes``: first, each
    configuration processes that many timeframes inline, untimed, into a temporary directory, so
    that one-off costs of the process (JIT compilation, imports, file caches) fall on neither
    timed run (0: no warm-up). ``clock``: sequential runs only (tests)."""
    modes = online_modes_of(module)
    _check_run_order(clock, settings.runner, warmup_timeframes, side_by_side, interleaved)
    ckvs = mode_config_key_values(config_key_values, modes)
    outs = mode_outputs(output)
    for out in outs.values():
        Path(out).resolve().parent.mkdir(parents=True, exist_ok=True)
    n_replay = replay_length(settings.max_timeframes, n_timeframes)
    opts = OnlineOptions(schedule, budget_ms, n_replay, clock)
    replay = Replay(module, inputs, outs, ckvs, opts, warmup_timeframes, settings)
    runs, cores = _replay(
        replay, side_by_side=side_by_side, interleaved=interleaved, progress=progress
    )
    summaries = {m: runs[m][0] for m in MODES}
    t0 = _first_arrival_s(summaries) if side_by_side else None
    reports = _mode_reports(module, inputs, outs, ckvs, summaries, schedule, budget_ms, t0)
    report = comparison_report(
        reports, schedule, budget_ms, workflow=workflow, inputs=inputs, runner=settings.runner,
        side_by_side=side_by_side, interleaved=interleaved, cores=cores,
        warmup=_warmup_record(warmup_timeframes, runs), modes_declared=modes,
    )  # fmt: skip
    return report, summaries


__all__ = [
    "SIDE_BY_SIDE_START_S",
    "RunSettings",
    "accuracy_of",
    "mode_config_key_values",
    "mode_outputs",
    "online_modes_of",
    "replay_length",
    "run_online_comparison",
    "run_workflow_online",
    "static_output",
    "warm_up",
]
