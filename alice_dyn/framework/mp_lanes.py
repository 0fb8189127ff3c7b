"""The multi-process driver's lanes: worker processes, their pipes and the selector.

Layer: framework (multi-process runner, driver side). Every processor instance ("lane") is a
worker process (:mod:`alice_dyn.framework.mp_worker`); ``pipeline={"name": N}`` starts N lanes
of a processor (``InitContext.lane`` = 0..N-1), each given the next timeslice when it has the
fewest in flight (round robin on ties). Sources have one lane.

Requests go to the workers through non-blocking pipes (the driver buffers what a pipe does not
take yet), results come back through one pipe per worker; the driver waits on all of them and
on the process sentinels with one selector, so it never blocks on a worker. A worker that exits
is drained (what it sent before it went is read) and reported to the driver with the cause of
its death. At the end every worker is asked to stop (``Task.stop``), then terminated if it does
not exit within the grace period.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import selectors
import signal
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from alice_dyn.framework import shm
from alice_dyn.framework.metrics import ProcessorMetrics
from alice_dyn.framework.mp_worker import PICKLE, POLL_S, frame, worker_main
from alice_dyn.framework.spec import DataProcessorSpec, SpecError
from alice_dyn.framework.topology import Topology


@dataclass(eq=False)
class Lane:
    """One worker process as the driver sees it."""

    name: str
    index: int
    proc: Any
    tasks: Any  # write end of the driver -> worker pipe (non-blocking)
    conn: Any  # read end of the worker -> driver pipe
    shadow: ProcessorMetrics  # the metrics its results reported so far
    outbox: deque = field(default_factory=deque)  # frames not yet written to ``tasks``
    inflight: dict[int, list[shm.WireMessage]] = field(default_factory=dict)  # ts -> inputs
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


class LaneEvents(Protocol):
    """What the driver does with what comes from the lanes."""

    def on_message(self, lane: Lane, msg: tuple) -> None: ...

    def on_garbled(self, lane: Lane, exc: Exception) -> None: ...

    def on_death(self, lane: Lane, cause: str) -> None: ...


def death_cause(code: int | None) -> str:
    """How a worker went, from its exit code."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Lanes:
    """The worker processes of one run (``by_name``: lanes per processor; ``all``: in worker
    index order, the index in their segment names)."""

    def __init__(self, start_method: str, events: LaneEvents) -> None:
        self.start_method = start_method
        self.events = events
        self.by_name: dict[str, list[Lane]] = {}
        self.all: list[Lane] = []
        self.rr: dict[str, int] = {}
        self.sel: selectors.BaseSelector | None = None

    # ---- processes ------------------------------------------------------------------------

    def _spec_ref(self, spec: DataProcessorSpec) -> Any:
        if self.start_method == "fork":
            return spec
        try:
            pickle.dumps(spec, PICKLE)
        except Exception as exc:
            if spec.factory:
                return ("factory", spec.factory, dict(spec.factory_kwargs), spec.name)
            raise SpecError(
                f"processor {spec.name!r} cannot be sent to a {self.start_method!r} worker "
                f"({type(exc).__name__}: {exc}); use a module-level algorithm, a spec factory "
                "or start_method='fork'"
            ) from exc
        return spec

    def start(
        self,
        topology: Topology,
        lanes_of: dict[str, int],
        configs: dict[str, dict],
        transports: dict[str, dict],
        prefix: str,
        abort_event: Any,
    ) -> None:
        """Start ``lanes_of[name]`` workers per processor (segment prefix ``<prefix><index>_``)."""
        ctx = mp.get_context(self.start_method)
        refs = {p.name: self._spec_ref(p) for p in topology.processors}
        wid = 0
        driver_conns: list[Any] = []  # copied into later forks, which close them
        for p in topology.processors:
            self.by_name[p.name] = []
            self.rr[p.name] = 0
            for k in range(lanes_of[p.name]):
                task_r, task_w = ctx.Pipe(duplex=False)
                r, w = ctx.Pipe(duplex=False)
                inherited = list(driver_conns) if self.start_method == "fork" else []
                proc = ctx.Process(
                    target=worker_main,
                    args=(refs[p.name], configs[p.name], k, f"{prefix}{wid}_", transports[p.name],
                          task_r, w, abort_event, os.getpid(), inherited),
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
                lane = Lane(p.name, k, proc, task_w, r, ProcessorMetrics(p.name))
                self.by_name[p.name].append(lane)
                self.all.append(lane)
                wid += 1

    def watch(self) -> None:
        """Register every worker's result pipe and process sentinel with the selector."""
        self.sel = selectors.DefaultSelector()
        for lane in self.all:
            self.sel.register(lane.conn, selectors.EVENT_READ, (lane, "in"))
            self.sel.register(lane.proc.sentinel, selectors.EVENT_READ, (lane, "exit"))

    def retire(self, lane: Lane, state: str) -> None:
        """``lane`` is ``"stopped"`` or ``"dead"``: nothing more goes to it or comes from it."""
        lane.state = state
        lane.outbox.clear()
        for obj in (lane.conn, lane.proc.sentinel, lane.tasks):
            try:
                self.sel.unregister(obj)
            except (KeyError, ValueError, AttributeError):
                pass
        lane.want_write = False

    def pick(self, name: str) -> Lane:
        """The lane of ``name`` for its next timeslice: fewest in flight, round robin on ties."""
        lanes = self.by_name[name]
        start = self.rr[name]
        lane = min(lanes, key=lambda ln: (len(ln.inflight), (ln.index - start) % len(lanes)))
        self.rr[name] = (lane.index + 1) % len(lanes)
        return lane

    # ---- pipes ----------------------------------------------------------------------------

    def send(self, lane: Lane, obj: Any) -> None:
        """Queue a request to a worker and write what the pipe takes now (never blocks)."""
        if lane.live:
            lane.outbox.append(memoryview(frame(obj)))
            self._flush_out(lane)

    def _flush_out(self, lane: Lane) -> None:
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

    def poll(self, timeout: float) -> None:
        """Wait for messages, room in a pipe or process exits (at most ``timeout`` s)."""
        if not any(lane.live for lane in self.all):
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

    def _drain(self, lane: Lane) -> None:
        """Read what an exited worker sent before it went."""
        try:
            while lane.live and lane.conn.poll(0):
                self._read(lane)
        except OSError:
            pass

    def _read(self, lane: Lane) -> None:
        try:
            data = lane.conn.recv_bytes()
        except (EOFError, OSError):
            if lane.live:
                self._on_death(lane)
            return
        try:
            msg = pickle.loads(data)
        except Exception as exc:
            self.events.on_garbled(lane, exc)
            return
        self.events.on_message(lane, msg)

    def _on_death(self, lane: Lane) -> None:
        lane.proc.join(1.0)
        code = lane.proc.exitcode
        self.retire(lane, "dead")
        self.events.on_death(lane, death_cause(code))

    # ---- the end --------------------------------------------------------------------------

    def stop(self, grace_s: float) -> BaseException | None:
        """Ask every worker to run ``Task.stop`` and exit, wait up to ``grace_s``, then terminate
        (and kill) what is left and close the pipes. Returns an exception that interrupted the
        wait (e.g. a second Ctrl-C: the clean-up went on; the caller re-raises it)."""
        if self.sel is None:
            self.watch()
        interrupted: BaseException | None = None
        try:
            for lane in self.all:
                if lane.live:
                    self.send(lane, ("stop",))
            grace = time.monotonic() + grace_s
            while any(ln.live for ln in self.all) and time.monotonic() < grace:
                self.poll(min(POLL_S, grace - time.monotonic()))
        except BaseException as exc:
            interrupted = exc
        for lane in self.all:
            if lane.proc.is_alive():
                lane.proc.terminate()
        for lane in self.all:
            lane.proc.join(2.0)
            if lane.proc.is_alive():
                lane.proc.kill()
                lane.proc.join()
        for lane in self.all:
            if lane.live:
                self.retire(lane, "dead")
            lane.tasks.close()
            lane.conn.close()
        if self.sel is not None:
            self.sel.close()
        return interrupted


__all__ = ["Lane", "LaneEvents", "Lanes", "death_cause"]
