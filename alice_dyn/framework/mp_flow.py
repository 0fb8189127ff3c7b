"""The multi-process driver's data flow: results in, decisions and requests out.

Layer: framework (multi-process runner, driver side). :class:`DataFlow` reacts to what the
workers send (:class:`~alice_dyn.framework.mp_lanes.LaneEvents`): a result's outputs are relayed
with the :class:`~alice_dyn.framework.relayer.Relayer` that the inline runner uses (shared-memory
references counted by the :class:`~alice_dyn.framework.mp_segments.SegmentLedger`), the next
timeslices of every processor whose producers are done are decided (run on the lane with the
fewest in flight, skip, or incomplete), complete timeslices go into the summary
(:class:`~alice_dyn.framework.mp_book.TimesliceBook`) and the sources are asked for the next
timeslice within the backpressure window. An error, a dead worker or the timeout stops the
flow (:meth:`DataFlow.fail`): what was already decided is settled, the timeframes in flight are
marked failed, and nothing is routed any more.
"""

from __future__ import annotations

from typing import Any

from alice_dyn.framework import shm
from alice_dyn.framework.message import Parts, each_message
from alice_dyn.framework.metrics import ProcessorMetrics
from alice_dyn.framework.mp_book import Arrivals, TimesliceBook
from alice_dyn.framework.mp_lanes import Lane, Lanes
from alice_dyn.framework.mp_segments import SegmentLedger
from alice_dyn.framework.online import OnlineOptions
from alice_dyn.framework.relayer import INCOMPLETE, RUN, Relayer
from alice_dyn.framework.runtime import FAILED, PROCESSED, ProcessorError, RunSummary
from alice_dyn.framework.topology import Topology


class DataFlow:
    """The driver's state of one run and its reactions (see the module docstring). ``window``:
    timeslices in flight at most; ``phase``: set by the driver (init, stream, eos, stop)."""

    def __init__(
        self,
        topology: Topology,
        lanes_of: dict[str, int],
        window: int,
        max_timeframes: int | None,
        keep_sink: bool,
        start_method: str,
        online: OnlineOptions | None,
    ) -> None:
        self.topology = topology
        self.window = window
        self.max_tf = max_timeframes
        self.keep_sink = keep_sink
        self.online = online is not None
        self.summary = RunSummary("multiprocess" if online is None else "multiprocess-online")
        self.names = [p.name for p in topology.processors]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.arrivals = Arrivals(online, len(self.names), sum(lanes_of.values()))
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
        self.abort_event: Any = None  # tells the workers to run nothing more
        self.bar: Any = None  # progress bar: one step per timeframe that entered

    def stop_routing(self) -> None:
        """Nothing is routed or handed back any more (the run stopped)."""
        self.aborted = True
        self.ledger.closing = True
        if self.abort_event is not None:
            self.abort_event.set()

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
        self.fail(err, [(t, tf_of(t), lane.name, cause) for t in held])

    def _on_error(self, lane: Lane, ts: int | None, err: ProcessorError) -> None:
        if ts is not None:
            lane.inflight.pop(ts, None)
        if self.aborted:
            return
        failures = []
        if ts is not None:
            tf = err.tf_id if err.tf_id is not None else ts
            failures.append((ts, tf, lane.name, err.cause))
        self.fail(err, failures)

    # ---- data flow ------------------------------------------------------------------------

    def _dispatch(self, name: str, ts: int, inputs: dict[str, shm.WireMessage | Parts]) -> None:
        lane = self.lanes.pick(name)
        lane.inflight[ts] = list(each_message(inputs))
        releases = self.ledger.take(lane)  # handed back with the run: reused at once
        self.lanes.send(lane, ("run", ts, inputs, releases, self.arrivals.timing.get(ts)))

    def _on_result(
        self,
        lane: Lane,
        ts: int,
        outs: list[shm.WireMessage],
        new: list[str],
        eos: bool,
        tf_id: int,
        delta: tuple,
        still_used: list[str],
        done_s: float,
        reports: dict[str, Any],
        cpu_s: float,
    ) -> None:
        """A worker's ``run`` returned (the fields as :meth:`mp_worker._Worker.run` sends
        them: outputs, the call's segments, end of stream, tf id, metrics since the last result,
        segments it still has views of, finish time in monotonic s, reports, CPU s)."""
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
                self.summary.mark(ts, tf_id, FAILED, consumer, self.abort_why())
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
            self.fail(ProcessorError(name, "send", cause, ts, tf), [(ts, tf, name, cause)])
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

    def pump(self) -> None:
        if self.aborted:
            return
        for name in self.relayer.non_sources:
            self._decide(name)
        self._finalize_ready()
        self._request_sources()
        active = self.relayer.active_sources
        self.ledger.flush(lambda ln: ln.name in active, self.lanes.send)

    # ---- failures -------------------------------------------------------------------------

    def fail(self, err: ProcessorError, failures: list[tuple[int, int, str, str]]) -> None:
        """Stop the run: record the error, the failed timeframes and those in flight."""
        if self.summary.error is None:
            self.summary.error = err
        if not self.aborted:  # settle what is already decided (results read before the error)
            for name in self.relayer.non_sources:
                self._decide(name, dispatch=False)
            self._finalize_ready()
        self.stop_routing()
        failed_at: dict[int, list[tuple[int, str, str, str, int]]] = {}
        for ts, tf, proc, cause in failures:
            failed_at.setdefault(ts, []).append((self.index[proc], FAILED, proc, cause, tf))
        relayer = self.relayer
        for ts in range(relayer.base, max(relayer.opened, max(failed_at, default=-1) + 1)):
            self.book.finalize_failed(
                ts, failed_at.get(ts, []), relayer.holder(ts), self.abort_why()
            )
        relayer.abandon()

    def abort_why(self) -> str:
        err = self.summary.error
        if err is None:
            return "aborted: the run was interrupted"
        return f"aborted: the run stopped after the failure of {err.processor!r}"


__all__ = ["DataFlow"]
