"""Build and check a workflow topology before any data flows.

Layer: framework. Every input must be matched by at least one producer's output: an input with
a subspec wildcard (a "type matcher", e.g. ``clusters:TPC/CLUSTERNATIVE``) may match several
(``TPC/CLUSTERNATIVE/0..35``, from one producer or many; they share origin and description by
construction) and then gets all their parts; a Condition input must match exactly one. An input
matched by no output, duplicate processor names, two producers of one output, cycles and
unsupported lifetimes are errors that name the processor and the spec. Outputs nobody consumes
("dangling") go, by the forwarding policy, to an injected dummy sink (``dangling``, the
default), are all also copied to the sink (``all``) or are refused (``none``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from alice_dyn.framework.spec import (
    CONSUME_WHEN_ALL,
    DataProcessorSpec,
    DataType,
    InputSpec,
    Lifetime,
    SpecError,
)

DUMMY_SINK = "internal-dpl-injected-dummy-sink"
FORWARDING_POLICIES = ("dangling", "all", "none")
SUPPORTED_LIFETIMES = {
    Lifetime.Timeframe,
    Lifetime.Optional,
    Lifetime.Condition,
    Lifetime.Sporadic,
}
#: inputs whose absence for a timeframe does not block the consumer
NON_BLOCKING_LIFETIMES = {Lifetime.Optional, Lifetime.Condition, Lifetime.Sporadic}


@dataclass(frozen=True)
class Route:
    """One delivery: ``producer`` writes ``data_type``; ``consumer`` reads it as ``binding``."""

    producer: str
    data_type: DataType
    consumer: str
    binding: str
    lifetime: Lifetime


@dataclass
class Topology:
    """Processors in topological order and the routes between them."""

    processors: list[DataProcessorSpec]
    routes: list[Route]
    forwarding_policy: str = "dangling"
    sink_routes: list[Route] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_name = {p.name: p for p in self.processors}
        self.routes_from: dict[tuple[str, DataType], list[Route]] = {}
        for r in (*self.routes, *self.sink_routes):
            self.routes_from.setdefault((r.producer, r.data_type), []).append(r)
        self.inputs_of: dict[str, list[Route]] = {p.name: [] for p in self.processors}
        for r in self.routes:
            self.inputs_of[r.consumer].append(r)

    def required_bindings(self, name: str) -> set[str]:
        """Inputs of ``name`` that must be present before it runs: the blocking ones under
        ``consumeWhenAll``, none under the "when any" policies."""
        if self.by_name[name].completion_policy != CONSUME_WHEN_ALL:
            return set()
        return {r.binding for r in self.inputs_of[name] if r.lifetime not in NON_BLOCKING_LIFETIMES}

    def multipart_bindings(self, name: str) -> set[str]:
        """Inputs of ``name`` that match several outputs (their value is all the parts)."""
        seen: set[str] = set()
        multi = set()
        for r in self.inputs_of[name]:
            if r.binding in seen:
                multi.add(r.binding)
            seen.add(r.binding)
        return multi

    @property
    def sources(self) -> list[str]:
        return [p.name for p in self.processors if p.is_source]

    def describe(self) -> str:
        """A readable listing: processors in order and their routes."""
        lines = []
        for p in self.processors:
            ins = ", ".join(
                f"{r.binding}<-{r.producer}:{r.data_type}" for r in self.inputs_of[p.name]
            )
            lines.append(f"{p.name}" + (f"  ({ins})" if ins else "  (source)"))
        if self.sink_routes:
            lines.append(
                f"{DUMMY_SINK}  ("
                + ", ".join(f"{r.producer}:{r.data_type}" for r in self.sink_routes)
                + ")"
            )
        return "\n".join(lines)


def _match(
    inp: InputSpec, consumer: str, producers: Sequence[DataProcessorSpec]
) -> list[tuple[str, DataType]]:
    """The outputs ``inp`` reads, as ``(producer, data type)`` ordered by subspec."""
    found = [
        (p.name, o.data_type) for p in producers for o in p.outputs if inp.matches(o.data_type)
    ]
    if not found:
        raise SpecError(f"processor {consumer!r}: input {inp} is produced by no processor")
    if len(found) > 1 and inp.lifetime == Lifetime.Condition:
        what = ", ".join(f"{n} ({t})" for n, t in found)
        raise SpecError(
            f"processor {consumer!r}: Condition input {inp} matches more than one output: "
            f"{what} (a Condition input reads one)"
        )
    return sorted(found, key=lambda f: f[1].subspec)


def build_topology(
    specs: Sequence[DataProcessorSpec], forwarding_policy: str = "dangling"
) -> Topology:
    """Check ``specs`` and order them; raises :class:`SpecError` naming what is wrong."""
    if forwarding_policy not in FORWARDING_POLICIES:
        raise SpecError(
            f"forwarding policy {forwarding_policy!r}: use one of {FORWARDING_POLICIES}"
        )
    if not specs:
        raise SpecError("empty workflow: no processor")
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"duplicate processor name(s): {dup}")
    if DUMMY_SINK in names:
        raise SpecError(f"processor name {DUMMY_SINK!r} is reserved")
    owner: dict[DataType, str] = {}
    for s in specs:
        for o in s.outputs:
            if o.data_type in owner:
                raise SpecError(
                    f"output {o.data_type} is produced by both {owner[o.data_type]!r} "
                    f"and {s.name!r}"
                )
            owner[o.data_type] = s.name
        for i in s.inputs:
            if i.lifetime not in SUPPORTED_LIFETIMES:
                raise SpecError(
                    f"processor {s.name!r}: input {i} has lifetime {i.lifetime.name}, which the "
                    "alice_dyn runners do not support (Timeframe, Optional, Condition, Sporadic)"
                )
    routes = []
    for s in specs:
        for i in s.inputs:
            for producer, dt in _match(i, s.name, specs):
                if producer == s.name:
                    raise SpecError(
                        f"processor {s.name!r}: input {i} reads its own output (a cycle)"
                    )
                routes.append(Route(producer, dt, s.name, i.binding, i.lifetime))
    # topological order (Kahn), stable in the given order
    deps = {s.name: {r.producer for r in routes if r.consumer == s.name} for s in specs}
    order: list[str] = []
    ready = [n for n in names if not deps[n]]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in names:
            if n in deps[m]:
                deps[m].discard(n)
                if not deps[m] and m not in order and m not in ready:
                    ready.append(m)
    if len(order) < len(names):
        stuck = [n for n in names if n not in order]
        raise SpecError(f"cycle in the workflow between processors {stuck}")
    consumed = {(r.producer, r.data_type) for r in routes}
    sink_routes = []
    for s in specs:
        for o in s.outputs:
            dangling = (s.name, o.data_type) not in consumed
            if dangling and forwarding_policy == "none":
                raise SpecError(
                    f"processor {s.name!r}: output {o.data_type} is consumed by nobody "
                    "(forwarding policy 'none')"
                )
            if dangling or forwarding_policy == "all":
                sink_routes.append(
                    Route(s.name, o.data_type, DUMMY_SINK, str(o.data_type), o.lifetime)
                )
    by_name = {s.name: s for s in specs}
    return Topology([by_name[n] for n in order], routes, forwarding_policy, sink_routes)
