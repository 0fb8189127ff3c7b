"""Task forms, the processing context's allocator and input record, and how outputs travel
through the inline runner (zero copy, snapshot, adopt, misuse).

A bug these tests found (factories with defaulted arguments) is fixed; its test pins the fixed
behaviour.
"""

import functools
import re

import numpy as np
import pytest
from framework_helpers import (
    RECEIVED,
    SENT,
    clear_records,
    end_after,
    events,
    pair,
)

from alice_dyn.framework import (
    DataProcessorSpec,
    DataType,
    OutputSpec,
    ProcessorError,
    SpecError,
    Task,
    run_inline,
)
from alice_dyn.framework.context import DataAllocator, InputRecord
from alice_dyn.framework.message import SERIALIZATION_NDARRAY, SERIALIZATION_OBJECT
from alice_dyn.framework.runtime import FAILED, PROCESSED
from alice_dyn.framework.task import FunctionTask, make_task


@pytest.fixture(autouse=True)
def _records():
    """The helper tasks' records start empty in every test."""
    clear_records()
    yield
    clear_records()


class Plain(Task):
    def run(self, pc):
        pass


def test_make_task_forms():
    assert type(make_task(Plain)) is Plain
    instance = Plain()
    assert make_task(instance) is instance
    made = []

    def factory():
        made.append(Plain())
        return made[-1]

    assert make_task(factory) is made[0]

    calls = []
    task = make_task(lambda pc: calls.append(pc))
    assert isinstance(task, FunctionTask)
    task.run("pc-sentinel")
    assert calls == ["pc-sentinel"]


def test_make_task_errors():
    with pytest.raises(TypeError, match="did not return a Task"):
        make_task(lambda: 42)
    with pytest.raises(TypeError, match="cannot make a Task"):
        make_task(42)


def test_make_task_factory_with_defaults():
    class WithArg(Task):
        def __init__(self, x=1):
            self.x = x

        def run(self, pc):
            pass

    task = make_task(functools.partial(WithArg, x=2))
    assert isinstance(task, WithArg) and task.x == 2


def _alloc_spec():
    return DataProcessorSpec(
        "alloc",
        outputs=[
            OutputSpec("TST", "A", binding="a"),
            OutputSpec("TST", "B", 1),
            OutputSpec("TST", "C"),
        ],
    )


def test_allocator_make_snapshot_adopt_and_collect():
    alloc = DataAllocator(_alloc_spec())
    arr = alloc.make("a", (2, 3), np.int16)
    assert arr.shape == (2, 3) and arr.dtype == np.int16 and arr.flags.writeable
    arr[:] = 7
    src = np.arange(5.0)
    alloc.snapshot(DataType("TST", "B", 1), src)
    obj = {"meta": [1, 2]}
    alloc.adopt("TST/C", obj)
    msgs = alloc.collect(timeslice=3, tf_id=42)
    assert [str(m.header.data_type) for m in msgs] == ["TST/A/0", "TST/B/1", "TST/C/0"]
    assert msgs[0].payload is arr
    assert msgs[1].payload is not src and not np.shares_memory(msgs[1].payload, src)
    np.testing.assert_array_equal(msgs[1].payload, src)
    assert msgs[2].payload is obj
    assert all(m.header.timeslice == 3 and m.header.tf_id == 42 for m in msgs)
    assert [m.header.payload_size for m in msgs] == [12, 40, 0]
    assert msgs[0].header.serialization == SERIALIZATION_NDARRAY
    assert msgs[2].header.serialization == SERIALIZATION_OBJECT
    assert alloc.collect(4, 43) == []  # collected messages are not sent again


def test_allocator_snapshot_copies_columns_and_objects():
    alloc = DataAllocator(_alloc_spec())
    cols = {"x": np.arange(3), "y": np.ones(3)}
    alloc.snapshot("a", cols)
    obj = {"nested": [1, 2]}
    alloc.snapshot("TST/C", obj)
    cols["x"][:] = -1
    obj["nested"].append(3)
    a, c = alloc.collect(0, 0)
    np.testing.assert_array_equal(a.payload["x"], [0, 1, 2])
    assert a.header.payload_size == 3 * 8 + 3 * 8
    assert c.payload == {"nested": [1, 2]}


@pytest.mark.parametrize(
    "second",
    [
        lambda al: al.make("a", 1),
        lambda al: al.snapshot("TST/A", np.zeros(1)),
        lambda al: al.adopt(DataType("TST", "A"), 1),
    ],
)
def test_allocator_same_output_twice(second):
    alloc = DataAllocator(_alloc_spec())
    alloc.make("a", 1)
    with pytest.raises(SpecError, match=r"'alloc'.*TST/A/0 made twice"):
        second(alloc)


def test_allocator_undeclared_output():
    alloc = DataAllocator(_alloc_spec())
    for bad in ("TST/D", "TST/B/0", DataType("TST", "A", 5)):
        with pytest.raises(SpecError, match=r"'alloc' declares no output"):
            alloc.make(bad, 1)
    assert alloc.collect(0, 0) == []


def test_input_record_missing_binding():
    rec = InputRecord("tpc-tracker", {})
    with pytest.raises(KeyError, match=r"'tpc-tracker'.*'clusters'"):
        rec.get("clusters")
    assert not rec.is_valid("clusters") and "clusters" not in rec and len(rec) == 0


def test_make_is_zero_copy_through_the_runner():
    @end_after(3)
    def produce(pc):
        arr = pc.outputs.make("TST/A", 1000, np.float32)
        arr[:] = pc.timeslice
        SENT.append(arr)

    summary = run_inline(pair(produce, lambda pc: RECEIVED.append(pc.inputs.get("a"))))
    assert summary.error is None and summary.count(PROCESSED) == 3
    assert len(SENT) == len(RECEIVED) == 3
    for ts, (sent, got) in enumerate(zip(SENT, RECEIVED, strict=True)):
        assert got is sent and np.shares_memory(sent, got)
        assert np.all(got == ts)


def test_snapshot_delivers_a_copy_through_the_runner():
    buffer = np.zeros(8)

    @end_after(2)
    def produce(pc):
        buffer[:] = pc.timeslice + 1
        pc.outputs.snapshot("TST/A", buffer)
        buffer[:] = -99  # reused after the snapshot: must not leak downstream

    summary = run_inline(pair(produce, lambda pc: RECEIVED.append(pc.inputs.get("a"))))
    assert summary.error is None
    assert [float(x[0]) for x in RECEIVED] == [1.0, 2.0]
    assert all(np.all(x == x[0]) and not np.shares_memory(x, buffer) for x in RECEIVED)


def test_adopt_does_not_copy_through_the_runner():
    @end_after(2)
    def produce(pc):
        obj = {"ts": pc.timeslice}
        SENT.append(obj)
        pc.outputs.adopt("TST/A", obj)

    run_inline(pair(produce, lambda pc: RECEIVED.append(pc.inputs.get("a"))))
    assert len(RECEIVED) == 2 and all(r is s for r, s in zip(RECEIVED, SENT, strict=True))


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (lambda pc: pc.outputs.make("TST/NOPE", 1), r"'producer' declares no output TST/NOPE"),
        (
            lambda pc: (pc.outputs.make("TST/A", 1), pc.outputs.make("TST/A", 1)),
            r"TST/A/0 made twice",
        ),
    ],
)
def test_output_misuse_fails_the_run(body, match):
    summary = run_inline(pair(body, lambda pc: None))
    err = summary.error
    assert isinstance(err, ProcessorError)
    assert err.processor == "producer" and err.stage == "run"
    assert re.search(rf"SpecError: .*{match}", err.cause)
    assert summary.timeframes[0].status == FAILED
    assert events("run") == [("producer", 0)]


def test_missing_input_binding_names_processor_via_runner():
    @end_after(1)
    def produce(pc):
        pc.outputs.adopt("TST/A", 1)

    summary = run_inline(pair(produce, lambda pc: pc.inputs.get("typo")))
    assert summary.error.processor == "consumer"
    assert "KeyError" in summary.error.cause
    assert "'consumer'" in summary.error.cause and "'typo'" in summary.error.cause
