"""Helpers shared by the framework tests: recording tasks and small inline workflows.

The tasks append to :data:`EVENTS`, :data:`SENT` and :data:`RECEIVED`; a test module that uses
them clears them around each test (:func:`clear_records` in an autouse fixture).
"""

import numpy as np

from alice_dyn.framework import (
    DataProcessorSpec,
    InputSpec,
    OutputSpec,
    Task,
    build_topology,
)
from alice_dyn.framework.spec import Lifetime

#: events recorded by helper tasks: ("run"|"init"|"eos"|"stop", processor, timeslice or None)
EVENTS: list[tuple] = []
#: payload references seen by producers / consumers (zero-copy checks)
SENT: list = []
RECEIVED: list = []


def clear_records() -> None:
    """Forget what the helper tasks recorded (each test starts empty)."""
    EVENTS.clear()
    SENT.clear()
    RECEIVED.clear()


class Recorder(Task):
    """Logs init/run/end_of_stream/stop into EVENTS and delegates ``run`` to ``fn(pc)``."""

    def __init__(self, name, fn=None, fail_init=False):
        self.name = name
        self.fn = fn
        self.fail_init = fail_init

    def init(self, ic):
        EVENTS.append(("init", self.name, None))
        if self.fail_init:
            raise RuntimeError("cannot open calibration")

    def run(self, pc):
        EVENTS.append(("run", self.name, pc.timeslice))
        if self.fn is not None:
            self.fn(pc)

    def end_of_stream(self, ec):
        EVENTS.append(("eos", self.name, None))

    def stop(self):
        EVENTS.append(("stop", self.name, None))


def recorded(name, fn=None, **kw):
    """A zero-argument factory of a :class:`Recorder` (the 'factory' algorithm form)."""
    return lambda: Recorder(name, fn, **kw)


def events(kind):
    return [(n, ts) for k, n, ts in EVENTS if k == kind]


def source_spec(n=None, *, tf0=100, size=4, extra=False, name="source"):
    """Source writing TST/RAW (``size`` float64 filled with the timeslice) with tf_id tf0+ts.

    ``n``: number of timeframes (None: never ends). ``extra``: also write TST/EXTRA.
    """

    def run(pc):
        ts = pc.timeslice
        pc.tf_id = tf0 + ts
        arr = pc.outputs.make("TST/RAW", size, np.float64)
        arr[:] = ts
        SENT.append(arr)
        if extra:
            pc.outputs.snapshot("TST/EXTRA", np.full(2, ts, dtype=np.int32))
        if n is not None and ts == n - 1:
            pc.end_of_stream()

    outs = [OutputSpec("TST", "RAW")]
    if extra:
        outs.append(OutputSpec("TST", "EXTRA"))
    return DataProcessorSpec(name, outputs=outs, algorithm=recorded(name, run))


def transform_spec(fail_at=None):
    """Doubles TST/RAW into TST/DOUBLED; raises at timeslice ``fail_at``."""

    def run(pc):
        if pc.timeslice == fail_at:
            raise ValueError("bad cluster")
        raw = pc.inputs.get("raw")
        out = pc.outputs.make("TST/DOUBLED", raw.shape, raw.dtype)
        out[:] = 2 * raw

    return DataProcessorSpec(
        "transform",
        inputs=[InputSpec("raw", "TST", "RAW")],
        outputs=[OutputSpec("TST", "DOUBLED")],
        algorithm=recorded("transform", run),
    )


def collector_spec():
    """Records (timeslice, pc.tf_id, header tf_id, first value) of TST/DOUBLED; no outputs."""

    def run(pc):
        x = pc.inputs.get("doubled")
        RECEIVED.append((pc.timeslice, pc.tf_id, pc.inputs.header("doubled").tf_id, float(x[0])))

    return DataProcessorSpec(
        "collector",
        inputs=[InputSpec("doubled", "TST", "DOUBLED")],
        algorithm=recorded("collector", run),
    )


def chain(n=4, fail_at=None):
    """source -> transform -> collector, listed consumer-first on purpose."""
    return build_topology([collector_spec(), transform_spec(fail_at), source_spec(n)])


def pair(producer_run, consumer_run, lifetime=Lifetime.Timeframe):
    """producer (TST/A) -> consumer reading it as ``a`` with ``lifetime``."""
    prod = DataProcessorSpec(
        "producer", outputs=[OutputSpec("TST", "A")], algorithm=recorded("producer", producer_run)
    )
    cons = DataProcessorSpec(
        "consumer",
        inputs=[InputSpec("a", "TST", "A", lifetime=lifetime)],
        algorithm=recorded("consumer", consumer_run),
    )
    return build_topology([prod, cons])


def end_after(n):
    """Decorate a ``run(pc)``: end the stream after timeslice ``n - 1``."""

    def wrap(fn):
        def run(pc):
            fn(pc)
            if pc.timeslice == n - 1:
                pc.end_of_stream()

        return run

    return wrap
