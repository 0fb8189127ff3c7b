"""The multi-process runner: one OS process per processor instance, payloads in shared memory.

Layer: framework. Same semantics as :func:`~alice_dyn.framework.runner_inline.run_inline` (same
outputs, same fate of every timeframe), with processors running concurrently:

* **Processes.** Every processor instance ("lane") is a worker process running a
  :class:`~alice_dyn.framework.runtime.ProcessorRuntime`; ``pipeline={"name": N}`` starts N lanes
  of a processor (``InitContext.lane`` = 0..N-1), each given the next timeslice when it has the
  fewest in flight (round robin on ties). Sources have one lane.
* **Driver.** The calling process routes every message, as the inline runner does, but
  asynchronously: a processor's timeslice ``t`` is decided (run, skipped, or *incomplete* when a
  blocking input is missing: consume when all) once all its producers are done with ``t`` and it
  has decided ``t - 1``; so each lane sees timeslices in increasing order, outputs of parallel
  lanes are consumed downstream in timeslice order, and Condition inputs are the latest one
  produced at or before ``t``. Sources are asked for one timeslice at a time (a source that calls
  ``end_of_stream`` is never run again, as inline).
* **Transport.** ``"ndarray"`` and ``"columns"`` payloads live in shared memory
  (:mod:`alice_dyn.framework.shm`): ``make``/``make_columns`` allocate there directly (zero
  copy), ``snapshot`` copies once, ``adopt`` of heap memory copies when sent; consumers get
  read-only views. Only small descriptors and ``"object"`` payloads are pickled.
* **Segment lifetime.** The driver owns every segment a worker reported, with one reference
  per pending delivery (mailbox, consumer lane, cached Condition input); a lane's references are
  dropped when its ``run`` returns. At zero the segment goes back to its producer, which reuses
  it for later outputs (no new mapping, pages already there) unless someone still has a view of
  it (the producing task, a consumer that kept its input, the kept sink): then it is unlinked,
  and the views stay valid. Segments of dead workers are unlinked by the driver; a run's
  segment names share a prefix that is swept at the end, so failures (even ``SIGKILL``) leave
  nothing in ``/dev/shm``.
* **Pipes.** Requests go to the workers through non-blocking pipes (the driver buffers what
  a pipe does not take yet), results come back through one pipe per worker; the driver waits on
  all of them and on the process sentinels with one selector, so it never blocks on a worker.
* **Backpressure.** At most ``queue_depth`` x (largest lane count) timeslices are in flight
  (asked from the sources and not yet finished by every processor): a slow consumer holds the
  sources back, and memory stays bounded.
* **Failures.** An exception in a worker stops the run with ``summary.error`` = the worker's
  :class:`~alice_dyn.framework.runtime.ProcessorError`; a worker that dies gives
  ``ProcessorError(stage="process died")`` naming the processor, lane and timeframe(s) it held.
  The driver only waits on pipes and process sentinels (never blocks on a worker) and honours
  ``timeout_s``. Timeframes in flight when the run stops are marked failed ("aborted").
  Workers are always stopped (``Task.stop``), then terminated if they do not exit.
* **Timing and online mode.** Each timeslice gets one
  :class:`~alice_dyn.framework.online.TimeframeTiming` when the sources are asked for it, sent
  with every ``run`` request (``pc.timing`` is the same in every process); workers send back
  when they finished (monotonic s, system-wide) and their ``pc.report`` values. With
  ``online=OnlineOptions(...)`` the sources are asked for timeslice ``i`` only once it has
  arrived on the replay schedule (at once when behind, e.g. held back by backpressure); the
  load in its timing is the processors' CPU time per timeframe (workers send it back with each
  result; moving averages summed: ``service_ms``) shared over the usable cores
  (``parallelism``).
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import itertools
import multiprocessing as mp
import os
import pickle
import select
import selectors
import signal
import sys
import time
import traceback
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from alice_dyn.framework import shm
from alice_dyn.framework.config import ConfigStore
from alice_dyn.framework.metrics import ProcessorMetrics
from alice_dyn.framework.online import (
    SERVICE_EMA,
    IdleCollector,
    OnlineOptions,
    Pacer,
    TimeframeTiming,
    current_clock,
    quiet_gc,
)
from alice_dyn.framework.runtime import (
    FAILED,
    INCOMPLETE,
    PROCESSED,
    ProcessorError,
    ProcessorRuntime,
    RunSummary,
    config_for,
)
from alice_dyn.framework.spec import DataProcessorSpec, Lifetime, SpecError
from alice_dyn.framework.topology import DUMMY_SINK, Topology

#: seconds the workers get to run ``Task.stop`` and exit before they are terminated
STOP_GRACE_S = 5.0
_POLL_S = 0.5
_PICKLE = pickle.HIGHEST_PROTOCOL

#: shared-memory bookkeeping of the last run in this process (diagnostics and tests): segment
#: uses reported by workers (``used``), handed back to their producer once every reader was done
#: (``returned``: pooled for reuse, or unlinked by the producer), ``unlinked`` by the driver,
#: ``released_at_end`` (still referenced at the end, e.g. cached Condition inputs) and ``swept``
#: (left behind by a failure)
last_transport_stats: dict[str, int] = {}


# --------------------------------------------------------------------------------------------
# worker side


_HEADER = 8  # frames on the driver -> worker pipe: 8-byte little-endian length, then a pickle


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, _PICKLE)
    return len(data).to_bytes(_HEADER, "little") + data


def _warm_jit() -> None:
    """Pay numba's one-off start-up (its LLVM back-end, ~0.4 s) before the worker says it is
    ready, when the task imported numba: its first timeframe would carry it otherwise (cached
    kernels then load in milliseconds)."""
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.njit(lambda: 0)()


def _usable_cpus() -> int:
    """CPU cores this process (and so its workers) may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _FrameReader:
    """Worker side of the driver -> worker pipe: whole frames, with a timeout."""

    def __init__(self, conn) -> None:
        self.conn = conn  # kept so that the descriptor stays open
        self.fd = conn.fileno()
        self.buf = bytearray()

    def recv(self, timeout: float) -> Any:
        """The next request, or ``None`` after ``timeout`` s without a complete one."""
        while True:
            if len(self.buf) >= _HEADER:
                n = int.from_bytes(self.buf[:_HEADER], "little")
                if len(self.buf) >= _HEADER + n:
                    obj = pickle.loads(memoryview(self.buf)[_HEADER : _HEADER + n])
                    del self.buf[: _HEADER + n]
                    return obj
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("the driver closed the pipe")
            self.buf += chunk


def _load_spec(ref: Any) -> DataProcessorSpec:
    if isinstance(ref, DataProcessorSpec):
        return ref
    _, factory, kwargs, name = ref
    module, _, func = factory.partition(":")
    made = getattr(importlib.import_module(module), func)(**kwargs)
    for spec in made if isinstance(made, list | tuple) else [made]:
        if spec.name == name:
            return spec
    raise SpecError(f"factory {factory} did not make processor {name!r}")


class _Worker:
    """One processor instance in its own process, serving the driver's requests."""

    def __init__(
        self, spec_ref: Any, config: dict, lane: int, prefix: str, transport: dict, results
    ) -> None:
        self.results = results
        self.name = spec_ref.name if isinstance(spec_ref, DataProcessorSpec) else spec_ref[3]
        self.arena = shm.ShmArena(prefix, transport["pool_slabs"])
        self.cache = shm.SegmentCache(transport["cache"])
        self.spec_ref = spec_ref
        self.config = config
        self.lane = lane
        self.transport = transport
        self.rt: ProcessorRuntime | None = None
        self.initialised = False
        self._seen = (0, 0, 0, 0, 0)

    def send(self, *msg: Any) -> None:
        self.results.send_bytes(pickle.dumps(msg, _PICKLE))

    def init(self) -> None:
        try:
            spec = _load_spec(self.spec_ref)
        except Exception as exc:
            err = ProcessorError(
                self.name, "init", f"{type(exc).__name__}: {exc}", details=traceback.format_exc()
            )
            self.send("error", None, err)
            return
        self.rt = ProcessorRuntime(spec, self.config, self.arena.allocate, self.lane)
        try:
            self.rt.init()
        except ProcessorError as err:
            self.send("error", None, err)
            return
        _warm_jit()
        self.initialised = True

    def _metrics_delta(self) -> tuple:
        m = self.rt.metrics
        now = (len(m.seconds), m.messages_in, m.bytes_in, m.messages_out, m.bytes_out)
        prev, self._seen = self._seen, now
        return (m.seconds[prev[0] :], *(a - b for a, b in zip(now[1:], prev[1:], strict=True)))

    def run(
        self, ts: int, wire_inputs: dict[str, shm.WireMessage], timing: TimeframeTiming | None
    ) -> None:
        mapped: dict = {}
        try:
            inputs = {b: shm.decode_message(w, self.cache, mapped) for b, w in wire_inputs.items()}
        except Exception as exc:  # a segment vanished: only after the driver gave up
            tf = min((w.header.tf_id for w in wire_inputs.values()), default=ts)
            cause = f"{type(exc).__name__}: {exc}"
            self.send("error", ts, ProcessorError(self.name, "receive", cause, ts, tf))
            return
        self.arena.begin()
        tf_id = ts
        try:
            res = self.rt.process(ts, inputs, timing)
            tf_id, eos, done_s, reports = res.tf_id, res.eos, res.done_s, res.reports
            cpu_s = res.cpu_seconds
            outs = [shm.encode_message(m, self.arena, mapped) for m in res.outputs]
            del res, inputs  # what is left referencing the input segments, the task holds
            held = self.cache.still_used(mapped)
            del mapped
            blob = pickle.dumps(
                (
                    "result",
                    ts,
                    outs,
                    self.arena.names(),
                    eos,
                    tf_id,
                    self._metrics_delta(),
                    held,
                    done_s,
                    reports,
                    cpu_s,
                ),
                _PICKLE,
            )
        except ProcessorError as err:
            self.arena.discard()
            self.send("error", ts, err)
            return
        except Exception as exc:  # an output that cannot be sent (pickling, shared memory full)
            self.arena.discard()
            err = ProcessorError(
                self.name, "send", f"{type(exc).__name__}: {exc}", ts, tf_id,
                traceback.format_exc(),
            )  # fmt: skip
            self.send("error", ts, err)
            return
        self.arena.seal()  # the driver owns the call's segments from now on
        self.results.send_bytes(blob)

    def end_of_stream(self) -> None:
        try:
            self.rt.end_of_stream()
        except ProcessorError as err:
            self.send("error", None, err)
            return
        self.send("eos_done")

    def serve(self, tasks: _FrameReader, abort, parent_pid: int) -> None:
        stopped = False
        online = bool(self.transport.get("online"))
        collector = IdleCollector()
        gc_guard = contextlib.ExitStack()
        try:
            self.init()
            # online runs: the collector out of the timed path, as in the inline runner (its
            # first collection before the worker says it is ready); a worker collects when idle
            # for a poll period (IdleCollector: young generations, now and then a full one)
            gc_guard.enter_context(quiet_gc(online))
            if self.initialised:
                self.send("ready")
            while True:
                try:
                    item = tasks.recv(_POLL_S)
                except EOFError:
                    item = None
                    parent_pid = -1
                if item is None:
                    if not _alive(parent_pid):  # the driver is gone: nobody will unlink
                        shm.sweep(self.arena.prefix)  # the segments this worker made
                        return
                    collector.idle(None)  # nothing while the collector is on (offline)
                    continue
                op = item[0]
                if op == "run":
                    for name, reusable in item[3]:  # segments handed back, to reuse now
                        self.arena.release(name, reusable)
                    if not abort.is_set():
                        self.run(item[1], item[2], item[4])
                    collector.timeslice()
                    collector.busy()
                elif op == "release":
                    for name, reusable in item[1]:
                        self.arena.release(name, reusable)
                elif op == "eos":
                    self.end_of_stream()
                elif op == "stop":
                    if self.rt is not None:
                        self.rt.stop()
                    self.arena.close()
                    stopped = True
                    self.send("stopped", self.rt.metrics if self.rt is not None else None)
                    return
        finally:
            gc_guard.close()
            if not stopped and self.rt is not None:
                self.rt.stop()
            self.results.close()


def _alive(pid: int) -> bool:
    """True while process ``pid`` (the driver) exists. Not ``os.getppid() == pid``: under the
    forkserver start method a worker's parent is the fork server, not the driver."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_main(
    spec_ref, config, lane, prefix, transport, tasks, results, abort, parent_pid, inherited
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops us
    for conn in inherited:  # the driver's ends of other workers' pipes, copied by fork
        conn.close()
    reader = _FrameReader(tasks)
    _Worker(spec_ref, config, lane, prefix, transport, results).serve(reader, abort, parent_pid)


# --------------------------------------------------------------------------------------------
# driver side


@dataclass(eq=False)
class _Lane:
    name: str
    index: int
    proc: Any
    tasks: Any  # write end of the driver -> worker pipe (non-blocking)
    conn: Any  # read end of the worker -> driver pipe
    shadow: ProcessorMetrics
    outbox: deque = field(default_factory=deque)  # frames not yet written to ``tasks``
    inflight: dict[int, list[shm.WireMessage]] = field(default_factory=dict)
    state: str = "starting"  # starting, ready, stopped, dead
    want_write: bool = False
    eos_done: bool = False
    final_metrics: ProcessorMetrics | None = None

    @property
    def label(self) -> str:
        return f"{self.name!r} lane {self.index}"

    @property
    def live(self) -> bool:
        return self.state not in ("stopped", "dead")


def _death_cause(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Driver:
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
        self.start_method = start_method
        self.timeout_s = timeout_s
        self.summary = RunSummary("multiprocess" if online is None else "multiprocess-online")
        self.pacer = Pacer(online) if online is not None else None
        self.clock = current_clock(online.clock if online is not None else None)
        self.timing: dict[int, TimeframeTiming] = {}  # per timeslice asked from the sources
        self.finished: dict[int, list[tuple[str, float, dict]]] = {}  # (name, done_s, reports)
        self.next_due: float | None = None  # arrival the sources wait for (online), s
        # the load (online): per processor its recent CPU ms per timeframe (moving average),
        # shared over the cores the workers may use (at most one per process)
        self.cpu_ms: dict[str, float] = {}
        self.parallelism = float(min(_usable_cpus(), sum(self.lanes_of.values())))

        self.names = [p.name for p in topology.processors]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.sources = list(topology.sources)
        self.source_set = set(self.sources)
        self.non_sources = [n for n in self.names if n not in self.source_set]
        self.producers = {n: {r.producer for r in topology.inputs_of[n]} for n in self.names}
        self.cond_bindings = {
            n: [r.binding for r in topology.inputs_of[n] if r.lifetime == Lifetime.Condition]
            for n in self.names
        }
        self.required = {n: topology.required_bindings(n) for n in self.names}

        self.lanes: dict[str, list[_Lane]] = {}
        self.all_lanes: list[_Lane] = []
        self.rr = dict.fromkeys(self.names, 0)
        self.prefix = shm.new_run_prefix()
        self.cache = shm.SegmentCache()
        self.segs: dict[str, int] = {}
        self.kept: set[str] = set()  # segments someone still has views of: never reused
        self.to_release: dict[_Lane, list[tuple[str, bool]]] = {}
        self.stats = {"used": 0, "returned": 0, "unlinked": 0, "released_at_end": 0, "swept": 0}

        self.mailbox: dict[str, dict[int, dict[str, shm.WireMessage]]] = {n: {} for n in self.names}
        self.cond_hist: dict[tuple[str, str], list[tuple[int, shm.WireMessage]]] = {
            (n, b): [] for n in self.names for b in self.cond_bindings[n]
        }
        self.next_ts = dict.fromkeys(self.non_sources, 0)
        self.pending: dict[int, set[str]] = {}
        self.produced: dict[int, dict[str, int]] = {}
        self.marks: dict[int, list[tuple[int, str, str, str]]] = {}
        self.sink_buf: dict[int, list[tuple[int, int, Any]]] = {}
        self.seq = itertools.count()
        self.opened = 0
        self.base = 0
        self.src_active = set(self.sources)
        self.src_busy = dict.fromkeys(self.sources, False)
        self.src_next = dict.fromkeys(self.sources, 0)

        self.phase = "init"
        self.aborted = False
        self.eos_lane: _Lane | None = None
        self.deadline: float | None = None
        self.abort_event = None
        self.bar = None
        self.sel: selectors.BaseSelector | None = None

    # ---- processes ------------------------------------------------------------------------

    def _spec_ref(self, spec: DataProcessorSpec) -> Any:
        if self.start_method == "fork":
            return spec
        try:
            pickle.dumps(spec, _PICKLE)
        except Exception as exc:
            if spec.factory:
                return ("factory", spec.factory, dict(spec.factory_kwargs), spec.name)
            raise SpecError(
                f"processor {spec.name!r} cannot be sent to a {self.start_method!r} worker "
                f"({type(exc).__name__}: {exc}); use a module-level algorithm, a spec factory "
                "or start_method='fork'"
            ) from exc
        return spec

    def _start_workers(self) -> None:
        ctx = mp.get_context(self.start_method)
        self.abort_event = ctx.Event()
        refs = {p.name: self._spec_ref(p) for p in self.topology.processors}
        wid = 0
        driver_conns: list[Any] = []  # copied into later forks, which close them
        for p in self.topology.processors:
            cfg = config_for(p, self.config)
            upstream = sum(self.lanes_of[q] for q in self.producers[p.name])
            transport = {
                "pool_slabs": self.window + 2,
                "cache": (self.window + 2) * upstream,
                "online": self.pacer is not None,
            }
            self.lanes[p.name] = []
            for k in range(self.lanes_of[p.name]):
                task_r, task_w = ctx.Pipe(duplex=False)
                r, w = ctx.Pipe(duplex=False)
                inherited = list(driver_conns) if self.start_method == "fork" else []
                proc = ctx.Process(
                    target=_worker_main,
                    args=(refs[p.name], cfg, k, f"{self.prefix}{wid}_", transport, task_r, w,
                          self.abort_event, os.getpid(), inherited),
                    name=f"alice-dyn {p.name}[{k}]",
                )  # fmt: skip
                try:
                    with warnings.catch_warnings():
                        # Python >= 3.12 warns when forking a process that has threads (tqdm's
                        # monitor, BLAS pools...); the workers only run their processor
                        warnings.filterwarnings(
                            "ignore", "This process .* is multi-threaded", DeprecationWarning
                        )
                        proc.start()
                except BaseException:
                    task_w.close()
                    r.close()
                    raise
                finally:
                    w.close()  # only the worker writes: its death shows as end of file
                    task_r.close()  # only the worker reads: writing to a dead one fails
                os.set_blocking(task_w.fileno(), False)
                driver_conns += [task_w, r]
                lane = _Lane(p.name, k, proc, task_w, r, ProcessorMetrics(p.name))
                self.lanes[p.name].append(lane)
                self.all_lanes.append(lane)
                wid += 1

    def _watch(self) -> None:
        """Register every worker's result pipe and process sentinel with the selector."""
        self.sel = selectors.DefaultSelector()
        for lane in self.all_lanes:
            self.sel.register(lane.conn, selectors.EVENT_READ, (lane, "in"))
            self.sel.register(lane.proc.sentinel, selectors.EVENT_READ, (lane, "exit"))

    def _retire(self, lane: _Lane, state: str) -> None:
        lane.state = state
        lane.outbox.clear()
        for obj in (lane.conn, lane.proc.sentinel, lane.tasks):
            try:
                self.sel.unregister(obj)
            except (KeyError, ValueError, AttributeError):
                pass
        lane.want_write = False

    def _send(self, lane: _Lane, obj: Any) -> None:
        """Queue a request to a worker and write what the pipe takes now (never blocks)."""
        if lane.live:
            lane.outbox.append(memoryview(_frame(obj)))
            self._flush_out(lane)

    def _flush_out(self, lane: _Lane) -> None:
        fd = lane.tasks.fileno()
        while lane.outbox:
            buf = lane.outbox[0]
            try:
                n = os.write(fd, buf)
            except BlockingIOError:
                break
            except OSError:  # the worker is gone; its sentinel reports it
                lane.outbox.clear()
                break
            if n < len(buf):
                lane.outbox[0] = buf[n:]
                break
            lane.outbox.popleft()
        want = bool(lane.outbox) and lane.live
        if want != lane.want_write:
            if want:
                self.sel.register(lane.tasks, selectors.EVENT_WRITE, (lane, "out"))
            else:
                self.sel.unregister(lane.tasks)
            lane.want_write = want

    def _poll(self, timeout: float) -> None:
        """Wait for messages, room in a pipe or process exits (at most ``timeout`` s)."""
        if not any(lane.live for lane in self.all_lanes):
            return
        exited = []
        for key, _ in self.sel.select(max(timeout, 0.0)):
            lane, kind = key.data
            if not lane.live:
                continue
            if kind == "in":
                self._read(lane)
            elif kind == "out":
                self._flush_out(lane)
            else:
                exited.append(lane)
        for lane in exited:
            if lane.live:
                self._drain(lane)
            if lane.live:
                self._on_death(lane)

    def _drain(self, lane: _Lane) -> None:
        """Read what an exited worker sent before it went."""
        try:
            while lane.live and lane.conn.poll(0):
                self._read(lane)
        except OSError:
            pass

    def _read(self, lane: _Lane) -> None:
        try:
            data = lane.conn.recv_bytes()
        except (EOFError, OSError):
            if lane.live:
                self._on_death(lane)
            return
        try:
            msg = pickle.loads(data)
        except Exception as exc:
            ts = min(lane.inflight, default=None)
            err = ProcessorError(
                lane.name, "send", f"cannot unpickle a message: {type(exc).__name__}: {exc}",
                ts, self._tf_of(ts),
            )  # fmt: skip
            self._on_error(lane, ts, err)
            return
        self._on_message(lane, msg)

    def _on_message(self, lane: _Lane, msg: tuple) -> None:
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
            self._retire(lane, "stopped")

    def _on_death(self, lane: _Lane) -> None:
        lane.proc.join(1.0)
        code = lane.proc.exitcode
        self._retire(lane, "dead")
        if self.aborted or self.phase == "stop":
            return
        held = sorted(lane.inflight)
        cause = f"worker process of {lane.label} (pid {lane.proc.pid}) {_death_cause(code)}"
        if held:
            cause += f" while holding timeslice(s) {held}"
        elif self.phase in ("init", "eos"):
            cause += f" during {'init' if self.phase == 'init' else 'end_of_stream'}"
        ts0 = held[0] if held else None
        err = ProcessorError(lane.name, "process died", cause, ts0, self._tf_of(ts0))
        self._fail(err, [(t, self._tf_of(t), lane.name, cause) for t in held])

    def _on_error(self, lane: _Lane, ts: int | None, err: ProcessorError) -> None:
        if ts is not None:
            lane.inflight.pop(ts, None)
        if self.aborted:
            return
        failures = []
        if ts is not None:
            tf = err.tf_id if err.tf_id is not None else ts
            failures.append((ts, tf, lane.name, err.cause))
        self._fail(err, failures)

    def _tf_of(self, ts: int | None) -> int | None:
        if ts is None:
            return None
        prod = self.produced.get(ts, {})
        first = next((s for s in self.sources if s in prod), None)
        return prod[first] if first is not None else ts

    # ---- shared memory references ---------------------------------------------------------

    def _retain(self, w: shm.WireMessage) -> None:
        for s in w.segments:
            self.segs[s] = self.segs.get(s, 0) + 1

    def _release(self, w: shm.WireMessage) -> None:
        for s in w.segments:
            n = self.segs.get(s, 0) - 1
            if n > 0:
                self.segs[s] = n
            else:
                self.segs.pop(s, None)
                self._free(s)

    def _free(self, s: str) -> None:
        """Segment ``s`` has no reader left: back to its producer (to reuse, or to unlink if a
        view of it is still held somewhere), or unlinked here when its producer is gone."""
        try:
            lane = self.all_lanes[int(s[len(self.prefix) :].split("_", 1)[0])]
        except (ValueError, IndexError):
            lane = None
        if self.aborted or lane is None or lane.state != "ready":
            shm.unlink_segment(s)
            self.stats["unlinked"] += 1
        else:
            self.to_release.setdefault(lane, []).append((s, s not in self.kept))
            self.stats["returned"] += 1
        self.kept.discard(s)

    def _flush_releases(self) -> None:
        """Send the segments handed back to lanes that get no run soon (an active source is
        asked again as soon as the window allows: they travel with that request)."""
        for ln in list(self.to_release):
            if ln.name in self.src_active:
                continue
            items = self.to_release.pop(ln, None)
            if items and ln.state == "ready":
                self._send(ln, ("release", items))
            elif items:
                for s, _ in items:
                    shm.unlink_segment(s)

    # ---- data flow ------------------------------------------------------------------------

    def _dispatch(self, name: str, ts: int, inputs: dict[str, shm.WireMessage]) -> None:
        lanes = self.lanes[name]
        start = self.rr[name]
        lane = min(lanes, key=lambda ln: (len(ln.inflight), (ln.index - start) % len(lanes)))
        self.rr[name] = (lane.index + 1) % len(lanes)
        lane.inflight[ts] = list(inputs.values())
        releases = self.to_release.pop(lane, [])  # handed back with the run: reused at once
        self._send(lane, ("run", ts, inputs, releases, self.timing.get(ts)))

    def _on_result(
        self, lane, ts, outs, new, eos, tf_id, delta, still_used, done_s, reports, cpu_s
    ) -> None:
        held = lane.inflight.pop(ts, [])
        if self.pacer is not None and (outs or lane.name not in self.source_set):
            ms, prev = 1e3 * cpu_s, self.cpu_ms.get(lane.name)
            self.cpu_ms[lane.name] = ms if prev is None else (
                SERVICE_EMA * ms + (1.0 - SERVICE_EMA) * prev
            )  # fmt: skip
        seconds, n_in, b_in, n_out, b_out = delta
        lane.shadow.merge(
            ProcessorMetrics(
                lane.name, list(seconds), messages_in=n_in, messages_out=n_out,
                bytes_in=b_in, bytes_out=b_out,
            )
        )  # fmt: skip
        self.stats["used"] += len(new)
        if self.aborted:  # the run stopped: nobody will read these
            for s in new:
                shm.unlink_segment(s)
            if lane.name in self.source_set and outs and ts not in self.summary.timeframes:
                # a timeframe a source made while the run was stopping: it entered, and failed
                self.summary.mark(ts, tf_id, PROCESSED)
                consumer = next(
                    (r.consumer for r in self.topology.routes if r.producer == lane.name),
                    lane.name,
                )
                self.summary.mark(ts, tf_id, FAILED, consumer, self._abort_why())
            return
        for s in new:
            self.segs.setdefault(s, 0)
        self.kept.update(still_used)
        name = lane.name
        self.finished.setdefault(ts, []).append((name, done_s, reports))
        if name in self.source_set:
            self.src_busy[name] = False
            self.src_next[name] = ts + 1
            if outs:
                self.produced.setdefault(ts, {})[name] = tf_id
        self._route(name, ts, outs)
        if self.aborted:
            return
        for w in held:
            self._release(w)
        for s in new:
            if self.segs.get(s) == 0:
                del self.segs[s]
                self._free(s)
        if name in self.source_set and eos:
            self._deactivate(name, ts)
        self.pending[ts].discard(name)

    def _route(self, name: str, ts: int, outs: list[shm.WireMessage]) -> None:
        idx = self.index[name]
        for w in outs:
            for route in self.topology.routes_from.get((name, w.header.data_type), ()):
                if route.consumer == DUMMY_SINK:
                    self.summary.sink_count += 1
                    if self.keep_sink:
                        try:
                            msg = shm.decode_message(w, self.cache)
                        except Exception as exc:  # e.g. a class the driver cannot import
                            cause = (
                                f"the kept sink cannot read output {w.header.data_type}: "
                                f"{type(exc).__name__}: {exc}"
                            )
                            tf = w.header.tf_id
                            err = ProcessorError(name, "send", cause, ts, tf)
                            self._fail(err, [(ts, tf, name, cause)])
                            return
                        self.kept.update(w.segments)
                        self.sink_buf.setdefault(ts, []).append((idx, next(self.seq), msg))
                elif route.lifetime == Lifetime.Condition:
                    hist = self.cond_hist[(route.consumer, route.binding)]
                    bisect.insort(hist, (ts, w), key=lambda e: e[0])
                    self._retain(w)
                else:
                    self.mailbox[route.consumer].setdefault(ts, {})[route.binding] = w
                    self._retain(w)

    def _deactivate(self, source: str, last_ts: int) -> None:
        self.src_active.discard(source)
        for t in range(last_ts + 1, self.opened):
            if t in self.pending:
                self.pending[t].discard(source)

    def _conditions_at(self, name: str, ts: int) -> dict[str, shm.WireMessage]:
        """The latest Condition input of each binding made at or before ``ts``."""
        out = {}
        for b in self.cond_bindings[name]:
            hist = self.cond_hist[(name, b)]
            i = bisect.bisect_right(hist, ts, key=lambda e: e[0])
            if i:
                out[b] = hist[i - 1][1]
        return out

    def _prune_conditions(self, name: str, ts: int) -> None:
        """Release Condition inputs older than the one valid at ``ts`` (never needed again)."""
        for b in self.cond_bindings[name]:
            hist = self.cond_hist[(name, b)]
            i = bisect.bisect_right(hist, ts, key=lambda e: e[0])
            for _, w in hist[: max(i - 1, 0)]:
                self._release(w)
            del hist[: max(i - 1, 0)]

    def _decide(self, name: str, dispatch: bool = True) -> None:
        """Run, skip or mark incomplete the next timeslices of ``name`` whose producers are done
        (with ``dispatch=False``: stop at the first one that would run)."""
        producers = self.producers[name]
        while True:
            ts = self.next_ts[name]
            if ts >= self.opened:
                return
            pend = self.pending[ts]
            if not producers.isdisjoint(pend):
                return
            box = self.mailbox[name].get(ts)
            conditions = self._conditions_at(name, ts)
            missing = self.required[name] - set(conditions) - set(box) if box else set()
            if box and not missing and not dispatch:
                return
            self.next_ts[name] = ts + 1
            self.mailbox[name].pop(ts, None)
            if not box:
                pass
            elif missing:
                why = f"input(s) {sorted(missing)} missing (consume when all)"
                self.marks.setdefault(ts, []).append((self.index[name], INCOMPLETE, name, why))
                for w in box.values():
                    self._release(w)
            else:
                for b, w in conditions.items():
                    if b not in box:
                        self._retain(w)  # held by the lane until its run returns
                self._dispatch(name, ts, {**conditions, **box})
            self._prune_conditions(name, ts)
            if not box or missing:
                pend.discard(name)

    def _open(self, ts: int) -> None:
        while self.opened <= ts:
            self.pending[self.opened] = set(self.non_sources) | self.src_active
            self.opened += 1

    def _service_ms(self) -> float | None:
        """The workflow's recent CPU time per timeframe: the sum over processors of their
        moving averages (``None`` until every processor has run once)."""
        if len(self.cpu_ms) < len(self.names):
            return None
        return sum(self.cpu_ms.values())

    def _timing_for(self, ts: int) -> TimeframeTiming | None:
        """The timing of timeslice ``ts``; ``None`` while it has not arrived (online)."""
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
                service_ms=self._service_ms(), parallelism=self.parallelism,
            )  # fmt: skip
        self.timing[ts] = timing
        return timing

    def _request_sources(self) -> None:
        self.next_due = None
        for name in self.sources:
            if name not in self.src_active or self.src_busy[name]:
                continue
            ts = self.src_next[name]
            if self.max_tf is not None and ts >= self.max_tf:
                self._deactivate(name, ts - 1)
                continue
            if ts >= self.base + self.window:
                continue  # backpressure: the oldest timeslice in flight must finish first
            if self._timing_for(ts) is None:
                continue  # online: not arrived yet
            self._open(ts)
            self.src_busy[name] = True
            self._dispatch(name, ts, {})

    def _mark_record(self, ts: int) -> bool:
        prod = self.produced.pop(ts, {})
        first = next((s for s in self.sources if s in prod), None)
        if first is not None:
            self.summary.mark(ts, prod[first], PROCESSED)
        timing = self.timing.pop(ts, None)
        for name, done_s, reports in self.finished.pop(ts, []):
            self.summary.record_run(ts, name, timing, done_s, reports)
        return first is not None

    def _flush_sink(self, ts: int) -> None:
        for _, _, msg in sorted(self.sink_buf.pop(ts, []), key=lambda e: e[:2]):
            self.summary.sink.append(msg)

    def _finalize_ready(self) -> None:
        while self.base < self.opened and not self.pending[self.base]:
            ts = self.base
            del self.pending[ts]
            tf = self._tf_of(ts)
            produced = self._mark_record(ts)
            for _, status, proc, why in sorted(self.marks.pop(ts, []), key=lambda e: e[0]):
                self.summary.mark(ts, tf, status, proc, why)
            self._flush_sink(ts)
            if produced:
                self.bar.update(1)
            self.base += 1

    def _pump(self) -> None:
        if self.aborted:
            return
        for name in self.non_sources:
            self._decide(name)
        self._finalize_ready()
        self._request_sources()
        self._flush_releases()

    @property
    def _streaming_done(self) -> bool:
        return not self.src_active and self.base == self.opened

    # ---- failures -------------------------------------------------------------------------

    def _fail(self, err: ProcessorError, failures: list[tuple[int, int, str, str]]) -> None:
        """Stop the run: record the error, the failed timeframes and those in flight."""
        if self.summary.error is None:
            self.summary.error = err
        if not self.aborted:  # settle what is already decided (results read before the error)
            for name in self.non_sources:
                self._decide(name, dispatch=False)
            self._finalize_ready()
        self.aborted = True
        self.abort_event.set()
        failed_at: dict[int, list[tuple[int, str, str, str]]] = {}
        for ts, tf, proc, cause in failures:
            failed_at.setdefault(ts, []).append((self.index[proc], FAILED, proc, cause, tf))
        for ts in range(self.base, max(self.opened, max(failed_at, default=-1) + 1)):
            tf_default = self._tf_of(ts)
            self._mark_record(ts)
            marks = [(*m, tf_default) for m in self.marks.pop(ts, [])] + failed_at.get(ts, [])
            for _, status, proc, why, tf in sorted(marks, key=lambda e: e[0]):
                self.summary.mark(ts, tf, status, proc, why)
            if ts in self.summary.timeframes:
                pend = self.pending.get(ts, set())
                holder = next((n for n in self.names if n in pend), None)
                self.summary.mark(ts, tf_default, FAILED, holder, self._abort_why())
            self._flush_sink(ts)
        self.pending.clear()
        self.base = self.opened

    def _abort_why(self) -> str:
        err = self.summary.error
        if err is None:
            return "aborted: the run was interrupted"
        return f"aborted: the run stopped after the failure of {err.processor!r}"

    def _check_deadline(self) -> bool:
        if self.deadline is None or time.monotonic() < self.deadline:
            return False
        waiting = [ln for ln in self.all_lanes if ln.inflight and ln.live]
        ts = min((min(ln.inflight) for ln in waiting), default=None)
        if ts is not None:
            lane = next(ln for ln in waiting if ts in ln.inflight)
        elif self.phase == "eos" and self.eos_lane is not None:
            lane = self.eos_lane
        else:
            lane = next((ln for ln in self.all_lanes if ln.state == "starting"), None)
        name = lane.name if lane is not None else self.names[0]
        cause = f"the run did not finish within timeout_s={self.timeout_s}"
        if lane is not None:
            cause += f" (waiting for {lane.label} in {self.phase})"
        err = ProcessorError(name, "timeout", cause, ts, self._tf_of(ts))
        self._fail(err, [(ts, self._tf_of(ts), name, cause)] if ts is not None else [])
        return True

    def _wait_step(self) -> None:
        timeout = _POLL_S
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
        if self.next_due is not None:  # online: wake up when the next timeframe arrives
            timeout = min(timeout, self.next_due - self.clock.now())
        self._poll(timeout)

    # ---- phases ---------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        while any(ln.state == "starting" for ln in self.all_lanes) and not self.aborted:
            self._wait_step()
            self._check_deadline()

    def _stream(self) -> None:
        self.phase = "stream"
        self._pump()
        while not self.aborted and not self._streaming_done:
            self._wait_step()
            if self._check_deadline():
                return
            self._pump()

    def _end_of_stream(self) -> None:
        self.phase = "eos"
        for name in self.names:  # in topological order, one instance after the other
            for lane in self.lanes[name]:
                self.eos_lane = lane
                self._send(lane, ("eos",))
                while not lane.eos_done and not self.aborted:
                    self._wait_step()
                    if self._check_deadline():
                        return
                if self.aborted:
                    return

    def _shutdown(self) -> None:
        self.phase = "stop"
        self.aborted = True  # nothing is routed any more
        if self.abort_event is not None:
            self.abort_event.set()
        if self.sel is None:
            self._watch()
        interrupted: BaseException | None = None
        try:  # ask every worker to run Task.stop and exit
            for lane in self.all_lanes:
                if lane.live:
                    self._send(lane, ("stop",))
            grace = time.monotonic() + STOP_GRACE_S
            while any(ln.live for ln in self.all_lanes) and time.monotonic() < grace:
                self._poll(min(_POLL_S, grace - time.monotonic()))
        except BaseException as exc:  # e.g. a second Ctrl-C: clean up anyway, then re-raise
            interrupted = exc
        for lane in self.all_lanes:
            if lane.proc.is_alive():
                lane.proc.terminate()
        for lane in self.all_lanes:
            lane.proc.join(2.0)
            if lane.proc.is_alive():
                lane.proc.kill()
                lane.proc.join()
        for lane in self.all_lanes:
            if lane.live:
                self._retire(lane, "dead")
            lane.tasks.close()
            lane.conn.close()
        if self.sel is not None:
            self.sel.close()
        for name in self.names:
            self.summary.metrics[name] = m = ProcessorMetrics(name)
            for lane in self.lanes.get(name, []):
                m.merge(lane.final_metrics if lane.final_metrics is not None else lane.shadow)
        for items in self.to_release.values():  # never sent: the workers are stopped
            for s, _ in items:
                shm.unlink_segment(s)
        for s in list(self.segs):
            shm.unlink_segment(s)
        self.stats["released_at_end"] = len(self.segs)
        self.segs.clear()
        self.stats["swept"] = len(shm.sweep(self.prefix))
        last_transport_stats.clear()
        last_transport_stats.update(self.stats, prefix=self.prefix)
        if interrupted is not None:
            raise interrupted

    def run(self) -> RunSummary:
        t0 = time.perf_counter()
        if self.timeout_s is not None:
            self.deadline = time.monotonic() + self.timeout_s
        try:
            self._start_workers()
            self._watch()
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
        if self.pacer is not None:
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
