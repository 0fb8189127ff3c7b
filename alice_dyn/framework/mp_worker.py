"""The worker side of the multi-process runner: one processor instance in its own process.

Layer: framework. :func:`worker_main` is the target of every worker process: it builds a
:class:`~alice_dyn.framework.runtime.ProcessorRuntime` for its processor (the spec itself under
``fork``; under ``spawn``/``forkserver`` the spec pickled, or re-made by its factory), runs
``init`` and the registered worker warm-ups
(:func:`~alice_dyn.framework.runtime.register_worker_warmup`), says it is ready and serves the
driver's requests until ``stop``:

* ``("run", ts, inputs, releases, timing)``: the inputs arrive as
  :class:`~alice_dyn.framework.shm.WireMessage` (read-only views of shared memory once decoded);
  the outputs go back as wire messages in segments of this worker's
  :class:`~alice_dyn.framework.shm.ShmArena`, with the names of the call's segments (owned by
  the driver from then on), the metrics since the last result, the segments the task still
  holds views of, when it finished and its ``pc.report`` values and CPU time. ``releases``:
  segments handed back to this worker, reused from now on (or unlinked).
* ``("release", segments)``, ``("eos",)``, ``("stop",)``.

Requests come as frames (an 8-byte little-endian length, then a pickle) on a pipe that the
driver writes without blocking; results go back as one pickle per message on a pipe of their
own. A worker whose driver is gone (the pipe closed and the process no longer exists) unlinks
its segments and exits. Ctrl-C is the driver's: workers ignore ``SIGINT``; in online runs the
garbage collector runs only when the worker is idle.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import select
import signal
import traceback
from typing import Any

from alice_dyn.framework import shm
from alice_dyn.framework.message import Parts, each_message
from alice_dyn.framework.online import IdleCollector, TimeframeTiming, quiet_gc
from alice_dyn.framework.runtime import ProcessorError, ProcessorRuntime, run_worker_warmups
from alice_dyn.framework.spec import DataProcessorSpec, SpecError

#: how long a worker (and the driver) waits for a message before it looks around, s
POLL_S = 0.5
PICKLE = pickle.HIGHEST_PROTOCOL
HEADER = 8  # frames on the driver -> worker pipe: 8-byte little-endian length, then a pickle


def frame(obj: Any) -> bytes:
    """``obj`` as one frame of the driver -> worker pipe."""
    data = pickle.dumps(obj, PICKLE)
    return len(data).to_bytes(HEADER, "little") + data


class _FrameReader:
    """Worker side of the driver -> worker pipe: whole frames, with a timeout."""

    def __init__(self, conn) -> None:
        self.conn = conn  # kept so that the descriptor stays open
        self.fd = conn.fileno()
        self.buf = bytearray()

    def recv(self, timeout: float) -> Any:
        """The next request, or ``None`` after ``timeout`` s without a complete one."""
        while True:
            if len(self.buf) >= HEADER:
                n = int.from_bytes(self.buf[:HEADER], "little")
                if len(self.buf) >= HEADER + n:
                    obj = pickle.loads(memoryview(self.buf)[HEADER : HEADER + n])
                    del self.buf[: HEADER + n]
                    return obj
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise EOFError("the driver closed the pipe")
            self.buf += chunk


def _load_spec(ref: Any) -> DataProcessorSpec:
    """The spec itself, or ``("factory", "module:function", kwargs, name)`` made again here."""
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
        self.results.send_bytes(pickle.dumps(msg, PICKLE))

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
        run_worker_warmups()  # e.g. JIT start-up, before the worker says it is ready
        self.initialised = True

    def _metrics_delta(self) -> tuple:
        m = self.rt.metrics
        now = (len(m.seconds), m.messages_in, m.bytes_in, m.messages_out, m.bytes_out)
        prev, self._seen = self._seen, now
        return (m.seconds[prev[0] :], *(a - b for a, b in zip(now[1:], prev[1:], strict=True)))

    def _decode(self, w: shm.WireMessage | Parts, mapped: dict) -> Any:
        """An input as the task reads it (every part of a multi-part binding)."""
        if isinstance(w, Parts):
            return Parts(shm.decode_message(p, self.cache, mapped) for p in w)
        return shm.decode_message(w, self.cache, mapped)

    def run(
        self,
        ts: int,
        wire_inputs: dict[str, shm.WireMessage | Parts],
        timing: TimeframeTiming | None,
    ) -> None:
        mapped: dict = {}
        try:
            inputs = {b: self._decode(w, mapped) for b, w in wire_inputs.items()}
        except Exception as exc:  # a segment vanished: only after the driver gave up
            tf = min((w.header.tf_id for w in each_message(wire_inputs)), default=ts)
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
                PICKLE,
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
                    item = tasks.recv(POLL_S)
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


def worker_main(
    spec_ref, config, lane, prefix, transport, tasks, results, abort, parent_pid, inherited
) -> None:
    """A worker process: serve the driver's requests for lane ``lane`` of a processor until
    ``stop`` (``inherited``: the driver's pipe ends that a fork copied, closed here)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's: it stops us
    for conn in inherited:  # the driver's ends of other workers' pipes, copied by fork
        conn.close()
    reader = _FrameReader(tasks)
    _Worker(spec_ref, config, lane, prefix, transport, results).serve(reader, abort, parent_pid)


__all__ = ["PICKLE", "POLL_S", "frame", "worker_main"]
