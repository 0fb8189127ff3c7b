"""Core of the workflow framework (mirror of O2's DPL): specs, topology checks, configuration,
task contexts and the inline runner.

Five bugs these tests found (condition inputs pinning tf_id, factories with defaulted
arguments, '%' in INI values, ambiguous "ORIG/DESC" output lookup, duplicate output bindings)
are fixed; their tests now pin the fixed behaviour.
"""

import functools
import pickle
import re
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alice_dyn.framework import (
    ConfigError,
    ConfigParamSpec,
    ConfigStore,
    DataProcessorSpec,
    DataType,
    InputSpec,
    Lifetime,
    OutputSpec,
    ProcessorError,
    SpecError,
    Task,
    build_topology,
    parse_inputs,
    register_config_group,
    run_inline,
)
from alice_dyn.framework.context import DataAllocator, InputRecord
from alice_dyn.framework.message import SERIALIZATION_NDARRAY, SERIALIZATION_OBJECT
from alice_dyn.framework.runtime import FAILED, INCOMPLETE, PROCESSED
from alice_dyn.framework.task import FunctionTask, make_task
from alice_dyn.framework.topology import DUMMY_SINK

# --------------------------------------------------------------------------------------------
# module-level helpers
# --------------------------------------------------------------------------------------------

#: events recorded by helper tasks: ("run"|"init"|"eos"|"stop", processor, timeslice or None)
EVENTS: list[tuple] = []
#: payload references seen by producers / consumers (zero-copy checks)
SENT: list = []
RECEIVED: list = []


@pytest.fixture(autouse=True)
def _clear_records():
    EVENTS.clear()
    SENT.clear()
    RECEIVED.clear()
    yield
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


# --------------------------------------------------------------------------------------------
# spec
# --------------------------------------------------------------------------------------------


def test_lifetime_values_are_o2s():
    expected = {
        "Timeframe": 0,
        "Condition": 1,
        "QA": 2,
        "Sporadic": 2,
        "Transient": 3,
        "Timer": 4,
        "Enumeration": 5,
        "Signal": 6,
        "Optional": 7,
        "OutOfBand": 8,
    }
    assert {name: int(Lifetime[name]) for name in expected} == expected
    assert Lifetime.QA is Lifetime.Sporadic
    assert Lifetime(2) == Lifetime.Sporadic
    assert InputSpec("a", "TPC", "X", lifetime=7).lifetime is Lifetime.Optional


@pytest.mark.parametrize("make", [DataType, OutputSpec, functools.partial(InputSpec, "b")])
@pytest.mark.parametrize(
    ("origin", "description", "subspec", "bad"),
    [
        ("TPCXX", "CLUSTERNATIVE", 0, "'TPCXX'"),
        ("", "CLUSTERNATIVE", 0, "''"),
        ("TPC", "CLUSTERNATIVE_LONGER", 0, "'CLUSTERNATIVE_LONGER'"),
        ("TPC", "", 0, "''"),
        ("TPC", "CLUSTERNATIVE", -1, "-1"),
        ("TPC", "CLUSTERNATIVE", 2**32, str(2**32)),
        ("TPC", "CLUSTERNATIVE", True, "True"),
        ("TPC", "CLUSTERNATIVE", 1.0, "1.0"),
        ("T/C", "CLUSTERNATIVE", 0, "'T/C'"),
        ("TPC", "CLUS;TER", 0, "'CLUS;TER'"),
    ],
)
def test_bad_address_raises_spec_error_naming_the_value(make, origin, description, subspec, bad):
    with pytest.raises(SpecError, match=re.escape(bad)):
        make(origin, description, subspec)


def test_address_limits_are_inclusive():
    dt = DataType("ITSX", "D" * 16, 2**32 - 1)
    assert str(dt) == f"ITSX/{'D' * 16}/{2**32 - 1}"
    assert DataType("TPC", "X", 0).subspec == 0
    with pytest.raises(SpecError, match="concrete subspec"):
        OutputSpec("TPC", "X", None)
    with pytest.raises(SpecError, match="binding"):
        InputSpec("1abc", "TPC", "X")


def test_parse_inputs_o2_form():
    a, b = parse_inputs("a:TPC/CLUSTERNATIVE/3;b:TPC/TRACKS")
    assert (a.binding, a.origin, a.description, a.subspec) == ("a", "TPC", "CLUSTERNATIVE", 3)
    assert (b.binding, b.origin, b.description, b.subspec) == ("b", "TPC", "TRACKS", None)
    assert a.lifetime is b.lifetime is Lifetime.Timeframe
    assert str(a) == "a:TPC/CLUSTERNATIVE/3" and str(b) == "b:TPC/TRACKS"


def test_parse_inputs_hex_spaces_and_lifetime():
    (x,) = parse_inputs("x:TPC/CLUSTERNATIVE/0x10")
    assert x.subspec == 16
    specs = parse_inputs("  a:TPC/CLUSTERNATIVE/1 ;  b:TPC/TRACKS ; ", Lifetime.Optional)
    assert [(s.binding, s.subspec) for s in specs] == [("a", 1), ("b", None)]
    assert all(s.lifetime is Lifetime.Optional for s in specs)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("noColon", "'noColon'"),
        ("a:TPC", "'a:TPC'"),
        ("a:TPC/X/notanumber", "subspec 'notanumber' is not an integer"),
        ("", "no input"),
        (" ; ", "no input"),
        ("a:TPC/X;b", "'b'"),
        ("a:TPC/X/-1", "-1"),
        ("a:TOOLONG/X", "'TOOLONG'"),
    ],
)
def test_parse_inputs_errors(text, match):
    with pytest.raises(SpecError, match=match):
        parse_inputs(text)


_ORIGINS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=4)
_DESCS = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1, max_size=16)
_INPUTS = st.builds(
    InputSpec,
    st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
    _ORIGINS,
    _DESCS,
    st.none() | st.integers(0, 2**32 - 1),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_INPUTS, min_size=1, max_size=4, unique_by=lambda s: s.binding))
def test_parse_inputs_round_trips_str(specs):
    assert parse_inputs(";".join(map(str, specs))) == specs


def test_input_matches_with_and_without_subspec():
    exact = InputSpec("c", "TPC", "CLUSTERNATIVE", 3)
    any_sub = InputSpec("c", "TPC", "CLUSTERNATIVE")
    assert exact.matches(DataType("TPC", "CLUSTERNATIVE", 3))
    assert not exact.matches(DataType("TPC", "CLUSTERNATIVE", 4))
    assert not exact.matches(DataType("TPC", "TRACKS", 3))
    assert not exact.matches(DataType("ITS", "CLUSTERNATIVE", 3))
    for sub in (0, 3, 35, 2**32 - 1):
        assert any_sub.matches(DataType("TPC", "CLUSTERNATIVE", sub))
    assert not any_sub.matches(DataType("TPC", "CLUSREFS", 0))


@pytest.mark.parametrize("name", ["TPC-tracker", "tpc tracker", "", "-tracker", "tpc/tracker"])
def test_processor_name_must_be_lower_kebab(name):
    with pytest.raises(SpecError, match=re.escape(repr(name))):
        DataProcessorSpec(name)


def test_processor_name_accepts_o2_names():
    for name in ("tpc-tracker", "tpc-clusters-sharing-map-producer", "qc.task_1"):
        assert DataProcessorSpec(name).name == name


def test_duplicate_input_binding_rejected():
    with pytest.raises(SpecError, match=r"'tpc-tracker'.*duplicate input binding.*'clus'"):
        DataProcessorSpec(
            "tpc-tracker",
            inputs=[InputSpec("clus", "TPC", "CLUSTERNATIVE"), InputSpec("clus", "TPC", "X")],
        )


def test_same_output_twice_rejected():
    with pytest.raises(SpecError, match=r"'tpc-tracker'.*twice.*TPC/TRACKS/0"):
        DataProcessorSpec(
            "tpc-tracker",
            outputs=[OutputSpec("TPC", "TRACKS"), OutputSpec("TPC", "TRACKS", binding="t")],
        )


def test_duplicate_output_binding_rejected():
    with pytest.raises(SpecError, match="'trk'"):
        DataProcessorSpec(
            "tpc-tracker",
            outputs=[
                OutputSpec("TPC", "TRACKS", binding="trk"),
                OutputSpec("TPC", "CLUSREFS", binding="trk"),
            ],
        )


OPTIONS = (
    ConfigParamSpec("n", int, 5, "count"),
    ConfigParamSpec("scale", float, 1.0),
    ConfigParamSpec("verbose", bool, False),
    ConfigParamSpec("mode", str, "fast"),
)


def test_unknown_option_value_rejected():
    with pytest.raises(SpecError, match=r"'proc'.*unknown option.*'nope'"):
        DataProcessorSpec("proc", options=OPTIONS, option_values={"nope": 1})


def test_option_values_converted_by_type():
    spec = DataProcessorSpec(
        "proc", options=OPTIONS, option_values={"n": "7", "scale": "2.5", "verbose": "true"}
    )
    assert spec.option("n") == 7 and type(spec.option("n")) is int
    assert spec.option("scale") == 2.5 and type(spec.option("scale")) is float
    assert spec.option("verbose") is True
    assert spec.option("mode") == "fast"  # default
    for text, value in [("0", False), ("1", True), ("FALSE", False), ("on", True), ("no", False)]:
        spec = DataProcessorSpec("proc", options=OPTIONS, option_values={"verbose": text})
        assert spec.option("verbose") is value, text
    spec = DataProcessorSpec("proc", options=OPTIONS, option_values={"scale": 3})
    assert spec.option("scale") == 3.0 and type(spec.option("scale")) is float


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("n", "abc", r"option --n: 'abc' is not a valid int"),
        ("n", "2.5", r"option --n: '2.5' is not a valid int"),
        ("scale", "fast", r"option --scale: 'fast' is not a valid float"),
        ("verbose", "maybe", r"option --verbose: 'maybe' is not a valid bool"),
    ],
)
def test_option_bad_value_is_a_clear_error(name, value, match):
    with pytest.raises(SpecError, match=rf"'proc'.*{match}"):
        DataProcessorSpec("proc", options=OPTIONS, option_values={name: value})


def test_option_default_vs_set_and_unknown():
    default = DataProcessorSpec("proc", options=OPTIONS)
    changed = DataProcessorSpec("proc", options=OPTIONS, option_values={"n": 9})
    assert default.option("n") == 5
    assert changed.option("n") == 9
    with pytest.raises(KeyError, match="'proc' has no option 'missing'"):
        default.option("missing")


def test_output_lookup_forms():
    tracks = OutputSpec("TPC", "TRACKS", 0, binding="trk")
    refs = OutputSpec("TPC", "CLUSREFS", 2)
    spec = DataProcessorSpec("tpc-tracker", outputs=[tracks, refs])
    assert spec.output("trk") is tracks
    assert spec.output("TPC/TRACKS") is tracks
    assert spec.output("TPC/CLUSREFS") is refs
    assert spec.output("TPC/CLUSREFS/2") is refs
    assert spec.output(DataType("TPC", "CLUSREFS", 2)) is refs
    assert spec.output(OutputSpec("TPC", "TRACKS")) is tracks
    for ref in ("TPC/CLUSREFS/0", "TPC/TRACKSMCLBL", "nope", DataType("TPC", "TRACKS", 1)):
        with pytest.raises(SpecError, match=rf"'tpc-tracker' declares no output {ref!s}"):
            spec.output(ref)


def test_output_lookup_without_subspec_is_ambiguous_for_several_subspecs():
    spec = DataProcessorSpec(
        "tpc-clusterer", outputs=[OutputSpec("TPC", "CLUSTERNATIVE", s) for s in range(3)]
    )
    with pytest.raises(SpecError, match="TPC/CLUSTERNATIVE"):
        spec.output("TPC/CLUSTERNATIVE")


def test_is_source():
    assert DataProcessorSpec("s", outputs=[OutputSpec("TST", "A")]).is_source
    assert not DataProcessorSpec("c", inputs=[InputSpec("a", "TST", "A")]).is_source


# --------------------------------------------------------------------------------------------
# topology
# --------------------------------------------------------------------------------------------


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
        proc("sec-a", outs=["TPC/CLUSTERNATIVE/0"]),
        proc("sec-b", outs=["TPC/CLUSTERNATIVE/1"]),
        proc("trk", ins=["c:TPC/CLUSTERNATIVE"]),
    ]
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


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------

GROUP = "CoreTestParam"
OTHER = "CoreTestOtherParam"


@dataclass(frozen=True)
class CoreTestParam:
    a: int = 1
    b: float = 0.5
    flag: bool = False
    label: str = "none"
    sizes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True)
class CoreTestOtherParam:
    x: int = 0


register_config_group(GROUP, CoreTestParam, aliases={"Alpha": "a"})
register_config_group(OTHER, CoreTestOtherParam)


def test_key_values_set_typed_values():
    store = ConfigStore()
    store.apply_key_values(
        f"{GROUP}.a=3;{GROUP}.b=2.5;{GROUP}.flag=true;{GROUP}.label=hello;{GROUP}.sizes=(3,4,5)"
    )
    p = store.get(GROUP)
    assert p == CoreTestParam(a=3, b=2.5, flag=True, label="hello", sizes=(3, 4, 5))
    assert type(p.a) is int and type(p.b) is float and type(p.sizes[0]) is int
    assert store.get(OTHER) == CoreTestOtherParam()
    store.apply_key_values(f"{GROUP}.flag=0;")
    assert store.get(GROUP).flag is False


def test_alias_sets_the_field():
    store = ConfigStore([GROUP])
    store.apply_key_values(f"{GROUP}.Alpha=42")
    assert store.get(GROUP).a == 42
    assert store.changes() == {GROUP: {"a": 42}}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Nope.a=1", r"unknown configuration group 'Nope'"),
        (f"{GROUP}.zzz=1", r"has no key 'zzz'.*'Alpha'"),
        (f"{GROUP}.a=abc", r"CoreTestParam.a: 'abc' is not a valid int"),
        (f"{GROUP}.a=2.5", r"'2.5' is not a valid int"),
        (f"{GROUP}.b=x", r"'x' is not a valid float"),
        (f"{GROUP}.flag=maybe", r"CoreTestParam.flag: 'maybe' is not a boolean"),
        (f"{GROUP}.sizes=(1,x)", r"'x' is not a valid int"),
        (f"{GROUP}.a", r"'CoreTestParam.a' is not Group.key=value"),
        ("a=3", r"'a' is not of the form Group.key"),
        (f"{GROUP}.a = 3", r"no spaces around '='"),
        (f"{GROUP}.a =3", r"no spaces around '='"),
        (f"{GROUP}.a= 3", r"no spaces around '='"),
    ],
)
def test_key_value_errors(text, match):
    store = ConfigStore()
    with pytest.raises(ConfigError, match=match):
        store.apply_key_values(text)
    assert store.get(GROUP) == CoreTestParam()


def test_ini_then_key_values_override(tmp_path):
    ini = tmp_path / "params.ini"
    ini.write_text(f"[{GROUP}]\na = 7\nlabel = from_ini\nflag = yes\n")
    store = ConfigStore([GROUP, OTHER])
    store.apply_ini(ini)
    assert store.get(GROUP) == CoreTestParam(a=7, label="from_ini", flag=True)
    store.apply_key_values(f"{GROUP}.a=9;{OTHER}.x=4")
    assert store.get(GROUP) == CoreTestParam(a=9, label="from_ini", flag=True)
    assert store.changes() == {GROUP: {"a": 9, "label": "from_ini", "flag": True}, OTHER: {"x": 4}}

    text = store.format()
    lines = text.splitlines()
    assert lines[0] == f"[{GROUP}]" and f"[{OTHER}]" in lines
    assert "a = 9   # from configKeyValues" in lines
    assert f"label = 'from_ini'   # from {ini}" in lines
    assert f"flag = True   # from {ini}" in lines
    assert "b = 0.5" in lines and "sizes = (1, 2)" in lines  # unchanged: no mark


def test_changes_only_lists_changed_values():
    store = ConfigStore()
    assert store.changes() == {}
    store.apply_key_values(f"{GROUP}.b=4")
    assert store.changes() == {GROUP: {"b": 4.0}}
    assert "#" not in "\n".join(
        line for line in store.format().splitlines() if not line.startswith("b =")
    )


def test_ini_errors(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("[NoSuchGroup]\na = 1\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(bad))}.*unknown configuration group"):
        ConfigStore().apply_ini(bad)
    badkey = tmp_path / "badkey.ini"
    badkey.write_text(f"[{GROUP}]\nzzz = 1\n")
    with pytest.raises(ConfigError, match="no key 'zzz'"):
        ConfigStore().apply_ini(badkey)
    with pytest.raises(ConfigError, match="cannot read configuration"):
        ConfigStore().apply_ini(tmp_path / "missing.ini")
    garbage = tmp_path / "garbage.ini"
    garbage.write_text("a = 1\n")  # no section header
    with pytest.raises(ConfigError, match="cannot read configuration"):
        ConfigStore().apply_ini(garbage)


def test_ini_value_with_percent_is_literal(tmp_path):
    ini = tmp_path / "pct.ini"
    ini.write_text(f"[{GROUP}]\nlabel = 50%\n")
    store = ConfigStore([GROUP])
    store.apply_ini(ini)
    assert store.get(GROUP).label == "50%"


def test_restricted_store_rejects_other_groups():
    store = ConfigStore(groups=[GROUP])
    assert store.groups == [GROUP]
    with pytest.raises(ConfigError, match=rf"unknown configuration group '{OTHER}'.*{GROUP}"):
        store.apply_key_values(f"{OTHER}.x=1")
    with pytest.raises(ConfigError, match=rf"'{OTHER}' is not part of this workflow"):
        store.get(OTHER)
    assert set(store.as_dict()) == {GROUP}
    with pytest.raises(ConfigError, match="'Missing'"):
        ConfigStore(groups=["Missing"])


def test_register_group_rules():
    assert register_config_group(GROUP, CoreTestParam, aliases={"Alpha": "a"}) is CoreTestParam

    @dataclass(frozen=True)
    class Impostor:
        a: int = 0

    with pytest.raises(ConfigError, match=f"'{GROUP}' is already registered"):
        register_config_group(GROUP, Impostor)
    with pytest.raises(ConfigError, match="alias 'Beta' names no field 'b2'"):
        register_config_group("CoreTestAliasParam", CoreTestOtherParam, aliases={"Beta": "b2"})
    with pytest.raises(TypeError, match="not a dataclass"):
        register_config_group("CoreTestNotDataclass", dict)
    # the failed registrations left the registry as it was
    assert ConfigStore([GROUP]).get(GROUP) == CoreTestParam()
    with pytest.raises(ConfigError):
        ConfigStore(["CoreTestAliasParam"])


def test_config_reaches_processors_through_the_runner():
    seen = {}

    class ReadsConfig(Task):
        def init(self, ic):
            seen["init"] = ic.config[GROUP]

        def run(self, pc):
            seen["run"] = pc.config[GROUP]
            pc.end_of_stream()

    spec = DataProcessorSpec(
        "cfg-reader", outputs=[OutputSpec("TST", "A")], algorithm=ReadsConfig, config_groups=[GROUP]
    )
    store = ConfigStore()
    store.apply_key_values(f"{GROUP}.a=11")
    summary = run_inline(build_topology([spec]), store)
    assert summary.error is None
    assert seen["init"].a == 11 and seen["run"].a == 11
    # without a store the processor gets the defaults
    run_inline(build_topology([spec]))
    assert seen["init"] == CoreTestParam()


# --------------------------------------------------------------------------------------------
# context / task
# --------------------------------------------------------------------------------------------


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


def _pair(producer_run, consumer_run, lifetime=Lifetime.Timeframe):
    prod = DataProcessorSpec(
        "producer", outputs=[OutputSpec("TST", "A")], algorithm=recorded("producer", producer_run)
    )
    cons = DataProcessorSpec(
        "consumer",
        inputs=[InputSpec("a", "TST", "A", lifetime=lifetime)],
        algorithm=recorded("consumer", consumer_run),
    )
    return build_topology([prod, cons])


def _end_after(n):
    def wrap(fn):
        def run(pc):
            fn(pc)
            if pc.timeslice == n - 1:
                pc.end_of_stream()

        return run

    return wrap


def test_make_is_zero_copy_through_the_runner():
    @_end_after(3)
    def produce(pc):
        arr = pc.outputs.make("TST/A", 1000, np.float32)
        arr[:] = pc.timeslice
        SENT.append(arr)

    summary = run_inline(_pair(produce, lambda pc: RECEIVED.append(pc.inputs.get("a"))))
    assert summary.error is None and summary.count(PROCESSED) == 3
    assert len(SENT) == len(RECEIVED) == 3
    for ts, (sent, got) in enumerate(zip(SENT, RECEIVED, strict=True)):
        assert got is sent and np.shares_memory(sent, got)
        assert np.all(got == ts)


def test_snapshot_delivers_a_copy_through_the_runner():
    buffer = np.zeros(8)

    @_end_after(2)
    def produce(pc):
        buffer[:] = pc.timeslice + 1
        pc.outputs.snapshot("TST/A", buffer)
        buffer[:] = -99  # reused after the snapshot: must not leak downstream

    summary = run_inline(_pair(produce, lambda pc: RECEIVED.append(pc.inputs.get("a"))))
    assert summary.error is None
    assert [float(x[0]) for x in RECEIVED] == [1.0, 2.0]
    assert all(np.all(x == x[0]) and not np.shares_memory(x, buffer) for x in RECEIVED)


def test_adopt_does_not_copy_through_the_runner():
    @_end_after(2)
    def produce(pc):
        obj = {"ts": pc.timeslice}
        SENT.append(obj)
        pc.outputs.adopt("TST/A", obj)

    run_inline(_pair(produce, lambda pc: RECEIVED.append(pc.inputs.get("a"))))
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
    summary = run_inline(_pair(body, lambda pc: None))
    err = summary.error
    assert isinstance(err, ProcessorError)
    assert err.processor == "producer" and err.stage == "run"
    assert re.search(rf"SpecError: .*{match}", err.cause)
    assert summary.timeframes[0].status == FAILED
    assert events("run") == [("producer", 0)]


def test_missing_input_binding_names_processor_via_runner():
    @_end_after(1)
    def produce(pc):
        pc.outputs.adopt("TST/A", 1)

    summary = run_inline(_pair(produce, lambda pc: pc.inputs.get("typo")))
    assert summary.error.processor == "consumer"
    assert "KeyError" in summary.error.cause
    assert "'consumer'" in summary.error.cause and "'typo'" in summary.error.cause


# --------------------------------------------------------------------------------------------
# inline runner
# --------------------------------------------------------------------------------------------


def test_chain_results_in_order_with_tf_id_propagation():
    n = 5
    topo = chain(n)
    summary = run_inline(topo)
    assert summary.error is None and summary.ok
    assert summary.runner == "inline"
    # (timeslice, pc.tf_id, header tf_id of the transform's output, value)
    assert RECEIVED == [(ts, 100 + ts, 100 + ts, 2.0 * ts) for ts in range(n)]
    assert events("run") == [
        (name, ts) for ts in range(n) for name in ("source", "transform", "collector")
    ]
    assert sorted(summary.timeframes) == list(range(n))
    assert [r.tf_id for r in summary.timeframes.values()] == [100 + ts for ts in range(n)]
    assert all(r.status == PROCESSED for r in summary.timeframes.values())


def test_lifecycle_order_init_eos_stop():
    summary = run_inline(chain(3))
    assert summary.error is None
    order = ["source", "transform", "collector"]
    assert [n for n, _ in events("init")] == order
    assert [n for n, _ in events("eos")] == order
    assert [n for n, _ in events("stop")] == order
    kinds = [k for k, *_ in EVENTS]
    last_run = max(i for i, k in enumerate(kinds) if k == "run")
    first_eos = kinds.index("eos")
    assert first_eos > last_run
    assert min(i for i, k in enumerate(kinds) if k == "stop") > max(
        i for i, k in enumerate(kinds) if k == "eos"
    )


def test_error_in_run_stops_the_run_and_names_processor_and_tf():
    n, k = 6, 2
    summary = run_inline(chain(n, fail_at=k))
    err = summary.error
    assert isinstance(err, ProcessorError)
    assert (err.processor, err.stage, err.timeslice, err.tf_id) == ("transform", "run", k, 100 + k)
    assert "'transform'" in str(err) and f"timeframe {100 + k}" in str(err)
    assert "ValueError: bad cluster" in str(err) and "bad cluster" in err.details
    assert not summary.ok
    assert sorted(summary.timeframes) == list(range(k + 1))
    assert [summary.timeframes[ts].status for ts in range(k)] == [PROCESSED] * k
    failed = summary.timeframes[k]
    assert (failed.status, failed.processor, failed.tf_id) == (FAILED, "transform", 100 + k)
    assert "bad cluster" in failed.error
    # nothing after the failure ran: neither the collector at k nor anything at k+1
    assert max(ts for _, ts in events("run")) == k
    assert ("collector", k) not in events("run")
    assert [r[0] for r in RECEIVED] == list(range(k))
    # stop() still reached every processor; end_of_stream did not run after the error
    assert [n for n, _ in events("stop")] == ["source", "transform", "collector"]
    assert events("eos") == []
    with pytest.raises(ProcessorError):
        summary.raise_if_failed()


def test_error_in_source_marks_its_timeframe():
    def run(pc):
        pc.tf_id = 500 + pc.timeslice
        if pc.timeslice == 1:
            raise OSError("file truncated")
        pc.outputs.adopt("TST/A", pc.timeslice)

    summary = run_inline(_pair(run, lambda pc: None))
    assert summary.error.processor == "producer" and summary.error.tf_id == 501
    assert summary.timeframes[1].status == FAILED and summary.timeframes[1].tf_id == 501
    assert summary.timeframes[0].status == PROCESSED


def test_error_in_init():
    specs = [
        source_spec(3),
        DataProcessorSpec(
            "transform",
            inputs=[InputSpec("raw", "TST", "RAW")],
            algorithm=recorded("transform", fail_init=True),
        ),
    ]
    summary = run_inline(build_topology(specs))
    err = summary.error
    assert isinstance(err, ProcessorError)
    assert (err.processor, err.stage, err.timeslice) == ("transform", "init", None)
    assert "RuntimeError: cannot open calibration" in str(err)
    assert summary.timeframes == {} and events("run") == []
    assert [n for n, _ in events("stop")] == ["source", "transform"]


def test_error_in_end_of_stream():
    class BadEos(Task):
        def run(self, pc):
            pc.outputs.adopt("TST/A", 0)
            pc.end_of_stream()

        def end_of_stream(self, ec):
            raise RuntimeError("flush failed")

    spec = DataProcessorSpec("writer", outputs=[OutputSpec("TST", "A")], algorithm=BadEos)
    summary = run_inline(build_topology([spec]))
    assert summary.error.stage == "end_of_stream" and summary.error.processor == "writer"
    assert summary.timeframes[0].status == PROCESSED


def _two_producers(lifetime_b, skip_b_at):
    def run_a(pc):
        pc.outputs.adopt("TST/A", pc.inputs.get("raw"))

    def run_b(pc):
        if pc.timeslice != skip_b_at:
            pc.outputs.adopt("TST/B", pc.inputs.get("raw"))

    def run_c(pc):
        RECEIVED.append((pc.timeslice, pc.inputs.is_valid("a"), pc.inputs.is_valid("b")))

    return build_topology(
        [
            source_spec(4),
            DataProcessorSpec(
                "prod-a",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "A")],
                algorithm=run_a,
            ),
            DataProcessorSpec(
                "prod-b",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "B")],
                algorithm=run_b,
            ),
            DataProcessorSpec(
                "consumer",
                inputs=[
                    InputSpec("a", "TST", "A"),
                    InputSpec("b", "TST", "B", lifetime=lifetime_b),
                ],
                algorithm=run_c,
            ),
        ]
    )


def test_consume_when_all_skips_incomplete_timeframe():
    summary = run_inline(_two_producers(Lifetime.Timeframe, skip_b_at=1))
    assert summary.error is None
    assert RECEIVED == [(0, True, True), (2, True, True), (3, True, True)]
    rec = summary.timeframes[1]
    assert (rec.status, rec.processor, rec.tf_id) == (INCOMPLETE, "consumer", 101)
    assert "'b'" in rec.error and "consume when all" in rec.error
    assert [summary.timeframes[t].status for t in (0, 2, 3)] == [PROCESSED] * 3
    d = summary.as_dict()
    assert (d["timeframes_in"], d["timeframes_processed"], d["timeframes_incomplete"]) == (4, 3, 1)
    assert d["failures"] == [
        {
            "timeslice": 1,
            "tf_id": 101,
            "status": INCOMPLETE,
            "processor": "consumer",
            "error": rec.error,
        }
    ]
    assert not summary.ok and summary.error is None
    assert "incomplete in consumer" in summary.format()


def test_optional_input_absent_consumer_still_runs():
    summary = run_inline(_two_producers(Lifetime.Optional, skip_b_at=1))
    assert summary.error is None and summary.ok
    assert RECEIVED == [(0, True, True), (1, True, False), (2, True, True), (3, True, True)]


def _condition_topology(n=4):
    def calib(pc):
        if pc.timeslice == 0:
            SENT.append({"gain": 1.5})
            pc.outputs.adopt("TST/CALIB", SENT[0])

    def use(pc):
        RECEIVED.append(
            (pc.timeslice, pc.tf_id, pc.inputs.get("calib"), float(pc.inputs.get("raw")[0]))
        )
        pc.outputs.adopt("TST/OUT", pc.tf_id)

    return build_topology(
        [
            source_spec(n),
            DataProcessorSpec(
                "calib",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "CALIB")],
                algorithm=calib,
            ),
            DataProcessorSpec(
                "user",
                inputs=[
                    InputSpec("raw", "TST", "RAW"),
                    InputSpec("calib", "TST", "CALIB", lifetime=Lifetime.Condition),
                ],
                outputs=[OutputSpec("TST", "OUT")],
                algorithm=use,
            ),
        ]
    )


def test_condition_input_is_kept_for_later_timeframes():
    summary = run_inline(_condition_topology(4))
    assert summary.error is None and summary.ok
    assert [r[0] for r in RECEIVED] == [0, 1, 2, 3]
    assert all(r[2] is SENT[0] for r in RECEIVED)
    assert [r[3] for r in RECEIVED] == [0.0, 1.0, 2.0, 3.0]


def test_condition_input_does_not_pin_tf_id():
    summary = run_inline(_condition_topology(4), keep_sink=True)
    assert [r[1] for r in RECEIVED] == [100, 101, 102, 103]
    assert [m.header.tf_id for m in summary.sink] == [100, 101, 102, 103]


def test_max_timeframes_stops_an_endless_source():
    topo = build_topology([source_spec(None), collector_spec(), transform_spec()])
    summary = run_inline(topo, max_timeframes=3)
    assert summary.error is None and summary.ok
    assert sorted(summary.timeframes) == [0, 1, 2]
    assert [ts for n, ts in events("run") if n == "source"] == [0, 1, 2]
    assert [n for n, _ in events("eos")] == ["source", "transform", "collector"]
    summary = run_inline(chain(5), max_timeframes=2)
    assert len(summary.timeframes) == 2


def test_metrics_count_messages_bytes_and_time_samples():
    n, size = 3, 4
    summary = run_inline(chain(n))
    m = summary.metrics
    assert list(m) == ["source", "transform", "collector"]
    nbytes = size * 8
    got = {
        name: (pm.messages_in, pm.bytes_in, pm.messages_out, pm.bytes_out, len(pm.seconds))
        for name, pm in m.items()
    }
    assert got == {
        "source": (0, 0, n, n * nbytes, n),
        "transform": (n, n * nbytes, n, n * nbytes, n),
        "collector": (n, n * nbytes, 0, 0, n),
    }
    assert all(t >= 0 for pm in m.values() for t in pm.seconds)
    s = m["transform"].summary()
    assert s["timeframes"] == n and s["bytes_out"] == n * nbytes
    assert s["time_ms_p50"] <= s["time_ms_p99"] and s["time_ms_total"] >= s["time_ms_mean"]


def test_metrics_skip_timeframes_a_processor_did_not_run():
    summary = run_inline(_two_producers(Lifetime.Timeframe, skip_b_at=1))
    assert len(summary.metrics["consumer"].seconds) == 3
    assert summary.metrics["consumer"].messages_in == 6
    assert summary.metrics["prod-b"].messages_out == 3


def test_keep_sink_collects_dangling_outputs():
    n = 3
    topo = build_topology([source_spec(n, extra=True), transform_spec(), collector_spec()])
    summary = run_inline(topo, keep_sink=True)
    assert summary.error is None
    assert summary.sink_count == n
    assert [str(msg.header.data_type) for msg in summary.sink] == ["TST/EXTRA/0"] * n
    assert [msg.header.tf_id for msg in summary.sink] == [100, 101, 102]
    assert [int(msg.payload[0]) for msg in summary.sink] == [0, 1, 2]

    summary = run_inline(topo)  # counted, not kept
    assert summary.sink_count == n and summary.sink == []

    everything = build_topology(
        [source_spec(n, extra=True), transform_spec(), collector_spec()], forwarding_policy="all"
    )
    RECEIVED.clear()
    summary = run_inline(everything, keep_sink=True)
    kinds = sorted(str(msg.header.data_type) for msg in summary.sink)
    assert kinds == ["TST/DOUBLED/0"] * n + ["TST/EXTRA/0"] * n + ["TST/RAW/0"] * n
    assert RECEIVED and len(RECEIVED) == n  # the real consumers still got their data


def test_summary_as_dict_keys_and_values():
    summary = run_inline(chain(3, fail_at=1))
    d = summary.as_dict()
    assert {
        "runner",
        "timeframes_in",
        "timeframes_processed",
        "timeframes_failed",
        "timeframes_incomplete",
        "failures",
        "error",
        "wall_seconds",
        "sink_messages",
    } <= set(d)
    assert (d["timeframes_in"], d["timeframes_processed"], d["timeframes_failed"]) == (2, 1, 1)
    assert d["timeframes_incomplete"] == 0
    assert d["error"] == str(summary.error) and "'transform'" in d["error"]
    (failure,) = d["failures"]
    assert failure["timeslice"] == 1 and failure["tf_id"] == 101
    assert failure["status"] == FAILED and failure["processor"] == "transform"
    assert d["wall_seconds"] > 0

    ok = run_inline(chain(2)).as_dict()
    assert ok["error"] is None and ok["failures"] == [] and ok["timeframes_processed"] == 2


def test_processor_error_pickles():
    err = ProcessorError("tpc-tracker", "run", "ValueError: x", 3, 103, "tb")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    assert (back.processor, back.stage, back.timeslice, back.tf_id, back.details) == (
        "tpc-tracker",
        "run",
        3,
        103,
        "tb",
    )
