"""The multi-process runner: one OS process per processor instance, payloads in shared memory.

Layer: framework. Same semantics as :func:`~alice_dyn.framework.runner_inline.run_inline` (same
outputs, same fate of every timeframe), with processors running concurrently. This module holds
the driver (the calling process) and :func:`run_multiprocess`; the parts live beside it:

* **Processes and pipes** (:mod:`~alice_dyn.framework.mp_lanes`): every processor instance
  ("lane") is a worker process (:mod:`~alice_dyn.framework.mp_worker`) running a
  :class:`~alice_dyn.framework.runtime.ProcessorRuntime`; ``pipeline={"name": N}`` starts N lanes
  of a processor, each given the next timeslice when it has the fewest in flight. Sources have one
  lane. The driver waits on every pipe and process sentinel with one selector, so it never blocks
  on a worker.
* **Driver.** The calling process routes every message with the
  :class:`~alice_dyn.framework.relayer.Relayer` that the inline runner uses, but asynchronously:
  a processor's timeslice ``t`` is decided (run, skipped, or *incomplete* when a blocking input is
  missing under consume when all; see the relayer for the other completion policies and inputs
  with several parts) once all its producers are done with ``t`` and it has decided
  ``t - 1``; so each lane sees timeslices in increasing order, outputs of parallel lanes are
  consumed downstream in timeslice order, and Condition inputs are the latest one produced at or
  before ``t``. Sources are asked for one timeslice at a time (a source that calls
  ``end_of_stream`` is never run again, as inline). What the summary gets is written in a fixed
  order once a timeslice is complete (:mod:`~alice_dyn.framework.mp_book`).
* **Transport.** ``"ndarray"`` and ``"columns"`` payloads live in shared memory
  (:mod:`alice_dyn.framework.shm`): ``make``/``make_columns`` allocate there directly (zero
  copy), ``snapshot`` copies once, ``adopt`` of heap memory copies when sent; consumers get
  read-only views. Only small descriptors and ``"object"`` payloads are pickled. The driver
  counts the pending deliveries of every segment (:mod:`~alice_dyn.framework.mp_segments`) and
  hands a segment back to its producer for reuse when its last reader is done.
* **Backpressure.** At most ``queue_depth`` x (largest lane count) timeslices are in flight
  (asked from the sources and not yet finished by every processor): a slow consumer holds the
  sources back, and memory stays bounded.
* **Failures.** An exception in a worker stops the run with ``summary.error`` = the worker's
  :class:`~alice_dyn.framework.runtime.ProcessorError`; a worker that dies gives
  ``ProcessorError(stage="process died")`` naming the processor, lane and timeframe(s) it held.
  The driver only waits on pipes and process sentinels (never blocks on a worker) and honours
  ``timeout_s``. Timeframes in flight when the run stops are marked failed ("aborted").
  Workers are always stopped (``Task.stop``), then terminated if they do not exit within
  :data:`STOP_GRACE_S`.
* **Timing and online mode** (:class:`~alice_dyn.framework.mp_book.Arrivals`): each timeslice
  gets one :class:`~alice_dyn.framework.online.TimeframeTiming` when the sources are asked for it
  (``pc.timing`` is the same in every process); with ``online=OnlineOptions(...)`` the sources are
  asked for timeslice ``i`` only once it has arrived on the replay schedule.
"""

from __future__ import annotations

import multiprocessing as mp
import time

from tqdm import tqdm

from alice_dyn.framework.config import ConfigStore
from alice_dyn.framework.metrics import ProcessorMetrics
from alice_dyn.framework.mp_flow import DataFlow
from alice_dyn.framework.mp_lanes import Lane
from alice_dyn.framework.mp_worker import POLL_S
from alice_dyn.framework.online import OnlineOptions
from alice_dyn.framework.runtime import ProcessorError, RunSummary, config_for
from alice_dyn.framework.spec import SpecError
from alice_dyn.framework.topology import Topology

#: seconds the workers get to run ``Task.stop`` and exit before they are terminated
STOP_GRACE_S = 5.0

#: shared-memory bookkeeping of the last run in this process (diagnostics and tests): segment
#: uses reported by workers (``used``), handed back to their producer once every reader was done
#: (``returned``: pooled for reuse, or unlinked by the producer), ``unlinked`` by the driver,
#: ``released_at_end`` (still referenced at the end, e.g. cached Condition inputs) and ``swept``
#: (left behind by a failure)
last_transport_stats: dict[str, int] = {}


class _Driver:
    """One multi-process run in phases: start the workers, wait until they are ready, stream
    (the :class:`~alice_dyn.framework.mp_flow.DataFlow` reacts to the workers), end of stream,
    stop; honours ``timeout_s``."""

    def __init__(
        self,
        topology: Topology,
        config: ConfigStore | None,
        pipeline: dict[str, int],
        max_timeframes: int | None,
        progress: bool | None,
        keep_sink: bool,
        queue_depth: int,
        start_method: str,
        timeout_s: float | None,
        online: OnlineOptions | None = None,
    ) -> None:
        self.topology = topology
        self.config = config
        self.lanes_of = {p.name: pipeline.get(p.name, 1) for p in topology.processors}
        self.max_tf = max_timeframes
        self.progress = progress
        self.window = queue_depth * max(self.lanes_of.values())
        self.timeout_s = timeout_s
        self.flow = DataFlow(
            topology, self.lanes_of, self.window, max_timeframes, keep_sink, start_method, online
        )
        self.lanes = self.flow.lanes
        self.summary = self.flow.summary
        self.eos_lane: Lane | None = None
        self.deadline: float | None = None

    def _start_workers(self) -> None:
        ctx = mp.get_context(self.lanes.start_method)
        self.flow.abort_event = ctx.Event()
        configs, transports = {}, {}
        for p in self.topology.processors:
            configs[p.name] = config_for(p, self.config)
            upstream = sum(self.lanes_of[q] for q in self.flow.relayer.producers[p.name])
            transports[p.name] = {
                "pool_slabs": self.window + 2,
                "cache": (self.window + 2) * upstream,
                "online": self.flow.online,
            }
        self.lanes.start(
            self.topology,
            self.lanes_of,
            configs,
            transports,
            self.flow.prefix,
            self.flow.abort_event,
        )

    def _check_deadline(self) -> bool:
        if self.deadline is None or time.monotonic() < self.deadline:
            return False
        all_lanes = self.lanes.all
        waiting = [ln for ln in all_lanes if ln.inflight and ln.live]
        ts = min((min(ln.inflight) for ln in waiting), default=None)
        if ts is not None:
            lane = next(ln for ln in waiting if ts in ln.inflight)
        elif self.flow.phase == "eos" and self.eos_lane is not None:
            lane = self.eos_lane
        else:
            lane = next((ln for ln in all_lanes if ln.state == "starting"), None)
        name = lane.name if lane is not None else self.flow.names[0]
        cause = f"the run did not finish within timeout_s={self.timeout_s}"
        if lane is not None:
            cause += f" (waiting for {lane.label} in {self.flow.phase})"
        tf = self.flow.book.tf_of(ts)
        err = ProcessorError(name, "timeout", cause, ts, tf)
        self.flow.fail(err, [(ts, tf, name, cause)] if ts is not None else [])
        return True

    def _wait_step(self) -> None:
        timeout = POLL_S
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
        next_due = self.flow.arrivals.next_due
        if next_due is not None:  # online: wake up when the next timeframe arrives
            timeout = min(timeout, next_due - self.flow.arrivals.clock.now())
        self.lanes.poll(timeout)

    # ---- phases ---------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        while any(ln.state == "starting" for ln in self.lanes.all) and not self.flow.aborted:
            self._wait_step()
            self._check_deadline()

    def _stream(self) -> None:
        self.flow.phase = "stream"
        self.flow.pump()
        while not self.flow.aborted and not self.flow.relayer.finished:
            self._wait_step()
            if self._check_deadline():
                return
            self.flow.pump()

    def _end_of_stream(self) -> None:
        self.flow.phase = "eos"
        for name in self.flow.names:  # in topological order, one instance after the other
            for lane in self.lanes.by_name[name]:
                self.eos_lane = lane
                self.lanes.send(lane, ("eos",))
                while not lane.eos_done and not self.flow.aborted:
                    self._wait_step()
                    if self._check_deadline():
                        return
                if self.flow.aborted:
                    return

    def _shutdown(self) -> None:
        self.flow.phase = "stop"
        self.flow.stop_routing()
        interrupted = self.lanes.stop(STOP_GRACE_S)
        for name in self.flow.names:
            self.summary.metrics[name] = m = ProcessorMetrics(name)
            for lane in self.lanes.by_name.get(name, []):
                m.merge(lane.final_metrics if lane.final_metrics is not None else lane.shadow)
        stats = self.flow.ledger.close()
        last_transport_stats.clear()
        last_transport_stats.update(stats, prefix=self.flow.prefix)
        if interrupted is not None:
            raise interrupted

    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        if self.timeout_s is not None:
            self.deadline = time.monotonic() + self.timeout_s
        try:
            self._start_workers()
            self.lanes.watch()
            # the bar (and its monitor thread) only after the workers are forked
            self.flow.bar = tqdm(
                desc="timeframes",
                unit="TF",
                total=self.max_tf,
                disable=None if self.progress is None else not self.progress,
            )
            self._wait_ready()
            if not self.flow.aborted:
                self._stream()
            if not self.flow.aborted:
                self._end_of_stream()
        finally:
            self._shutdown()
            if self.flow.bar is not None:
                self.flow.bar.close()
            self.summary.wall_seconds = time.perf_counter() - t0
        if self.flow.arrivals.pacer is not None:
            self.summary.cap_backlog()
        return self.summary


def run_multiprocess(
    topology: Topology,
    config: ConfigStore | None = None,
    *,
    pipeline: dict[str, int] | None = None,
    max_timeframes: int | None = None,
    progress: bool | None = None,
    keep_sink: bool = False,
    queue_depth: int = 4,
    start_method: str = "fork",
    timeout_s: float | None = None,
    online: OnlineOptions | None = None,
) -> RunSummary:
    """Run ``topology`` with one process per processor instance; returns the
    :class:`~alice_dyn.framework.runtime.RunSummary` (a processor's error, a dead worker or the
    timeout are in ``summary.error``, never raised).

    ``pipeline``: lanes per processor (``{"name": N}``; sources have one); ``queue_depth``:
    timeslices in flight per lane of the most parallel processor (backpressure);
    ``start_method``: ``"fork"`` (default) or ``"spawn"``/``"forkserver"`` (then the processors'
    algorithms must be importable, or the specs must carry a ``factory``); ``timeout_s``: the
    run stops with a ``"timeout"`` error after that many seconds; ``online``: replay the
    timeframes on a schedule with a latency budget (:mod:`alice_dyn.framework.online`; use the
    real clock: the driver waits on pipes). Raises :class:`SpecError` for
    bad ``pipeline`` entries and ``ValueError`` for bad arguments.
    """
    lanes = dict(pipeline or {})
    for name, n in lanes.items():
        if name not in topology.by_name:
            raise SpecError(f"pipeline: unknown processor {name!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise SpecError(f"pipeline: {name!r} needs a number of lanes >= 1, not {n!r}")
        if n > 1 and topology.by_name[name].is_source:
            raise SpecError(f"pipeline: source {name!r} cannot have {n} lanes (sources have one)")
    if isinstance(queue_depth, bool) or not isinstance(queue_depth, int) or queue_depth < 1:
        raise ValueError(f"queue_depth must be an integer >= 1, not {queue_depth!r}")
    if start_method not in mp.get_all_start_methods():
        raise ValueError(f"start_method {start_method!r}: use one of {mp.get_all_start_methods()}")
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
    driver = _Driver(
        topology, config, lanes, max_timeframes, progress, keep_sink, queue_depth,
        start_method, timeout_s, online,
    )  # fmt: skip
    return driver.run()


__all__ = ["STOP_GRACE_S", "last_transport_stats", "run_multiprocess"]
