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
  missing: consume when all) once all its producers are done with ``t`` and it has decided
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

from alice_dyn.framework import shm
from alice_dyn.framework.config import ConfigStore
from alice_dyn.framework.metrics import ProcessorMetrics
from alice_dyn.framework.mp_book import Arrivals, TimesliceBook
from alice_dyn.framework.mp_lanes import Lane, Lanes
from alice_dyn.framework.mp_segments import SegmentLedger
from alice_dyn.framework.mp_worker import POLL_S
from alice_dyn.framework.online import OnlineOptions
from alice_dyn.framework.relayer import INCOMPLETE, RUN, Relayer
from alice_dyn.framework.runtime import FAILED, PROCESSED, ProcessorError, RunSummary, config_for
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
    """One multi-process run: starts the lanes, relays results, asks the sources, stops."""

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
        self.keep_sink = keep_sink
        self.window = queue_depth * max(self.lanes_of.values())
        self.timeout_s = timeout_s
        self.online = online is not None
        self.summary = RunSummary("multiprocess" if online is None else "multiprocess-online")
        self.names = [p.name for p in topology.processors]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.arrivals = Arrivals(online, len(self.names), sum(self.lanes_of.values()))
        self.book = TimesliceBook(self.summary, list(topology.sources), self.index, self.arrivals)

        self.lanes = Lanes(start_method, self)
        self.prefix = shm.new_run_prefix()
        self.ledger = SegmentLedger(self.prefix, self.lanes.all)
        self.relayer: Relayer[shm.WireMessage] = Relayer(
            topology, self.ledger.retain, self.ledger.release
        )
        self.sources = self.relayer.sources
        self.source_set = set(self.sources)
        self.cache = shm.SegmentCache()  # the kept sink's mappings
        self.src_busy = dict.fromkeys(self.sources, False)
        self.src_next = dict.fromkeys(self.sources, 0)

        self.phase = "init"
        self.aborted = False
        self.eos_lane: Lane | None = None
        self.deadline: float | None = None
        self.abort_event = None
        self.bar = None

    def _stop_routing(self) -> None:
        """Nothing is routed or handed back any more (the run stopped)."""
        self.aborted = True
        self.ledger.closing = True
        if self.abort_event is not None:
            self.abort_event.set()

    # ---- lanes ----------------------------------------------------------------------------

    def _start_workers(self) -> None:
        ctx = mp.get_context(self.lanes.start_method)
        self.abort_event = ctx.Event()
        configs, transports = {}, {}
        for p in self.topology.processors:
            configs[p.name] = config_for(p, self.config)
            upstream = sum(self.lanes_of[q] for q in self.relayer.producers[p.name])
            transports[p.name] = {
                "pool_slabs": self.window + 2,
                "cache": (self.window + 2) * upstream,
                "online": self.online,
            }
        self.lanes.start(
            self.topology, self.lanes_of, configs, transports, self.prefix, self.abort_event
        )

    def on_message(self, lane: Lane, msg: tuple) -> None:
        """A message from a worker (see :mod:`~alice_dyn.framework.mp_worker`)."""
        kind = msg[0]
        if kind == "ready":
            lane.state = "ready" if lane.state == "starting" else lane.state
        elif kind == "result":
            self._on_result(lane, *msg[1:])
        elif kind == "error":
            self._on_error(lane, msg[1], msg[2])
        elif kind == "eos_done":
            lane.eos_done = True
        elif kind == "stopped":
            lane.final_metrics = msg[1]
            self.lanes.retire(lane, "stopped")

    def on_garbled(self, lane: Lane, exc: Exception) -> None:
        """A message from ``lane`` that cannot be unpickled."""
        ts = min(lane.inflight, default=None)
        err = ProcessorError(
            lane.name, "send", f"cannot unpickle a message: {type(exc).__name__}: {exc}",
            ts, self.book.tf_of(ts),
        )  # fmt: skip
        self._on_error(lane, ts, err)

    def on_death(self, lane: Lane, how: str) -> None:
        """``lane``'s process exited (``how``: e.g. "was killed by signal SIGKILL")."""
        if self.aborted or self.phase == "stop":
            return
        held = sorted(lane.inflight)
        cause = f"worker process of {lane.label} (pid {lane.proc.pid}) {how}"
        if held:
            cause += f" while holding timeslice(s) {held}"
        elif self.phase in ("init", "eos"):
            cause += f" during {'init' if self.phase == 'init' else 'end_of_stream'}"
        ts0 = held[0] if held else None
        tf_of = self.book.tf_of
        err = ProcessorError(lane.name, "process died", cause, ts0, tf_of(ts0))
        self._fail(err, [(t, tf_of(t), lane.name, cause) for t in held])

    def _on_error(self, lane: Lane, ts: int | None, err: ProcessorError) -> None:
        if ts is not None:
            lane.inflight.pop(ts, None)
        if self.aborted:
            return
        failures = []
        if ts is not None:
            tf = err.tf_id if err.tf_id is not None else ts
            failures.append((ts, tf, lane.name, err.cause))
        self._fail(err, failures)

    # ---- data flow ------------------------------------------------------------------------

    def _dispatch(self, name: str, ts: int, inputs: dict[str, shm.WireMessage]) -> None:
        lane = self.lanes.pick(name)
        lane.inflight[ts] = list(inputs.values())
        releases = self.ledger.take(lane)  # handed back with the run: reused at once
        self.lanes.send(lane, ("run", ts, inputs, releases, self.arrivals.timing.get(ts)))

    def _on_result(
        self, lane, ts, outs, new, eos, tf_id, delta, still_used, done_s, reports, cpu_s
    ) -> None:
        held = lane.inflight.pop(ts, [])
        name = lane.name
        if self.online and (outs or name not in self.source_set):
            self.arrivals.record_cpu(name, cpu_s)
        seconds, n_in, b_in, n_out, b_out = delta
        lane.shadow.merge(
            ProcessorMetrics(
                name, list(seconds), messages_in=n_in, messages_out=n_out,
                bytes_in=b_in, bytes_out=b_out,
            )
        )  # fmt: skip
        self.ledger.stats["used"] += len(new)
        if self.aborted:  # the run stopped: nobody will read these
            for s in new:
                shm.unlink_segment(s)
            if name in self.source_set and outs and ts not in self.summary.timeframes:
                # a timeframe a source made while the run was stopping: it entered, and failed
                self.summary.mark(ts, tf_id, PROCESSED)
                consumer = next(
                    (r.consumer for r in self.topology.routes if r.producer == name), name
                )
                self.summary.mark(ts, tf_id, FAILED, consumer, self._abort_why())
            return
        self.ledger.add(new, still_used)
        self.book.ran(ts, name, done_s, reports)
        if name in self.source_set:
            self.src_busy[name] = False
            self.src_next[name] = ts + 1
            if outs:
                self.book.produced.setdefault(ts, {})[name] = tf_id
        self.relayer.route(name, ts, outs, lambda w: self._to_sink(name, ts, w))
        if self.aborted:
            return
        for w in held:
            self.ledger.release(w)
        self.ledger.settle(new)
        if name in self.source_set and eos:
            self.relayer.end_source(name, ts)
        self.relayer.done(name, ts)

    def _to_sink(self, name: str, ts: int, w: shm.WireMessage) -> bool:
        """A message for the dummy sink: counted, and kept (read here) with ``keep_sink``;
        ``False`` when it cannot be read (the run fails)."""
        self.summary.sink_count += 1
        if not self.keep_sink:
            return True
        try:
            msg = shm.decode_message(w, self.cache)
        except Exception as exc:  # e.g. a class the driver cannot import
            cause = (
                f"the kept sink cannot read output {w.header.data_type}: "
                f"{type(exc).__name__}: {exc}"
            )
            tf = w.header.tf_id
            self._fail(ProcessorError(name, "send", cause, ts, tf), [(ts, tf, name, cause)])
            return False
        self.ledger.keep(w.segments)
        self.book.to_sink(ts, name, msg)
        return True

    def _decide(self, name: str, dispatch: bool = True) -> None:
        """Run, skip or mark incomplete the next timeslices of ``name`` whose producers are done
        (with ``dispatch=False``: stop at the first one that would run)."""
        for d in self.relayer.decide(name, stop_before_run=not dispatch):
            if d.kind == INCOMPLETE:
                self.book.mark(d.timeslice, name, INCOMPLETE, d.why)
            elif d.kind == RUN:
                self._dispatch(name, d.timeslice, d.inputs)

    def _request_sources(self) -> None:
        self.arrivals.next_due = None
        relayer = self.relayer
        for name in self.sources:
            if name not in relayer.active_sources or self.src_busy[name]:
                continue
            ts = self.src_next[name]
            if self.max_tf is not None and ts >= self.max_tf:
                relayer.end_source(name, ts - 1)
                continue
            if ts >= relayer.base + self.window:
                continue  # backpressure: the oldest timeslice in flight must finish first
            if self.arrivals.timing_for(ts) is None:
                continue  # online: not arrived yet
            relayer.open(ts)
            self.src_busy[name] = True
            self._dispatch(name, ts, {})

    def _finalize_ready(self) -> None:
        for ts in self.relayer.complete():
            if self.book.finalize(ts):
                self.bar.update(1)

    def _pump(self) -> None:
        if self.aborted:
            return
        for name in self.relayer.non_sources:
            self._decide(name)
        self._finalize_ready()
        self._request_sources()
        active = self.relayer.active_sources
        self.ledger.flush(lambda ln: ln.name in active, self.lanes.send)

    # ---- failures -------------------------------------------------------------------------

    def _fail(self, err: ProcessorError, failures: list[tuple[int, int, str, str]]) -> None:
        """Stop the run: record the error, the failed timeframes and those in flight."""
        if self.summary.error is None:
            self.summary.error = err
        if not self.aborted:  # settle what is already decided (results read before the error)
            for name in self.relayer.non_sources:
                self._decide(name, dispatch=False)
            self._finalize_ready()
        self._stop_routing()
        failed_at: dict[int, list[tuple[int, str, str, str, int]]] = {}
        for ts, tf, proc, cause in failures:
            failed_at.setdefault(ts, []).append((self.index[proc], FAILED, proc, cause, tf))
        relayer = self.relayer
        for ts in range(relayer.base, max(relayer.opened, max(failed_at, default=-1) + 1)):
            self.book.finalize_failed(
                ts, failed_at.get(ts, []), relayer.holder(ts), self._abort_why()
            )
        relayer.abandon()

    def _abort_why(self) -> str:
        err = self.summary.error
        if err is None:
            return "aborted: the run was interrupted"
        return f"aborted: the run stopped after the failure of {err.processor!r}"

    def _check_deadline(self) -> bool:
        if self.deadline is None or time.monotonic() < self.deadline:
            return False
        all_lanes = self.lanes.all
        waiting = [ln for ln in all_lanes if ln.inflight and ln.live]
        ts = min((min(ln.inflight) for ln in waiting), default=None)
        if ts is not None:
            lane = next(ln for ln in waiting if ts in ln.inflight)
        elif self.phase == "eos" and self.eos_lane is not None:
            lane = self.eos_lane
        else:
            lane = next((ln for ln in all_lanes if ln.state == "starting"), None)
        name = lane.name if lane is not None else self.names[0]
        cause = f"the run did not finish within timeout_s={self.timeout_s}"
        if lane is not None:
            cause += f" (waiting for {lane.label} in {self.phase})"
        tf = self.book.tf_of(ts)
        err = ProcessorError(name, "timeout", cause, ts, tf)
        self._fail(err, [(ts, tf, name, cause)] if ts is not None else [])
        return True

    def _wait_step(self) -> None:
        timeout = POLL_S
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
        next_due = self.arrivals.next_due
        if next_due is not None:  # online: wake up when the next timeframe arrives
            timeout = min(timeout, next_due - self.arrivals.clock.now())
        self.lanes.poll(timeout)

    # ---- phases ---------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        while any(ln.state == "starting" for ln in self.lanes.all) and not self.aborted:
            self._wait_step()
            self._check_deadline()

    def _stream(self) -> None:
        self.phase = "stream"
        self._pump()
        while not self.aborted and not self.relayer.finished:
            self._wait_step()
            if self._check_deadline():
                return
            self._pump()

    def _end_of_stream(self) -> None:
        self.phase = "eos"
        for name in self.names:  # in topological order, one instance after the other
            for lane in self.lanes.by_name[name]:
                self.eos_lane = lane
                self.lanes.send(lane, ("eos",))
                while not lane.eos_done and not self.aborted:
                    self._wait_step()
                    if self._check_deadline():
                        return
                if self.aborted:
                    return

    def _shutdown(self) -> None:
        self.phase = "stop"
        self._stop_routing()
        interrupted = self.lanes.stop(STOP_GRACE_S)
        for name in self.names:
            self.summary.metrics[name] = m = ProcessorMetrics(name)
            for lane in self.lanes.by_name.get(name, []):
                m.merge(lane.final_metrics if lane.final_metrics is not None else lane.shadow)
        stats = self.ledger.close()
        last_transport_stats.clear()
        last_transport_stats.update(stats, prefix=self.prefix)
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
            self.bar = tqdm(
                desc="timeframes",
                unit="TF",
                total=self.max_tf,
                disable=None if self.progress is None else not self.progress,
            )
            self._wait_ready()
            if not self.aborted:
                self._stream()
            if not self.aborted:
                self._end_of_stream()
        finally:
            self._shutdown()
            if self.bar is not None:
                self.bar.close()
            self.summary.wall_seconds = time.perf_counter() - t0
        if self.arrivals.pacer is not None:
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
