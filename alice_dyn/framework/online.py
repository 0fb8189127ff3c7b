"""Online (replay) mode: timeframes arrive on a schedule, each with an end-to-end latency budget.

Layer: framework (physics-free). A :class:`ReplaySchedule` turns a base rate (Hz) and bursts
(``"4x:10s@5s"``: rate x4 for 10 s, starting 5 s after the first timeframe) into arrival times;
the inline runner (``run_inline(..., online=OnlineOptions(...))``) holds each timeframe back
until its arrival and, when it is behind, lets it in at once (it waited in the queue: nothing is
dropped). Every task sees ``pc.timing``, a :class:`TimeframeTiming` with the arrival time, the
budget, the deadline and the backlog, the same for every processor of a timeframe.

Times are ``time.monotonic()`` seconds (system-wide on Linux, so comparable across processes);
the clock is the module-level :data:`clock` unless one is given (tests inject a
:class:`FakeClock`; interleaved replays give each run a :class:`ReplayClock`).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Clock:
    """The real clock: ``time.monotonic`` seconds and ``time.sleep``."""

    def now(self) -> float:
        """Current time, s."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (s)."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock(Clock):
    """A manual clock for tests: ``sleep`` and :meth:`advance` move time forward, nothing waits."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.t += seconds

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` (s) pass, as if work was done."""
        self.t += seconds


class ReplayClock(Clock):
    """The clock of one replay of an interleaved pair (``--interleaved``): it runs with the real
    clock while its own workflow works, stands still while the other replay's workflow works,
    and jumps over the waits for the next arrival instead of sleeping (s).

    Latencies measured on it are those of a real-time replay of the same schedule on a machine
    running at the speed the work actually had: a timeframe's processing is real time, its time
    in the queue follows from the arrivals and the finishes before it. Starts stopped; the
    driver lets it run with :meth:`running`.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.start = float(start)
        self._worked = 0.0  # s of real time while running, up to the last stop
        self._since: float | None = None  # real time it last started running, None: stopped
        self._jumped = 0.0  # s of waits jumped over

    def now(self) -> float:
        worked = self._worked
        if self._since is not None:
            worked += time.monotonic() - self._since
        return self.start + worked + self._jumped

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._jumped += seconds

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Real time passes on this clock inside the context, not outside it."""
        if self._since is not None:
            raise RuntimeError("ReplayClock.running() is not re-entrant")
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._worked += time.monotonic() - self._since
            self._since = None


#: the clock used by runners and :class:`TimeframeTiming` when none is given (replace it in
#: tests, e.g. ``monkeypatch.setattr(online, "clock", FakeClock())``)
clock: Clock = Clock()


def current_clock(given: Clock | None = None) -> Clock:
    """``given``, or the module-level :data:`clock`."""
    return given if given is not None else clock


@dataclass
class TimeframeTiming:
    """When a timeframe entered the workflow and how much time it has (``pc.timing``).

    ``arrival_s``: monotonic time (s) of its arrival: the scheduled arrival in online mode
    (even when it had to wait in the queue), otherwise when the source was called for it.
    ``budget_ms``: end-to-end latency budget (ms), ``None`` without one. ``backlog``: timeframes
    that had already arrived but not yet entered when this one entered (0 offline).
    The load, online only (``None`` otherwise or while unknown): ``period_ms``, the mean
    interval between the last :data:`PERIOD_WINDOW` arrivals up to this one (ms; the observed
    input rate); ``service_ms``, the workflow's recent time per timeframe if its processors ran
    one after the other (ms; exponential moving averages over the finished timeframes: the
    inline runner's time from entering to done; the multi-process runner's sum over processors
    of their CPU time per timeframe); ``parallelism``, how many of those milliseconds pass per
    millisecond (1 inline; the CPU cores the multi-process runner's workers share, at most its
    number of processes). ``service_ms > parallelism * period_ms`` means the queue grows.
    """

    arrival_s: float
    budget_ms: float | None = None
    backlog: int = 0
    clock: Clock | None = field(default=None, repr=False, compare=False)
    period_ms: float | None = None
    service_ms: float | None = None
    parallelism: float = 1.0

    @property
    def deadline_s(self) -> float | None:
        """``arrival_s + budget`` (s), ``None`` without a budget."""
        if self.budget_ms is None:
            return None
        return self.arrival_s + self.budget_ms / 1e3

    def elapsed_ms(self) -> float:
        """Milliseconds since the arrival."""
        return (current_clock(self.clock).now() - self.arrival_s) * 1e3

    def time_left_ms(self) -> float:
        """Milliseconds until the deadline (negative when late; ``inf`` without a budget)."""
        deadline = self.deadline_s
        if deadline is None:
            return math.inf
        return (deadline - current_clock(self.clock).now()) * 1e3

    def load_allowance_ms(self, own_ms: float | None, target_load: float) -> float | None:
        """Milliseconds per timeframe a processor whose recent time is ``own_ms`` may take so
        that the workflow keeps up with the arrivals at ``target_load`` (< 1: headroom):
        ``parallelism * target_load * period_ms`` less what the rest of the workflow takes
        (``service_ms - own_ms``); with ``parallelism > 1`` also at most
        ``target_load * period_ms`` (one lane takes its timeframes one after the other).
        ``None`` while the load is unknown."""
        if self.period_ms is None or self.service_ms is None or own_ms is None:
            return None
        per_lane = float(target_load) * float(self.period_ms)
        others = max(float(self.service_ms) - float(own_ms), 0.0)
        allowed = float(self.parallelism) * per_lane - others
        return min(allowed, per_lane) if self.parallelism > 1 else allowed

    def __getstate__(self) -> dict[str, Any]:  # a clock object stays in its process
        state = dict(self.__dict__)
        state["clock"] = None
        return state


class NoTruthError(LookupError):
    """Raised by a workflow's ``online_accuracy`` when its inputs carry no truth to compare to
    (the report then has ``accuracy: null``)."""


# --------------------------------------------------------------------------------------------
# replay schedule


@dataclass(frozen=True)
class Burst:
    """Rate x ``factor`` for ``duration_s`` seconds from ``start_s`` (s after the first arrival)."""

    factor: float
    duration_s: float
    start_s: float = 5.0

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def as_dict(self) -> dict[str, float]:
        return {"factor": self.factor, "duration_s": self.duration_s, "start_s": self.start_s}


#: start of a burst given without ``@``: s after the first timeframe
DEFAULT_BURST_START_S = 5.0

_BURST_RE = re.compile(
    r"^\s*(?P<factor>[0-9.eE+-]+)\s*[xX]\s*:\s*(?P<dur>[0-9.eE+-]+)\s*s?\s*"
    r"(?:@\s*(?P<start>[0-9.eE+-]+)\s*s?)?\s*$"
)


def _positive(value: float, what: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive number, not {value!r}")
    return float(value)


def parse_burst(text: str) -> Burst:
    """``"4x:10s"`` (start 5 s), ``"4x:10s@5s"``, ``"3x:2.5s@12s"`` -> :class:`Burst`.

    Raises ``ValueError`` naming ``--burst`` and the text when it does not parse or a number is
    out of range (factor and duration > 0, start >= 0)."""
    m = _BURST_RE.match(text)
    if m is None:
        raise ValueError(
            f"--burst {text!r}: expected FACTORx:DURATIONs[@STARTs], e.g. 4x:10s or 4x:10s@5s"
        )
    try:
        factor = float(m["factor"])
        duration = float(m["dur"])
        start = float(m["start"]) if m["start"] is not None else DEFAULT_BURST_START_S
    except ValueError:
        raise ValueError(f"--burst {text!r}: not a number in it") from None
    _positive(factor, f"--burst {text!r}: the factor")
    _positive(duration, f"--burst {text!r}: the duration")
    if not (math.isfinite(start) and start >= 0):
        raise ValueError(f"--burst {text!r}: the start must be >= 0 s, not {start!r}")
    return Burst(factor, duration, start)


class ReplaySchedule:
    """Arrival times of a piecewise constant rate: ``rate_hz``, times ``factor`` in each burst.

    Arrival ``i`` (0, 1, ...) is at the time ``t`` where the integral of the rate from 0 equals
    ``i``: the first at 0 s. Raises ``ValueError`` naming ``--rate``/``--burst`` for a rate,
    factor or duration that is not positive, or overlapping bursts.
    """

    def __init__(self, rate_hz: float, bursts: list[Burst] | tuple[Burst, ...] = ()) -> None:
        self.rate_hz = _positive(rate_hz, "--rate")
        ordered = sorted(bursts, key=lambda b: b.start_s)
        for b in ordered:
            _positive(b.factor, f"--burst {b}: the factor")
            _positive(b.duration_s, f"--burst {b}: the duration")
            if not (math.isfinite(b.start_s) and b.start_s >= 0):
                raise ValueError(f"--burst {b}: the start must be >= 0 s")
        for a, b in itertools.pairwise(ordered):
            if b.start_s < a.end_s:
                raise ValueError(
                    f"--burst: bursts overlap ({a.factor:g}x from {a.start_s:g} s to "
                    f"{a.end_s:g} s and {b.factor:g}x from {b.start_s:g} s)"
                )
        self.bursts = ordered
        # segments of constant rate: start times and rates, then the count at each start
        starts, rates = [0.0], [self.rate_hz]
        for b in ordered:
            if b.start_s == starts[-1]:
                rates[-1] = self.rate_hz * b.factor
            else:
                starts.append(b.start_s)
                rates.append(self.rate_hz * b.factor)
            starts.append(b.end_s)
            rates.append(self.rate_hz)
        self._t = np.asarray(starts)
        self._r = np.asarray(rates)
        self._n = np.concatenate([[0.0], np.cumsum(np.diff(self._t) * self._r[:-1])])

    def rate_at(self, t: np.ndarray | float) -> np.ndarray:
        """Rate (Hz) at ``t`` (s from the first arrival)."""
        k = np.searchsorted(self._t, np.asarray(t, dtype=float), side="right") - 1
        return self._r[np.clip(k, 0, None)]

    def cumulative(self, t: np.ndarray | float) -> np.ndarray:
        """Integral of the rate from 0 to ``t`` (s): arrival ``i`` is where it equals ``i``."""
        t = np.maximum(np.asarray(t, dtype=float), 0.0)
        k = np.searchsorted(self._t, t, side="right") - 1
        return self._n[k] + (t - self._t[k]) * self._r[k]

    def arrival_times(self, n: int) -> np.ndarray:
        """The first ``n`` arrival times, s from the first arrival (the first is 0)."""
        i = np.arange(int(n), dtype=float)
        k = np.searchsorted(self._n, i, side="right") - 1
        return self._t[k] + (i - self._n[k]) / self._r[k]

    def arrived_by(self, t: float) -> int:
        """How many arrivals are at or before ``t`` (s from the first)."""
        if t < 0:
            return 0
        return math.floor(float(self.cumulative(t)) + 1e-9) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"rate_hz": self.rate_hz, "bursts": [b.as_dict() for b in self.bursts]}


@dataclass
class OnlineOptions:
    """What ``run_inline(..., online=...)`` needs: the schedule, the budget (ms, or ``None``),
    how many timeframes the replay has (``None``: unknown; it caps the backlog near the end)
    and the clock (``None``: the module-level :data:`clock`). ``start_s``: the clock's time (s)
    of the first arrival, e.g. to start two replays in two processes together (``None``: when
    the source first asks for a timeframe)."""

    schedule: ReplaySchedule
    budget_ms: float | None = None
    n_timeframes: int | None = None
    clock: Clock | None = None
    start_s: float | None = None

    def __post_init__(self) -> None:
        if self.budget_ms is not None:
            _positive(self.budget_ms, "--budget-ms")


@contextlib.contextmanager
def quiet_gc(active: bool = True) -> Iterator[None]:
    """Python's garbage collector out of the timed path of an online run.

    A full (generation 2) collection scans every object alive — models, compiled kernels,
    modules — and pauses the process for 100-300 ms in a reconstruction workflow, which lands
    on whichever timeframe happens to trigger it (measured: one 250 ms timeframe in 300 in
    ``tpc-reco``, gone with the collector off). Inside this context the objects alive at its
    start are frozen out of the collector (``gc.freeze``) and automatic collection is off; the
    runners collect in the time they wait for the next timeframe (:class:`IdleCollector`).
    Restored on exit.
    """
    if not active:
        yield
        return
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


#: arrivals over which TimeframeTiming.period_ms averages
PERIOD_WINDOW = 5
#: weight of the newest timeframe in TimeframeTiming.service_ms
SERVICE_EMA = 0.3

#: collect while waiting when at least this much time (s) is left before the next arrival
GC_IDLE_S = 0.02
#: ... and the young generations at the latest after this many timeslices without such a pause
GC_EVERY_TIMESLICES = 200
#: a full collection at most once in this many timeslices (in idle time long enough for it)
GC_FULL_EVERY = 100
#: ... and at the latest after this many, idle time or not (bounds the old generation's garbage)
GC_FULL_FORCE_EVERY = 2000


class IdleCollector:
    """Garbage collection in the idle time of an online run (inside :func:`quiet_gc`).

    A full collection scans every object made since the start-up freeze that is still alive,
    and a workflow keeps many: the AO2D writer's open file holds about 230 uproot objects per
    timeframe written (``tpc-reco``: a full collection takes 15 ms after 100 pp timeframes, and
    140-190 ms late in an interleaved pair of 300-timeframe runs). A full collection before
    every arrival then overran the idle time and delayed the timeframes after a burst (median
    latency 53 ms before a burst, 110-125 ms after it). So idle time gets the young generations
    (``gc.collect(1)``: the objects made since the last collection, well under a millisecond a
    timeframe; survivors move to the old generation), and a full collection at most every
    :data:`GC_FULL_EVERY` timeslices, only in an idle time of at least twice the last full
    collection's duration (or of unknown length). Without idle time (a long burst) the young
    generations are collected after :data:`GC_EVERY_TIMESLICES` timeslices, and a full
    collection is made after :data:`GC_FULL_FORCE_EVERY` timeslices without one whatever the
    idle time, so that the garbage in the old generation stays bounded in a run that never
    idles long enough. Does nothing while automatic collection is on (outside
    :func:`quiet_gc`).
    """

    def __init__(self) -> None:
        self.since_young = 0  # timeslices since the last collection
        self.since_full = 0  # timeslices since the last full collection
        self.full_s = 0.0  # duration of the last full collection, s

    def timeslice(self) -> None:
        """One more timeslice ran (or is about to)."""
        self.since_young += 1
        self.since_full += 1

    def idle(self, gap_s: float | None) -> None:
        """Collect in an idle time of ``gap_s`` seconds (``None``: of unknown length)."""
        if gc.isenabled():
            return
        if self.since_full >= GC_FULL_FORCE_EVERY or (
            self.since_full >= GC_FULL_EVERY and (gap_s is None or gap_s >= 2.0 * self.full_s)
        ):
            self._full()
        elif self.since_young:
            gc.collect(1)
            self.since_young = 0

    def busy(self) -> None:
        """No idle time before this timeslice: the young generations after
        :data:`GC_EVERY_TIMESLICES` timeslices without a collection, a full one after
        :data:`GC_FULL_FORCE_EVERY`."""
        if gc.isenabled():
            return
        if self.since_full >= GC_FULL_FORCE_EVERY:
            self._full()
        elif self.since_young >= GC_EVERY_TIMESLICES:
            gc.collect(1)
            self.since_young = 0

    def _full(self) -> None:
        t0 = time.perf_counter()
        gc.collect()
        self.full_s = time.perf_counter() - t0
        self.since_full = self.since_young = 0


class Pacer:
    """Holds timeslices back until their arrival (used by the runners)."""

    def __init__(self, options: OnlineOptions) -> None:
        self.options = options
        self.schedule = options.schedule
        self.clock = current_clock(options.clock)
        self.start: float | None = None
        self._arrivals = np.zeros(0)
        self.collector = IdleCollector()

    def arrival_offset(self, i: int) -> float:
        """Arrival of timeslice ``i``, s after the first."""
        if i >= len(self._arrivals):
            self._arrivals = self.schedule.arrival_times(max(2 * len(self._arrivals), i + 1, 64))
        return float(self._arrivals[i])

    def due(self, i: int) -> float:
        """Monotonic time (s) at which timeslice ``i`` arrives (the first call starts the
        replay)."""
        if self.start is None:
            self.start = self.options.start_s
            if self.start is None:
                self.start = self.clock.now()
        return self.start + self.arrival_offset(i)

    def backlog(self, i: int, now: float) -> int:
        """Timeslices after ``i`` that have arrived by ``now`` (s)."""
        due = self.schedule.arrived_by(now - self.start) if self.start is not None else 0
        n = self.options.n_timeframes
        if n is not None:
            due = min(due, n)
        return max(0, due - (i + 1))

    def wait(self, i: int) -> TimeframeTiming:
        """Sleep until timeslice ``i`` arrives (at once when behind); its timing."""
        due = self.due(i)
        now = self.clock.now()
        self.collector.timeslice()
        if due - now >= GC_IDLE_S:  # inside quiet_gc: collect in the idle time before it
            self.collector.idle(due - now)
            now = self.clock.now()
        else:
            self.collector.busy()
        while now < due:
            self.clock.sleep(due - now)
            now = self.clock.now()
        return TimeframeTiming(
            due, self.options.budget_ms, self.backlog(i, now), self.clock, self.period_ms(i)
        )

    def period_ms(self, i: int) -> float | None:
        """Mean interval (ms) between the arrivals of timeslices ``max(0, i - W) .. i``
        (``W`` = :data:`PERIOD_WINDOW`; past arrivals only), ``None`` for the first."""
        if i < 1:
            return None
        k = max(0, i - PERIOD_WINDOW)
        return 1e3 * (self.arrival_offset(i) - self.arrival_offset(k)) / (i - k)


__all__ = [
    "PERIOD_WINDOW",
    "SERVICE_EMA",
    "Burst",
    "Clock",
    "FakeClock",
    "IdleCollector",
    "NoTruthError",
    "OnlineOptions",
    "Pacer",
    "ReplayClock",
    "ReplaySchedule",
    "TimeframeTiming",
    "clock",
    "current_clock",
    "parse_burst",
    "quiet_gc",
]
