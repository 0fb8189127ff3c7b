"""Inputs that match several outputs (a subspec wildcard fed by 36 per-sector producers) and the
completion policies besides consume-when-all; toy processors, inline and multi-process alike.
"""

from __future__ import annotations

import json
import os
import secrets

import numpy as np
import pytest
from mp_processors import (
    N_SECTORS,
    gather_spec,
    sector_present,
    sector_specs,
    two_source_specs,
)

from alice_dyn.framework import (
    DataProcessorSpec,
    DataType,
    InputSpec,
    Lifetime,
    OutputSpec,
    SpecError,
    build_topology,
    run_inline,
    run_multiprocess,
    shm,
)
from alice_dyn.framework.context import InputRecord
from alice_dyn.framework.executable import spec_from_json, spec_to_json
from alice_dyn.framework.message import Message, Parts, each_message, make_message
from alice_dyn.framework.relayer import INCOMPLETE, RUN, Relayer
from alice_dyn.framework.runtime import PROCESSED
from alice_dyn.framework.spec import COMPLETION_POLICIES

needs_shm = pytest.mark.skipif(
    not os.path.isdir(shm.SHM_DIR), reason="needs POSIX shared memory in /dev/shm"
)
CN = "CLUSTERNATIVE"


@pytest.fixture
def shm_prefix(monkeypatch):
    """A shared-memory name prefix of this test's own; nothing with it may outlive the test."""
    prefix = f"adyntest{os.getpid():x}{secrets.token_hex(2)}_"
    monkeypatch.setattr(shm, "NAME_PREFIX", prefix)
    yield prefix
    left = shm.list_segments(prefix)
    shm.sweep(prefix)
    assert left == [], f"leaked shared-memory segments: {left}"


def part(sub: int, payload, ts: int = 0) -> Message:
    """A ``TPC/CLUSTERNATIVE/<sub>`` message of timeslice ``ts``."""
    return make_message(DataType("TPC", CN, sub), payload, ts, 10 + ts)


def gathered(summary) -> list[dict]:
    assert summary.error is None, summary.error
    return [m.payload for m in summary.sink if m.header.description == "GATHER"]


# ---- topology ------------------------------------------------------------------------------


def test_a_type_matcher_reads_every_sector_and_an_unmatched_input_is_still_refused():
    topo = build_topology(sector_specs(N_SECTORS, n=1))
    routes = topo.inputs_of["tpc-gather"]
    assert [r.data_type.subspec for r in routes] == list(range(N_SECTORS))
    assert {r.binding for r in routes} == {"clusters"}
    assert [str(r.data_type) for r in topo.sink_routes] == ["TST/GATHER/0"]  # no sector dangles
    assert topo.multipart_bindings("tpc-gather") == {"clusters"}
    # an input with a concrete subspec still reads one output
    specs = [
        *sector_specs(2, n=1)[:2],
        DataProcessorSpec("one", inputs=[InputSpec("c", "TPC", CN, 5)]),
    ]
    topo = build_topology(specs)
    assert [(r.producer, r.data_type.subspec) for r in topo.inputs_of["one"]] == [("sectors-0", 5)]
    assert topo.multipart_bindings("one") == set()
    bad = [
        *sector_specs(2, n=1)[:2],
        DataProcessorSpec("trk", inputs=[InputSpec("t", "TPC", "TRACKS")]),
    ]
    with pytest.raises(SpecError, match=r"^processor 'trk': input t:TPC/TRACKS is produced by no"):
        build_topology(bad)


# ---- the relayer and the input record ------------------------------------------------------


def test_parts_arrive_in_any_order_and_are_delivered_by_subspec_with_references_balanced():
    specs = [
        DataProcessorSpec("sec-b", outputs=[OutputSpec("TPC", CN, 1)]),
        DataProcessorSpec("sec-a", outputs=[OutputSpec("TPC", CN, 0)]),
        DataProcessorSpec("meta", outputs=[OutputSpec("TST", "META")]),
        DataProcessorSpec(
            "cons", inputs=[InputSpec("c", "TPC", CN), InputSpec("m", "TST", "META")]
        ),
    ]
    held: dict[int, int] = {}

    def retain(m):
        held[id(m)] = held.get(id(m), 0) + 1

    def release(m):
        held[id(m)] -= 1

    rel = Relayer(build_topology(specs), retain, release)
    rel.open(1)
    b0, a0, b1, a1 = part(1, "b0"), part(0, "a0"), part(1, "b1", ts=1), part(0, "a1", ts=1)
    m0 = make_message(DataType("TST", "META"), {}, 0, 10)
    for name, ts, outs in [
        ("sec-b", 0, [b0]), ("sec-a", 0, [a0]), ("meta", 0, [m0]),
        ("sec-b", 1, [b1]), ("sec-a", 1, [a1]), ("meta", 1, []),
    ]:  # fmt: skip
        rel.route(name, ts, outs, lambda m: True)
        rel.done(name, ts)
    run, incomplete = rel.decide("cons")
    assert run.kind == RUN and isinstance(run.inputs["c"], Parts)
    assert list(run.inputs["c"]) == [a0, b0] and run.inputs["m"] is m0
    assert list(each_message(run.inputs)) == [a0, b0, m0]
    assert incomplete.kind == INCOMPLETE and "['m'] missing" in incomplete.why
    # the incomplete timeslice's two parts are dropped; the run holds its three messages
    assert held[id(a1)] == held[id(b1)] == 0 and sum(held.values()) == 3


def test_input_record_gives_every_part_and_get_needs_exactly_one():
    rec = InputRecord(
        "tpc-tracker",
        {
            "clusters": Parts([part(0, np.zeros(2)), part(4, np.ones(3))]),
            "one": Parts([part(9, "x")]),
        },
    )
    assert [len(p) for p in rec.get_all("clusters")] == [2, 3]
    assert [h.subspec for h, _ in rec.parts("clusters")] == [0, 4]
    assert rec.get("one") == "x" and rec.header("one").subspec == 9
    with pytest.raises(LookupError) as err:
        rec.get("clusters")
    msg = str(err.value)
    assert "\n" not in msg and "'clusters' has 2 parts" in msg and "get_all('clusters')" in msg
    with pytest.raises(LookupError, match="2 parts"):
        rec.header("clusters")
    assert rec.get_all("absent") == [] and rec.parts("absent") == []
    with pytest.raises(KeyError, match="no input 'absent'"):
        rec.get("absent")
    assert sorted(rec) == ["clusters", "one"] and len(rec) == 2


# ---- runs: 36 sectors through one wildcard input -------------------------------------------


def expected_gather(n: int) -> list[dict]:
    out = []
    for ts in range(n):
        subs = [s for s in range(N_SECTORS) if sector_present(s, ts)]
        out.append(
            {
                "ts": ts,
                "tf": 1000 + ts,
                "subspecs": subs,
                "values": [100.0 * ts + s for s in subs],
                "sizes": [(s % 4) + 1 for s in subs],
                "get": 100.0 * ts + subs[0] if len(subs) == 1 else "several",
            }
        )
    return out


@needs_shm
def test_36_sector_producers_one_consumer_inline_and_multiprocess_alike(shm_prefix):
    n = 6
    ref = run_inline(build_topology(sector_specs(N_SECTORS, n)), keep_sink=True, progress=False)
    assert gathered(ref) == expected_gather(n)
    assert gathered(ref)[3]["get"] == 308.0  # one part: pc.inputs.get works
    # one producer making the 36 subspecs: the same for the consumer
    one = run_inline(build_topology(sector_specs(1, n)), keep_sink=True, progress=False)
    assert gathered(one) == gathered(ref)
    got = run_multiprocess(
        build_topology(sector_specs(N_SECTORS, n)), keep_sink=True, progress=False, timeout_s=60
    )
    assert gathered(got) == gathered(ref)
    assert [m.header for m in got.sink] == [m.header for m in ref.sink]
    assert got.timeframes == ref.timeframes and got.count(PROCESSED) == n
    parts_in = sum(len(g["subspecs"]) for g in gathered(ref))
    for summary in (ref, got):
        gm = summary.metrics["tpc-gather"]
        assert (len(gm.seconds), gm.messages_in) == (n, parts_in)


# ---- completion policies -------------------------------------------------------------------


def two_into_join(policy: str) -> list[DataProcessorSpec]:
    """a (every timeslice) and b (even timeslices) -> join (``policy``); 4 timeslices."""

    def make_a(pc):
        pc.outputs.snapshot("TST/A", {"a": pc.timeslice})
        if pc.timeslice == 3:
            pc.end_of_stream()

    def make_b(pc):
        if pc.timeslice % 2 == 0:
            pc.outputs.snapshot("TST/B", {"b": pc.timeslice})
        if pc.timeslice == 3:
            pc.end_of_stream()

    def join(pc):
        pc.outputs.snapshot("TST/J", sorted(pc.inputs))

    return [
        DataProcessorSpec("src-a", outputs=[OutputSpec("TST", "A")], algorithm=make_a),
        DataProcessorSpec("src-b", outputs=[OutputSpec("TST", "B")], algorithm=make_b),
        DataProcessorSpec(
            "join",
            inputs=[InputSpec("a", "TST", "A"), InputSpec("b", "TST", "B")],
            outputs=[OutputSpec("TST", "J")],
            algorithm=join,
            completion_policy=policy,
        ),
    ]


@pytest.mark.parametrize("policy", COMPLETION_POLICIES)
def test_when_any_runs_with_what_arrived_where_when_all_marks_the_timeslice_incomplete(policy):
    summary = run_inline(build_topology(two_into_join(policy)), keep_sink=True, progress=False)
    assert summary.error is None
    runs = {m.header.timeslice: m.payload for m in summary.sink}
    statuses = {ts: (r.status, r.processor) for ts, r in summary.timeframes.items()}
    if policy == "consumeWhenAll":
        assert runs == {0: ["a", "b"], 2: ["a", "b"]}
        assert statuses[1] == statuses[3] == ("incomplete", "join")
    else:  # once per timeslice, with whatever arrived
        assert runs == {0: ["a", "b"], 1: ["a"], 2: ["a", "b"], 3: ["a"]}
        assert summary.ok


@needs_shm
def test_when_any_in_both_runners_and_a_timeslice_with_nothing_is_still_skipped(shm_prefix):
    topo = build_topology(two_source_specs("consumeWhenAny"), "all")
    ref = run_inline(topo, keep_sink=True, progress=False)
    got = run_multiprocess(topo, keep_sink=True, progress=False, timeout_s=60)
    joined = {m.header.timeslice: m.payload for m in ref.sink if m.header.origin == "JOI"}
    # gappy has nothing at 1, 4, 7; short ends after 4 (Sporadic): 7 has no input at all
    assert joined[1] == {"x": None, "y": {"ts": 1}} and joined[4]["x"] is None and 7 not in joined
    assert ref.ok and got.ok and got.timeframes == ref.timeframes
    assert [(m.header, m.payload) for m in got.sink if m.header.origin == "JOI"] == [
        (m.header, m.payload) for m in ref.sink if m.header.origin == "JOI"
    ]
    when_all = run_inline(build_topology(two_source_specs(), "all"), keep_sink=True, progress=False)
    assert when_all.count("incomplete") == 2  # timeslices 1 and 4


def test_completion_policy_is_checked_and_travels_in_the_workflow_json():
    with pytest.raises(SpecError) as err:
        DataProcessorSpec("join", completion_policy="consumeWhenSome")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("processor 'join': unknown completion policy")
    assert "consumeWhenAll, consumeWhenAny, consumeExistingWhenAny" in msg
    assert DataProcessorSpec("join").completion_policy == "consumeWhenAll"
    spec = gather_spec()
    assert spec_to_json(spec)["completion_policy"] == "consumeWhenAll"
    spec.completion_policy = "consumeExistingWhenAny"  # set after the factory: JSON carries it
    doc = json.loads(json.dumps(spec_to_json(spec)))
    assert spec_from_json(doc).completion_policy == "consumeExistingWhenAny"
    del doc["completion_policy"]  # older JSON: the factory's policy
    assert spec_from_json(doc).completion_policy == "consumeWhenAll"
    doc["completion_policy"] = "waitForever"
    with pytest.raises(SpecError, match=r"^workflow JSON: processor 'tpc-gather': unknown comp"):
        spec_from_json(doc)


def test_a_condition_input_reads_one_output():
    specs = [
        *sector_specs(2, n=1)[:2],
        DataProcessorSpec("cal", inputs=[InputSpec("c", "TPC", CN, lifetime=Lifetime.Condition)]),
    ]
    with pytest.raises(SpecError, match=r"'cal': Condition input c:TPC/CLUSTERNATIVE matches more"):
        build_topology(specs)
