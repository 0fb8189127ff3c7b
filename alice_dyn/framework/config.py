"""Configurable parameters: typed groups set with ``--configKeyValues`` or INI files.

Layer: framework. As O2's ``ConfigurableParam``: a group is a (frozen) dataclass registered
under a name (``TPCGasParam``); its fields are the keys, typed by their annotations. Values
come from the defaults, then INI files (``[Group]`` sections), then
``--configKeyValues 'Group.key=value;Group2.key=value'`` — later sources win. Unknown groups,
unknown keys and values that do not convert are errors, never ignored.
"""

from __future__ import annotations

import configparser
import dataclasses
import re
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alice_dyn.framework.errors import UsageError


class ConfigError(UsageError, ValueError):
    """A configuration key or value is unknown or malformed."""


_REGISTRY: dict[str, tuple[type, dict[str, str]]] = {}


def register_config_group(name: str, cls: type, aliases: dict[str, str] | None = None) -> type:
    """Register dataclass ``cls`` as configuration group ``name``.

    ``aliases`` maps extra key names (e.g. O2's ``DriftV``) to field names. Registering the same
    class twice is harmless; another class under a taken name is an error.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"config group {name!r}: {cls!r} is not a dataclass")
    known = _REGISTRY.get(name)
    if known is not None and known[0] is not cls:
        raise ConfigError(f"config group {name!r} is already registered for {known[0]!r}")
    fields = {f.name for f in dataclasses.fields(cls)}
    for alias, target in (aliases or {}).items():
        if target not in fields:
            raise ConfigError(f"config group {name!r}: alias {alias!r} names no field {target!r}")
    _REGISTRY[name] = (cls, dict(aliases or {}))
    return cls


def config_group(name: str, aliases: dict[str, str] | None = None):
    """Class decorator form of :func:`register_config_group`."""

    def deco(cls: type) -> type:
        return register_config_group(name, cls, aliases)

    return deco


def registered_groups() -> dict[str, type]:
    return {k: v[0] for k, v in _REGISTRY.items()}


def _convert(value: str, annotation: Any, where: str) -> Any:
    """Convert the string ``value`` to ``annotation`` (bool, int, float, str, tuples)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        parts = [p.strip() for p in value.strip("()[] ").split(",") if p.strip()]
        elem = args[0] if args else str
        return tuple(_convert(p, elem, where) for p in parts)
    if annotation in (bool, "bool"):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: {value!r} is not a boolean")
    for typ, name in ((int, "int"), (float, "float"), (str, "str")):
        if annotation in (typ, name):
            try:
                return typ(value.strip()) if typ is not str else value
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not a valid {name}") from None
    raise ConfigError(f"{where}: cannot set a value of type {annotation!r} from text")


_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^\]\s)]+)\s*([\])])\s*$")


def check_ranges(group: str, obj: Any) -> None:
    """Check the fields of a group instance that declare an interval of allowed values in their
    metadata (``dataclasses.field(..., metadata={"range": "(0, inf)"})``, ``[``/``]`` closed,
    ``(``/``)`` open, ``inf`` for no bound); a value outside is a :class:`ConfigError` naming
    ``Group.key``, the value and the interval (a group needs no import for this)."""
    for f in dataclasses.fields(obj):
        spec = f.metadata.get("range")
        if spec is None:
            continue
        m = _INTERVAL.match(spec)
        if m is None:
            raise ConfigError(f"{group}.{f.name}: malformed range {spec!r} in its declaration")
        left, lo, hi, right = m.group(1), float(m.group(2)), float(m.group(3)), m.group(4)
        v = getattr(obj, f.name)
        below = v < lo or (left == "(" and v == lo)
        above = v > hi or (right == ")" and v == hi)
        if below or above or v != v:  # v != v: NaN
            raise ConfigError(f"{group}.{f.name}={v!r}: must be in {spec.strip()}")


class ConfigStore:
    """Effective values of configuration groups.

    Only the groups named in ``groups`` (default: all registered) may be set: a key for a group
    no processor uses is an error, like an unknown key.
    """

    def __init__(self, groups: Iterable[str] | None = None) -> None:
        names = list(_REGISTRY) if groups is None else list(dict.fromkeys(groups))
        missing = [g for g in names if g not in _REGISTRY]
        if missing:
            raise ConfigError(f"unknown configuration group(s) {missing}")
        self._changes: dict[str, dict[str, Any]] = {g: {} for g in names}
        self._sources: dict[tuple[str, str], str] = {}

    @property
    def groups(self) -> list[str]:
        return list(self._changes)

    def set(self, key: str, value: str, source: str = "configKeyValues") -> None:
        """Set ``Group.key`` from text."""
        if "." not in key:
            raise ConfigError(f"{source}: {key!r} is not of the form Group.key")
        group, field = key.split(".", 1)
        if group not in self._changes:
            avail = ", ".join(sorted(self._changes)) or "none"
            raise ConfigError(
                f"{source}: unknown configuration group {group!r} (available: {avail})"
            )
        cls, aliases = _REGISTRY[group]
        field = aliases.get(field, field)
        types = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        if field not in names:
            keys = sorted(names | set(aliases))
            raise ConfigError(
                f"{source}: {group} has no key {key.split('.', 1)[1]!r} (keys: {keys})"
            )
        self._changes[group][field] = _convert(value, types[field], f"{source}: {key}")
        self._sources[(group, field)] = source

    def apply_key_values(self, text: str) -> None:
        """Apply ``'Group.key=value;Group.key2=value2'`` (no spaces around ``=``)."""
        for item in text.split(";"):
            if not item.strip():
                continue
            if "=" not in item:
                raise ConfigError(f"configKeyValues: {item.strip()!r} is not Group.key=value")
            key, value = item.split("=", 1)
            if key != key.strip() or key.endswith(" ") or value.startswith(" "):
                raise ConfigError(
                    f"configKeyValues: {item.strip()!r}: no spaces around '=' (O2 syntax)"
                )
            self.set(key.strip(), value, "configKeyValues")

    def apply_ini(self, path: str | Path) -> None:
        """Apply an INI file with one ``[Group]`` section per group."""
        parser = configparser.ConfigParser(interpolation=None)  # '%' is a plain character
        parser.optionxform = str  # keys are case-sensitive
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, configparser.Error) as exc:
            raise ConfigError(f"{path}: cannot read configuration: {exc}") from exc
        for section in parser.sections():
            for key, value in parser.items(section):
                self.set(f"{section}.{key}", value, str(path))

    def get(self, group: str) -> Any:
        """The effective instance of ``group`` (defaults with changes applied)."""
        if group not in self._changes:
            raise ConfigError(f"configuration group {group!r} is not part of this workflow")
        cls = _REGISTRY[group][0]
        try:
            obj = cls(**self._changes[group])
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:  # a group's own check of its values
            raise ConfigError(f"{group}: {exc}") from None
        check_ranges(group, obj)
        return obj

    def as_dict(self) -> dict[str, Any]:
        return {g: self.get(g) for g in self._changes}

    def changes(self) -> dict[str, dict[str, Any]]:
        """Only the values that differ from the defaults (what to pass to another process)."""
        out: dict[str, dict[str, Any]] = {}
        for g, values in self._changes.items():
            defaults = _REGISTRY[g][0]()
            diff = {k: v for k, v in values.items() if getattr(defaults, k) != v}
            if diff:
                out[g] = diff
        return out

    def format(self) -> str:
        """A printout of the effective configuration, marking values that were changed."""
        lines = []
        for g in self._changes:
            lines.append(f"[{g}]")
            inst = self.get(g)
            for f in dataclasses.fields(inst):
                src = self._sources.get((g, f.name))
                mark = f"   # from {src}" if src else ""
                lines.append(f"{f.name} = {getattr(inst, f.name)!r}{mark}")
        return "\n".join(lines)
