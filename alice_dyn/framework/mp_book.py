"""What the multi-process driver notes per timeslice until the timeslice is complete.

Layer: framework (multi-process runner, driver side). Results come back from the workers in
any order; the summary must not depend on it. So the driver notes, per open timeslice, the
timeframe id each source gave it, each processor's finish time and ``pc.report`` values, the
fates (incomplete, failed) keyed by the processor's topological index and the kept sink's
messages, and writes them into the :class:`~alice_dyn.framework.runtime.RunSummary` in a fixed
order once the timeslice is complete (:meth:`TimesliceBook.finalize`) or the run stopped.

Timing and online mode (:class:`Arrivals`): each timeslice gets one
:class:`~alice_dyn.framework.online.TimeframeTiming` when the sources are asked for it, sent with
every ``run`` request (``pc.timing`` is the same in every process); workers send back when they
finished (monotonic s, system-wide) and their ``pc.report`` values. With
``online=OnlineOptions(...)`` the sources are asked for timeslice ``i`` only once it has arrived
on the replay schedule (at once when behind, e.g. held back by backpressure); the load in its
timing is the processors' CPU time per timeframe (workers send it back with each result; moving
averages summed: ``service_ms``) shared over the usable cores (``parallelism``).
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from alice_dyn.framework.message import Message
from alice_dyn.framework.online import (
    SERVICE_EMA,
    OnlineOptions,
    Pacer,
    TimeframeTiming,
    current_clock,
)
from alice_dyn.framework.runtime import FAILED, PROCESSED, RunSummary


def usable_cpus() -> int:
    """CPU cores this process (and so its workers) may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Arrivals:
    """When each timeslice arrives and its :class:`TimeframeTiming` (see the module docstring);
    ``processes``: worker processes of the run (the load is shared over at most that many
    cores)."""

    def __init__(self, online: OnlineOptions | None, n_names: int, processes: int) -> None:
        self.pacer = Pacer(online) if online is not None else None
        self.clock = current_clock(online.clock if online is not None else None)
        self.timing: dict[int, TimeframeTiming] = {}  # per timeslice asked from the sources
        self.next_due: float | None = None  # arrival the sources wait for (online), s
        # per processor its recent CPU ms per timeframe (moving average)
        self.cpu_ms: dict[str, float] = {}
        self.n_names = n_names
        self.parallelism = float(min(usable_cpus(), processes))

    def record_cpu(self, name: str, cpu_s: float) -> None:
        """A processor's CPU time (s) for one timeframe, into its moving average."""
        ms, prev = 1e3 * cpu_s, self.cpu_ms.get(name)
        self.cpu_ms[name] = ms if prev is None else (
            SERVICE_EMA * ms + (1.0 - SERVICE_EMA) * prev
        )  # fmt: skip

    def service_ms(self) -> float | None:
        """The workflow's recent CPU time per timeframe: the sum over processors of their
        moving averages (``None`` until every processor has run once)."""
        if len(self.cpu_ms) < self.n_names:
            return None
        return sum(self.cpu_ms.values())

    def timing_for(self, ts: int) -> TimeframeTiming | None:
        """The timing of timeslice ``ts``; ``None`` while it has not arrived (online: then
        :attr:`next_due` is its arrival)."""
        timing = self.timing.get(ts)
        if timing is not None:
            return timing
        now = self.clock.now()
        if self.pacer is None:
            timing = TimeframeTiming(now)
        else:
            due = self.pacer.due(ts)
            if now < due:
                self.next_due = due
                return None
            budget = self.pacer.options.budget_ms
            timing = TimeframeTiming(
                due, budget, self.pacer.backlog(ts, now), period_ms=self.pacer.period_ms(ts),
                service_ms=self.service_ms(), parallelism=self.parallelism,
            )  # fmt: skip
        self.timing[ts] = timing
        return timing


class TimesliceBook:
    """Per open timeslice: what goes into the summary once it is complete. ``index``: the
    topological index of each processor (fates are written in that order)."""

    def __init__(
        self, summary: RunSummary, sources: list[str], index: dict[str, int], arrivals: Arrivals
    ) -> None:
        self.summary = summary
        self.sources = sources
        self.index = index
        self.arrivals = arrivals
        self.finished: dict[int, list[tuple[str, float, dict]]] = {}  # (name, done_s, reports)
        self.produced: dict[int, dict[str, int]] = {}  # source -> tf_id
        self.marks: dict[int, list[tuple[int, str, str, str]]] = {}  # (index, status, name, why)
        self.sink_buf: dict[int, list[tuple[int, int, Any]]] = {}  # (index, seq, message)
        self._seq = itertools.count()

    def tf_of(self, ts: int | None) -> int | None:
        """The timeframe id of timeslice ``ts`` (the first source's; ``ts`` if none made it)."""
        if ts is None:
            return None
        prod = self.produced.get(ts, {})
        first = next((s for s in self.sources if s in prod), None)
        return prod[first] if first is not None else ts

    def mark(self, ts: int, name: str, status: str, why: str) -> None:
        """``name``'s timeslice ``ts`` was not processed (written when ``ts`` is complete)."""
        self.marks.setdefault(ts, []).append((self.index[name], status, name, why))

    def ran(self, ts: int, name: str, done_s: float, reports: dict) -> None:
        """``name`` finished ``ts`` at ``done_s`` (monotonic s) with its ``pc.report`` values."""
        self.finished.setdefault(ts, []).append((name, done_s, reports))

    def to_sink(self, ts: int, name: str, msg: Message) -> None:
        """A kept sink message of ``name``, written in processor then arrival order."""
        self.sink_buf.setdefault(ts, []).append((self.index[name], next(self._seq), msg))

    def record(self, ts: int) -> bool:
        """Write whether ``ts`` entered (a source made it) and its processors' runs; ``True``
        when it entered."""
        prod = self.produced.pop(ts, {})
        first = next((s for s in self.sources if s in prod), None)
        if first is not None:
            self.summary.mark(ts, prod[first], PROCESSED)
        timing = self.arrivals.timing.pop(ts, None)
        for name, done_s, reports in self.finished.pop(ts, []):
            self.summary.record_run(ts, name, timing, done_s, reports)
        return first is not None

    def flush_sink(self, ts: int) -> None:
        for _, _, msg in sorted(self.sink_buf.pop(ts, []), key=lambda e: e[:2]):
            self.summary.sink.append(msg)

    def finalize(self, ts: int) -> bool:
        """Everything of the complete timeslice ``ts`` into the summary; ``True`` when it
        entered."""
        tf = self.tf_of(ts)
        entered = self.record(ts)
        for _, status, proc, why in sorted(self.marks.pop(ts, []), key=lambda e: e[0]):
            self.summary.mark(ts, tf, status, proc, why)
        self.flush_sink(ts)
        return entered

    def finalize_failed(
        self, ts: int, failed: list[tuple[int, str, str, str, int]], holder: str | None, why: str
    ) -> None:
        """Timeslice ``ts`` of a run that stopped: its marks, the ``failed`` entries (index,
        status, processor, cause, tf_id) and, if it entered, FAILED at ``holder`` (``why``)."""
        tf_default = self.tf_of(ts)
        self.record(ts)
        marks = [(*m, tf_default) for m in self.marks.pop(ts, [])] + failed
        for _, status, proc, cause, tf in sorted(marks, key=lambda e: e[0]):
            self.summary.mark(ts, tf, status, proc, cause)
        if ts in self.summary.timeframes:
            self.summary.mark(ts, tf_default, FAILED, holder, why)
        self.flush_sink(ts)


__all__ = ["Arrivals", "TimesliceBook", "usable_cpus"]
