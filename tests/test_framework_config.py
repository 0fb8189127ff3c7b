"""Configuration groups (``--configKeyValues`` and INI files) and how they reach the processors.

A bug these tests found ('%' in INI values) is fixed; its test pins the fixed behaviour.
"""

import re
from dataclasses import dataclass

import pytest

from alice_dyn.framework import (
    ConfigError,
    ConfigStore,
    DataProcessorSpec,
    OutputSpec,
    Task,
    build_topology,
    register_config_group,
    run_inline,
)

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


def test_declared_ranges_are_checked_when_a_group_is_made():
    import dataclasses

    from alice_dyn.framework.config import check_ranges

    @dataclasses.dataclass(frozen=True)
    class Ranged:
        speed: float = dataclasses.field(default=1.0, metadata={"range": "(0, inf)"})
        share: float = dataclasses.field(default=0.5, metadata={"range": "[0, 1]"})
        free: float = -3.0

    check_ranges("Ranged", Ranged())
    check_ranges("Ranged", Ranged(share=1.0, free=-1e9))
    for bad, key in ((Ranged(speed=0.0), "speed"), (Ranged(share=1.5), "share"),
                     (Ranged(speed=float("nan")), "speed")):  # fmt: skip
        with pytest.raises(ConfigError, match=rf"Ranged\.{key}="):
            check_ranges("Ranged", bad)
    with pytest.raises(ConfigError, match="malformed range"):
        check_ranges("Bad", dataclasses.make_dataclass(
            "Bad", [("x", float, dataclasses.field(default=1.0, metadata={"range": "0..1"}))]
        )())  # fmt: skip
