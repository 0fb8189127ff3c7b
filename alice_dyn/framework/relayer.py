"""The relayer: which inputs a processor gets for a timeslice and when it runs.

Layer: framework; shared by every runner (O2's DataRelayer and its completion policy). The
transport is not its business: it relays whatever message objects the runner hands it (the
inline runner's :class:`~alice_dyn.framework.message.Message`, the multi-process runner's
:class:`~alice_dyn.framework.shm.WireMessage`); a runner that counts references gives the
``retain``/``release`` hooks, called once per delivery the relayer holds.

* **Routing.** An output goes to every route of its ``(producer, data type)``: into the
  consumer's mailbox for that timeslice, into the consumer's Condition history (``Lifetime.
  Condition``: kept for later timeslices) or to the dummy sink (handed to the runner).
* **Completion.** A timeslice is *opened* when the sources are asked for it; it is *pending* at
  every non-source and every active source until they are done with it. A processor's timeslice
  ``t`` is decided once all its producers are done with ``t`` and it has decided ``t - 1``, so a
  processor sees its timeslices in increasing order whatever order its producers finish in.
* **Several parts per input.** An input that matches several outputs (a subspec wildcard: 36
  per-sector ``TPC/CLUSTERNATIVE/<s>``) collects every part that arrives for ``t``; the run gets
  them as one :class:`~alice_dyn.framework.message.Parts` ordered by subspec (an input that
  matches one output gets its message as it is). Since ``t`` is decided only once every producer
  is done with it, all the parts are there: what O2 needs a custom completion policy for (the
  TPC sector completion policy) is the default here.
* **Completion policies** (the processor's ``completion_policy``, O2's names). The decision for
  ``t``: *skip* when the mailbox is empty (nothing for this processor; Condition inputs alone
  do not make a run); with ``consumeWhenAll`` (default) *incomplete* when a blocking input (not
  Optional, Condition or Sporadic) is missing (the mailbox's messages are dropped); else *run*
  with the mailbox plus the Condition inputs valid at ``t`` (the latest one produced at or
  before ``t``). ``consumeWhenAny`` and ``consumeExistingWhenAny`` run with whatever arrived,
  missing inputs or not. O2 runs such a processor as messages arrive, possibly several times
  per timeslice (``consumeWhenAny`` once per batch, ``consumeExistingWhenAny`` consuming what is
  there and rescanning until the non-Sporadic inputs are complete); these runners decide a
  timeslice once its producers are done, so both run once per timeslice with everything that
  arrived: deterministic, and the same inline and multi-process. Older Condition inputs are
  dropped once the processor has decided a timeslice for which a newer one is valid.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from alice_dyn.framework.message import Parts, each_message
from alice_dyn.framework.spec import Lifetime
from alice_dyn.framework.topology import DUMMY_SINK, Topology

M = TypeVar("M")  # a relayed message: anything with ``.header.data_type``

RUN = "run"
SKIP = "skip"
INCOMPLETE = "incomplete"


def _no_hook(msg: Any) -> None:
    return None


@dataclass
class Decision(Generic[M]):
    """The fate of one processor's timeslice: ``kind`` is :data:`RUN` (``inputs``: everything
    it reads, by binding), :data:`SKIP` (no input) or :data:`INCOMPLETE` (``inputs``: what was
    there; ``why`` names the missing bindings). A binding that matches several outputs maps to
    its :class:`~alice_dyn.framework.message.Parts` (iterate with
    :func:`~alice_dyn.framework.message.each_message`)."""

    timeslice: int
    kind: str
    inputs: dict[str, M | Parts] = field(default_factory=dict)
    why: str = ""


class Relayer(Generic[M]):
    """Mailboxes, Condition histories and the completion state of one run (see the module
    docstring). ``retain(msg)``/``release(msg)``: called when the relayer starts/stops holding a
    delivery of ``msg`` (a processor that runs holds its inputs until the runner releases them)."""

    def __init__(
        self,
        topology: Topology,
        retain: Callable[[M], None] = _no_hook,
        release: Callable[[M], None] = _no_hook,
    ) -> None:
        self.topology = topology
        self.retain = retain
        self.release = release
        self.names = [p.name for p in topology.processors]
        self.sources = list(topology.sources)
        source_set = set(self.sources)
        self.non_sources = [n for n in self.names if n not in source_set]
        self.producers = {n: {r.producer for r in topology.inputs_of[n]} for n in self.names}
        self.required = {n: topology.required_bindings(n) for n in self.names}
        self.multipart = {n: topology.multipart_bindings(n) for n in self.names}
        self._cond_bindings = {
            n: [r.binding for r in topology.inputs_of[n] if r.lifetime == Lifetime.Condition]
            for n in self.names
        }
        #: per consumer, timeslice and binding: the message that arrived (the list of those
        #: that arrived for a binding that matches several outputs)
        self.mailbox: dict[str, dict[int, dict[str, M | list[M]]]] = {n: {} for n in self.names}
        #: per (consumer, binding): Condition inputs as (timeslice, message), in timeslice order
        self.cond_hist: dict[tuple[str, str], list[tuple[int, M]]] = {
            (n, b): [] for n in self.names for b in self._cond_bindings[n]
        }
        self.next_ts = dict.fromkeys(self.non_sources, 0)
        #: per open timeslice: the processors not done with it yet
        self.pending: dict[int, set[str]] = {}
        self.active_sources = set(self.sources)
        self.opened = 0  # timeslices 0 .. opened - 1 are open
        self.base = 0  # the oldest timeslice not complete

    # ---- completion -----------------------------------------------------------------------

    def open(self, ts: int) -> None:
        """Open every timeslice up to ``ts`` (pending at the non-sources and active sources)."""
        while self.opened <= ts:
            self.pending[self.opened] = set(self.non_sources) | self.active_sources
            self.opened += 1

    def done(self, name: str, ts: int) -> None:
        """``name`` finished timeslice ``ts`` (its outputs are routed)."""
        self.pending[ts].discard(name)

    def end_source(self, source: str, last_ts: int) -> None:
        """``source`` makes no timeslice after ``last_ts`` (end of stream or the last asked)."""
        self.active_sources.discard(source)
        for t in range(last_ts + 1, self.opened):
            if t in self.pending:
                self.pending[t].discard(source)

    def complete(self) -> list[int]:
        """Timeslices that every processor is done with, oldest first, from :attr:`base` on
        (forgotten here: the runner finalises them)."""
        out = []
        while self.base < self.opened and not self.pending[self.base]:
            del self.pending[self.base]
            out.append(self.base)
            self.base += 1
        return out

    def holder(self, ts: int) -> str | None:
        """The first processor (topological order) not done with ``ts``."""
        pend = self.pending.get(ts, set())
        return next((n for n in self.names if n in pend), None)

    def abandon(self) -> None:
        """Forget every open timeslice (the run stopped)."""
        self.pending.clear()
        self.base = self.opened

    @property
    def finished(self) -> bool:
        """No active source and every opened timeslice complete."""
        return not self.active_sources and self.base == self.opened

    # ---- routing --------------------------------------------------------------------------

    def route(
        self, producer: str, ts: int, outputs: Iterable[M], to_sink: Callable[[M], bool]
    ) -> bool:
        """Deliver ``producer``'s outputs of timeslice ``ts``; a message for the dummy sink goes
        to ``to_sink``, which returns ``False`` to stop routing (then this returns ``False``)."""
        routes_from = self.topology.routes_from
        for msg in outputs:
            for route in routes_from.get((producer, msg.header.data_type), ()):
                if route.consumer == DUMMY_SINK:
                    if not to_sink(msg):
                        return False
                elif route.lifetime == Lifetime.Condition:
                    hist = self.cond_hist[(route.consumer, route.binding)]
                    bisect.insort(hist, (ts, msg), key=lambda e: e[0])
                    self.retain(msg)
                else:
                    box = self.mailbox[route.consumer].setdefault(ts, {})
                    if route.binding in self.multipart[route.consumer]:
                        box.setdefault(route.binding, []).append(msg)
                    else:
                        box[route.binding] = msg
                    self.retain(msg)
        return True

    # ---- decisions ------------------------------------------------------------------------

    def conditions_at(self, name: str, ts: int) -> dict[str, M]:
        """The latest Condition input of each binding of ``name`` made at or before ``ts``."""
        out = {}
        for b in self._cond_bindings[name]:
            hist = self.cond_hist[(name, b)]
            i = bisect.bisect_right(hist, ts, key=lambda e: e[0])
            if i:
                out[b] = hist[i - 1][1]
        return out

    @staticmethod
    def _packed(box: dict[str, M | list[M]]) -> dict[str, M | Parts]:
        """``box`` as a run's inputs: the parts of a binding that matches several outputs as
        one :class:`~alice_dyn.framework.message.Parts`, ordered by subspec."""
        return {
            b: Parts(sorted(m, key=lambda p: p.header.subspec)) if isinstance(m, list) else m
            for b, m in box.items()
        }

    def _prune_conditions(self, name: str, ts: int) -> None:
        """Release Condition inputs older than the one valid at ``ts`` (never needed again)."""
        for b in self._cond_bindings[name]:
            hist = self.cond_hist[(name, b)]
            i = bisect.bisect_right(hist, ts, key=lambda e: e[0])
            for _, msg in hist[: max(i - 1, 0)]:
                self.release(msg)
            del hist[: max(i - 1, 0)]

    def decide(self, name: str, stop_before_run: bool = False) -> Iterator[Decision[M]]:
        """Decide the next timeslices of non-source ``name`` whose producers are done, in order
        (iterate to the end). A *run* is yielded before the relayer goes on (the runner starts
        it then) and stays pending until :meth:`done`; *skip* and *incomplete* are done at once.
        ``stop_before_run``: stop at the first timeslice that would run, leaving it undecided."""
        producers = self.producers[name]
        while True:
            ts = self.next_ts[name]
            if ts >= self.opened:
                return
            pend = self.pending[ts]
            if not producers.isdisjoint(pend):
                return
            box = self.mailbox[name].get(ts)
            conditions = self.conditions_at(name, ts)
            missing = self.required[name] - set(conditions) - set(box) if box else set()
            if box and not missing and stop_before_run:
                return
            self.next_ts[name] = ts + 1
            self.mailbox[name].pop(ts, None)
            if not box:
                yield Decision(ts, SKIP)
            elif missing:
                inputs = self._packed(box)
                for msg in each_message(inputs):
                    self.release(msg)
                why = f"input(s) {sorted(missing)} missing (consume when all)"
                yield Decision(ts, INCOMPLETE, inputs, why)
            else:
                for b, msg in conditions.items():
                    if b not in box:
                        self.retain(msg)  # held by the run until the runner releases it
                yield Decision(ts, RUN, {**conditions, **self._packed(box)})
            self._prune_conditions(name, ts)
            if not box or missing:
                pend.discard(name)


__all__ = ["INCOMPLETE", "RUN", "SKIP", "Decision", "Relayer"]
