"""Running one processor: the part every runner shares (inline, multi-process, Dask).

Layer: framework. :class:`ProcessorRuntime` builds the Task of a spec, calls ``init``, ``run``
for each timeframe with its inputs (timing it), ``end_of_stream`` and ``stop``; any exception
becomes a :class:`ProcessorError` naming the processor and the timeframe. :class:`RunSummary`
is what every runner returns: the fate of each timeframe and the metrics.

Worker warm-ups: a package whose tasks have a one-off start-up cost that ``init`` does not pay
(e.g. a JIT compiler's back-end) registers a hook with :func:`register_worker_warmup`; a worker
process of the multi-process runner runs every hook after its task's ``init``, before it says it
is ready, so that the first timeframe does not carry the cost. The framework itself knows no such
library: the hooks are registered where the library is used (on import, so that ``spawn`` and
``forkserver`` workers, which import the processor's module, have them too).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alice_dyn.framework.config import ConfigStore
from alice_dyn.framework.context import (
    ArrayFactory,
    DataAllocator,
    EndOfStreamContext,
    InitContext,
    InputRecord,
    ProcessingContext,
    Services,
    heap_arrays,
)
from alice_dyn.framework.errors import UsageError
from alice_dyn.framework.message import Message, Parts, each_message
from alice_dyn.framework.metrics import ProcessorMetrics
from alice_dyn.framework.online import TimeframeTiming, current_clock
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task, make_task

_WORKER_WARMUPS: list[Callable[[], None]] = []


def register_worker_warmup(fn: Callable[[], None]) -> Callable[[], None]:
    """Run ``fn()`` in every worker process after its task's ``init`` (once per function, in
    the order registered); returns ``fn`` (usable as a decorator)."""
    if fn not in _WORKER_WARMUPS:
        _WORKER_WARMUPS.append(fn)
    return fn


def run_worker_warmups() -> None:
    """Run the registered worker warm-ups (an exception propagates: the worker fails)."""
    for fn in list(_WORKER_WARMUPS):
        fn()


PROCESSED = "processed"
FAILED = "failed"
INCOMPLETE = "incomplete"


class ProcessorError(RuntimeError):
    """A processor raised (or its process died); names the processor and the timeframe."""

    def __init__(
        self,
        processor: str,
        stage: str,
        cause: str,
        timeslice: int | None = None,
        tf_id: int | None = None,
        details: str = "",
        usage_message: str | None = None,
    ) -> None:
        self.processor = processor
        self.stage = stage
        self.cause = cause
        self.timeslice = timeslice
        self.tf_id = tf_id
        self.details = details
        #: the task raised a :class:`~alice_dyn.framework.errors.UsageError` (a bad input file
        #: or setting, the user's to fix): its message alone, else ``None``
        self.usage_message = usage_message
        where = f"processor {processor!r}"
        if timeslice is not None:
            where += f", timeframe {tf_id} (timeslice {timeslice})"
        super().__init__(f"{where}: {stage} failed: {cause}")

    def __reduce__(self):
        return (
            ProcessorError,
            (
                self.processor, self.stage, self.cause, self.timeslice, self.tf_id,
                self.details, self.usage_message,
            ),
        )  # fmt: skip


def config_for(spec: DataProcessorSpec, store: ConfigStore | None) -> dict[str, Any]:
    """The configuration groups a processor declared, as effective instances."""
    if store is None:
        store = ConfigStore(spec.config_groups)
    return {g: store.get(g) for g in spec.config_groups}


@dataclass
class ProcessResult:
    """What one ``run`` call made; ``seconds``: its wall time; ``done_s``: monotonic time (s)
    it returned; ``reports``: what the task attached with ``pc.report``; ``cpu_seconds``: the
    CPU time of the process during the call (all its threads)."""

    outputs: list[Message]
    eos: bool
    tf_id: int
    seconds: float
    done_s: float = 0.0
    reports: dict[str, Any] = field(default_factory=dict)
    cpu_seconds: float = 0.0


class ProcessorRuntime:
    """One instance (lane) of a processor."""

    def __init__(
        self,
        spec: DataProcessorSpec,
        config: dict[str, Any],
        arrays: ArrayFactory = heap_arrays,
        lane: int = 0,
    ) -> None:
        self.spec = spec
        self.config = config
        self.arrays = arrays
        self.lane = lane
        self.task: Task | None = None
        self.metrics = ProcessorMetrics(spec.name)

    def _fail(self, stage: str, exc: BaseException, timeslice=None, tf_id=None) -> ProcessorError:
        if isinstance(exc, ProcessorError):
            return exc
        cause = f"{type(exc).__name__}: {exc}"
        usage = str(exc) if isinstance(exc, UsageError) else None
        return ProcessorError(
            self.spec.name, stage, cause, timeslice, tf_id, traceback.format_exc(), usage
        )

    def init(self) -> None:
        try:
            self.task = make_task(self.spec.algorithm)
            self.task.init(InitContext(self.spec, self.config, self.lane))
        except Exception as exc:
            raise self._fail("init", exc) from exc

    def process(
        self,
        timeslice: int,
        inputs: dict[str, Message | Parts],
        timing: TimeframeTiming | None = None,
    ) -> ProcessResult:
        """Run the task on one timeframe's inputs; returns its outputs (sent by the runner).

        ``timing`` is ``pc.timing`` (the runner's, shared by the processors of a timeslice);
        ``None``: arrival now, no budget."""
        # the id of this timeframe's data; cached Condition inputs of earlier timeframes and
        # sources (no input) do not count
        messages = list(each_message(inputs))
        tf_id = min(
            (m.header.tf_id for m in messages if m.header.timeslice == timeslice),
            default=timeslice,
        )
        allocator = DataAllocator(self.spec, self.arrays)
        services = Services()
        pc = ProcessingContext(
            self.spec,
            InputRecord(self.spec.name, inputs),
            allocator,
            services,
            self.config,
            timeslice,
            tf_id,
            timing,
        )
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            self.task.run(pc)
            outputs = allocator.collect(timeslice, pc.tf_id)
        except Exception as exc:
            raise self._fail("run", exc, timeslice, pc.tf_id) from exc
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        if inputs or outputs:  # a source's last call that only ends the stream is no timeframe
            self.metrics.record(
                dt,
                len(messages),
                sum(m.header.payload_size for m in messages),
                len(outputs),
                sum(m.header.payload_size for m in outputs),
            )
        done = current_clock(pc.timing.clock).now()
        return ProcessResult(
            outputs, services.control.eos_requested, pc.tf_id, dt, done, pc.reports, cpu
        )

    def end_of_stream(self) -> None:
        try:
            self.task.end_of_stream(EndOfStreamContext(self.spec, self.config))
        except Exception as exc:
            raise self._fail("end_of_stream", exc) from exc

    def stop(self) -> None:
        if self.task is not None:
            try:
                self.task.stop()
            except Exception:  # stop runs during clean-up: never mask the first error
                pass


@dataclass
class TimeframeRecord:
    """What happened to one timeframe.

    ``arrival_s``: its arrival (monotonic s, :attr:`TimeframeTiming.arrival_s`); ``done_s``: when
    the last processor finished it (monotonic s); ``backlog``: timeframes waiting when it entered;
    ``reports``: ``{processor: {key: value}}`` from ``pc.report``.
    """

    timeslice: int
    tf_id: int
    status: str = PROCESSED
    processor: str | None = None
    error: str | None = None
    # times are not part of a timeframe's fate: records of two runs compare equal without them
    arrival_s: float | None = field(default=None, compare=False)
    done_s: float | None = field(default=None, compare=False)
    backlog: int = field(default=0, compare=False)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float | None:
        """``done_s - arrival_s`` in ms (``None`` if either is unknown)."""
        if self.arrival_s is None or self.done_s is None:
            return None
        return (self.done_s - self.arrival_s) * 1e3


@dataclass
class RunSummary:
    """Result of a run: per-timeframe fate, metrics, the dummy sink's messages (if kept)."""

    runner: str
    timeframes: dict[int, TimeframeRecord] = field(default_factory=dict)
    metrics: dict[str, ProcessorMetrics] = field(default_factory=dict)
    sink: list[Message] = field(default_factory=list)
    sink_count: int = 0
    error: ProcessorError | None = None
    wall_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.timeframes.values() if r.status == status)

    @property
    def ok(self) -> bool:
        return self.error is None and self.count(PROCESSED) == len(self.timeframes)

    def mark(self, timeslice: int, tf_id: int, status: str, processor=None, error=None) -> None:
        rec = self.timeframes.setdefault(timeslice, TimeframeRecord(timeslice, tf_id))
        if status != PROCESSED and rec.status == PROCESSED:  # first problem wins
            rec.status, rec.processor, rec.error = status, processor, error

    def record_run(
        self,
        timeslice: int,
        processor: str,
        timing: TimeframeTiming | None,
        done_s: float,
        reports: dict[str, Any],
    ) -> None:
        """Note a processor's ``run`` of an entered timeslice: its timing, when it finished
        (monotonic s) and its ``pc.report`` values."""
        rec = self.timeframes.get(timeslice)
        if rec is None:
            return
        if rec.arrival_s is None and timing is not None:
            rec.arrival_s, rec.backlog = timing.arrival_s, timing.backlog
        if rec.done_s is None or done_s > rec.done_s:
            rec.done_s = done_s
        if reports:
            rec.reports.setdefault(processor, {}).update(reports)

    def cap_backlog(self) -> None:
        """Recorded backlogs count only timeframes that exist (a replay schedule goes on past
        the last one)."""
        records = sorted(self.timeframes.values(), key=lambda r: r.timeslice)
        for k, rec in enumerate(records):
            rec.backlog = min(rec.backlog, len(records) - 1 - k)

    @property
    def tf_reports(self) -> dict[int, dict[str, dict[str, Any]]]:
        """``{tf_id: {processor: {key: value}}}`` of the timeframes with ``pc.report`` values."""
        return {r.tf_id: r.reports for r in self.timeframes.values() if r.reports}

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def as_dict(self) -> dict[str, Any]:
        """The run as JSON-able data (``timeframe_reports`` only when a task used
        ``pc.report``)."""
        out: dict[str, Any] = {
            "runner": self.runner,
            "timeframes_in": len(self.timeframes),
            "timeframes_processed": self.count(PROCESSED),
            "timeframes_failed": self.count(FAILED),
            "timeframes_incomplete": self.count(INCOMPLETE),
            "failures": [
                {
                    "timeslice": r.timeslice,
                    "tf_id": r.tf_id,
                    "status": r.status,
                    "processor": r.processor,
                    "error": r.error,
                }
                for r in self.timeframes.values()
                if r.status != PROCESSED
            ],
            "error": str(self.error) if self.error else None,
            "wall_seconds": self.wall_seconds,
            "sink_messages": self.sink_count,
        }
        reports = [
            {"timeslice": r.timeslice, "tf_id": r.tf_id, "reports": r.reports}
            for r in self.timeframes.values()
            if r.reports
        ]
        if reports:
            out["timeframe_reports"] = reports
        return out

    def format(self) -> str:
        s = (
            f"{self.runner} run: {len(self.timeframes)} timeframes in, {self.count(PROCESSED)} "
            f"processed, {self.count(FAILED)} failed, {self.count(INCOMPLETE)} incomplete "
            f"({self.wall_seconds:.2f} s)"
        )
        for r in self.timeframes.values():
            if r.status != PROCESSED:
                s += (
                    f"\n  timeframe {r.tf_id} (timeslice {r.timeslice}): {r.status} "
                    f"in {r.processor}: {r.error}"
                )
        return s
