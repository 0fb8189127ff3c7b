"""Topology checks before any data flows: matching, duplicates, cycles, lifetimes, forwarding
policies, topological order and the blocking (consume when all) inputs.
"""

import pytest

from alice_dyn.framework import (
    DataProcessorSpec,
    DataType,
    InputSpec,
    Lifetime,
    OutputSpec,
    SpecError,
    build_topology,
    parse_inputs,
)
from alice_dyn.framework.topology import DUMMY_SINK


def proc(name, ins=(), outs=(), lifetime=Lifetime.Timeframe, **kw):
    """Spec from short strings: ins 'bind:ORIG/DESC[/SUB]', outs 'ORIG/DESC[/SUB]'."""
    inputs = [i for text in ins for i in parse_inputs(text, lifetime)]
    outputs = []
    for text in outs:
        parts = text.split("/")
        outputs.append(OutputSpec(parts[0], parts[1], int(parts[2]) if len(parts) > 2 else 0))
    return DataProcessorSpec(name, inputs=inputs, outputs=outputs, **kw)


def test_unmatched_input_names_processor_and_input():
    specs = [proc("src", outs=["TPC/CLUSTERNATIVE"]), proc("trk", ins=["t:TPC/TRACKS"])]
    with pytest.raises(SpecError, match=r"'trk'.*t:TPC/TRACKS.*produced by no processor"):
        build_topology(specs)


def test_wildcard_input_matching_two_producers():
    specs = [
        proc("sec-b", outs=["TPC/CLUSTERNATIVE/1"]),
        proc("sec-a", outs=["TPC/CLUSTERNATIVE/0"]),
        proc("trk", ins=["c:TPC/CLUSTERNATIVE"]),
    ]
    # a type matcher reads every part (O2: one input, 36 sector outputs), ordered by subspec
    topo = build_topology(specs)
    assert [(r.producer, r.data_type.subspec, r.binding) for r in topo.routes] == [
        ("sec-a", 0, "c"),
        ("sec-b", 1, "c"),
    ]
    assert topo.multipart_bindings("trk") == {"c"} and topo.required_bindings("trk") == {"c"}
    # a Condition input reads one output
    specs[2] = proc("trk", ins=["c:TPC/CLUSTERNATIVE"], lifetime=Lifetime.Condition)
    with pytest.raises(SpecError) as ei:
        build_topology(specs)
    msg = str(ei.value)
    assert "'trk'" in msg and "c:TPC/CLUSTERNATIVE" in msg and "more than one" in msg
    assert "sec-a (TPC/CLUSTERNATIVE/0)" in msg and "sec-b (TPC/CLUSTERNATIVE/1)" in msg
    # an exact subspec picks one producer
    specs[2] = proc("trk", ins=["c:TPC/CLUSTERNATIVE/1"])
    (route,) = build_topology(specs).routes
    assert (route.producer, route.data_type.subspec, route.consumer) == ("sec-b", 1, "trk")


def test_two_producers_of_the_same_output():
    specs = [proc("one", outs=["TPC/TRACKS"]), proc("two", outs=["TPC/TRACKS"])]
    with pytest.raises(SpecError, match=r"TPC/TRACKS/0 is produced by both 'one' and 'two'"):
        build_topology(specs)


def test_duplicate_processor_names():
    specs = [proc("dup", outs=["TST/A"]), proc("dup", outs=["TST/B"])]
    with pytest.raises(SpecError, match=r"duplicate processor name.*'dup'"):
        build_topology(specs)


def test_reserved_sink_name():
    with pytest.raises(SpecError, match="reserved"):
        build_topology([proc(DUMMY_SINK, outs=["TST/A"])])


def test_cycle_between_two_processors():
    specs = [
        proc("src", outs=["TST/S"]),
        proc("a", ins=["s:TST/S", "b:TST/B"], outs=["TST/A"]),
        proc("b", ins=["a:TST/A"], outs=["TST/B"]),
    ]
    with pytest.raises(SpecError, match=r"cycle.*\['a', 'b'\]"):
        build_topology(specs)


def test_self_loop():
    specs = [proc("loop", ins=["me:TST/L"], outs=["TST/L"])]
    with pytest.raises(SpecError, match=r"'loop'.*me:TST/L.*own output"):
        build_topology(specs)


@pytest.mark.parametrize(
    "lifetime", [Lifetime.Timer, Lifetime.Transient, Lifetime.Enumeration, Lifetime.OutOfBand]
)
def test_unsupported_lifetime(lifetime):
    specs = [proc("src", outs=["TST/A"]), proc("cons", ins=["a:TST/A"], lifetime=lifetime)]
    with pytest.raises(SpecError, match=rf"'cons'.*a:TST/A.*lifetime {lifetime.name}"):
        build_topology(specs)


def test_empty_workflow_and_bad_policy():
    with pytest.raises(SpecError, match="empty workflow"):
        build_topology([])
    with pytest.raises(SpecError, match="'sometimes'"):
        build_topology([proc("src", outs=["TST/A"])], forwarding_policy="sometimes")


def _fanout():
    return [
        proc("src", outs=["TST/A", "TST/B"]),
        proc("cons", ins=["a:TST/A"], outs=["TST/C"]),
    ]


def test_forwarding_policy_none_refuses_dangling():
    with pytest.raises(SpecError, match=r"'src'.*TST/B/0.*consumed by nobody"):
        build_topology(_fanout(), forwarding_policy="none")
    complete = [proc("src", outs=["TST/A"]), proc("cons", ins=["a:TST/A"])]
    assert build_topology(complete, forwarding_policy="none").sink_routes == []


def test_forwarding_policy_dangling_and_all():
    def sunk(topo):
        assert all(r.consumer == DUMMY_SINK for r in topo.sink_routes)
        return sorted((r.producer, str(r.data_type)) for r in topo.sink_routes)

    dangling = build_topology(_fanout())
    assert dangling.forwarding_policy == "dangling"
    assert sunk(dangling) == [("cons", "TST/C/0"), ("src", "TST/B/0")]
    everything = build_topology(_fanout(), forwarding_policy="all")
    assert sunk(everything) == [("cons", "TST/C/0"), ("src", "TST/A/0"), ("src", "TST/B/0")]
    # the real route survives next to the sink route under 'all'
    to = {r.consumer for r in everything.routes_from[("src", DataType("TST", "A"))]}
    assert to == {"cons", DUMMY_SINK}
    assert DUMMY_SINK in everything.describe()


def test_topological_order_regardless_of_given_order():
    specs = [
        proc("merge", ins=["x:TST/X", "y:TST/Y"]),
        proc("left", ins=["a:TST/A"], outs=["TST/X"]),
        proc("right", ins=["x:TST/X"], outs=["TST/Y"]),
        proc("src", outs=["TST/A"]),
    ]
    topo = build_topology(specs)
    order = [p.name for p in topo.processors]
    assert order == ["src", "left", "right", "merge"]
    pos = {n: i for i, n in enumerate(order)}
    for r in topo.routes:
        assert pos[r.producer] < pos[r.consumer], r
    assert topo.sources == ["src"]
    assert {(r.binding, r.producer) for r in topo.inputs_of["merge"]} == {
        ("x", "left"),
        ("y", "right"),
    }
    assert topo.describe().splitlines()[0] == "src  (source)"


def test_required_bindings_exclude_non_blocking_lifetimes():
    specs = [
        proc("src", outs=["TST/A", "TST/B", "TST/C", "TST/D"]),
        DataProcessorSpec(
            "cons",
            inputs=[
                InputSpec("a", "TST", "A"),
                InputSpec("b", "TST", "B", lifetime=Lifetime.Optional),
                InputSpec("c", "TST", "C", lifetime=Lifetime.Condition),
                InputSpec("d", "TST", "D", lifetime=Lifetime.Sporadic),
            ],
        ),
    ]
    topo = build_topology(specs)
    assert topo.required_bindings("cons") == {"a"}
    assert topo.required_bindings("src") == set()
    assert {r.binding: r.lifetime for r in topo.inputs_of["cons"]} == {
        "a": Lifetime.Timeframe,
        "b": Lifetime.Optional,
        "c": Lifetime.Condition,
        "d": Lifetime.Sporadic,
    }
