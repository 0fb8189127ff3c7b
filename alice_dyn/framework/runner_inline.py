"""The inline runner: every processor in one process, timeframe by timeframe, deterministic.

Layer: framework. For each timeslice the processors run in topological order; a processor runs
when all its blocking inputs for that timeslice are there ("consume when all"; or with any of
them under the "when any" completion policies), with every part of an input that matches
several outputs, as decided by the :class:`~alice_dyn.framework.relayer.Relayer` that every
runner shares; messages are handed over as the objects themselves (zero copy). Sources run
until they call ``end_of_stream``; then every processor's ``end_of_stream`` runs in order. The
first error stops the run; the summary accounts for every timeframe that entered.

Online mode (``online=OnlineOptions(...)``, :mod:`alice_dyn.framework.online`): before the
sources are called for timeslice ``i`` the runner sleeps until its scheduled arrival, or goes on
at once when it is behind (the timeframe waited in the queue; nothing is dropped). Every
processor of the timeslice sees the same ``pc.timing``; the summary records each timeframe's
arrival, finish (``done_s``), backlog and ``pc.report`` values, offline too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator

from tqdm import tqdm

from alice_dyn.framework.config import ConfigStore
from alice_dyn.framework.message import Message, Parts
from alice_dyn.framework.online import (
    SERVICE_EMA,
    OnlineOptions,
    Pacer,
    TimeframeTiming,
    current_clock,
    quiet_gc,
)
from alice_dyn.framework.relayer import RUN, Relayer
from alice_dyn.framework.runtime import (
    FAILED,
    INCOMPLETE,
    PROCESSED,
    ProcessorError,
    ProcessorRuntime,
    RunSummary,
    config_for,
)
from alice_dyn.framework.topology import Topology


def run_inline(
    topology: Topology,
    config: ConfigStore | None = None,
    *,
    max_timeframes: int | None = None,
    progress: bool | None = None,
    keep_sink: bool = False,
    online: OnlineOptions | None = None,
) -> RunSummary:
    """Run ``topology`` in this process; returns the :class:`RunSummary` (never raises for a
    processor's error: it is in ``summary.error``).

    ``online``: replay the timeframes on its schedule with its latency budget (see the module
    docstring); ``None``: as fast as possible."""
    steps = iter_inline(
        topology, config, max_timeframes=max_timeframes, progress=progress,
        keep_sink=keep_sink, online=online,
    )  # fmt: skip
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def iter_inline(
    topology: Topology,
    config: ConfigStore | None = None,
    *,
    max_timeframes: int | None = None,
    progress: bool | None = None,
    keep_sink: bool = False,
    online: OnlineOptions | None = None,
    quiet_gc_online: bool = True,
) -> Generator[int, None, RunSummary]:
    """:func:`run_inline` one timeslice at a time: yields each timeslice's number after all its
    processors ran (the first ``next`` also initialises them), returns the summary when the run
    ends (``StopIteration.value``). Lets a driver interleave two runs in one process
    (``--interleaved``); ``quiet_gc_online=False``: the driver keeps the garbage collector
    quiet itself (:func:`~alice_dyn.framework.online.quiet_gc` once around both runs)."""
    summary = RunSummary("inline" if online is None else "inline-online")
    pacer = Pacer(online) if online is not None else None
    clock = current_clock(online.clock if online is not None else None)
    t_start = time.perf_counter()
    run = _InlineRun(topology, config, summary, keep_sink)
    # progress None: a bar only on a terminal (tqdm's auto mode)
    bar = tqdm(
        desc="timeframes",
        unit="TF",
        total=max_timeframes,
        disable=None if progress is None else not progress,
    )
    gc_guard = contextlib.ExitStack()
    try:
        for rt in run.runtimes.values():
            rt.init()
        # after init: models are frozen
        gc_guard.enter_context(quiet_gc(online is not None and quiet_gc_online))
        timeslice = 0
        service_ms: float | None = None  # the chain's recent time per timeframe (online load)
        while run.relayer.active_sources and (max_timeframes is None or timeslice < max_timeframes):
            if pacer is not None:
                timing = pacer.wait(timeslice)
                timing.service_ms = service_ms
            else:
                timing = TimeframeTiming(clock.now())
            entered = clock.now()
            produced = run.timeslice(timeslice, timing)
            if produced:
                bar.update(1)
            if produced and pacer is not None:  # the load, for the next timeframes
                took = 1e3 * (clock.now() - entered)
                service_ms = took if service_ms is None else (
                    SERVICE_EMA * took + (1.0 - SERVICE_EMA) * service_ms
                )  # fmt: skip
            yield timeslice
            timeslice += 1
        for rt in run.runtimes.values():
            rt.end_of_stream()
    except ProcessorError as err:
        summary.error = err
    finally:
        gc_guard.close()
        for rt in run.runtimes.values():
            rt.stop()
        bar.close()
        summary.wall_seconds = time.perf_counter() - t_start
    if pacer is not None:
        summary.cap_backlog()
    return summary


class _InlineRun:
    """One inline run's processors (runtimes), relayer and summary; objects travel as they
    are (the relayer holds references, nothing is counted)."""

    def __init__(
        self,
        topology: Topology,
        config: ConfigStore | None,
        summary: RunSummary,
        keep_sink: bool,
    ) -> None:
        self.topology = topology
        self.summary = summary
        self.keep_sink = keep_sink
        self.runtimes = {
            p.name: ProcessorRuntime(p, config_for(p, config)) for p in topology.processors
        }
        summary.metrics = {n: rt.metrics for n, rt in self.runtimes.items()}
        self.relayer: Relayer[Message] = Relayer(topology)

    def _to_sink(self, msg: Message) -> bool:
        self.summary.sink_count += 1
        if self.keep_sink:
            self.summary.sink.append(msg)
        return True

    def timeslice(self, ts: int, timing: TimeframeTiming) -> bool:
        """Run every processor on timeslice ``ts`` in topological order (all producers of a
        processor are then done with ``ts``); ``True`` when a source made a timeframe. Raises
        the first :class:`ProcessorError` (marked in the summary)."""
        summary, relayer = self.summary, self.relayer
        produced = False
        tf_id = ts
        relayer.open(ts)
        for proc in self.topology.processors:
            name = proc.name
            if proc.is_source:
                if name not in relayer.active_sources:
                    continue
                try:
                    res = self.runtimes[name].process(ts, {}, timing)
                except ProcessorError as err:
                    summary.mark(ts, err.tf_id or ts, FAILED, name, err.cause)
                    raise
                if res.eos:
                    relayer.end_source(name, ts)
                relayer.done(name, ts)
                if not res.outputs:
                    continue
                produced = True
                tf_id = res.tf_id
                summary.mark(ts, tf_id, PROCESSED)
                summary.record_run(ts, name, timing, res.done_s, res.reports)
                relayer.route(name, ts, res.outputs, self._to_sink)
                continue
            for d in relayer.decide(name):  # at most timeslice ts
                if d.kind == INCOMPLETE:
                    summary.mark(ts, tf_id, INCOMPLETE, name, d.why)
                elif d.kind == RUN:
                    self._run(name, ts, d.inputs, timing)
        relayer.complete()
        return produced

    def _run(
        self, name: str, ts: int, inputs: dict[str, Message | Parts], timing: TimeframeTiming
    ) -> None:
        try:
            res = self.runtimes[name].process(ts, inputs, timing)
        except ProcessorError as err:
            self.summary.mark(ts, err.tf_id, FAILED, name, err.cause)
            raise
        self.summary.record_run(ts, name, timing, res.done_s, res.reports)
        self.relayer.route(name, ts, res.outputs, self._to_sink)
        self.relayer.done(name, ts)


__all__ = ["PROCESSED", "iter_inline", "run_inline"]
