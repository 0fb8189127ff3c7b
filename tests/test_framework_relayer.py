"""The relayer that every runner shares: routing (mailboxes, Condition inputs, dummy sink),
completion (which timeslice is decided when) and the consume-when-all decisions, driven directly
without a runner; the ``retain``/``release`` hooks must balance.
"""

from collections import Counter

import pytest

from alice_dyn.framework import (
    DataProcessorSpec,
    DataType,
    InputSpec,
    Lifetime,
    OutputSpec,
    build_topology,
)
from alice_dyn.framework.message import Message, make_message
from alice_dyn.framework.relayer import INCOMPLETE, RUN, SKIP, Relayer

A, B, C = DataType("TST", "A"), DataType("TST", "B"), DataType("TST", "C")


def msg(data_type: DataType, ts: int, payload=None) -> Message:
    return make_message(data_type, {"ts": ts} if payload is None else payload, ts, 100 + ts)


class Refs:
    """Counting ``retain``/``release`` hooks: deliveries held per message (by id)."""

    def __init__(self) -> None:
        self.held: Counter = Counter()

    def retain(self, m: Message) -> None:
        self.held[id(m)] += 1

    def release(self, m: Message) -> None:
        self.held[id(m)] -= 1
        assert self.held[id(m)] >= 0, "released more often than retained"

    def total(self) -> int:
        return sum(self.held.values())


def relayer_for(specs, refs: Refs | None = None) -> Relayer:
    topo = build_topology(specs)
    if refs is None:
        return Relayer(topo)
    return Relayer(topo, refs.retain, refs.release)


def two_into_one(lifetime_b=Lifetime.Timeframe):
    """src-a (TST/A) and src-b (TST/B) -> join (a, b with ``lifetime_b``) -> TST/C (dangling)."""
    return [
        DataProcessorSpec("src-a", outputs=[OutputSpec("TST", "A")]),
        DataProcessorSpec("src-b", outputs=[OutputSpec("TST", "B")]),
        DataProcessorSpec(
            "join",
            inputs=[
                InputSpec("a", "TST", "A"),
                InputSpec("b", "TST", "B", lifetime=lifetime_b),
            ],
            outputs=[OutputSpec("TST", "C")],
        ),
    ]


def no_sink(m):
    raise AssertionError(f"unexpected sink message {m.header}")


def produce(rel: Relayer, name: str, ts: int, *outputs: Message, to_sink=no_sink) -> None:
    rel.route(name, ts, outputs, to_sink)
    rel.done(name, ts)


def test_consume_when_all_runs_with_every_input_and_marks_incomplete_otherwise():
    refs = Refs()
    rel = relayer_for(two_into_one(), refs)
    rel.open(1)
    a0, b0, a1 = msg(A, 0), msg(B, 0), msg(A, 1)
    produce(rel, "src-a", 0, a0)
    produce(rel, "src-b", 0, b0)
    produce(rel, "src-a", 1, a1)
    produce(rel, "src-b", 1)  # made nothing for timeslice 1
    assert refs.total() == 3  # one delivery each, in join's mailbox
    decisions = list(rel.decide("join"))
    assert [(d.timeslice, d.kind) for d in decisions] == [(0, RUN), (1, INCOMPLETE)]
    assert decisions[0].inputs == {"a": a0, "b": b0}
    assert decisions[1].inputs == {"a": a1}
    assert decisions[1].why == "input(s) ['b'] missing (consume when all)"
    # the incomplete timeslice's message is dropped; the run holds its inputs until released
    assert refs.held[id(a1)] == 0 and refs.total() == 2
    assert rel.pending[0] == {"join"} and rel.pending[1] == set()
    assert rel.complete() == []  # timeslice 0 waits for join's run
    rel.route("join", 0, [], no_sink)
    rel.done("join", 0)
    assert rel.complete() == [0, 1] and rel.base == 2


def test_optional_input_absent_the_consumer_still_runs():
    rel = relayer_for(two_into_one(Lifetime.Optional))
    assert rel.required["join"] == {"a"}
    rel.open(0)
    a0 = msg(A, 0)
    produce(rel, "src-a", 0, a0)
    produce(rel, "src-b", 0)
    [d] = rel.decide("join")
    assert (d.kind, d.inputs) == (RUN, {"a": a0})


def test_nothing_for_a_consumer_is_a_skip_and_done_at_once():
    rel = relayer_for(two_into_one())
    rel.open(0)
    produce(rel, "src-a", 0)
    produce(rel, "src-b", 0)
    [d] = rel.decide("join")
    assert (d.timeslice, d.kind, d.inputs) == (0, SKIP, {})
    assert rel.complete() == [0]


def test_decisions_wait_for_every_producer_and_come_in_timeslice_order():
    rel = relayer_for(two_into_one())
    rel.open(1)
    # timeslice 1 is finished by both producers before timeslice 0
    produce(rel, "src-a", 1, msg(A, 1))
    produce(rel, "src-b", 1, msg(B, 1))
    produce(rel, "src-a", 0, msg(A, 0))
    assert list(rel.decide("join")) == []  # src-b not done with 0: nothing, not even 1
    assert rel.holder(0) == "src-b"
    produce(rel, "src-b", 0, msg(B, 0))
    # stop_before_run leaves a timeslice that would run undecided
    assert list(rel.decide("join", stop_before_run=True)) == []
    assert [d.timeslice for d in rel.decide("join")] == [0, 1]
    assert list(rel.decide("join")) == []  # nothing opened after 1


def test_condition_input_is_the_latest_made_at_or_before_the_timeslice():
    specs = [
        DataProcessorSpec("src", outputs=[OutputSpec("TST", "A")]),
        DataProcessorSpec("calib", outputs=[OutputSpec("TST", "B")]),
        DataProcessorSpec(
            "reco",
            inputs=[
                InputSpec("a", "TST", "A"),
                InputSpec("cal", "TST", "B", lifetime=Lifetime.Condition),
            ],
        ),
    ]
    refs = Refs()
    rel = relayer_for(specs, refs)
    rel.open(3)
    cal0, cal2 = msg(B, 0, "cal0"), msg(B, 2, "cal2")
    # the calibration of timeslice 2 arrives before that of timeslice 0 (parallel lanes)
    produce(rel, "calib", 2, cal2)
    produce(rel, "calib", 0, cal0)
    produce(rel, "calib", 1)
    produce(rel, "calib", 3)
    assert rel.conditions_at("reco", 1) == {"cal": cal0}
    assert rel.conditions_at("reco", 2) == {"cal": cal2}
    for ts in range(4):
        produce(rel, "src", ts, msg(A, ts))
    got = {d.timeslice: d.inputs["cal"].payload for d in rel.decide("reco")}
    assert got == {0: "cal0", 1: "cal0", 2: "cal2", 3: "cal2"}
    # cal0 was dropped from the history once timeslice 2 was decided; the four runs hold theirs
    assert rel.cond_hist[("reco", "cal")] == [(2, cal2)]
    assert refs.held[id(cal0)] == 2 and refs.held[id(cal2)] == 3  # 2 runs + 1 history, 2 runs


def test_condition_inputs_do_not_block():
    specs = [
        DataProcessorSpec("src", outputs=[OutputSpec("TST", "A")]),
        DataProcessorSpec("calib", outputs=[OutputSpec("TST", "B")]),
        DataProcessorSpec(
            "reco",
            inputs=[
                InputSpec("a", "TST", "A"),
                InputSpec("cal", "TST", "B", lifetime=Lifetime.Condition),
            ],
        ),
    ]
    rel = relayer_for(specs)
    rel.open(0)
    a0 = msg(A, 0)
    produce(rel, "src", 0, a0)
    produce(rel, "calib", 0)  # no calibration yet
    [d] = rel.decide("reco")
    assert (d.kind, d.inputs) == (RUN, {"a": a0})


def test_dangling_outputs_go_to_the_dummy_sink_and_the_sink_can_stop_routing():
    specs = [
        DataProcessorSpec("src", outputs=[OutputSpec("TST", "A"), OutputSpec("TST", "C")]),
        DataProcessorSpec("cons", inputs=[InputSpec("a", "TST", "A")]),
    ]
    refs = Refs()
    rel = relayer_for(specs, refs)
    rel.open(0)
    sunk = []
    c0, a0 = msg(C, 0), msg(A, 0)
    assert rel.route("src", 0, [c0, a0], lambda m: sunk.append(m) or True)
    assert sunk == [c0] and rel.mailbox["cons"] == {0: {"a": a0}}
    # a sink that refuses (e.g. cannot read the message) stops the routing there
    rel.open(1)
    c1, a1 = msg(C, 1), msg(A, 1)
    assert not rel.route("src", 1, [c1, a1], lambda m: False)
    assert 1 not in rel.mailbox["cons"] and refs.held[id(a1)] == 0


def test_a_source_that_ends_is_not_waited_for():
    rel = relayer_for(two_into_one(Lifetime.Optional))
    rel.open(2)
    produce(rel, "src-b", 0, msg(B, 0))
    rel.end_source("src-b", 0)  # end of stream after timeslice 0
    assert "src-b" not in rel.active_sources
    assert all("src-b" not in rel.pending[t] for t in (1, 2))
    for ts in range(3):
        produce(rel, "src-a", ts, msg(A, ts))
    rel.end_source("src-a", 2)
    kinds = [(d.timeslice, d.kind, sorted(d.inputs)) for d in rel.decide("join")]
    assert kinds == [(0, RUN, ["a", "b"]), (1, RUN, ["a"]), (2, RUN, ["a"])]
    for ts in range(3):
        rel.done("join", ts)
    assert rel.complete() == [0, 1, 2] and rel.finished


def test_abandon_forgets_the_open_timeslices():
    rel = relayer_for(two_into_one())
    rel.open(4)
    rel.abandon()
    assert rel.pending == {} and rel.base == rel.opened == 5


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_references_balance_over_a_run(order):
    refs = Refs()
    rel = relayer_for(two_into_one(), refs)
    runs = []
    for ts in range(5):
        rel.open(ts)
        for name in (f"src-{order[0]}", f"src-{order[1]}"):
            dt = A if name == "src-a" else B
            produce(rel, name, ts, *([msg(dt, ts)] if ts % 3 or name == "src-a" else []))
        for d in rel.decide("join"):
            if d.kind == RUN:
                runs.append(d)
                rel.done("join", d.timeslice)
    assert [d.timeslice for d in runs] == [1, 2, 4]
    for d in runs:  # the runner releases a run's inputs when it returns
        for m in d.inputs.values():
            refs.release(m)
    assert refs.total() == 0
    assert rel.complete() == [0, 1, 2, 3, 4]
