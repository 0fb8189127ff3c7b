"""Data processor specifications, mirroring O2's Data Processing Layer (DPL).

Layer: framework (knows nothing of physics). A processor declares what it reads
(:class:`InputSpec`) and writes (:class:`OutputSpec`), addressed by O2's triple
``origin/description/subspec``; the wiring is checked before any data flows
(:mod:`alice_dyn.framework.topology`).

String form of inputs, as on O2 command lines::

    binding:ORIGIN/DESCRIPTION/SUBSPEC;binding2:ORIGIN/DESCRIPTION

leaving out the subspec matches any subspec (a "type matcher"); such an input may match several
outputs (e.g. ``TPC/CLUSTERNATIVE/0..35``, one per sector) and then receives all their parts.
A processor's ``completion_policy`` (O2's names, :data:`COMPLETION_POLICIES`) says when it runs
for a timeslice (:mod:`alice_dyn.framework.relayer`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from alice_dyn.framework.errors import UsageError

MAX_ORIGIN = 4
MAX_DESCRIPTION = 16
MAX_SUBSPEC = 0xFFFFFFFF

CONSUME_WHEN_ALL = "consumeWhenAll"
CONSUME_WHEN_ANY = "consumeWhenAny"
CONSUME_EXISTING_WHEN_ANY = "consumeExistingWhenAny"
#: O2's completion policies that the runners support (``CompletionPolicyHelpers``)
COMPLETION_POLICIES = (CONSUME_WHEN_ALL, CONSUME_WHEN_ANY, CONSUME_EXISTING_WHEN_ANY)


class Lifetime(IntEnum):
    """O2's input/output lifetimes (``o2::framework::Lifetime``)."""

    Timeframe = 0
    Condition = 1
    QA = 2
    Sporadic = 2
    Transient = 3
    Timer = 4
    Enumeration = 5
    Signal = 6
    Optional = 7
    OutOfBand = 8


class SpecError(UsageError, ValueError):
    """A specification is malformed, or the topology built from specs is inconsistent."""


def _check_origin(origin: str, where: str) -> None:
    if not isinstance(origin, str) or not origin or len(origin) > MAX_ORIGIN:
        raise SpecError(f"{where}: origin {origin!r} must be 1-{MAX_ORIGIN} characters")
    if not origin.isascii() or any(c in origin for c in "/;:") or any(c.isspace() for c in origin):
        raise SpecError(f"{where}: origin {origin!r} has a character not allowed")


def _check_description(description: str, where: str) -> None:
    if not isinstance(description, str) or not description or len(description) > MAX_DESCRIPTION:
        raise SpecError(
            f"{where}: description {description!r} must be 1-{MAX_DESCRIPTION} characters"
        )
    if (
        not description.isascii()
        or any(c in description for c in "/;:")
        or any(c.isspace() for c in description)
    ):
        raise SpecError(f"{where}: description {description!r} has a character not allowed")


def _check_subspec(subspec: int | None, where: str) -> None:
    if subspec is None:
        return
    if isinstance(subspec, bool) or not isinstance(subspec, int) or not 0 <= subspec <= MAX_SUBSPEC:
        raise SpecError(f"{where}: subspec {subspec!r} must be an unsigned 32-bit integer")


def check_completion_policy(policy: str, where: str) -> str:
    """``policy`` if it is one of :data:`COMPLETION_POLICIES`; :class:`SpecError` otherwise."""
    if policy not in COMPLETION_POLICIES:
        raise SpecError(
            f"{where}: unknown completion policy {policy!r} (use one of "
            f"{', '.join(COMPLETION_POLICIES)})"
        )
    return policy


@dataclass(frozen=True)
class DataType:
    """A concrete data address ``origin/description/subspec`` (O2's ConcreteDataMatcher)."""

    origin: str
    description: str
    subspec: int = 0

    def __post_init__(self) -> None:
        _check_origin(self.origin, "data type")
        _check_description(self.description, "data type")
        _check_subspec(self.subspec, "data type")

    def __str__(self) -> str:
        return f"{self.origin}/{self.description}/{self.subspec}"


@dataclass(frozen=True)
class InputSpec:
    """What a processor reads: a binding name and a matcher (``subspec=None`` matches any)."""

    binding: str
    origin: str
    description: str
    subspec: int | None = None
    lifetime: Lifetime = Lifetime.Timeframe

    def __post_init__(self) -> None:
        where = f"input {self.binding!r}"
        if not self.binding or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", self.binding):
            raise SpecError(f"{where}: binding must be an identifier")
        _check_origin(self.origin, where)
        _check_description(self.description, where)
        _check_subspec(self.subspec, where)
        object.__setattr__(self, "lifetime", Lifetime(self.lifetime))

    def matches(self, data: DataType) -> bool:
        """True if ``data`` is what this input asks for."""
        return (
            data.origin == self.origin
            and data.description == self.description
            and (self.subspec is None or data.subspec == self.subspec)
        )

    def __str__(self) -> str:
        sub = "" if self.subspec is None else f"/{self.subspec}"
        return f"{self.binding}:{self.origin}/{self.description}{sub}"


@dataclass(frozen=True)
class OutputSpec:
    """What a processor writes: a concrete address, optionally with a binding name."""

    origin: str
    description: str
    subspec: int = 0
    lifetime: Lifetime = Lifetime.Timeframe
    binding: str | None = None

    def __post_init__(self) -> None:
        where = f"output {self.binding or self.origin + '/' + self.description!r}"
        _check_origin(self.origin, where)
        _check_description(self.description, where)
        if self.subspec is None:
            raise SpecError(f"{where}: an output needs a concrete subspec")
        _check_subspec(self.subspec, where)
        object.__setattr__(self, "lifetime", Lifetime(self.lifetime))

    @property
    def data_type(self) -> DataType:
        return DataType(self.origin, self.description, self.subspec)

    def __str__(self) -> str:
        prefix = f"{self.binding}:" if self.binding else ""
        return f"{prefix}{self.origin}/{self.description}/{self.subspec}"


@dataclass(frozen=True)
class ConfigParamSpec:
    """A processor option (``--name value``): type, default and help text."""

    name: str
    type: type = str
    default: Any = None
    help: str = ""

    def convert(self, value: Any) -> Any:
        """``value`` converted to the option's type; ``ValueError`` naming the option if bad."""
        if value is None or isinstance(value, self.type):
            return value
        try:
            if self.type is bool and isinstance(value, str):
                low = value.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return low in ("1", "true", "yes", "on")
            return self.type(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"option --{self.name}: {value!r} is not a valid {self.type.__name__}"
            ) from exc


@dataclass
class DataProcessorSpec:
    """A processor: name, inputs, outputs, algorithm, options and labels.

    ``algorithm`` is a :class:`~alice_dyn.framework.task.Task` subclass (or any callable that
    returns a Task when called with no argument), or a plain function ``f(pc)`` run for every
    timeframe. ``options`` maps option specs to the values this instance runs with.
    ``factory`` (``"module:function"``) and ``factory_kwargs`` rebuild the same spec in
    another process or from workflow JSON; stage factories fill them in.
    ``completion_policy``: when the processor runs for a timeslice, one of
    :data:`COMPLETION_POLICIES` (O2's ``consumeWhenAll`` by default; see
    :mod:`alice_dyn.framework.relayer`).
    """

    name: str
    inputs: Sequence[InputSpec] = ()
    outputs: Sequence[OutputSpec] = ()
    algorithm: Callable[..., Any] | type | None = None
    options: Sequence[ConfigParamSpec] = ()
    labels: Sequence[str] = ()
    option_values: dict[str, Any] = field(default_factory=dict)
    config_groups: Sequence[str] = ()
    factory: str | None = None
    factory_kwargs: dict[str, Any] = field(default_factory=dict)
    completion_policy: str = CONSUME_WHEN_ALL

    def __post_init__(self) -> None:
        if not self.name or not re.fullmatch(r"[a-z0-9][a-z0-9\-_.]*", self.name):
            raise SpecError(
                f"processor name {self.name!r}: use lower-case kebab-case (e.g. 'tpc-tracker')"
            )
        check_completion_policy(self.completion_policy, f"processor {self.name!r}")
        self.inputs = tuple(self.inputs)
        self.outputs = tuple(self.outputs)
        self.options = tuple(self.options)
        self.labels = tuple(self.labels)
        self.config_groups = tuple(self.config_groups)
        bindings = [i.binding for i in self.inputs]
        dup = {b for b in bindings if bindings.count(b) > 1}
        if dup:
            raise SpecError(f"processor {self.name!r}: duplicate input binding(s) {sorted(dup)}")
        out_bindings = [o.binding for o in self.outputs if o.binding]
        dup = {b for b in out_bindings if out_bindings.count(b) > 1}
        if dup:
            raise SpecError(f"processor {self.name!r}: duplicate output binding(s) {sorted(dup)}")
        types = [str(o.data_type) for o in self.outputs]
        dup = {t for t in types if types.count(t) > 1}
        if dup:
            raise SpecError(f"processor {self.name!r}: output(s) declared twice: {sorted(dup)}")
        known = {o.name for o in self.options}
        unknown = set(self.option_values) - known
        if unknown:
            raise SpecError(f"processor {self.name!r}: unknown option(s) {sorted(unknown)}")
        for opt in self.options:
            if opt.name in self.option_values:
                try:
                    self.option_values[opt.name] = opt.convert(self.option_values[opt.name])
                except ValueError as exc:
                    raise SpecError(f"processor {self.name!r}: {exc}") from exc

    def option(self, name: str) -> Any:
        """The value of option ``name`` (its default if not set)."""
        for opt in self.options:
            if opt.name == name:
                return self.option_values.get(name, opt.default)
        raise KeyError(f"processor {self.name!r} has no option {name!r}")

    def output(self, ref: str | DataType | OutputSpec) -> OutputSpec:
        """The declared output addressed by binding, ``ORIG/DESC[/SUB]`` string or data type."""
        if isinstance(ref, OutputSpec):
            ref = ref.data_type
        if isinstance(ref, DataType):
            found = [o for o in self.outputs if o.data_type == ref]
        else:
            found = [o for o in self.outputs if ref == o.binding]
            found = found or [
                o
                for o in self.outputs
                if ref in (f"{o.origin}/{o.description}", f"{o.origin}/{o.description}/{o.subspec}")
            ]
        if not found:
            raise SpecError(f"processor {self.name!r} declares no output {ref!s}")
        if len(found) > 1:
            raise SpecError(
                f"processor {self.name!r}: output {ref!s} is ambiguous between "
                f"{[str(o) for o in found]}: give the subspec"
            )
        return found[0]

    @property
    def is_source(self) -> bool:
        return not self.inputs


_INPUT_RE = re.compile(
    r"^\s*(?P<binding>[A-Za-z_][A-Za-z0-9_\-]*)\s*:\s*(?P<origin>[^/;:\s]+)"
    r"/(?P<description>[^/;:\s]+)(?:/(?P<subspec>[^/;:\s]+))?\s*$"
)


def parse_inputs(text: str, lifetime: Lifetime = Lifetime.Timeframe) -> list[InputSpec]:
    """Parse ``binding:ORIGIN/DESCRIPTION[/SUBSPEC];...`` into input specs.

    Raises :class:`SpecError` naming the offending element.
    """
    specs: list[InputSpec] = []
    for part in text.split(";"):
        if not part.strip():
            continue
        m = _INPUT_RE.match(part)
        if not m:
            raise SpecError(
                f"cannot parse input {part.strip()!r}: "
                "expected binding:ORIGIN/DESCRIPTION[/SUBSPEC]"
            )
        sub = m["subspec"]
        if sub is not None:
            try:
                sub_v = int(sub, 0)
            except ValueError as exc:
                raise SpecError(
                    f"input {part.strip()!r}: subspec {sub!r} is not an integer"
                ) from exc
        else:
            sub_v = None
        specs.append(InputSpec(m["binding"], m["origin"], m["description"], sub_v, lifetime))
    if not specs:
        raise SpecError(f"no input in {text!r}")
    return specs
