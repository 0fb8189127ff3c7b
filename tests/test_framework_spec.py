"""Processor specs (mirror of O2's DPL): data addresses, lifetimes, ``parse_inputs``, names,
options and output lookup.

Two bugs these tests found (ambiguous "ORIG/DESC" output lookup, duplicate output bindings) are
fixed; their tests pin the fixed behaviour.
"""

import functools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alice_dyn.framework import (
    ConfigParamSpec,
    DataProcessorSpec,
    DataType,
    InputSpec,
    Lifetime,
    OutputSpec,
    SpecError,
    parse_inputs,
)


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
