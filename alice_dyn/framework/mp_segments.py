"""The multi-process driver's ledger of shared-memory segments.

Layer: framework (multi-process runner, driver side). The driver owns every segment a worker
reported, with one reference per pending delivery (mailbox, consumer lane, cached Condition
input: the :class:`~alice_dyn.framework.relayer.Relayer`'s ``retain``/``release`` hooks); a
lane's references are dropped when its ``run`` returns. At zero the segment goes back to its
producer, which reuses it for later outputs (no new mapping, pages already there) unless someone
still has a view of it (*kept*: the producing task, a consumer that kept its input, the kept
sink): then it is unlinked, and the views stay valid. Segments of workers that are gone (or of
a run that stopped) are unlinked by the driver; a run's segment names share a prefix that is
swept at the end, so failures (even ``SIGKILL``) leave nothing in ``/dev/shm``.

Segment names are ``<run prefix><worker index>_<...>``: the worker index tells the producer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from alice_dyn.framework import shm


class SegmentLedger:
    """Reference counts of the segments of one run. ``lanes``: the workers in index order
    (anything with ``state``; a segment goes back only to a lane whose state is ``"ready"``).

    ``stats``: segment uses reported by workers (``used``), handed back to their producer once
    every reader was done (``returned``: pooled for reuse, or unlinked by the producer),
    ``unlinked`` here, ``released_at_end`` (still referenced at the end, e.g. cached Condition
    inputs) and ``swept`` (left behind by a failure)."""

    def __init__(self, prefix: str, lanes: Sequence[Any]) -> None:
        self.prefix = prefix
        self.lanes = lanes
        self.refs: dict[str, int] = {}
        self.kept: set[str] = set()  # segments someone still has views of: never reused
        #: per lane: (segment, reusable) handed back, not sent yet
        self.to_release: dict[Any, list[tuple[str, bool]]] = {}
        self.closing = False  # the run stopped: nothing goes back any more
        self.stats = {"used": 0, "returned": 0, "unlinked": 0, "released_at_end": 0, "swept": 0}

    def retain(self, w: shm.WireMessage) -> None:
        """One more pending delivery of ``w``."""
        for s in w.segments:
            self.refs[s] = self.refs.get(s, 0) + 1

    def release(self, w: shm.WireMessage) -> None:
        """One delivery of ``w`` less; a segment nobody reads any more is freed."""
        for s in w.segments:
            n = self.refs.get(s, 0) - 1
            if n > 0:
                self.refs[s] = n
            else:
                self.refs.pop(s, None)
                self._free(s)

    def add(self, new: Iterable[str], still_used: Iterable[str]) -> None:
        """A worker reported the segments of a call (``new``, none referenced yet) and those it
        still has views of (``still_used``)."""
        for s in new:
            self.refs.setdefault(s, 0)
        self.kept.update(still_used)

    def keep(self, segments: Iterable[str]) -> None:
        """Someone here holds views of ``segments``: never reuse them."""
        self.kept.update(segments)

    def settle(self, new: Iterable[str]) -> None:
        """Free the segments of a call that no delivery references (after routing)."""
        for s in new:
            if self.refs.get(s) == 0:
                del self.refs[s]
                self._free(s)

    def _free(self, s: str) -> None:
        """Segment ``s`` has no reader left: back to its producer (to reuse, or to unlink if a
        view of it is still held somewhere), or unlinked here when its producer is gone."""
        try:
            lane = self.lanes[int(s[len(self.prefix) :].split("_", 1)[0])]
        except (ValueError, IndexError):
            lane = None
        if self.closing or lane is None or lane.state != "ready":
            shm.unlink_segment(s)
            self.stats["unlinked"] += 1
        else:
            self.to_release.setdefault(lane, []).append((s, s not in self.kept))
            self.stats["returned"] += 1
        self.kept.discard(s)

    def take(self, lane: Any) -> list[tuple[str, bool]]:
        """The segments handed back to ``lane`` (they travel with its next request)."""
        return self.to_release.pop(lane, [])

    def flush(self, hold: Callable[[Any], bool], send: Callable[[Any, tuple], None]) -> None:
        """Send the segments handed back to lanes that get no request soon (``hold(lane)``:
        it will, e.g. an active source asked again as soon as the window allows)."""
        for lane in list(self.to_release):
            if hold(lane):
                continue
            items = self.to_release.pop(lane, None)
            if items and lane.state == "ready":
                send(lane, ("release", items))
            elif items:
                for s, _ in items:
                    shm.unlink_segment(s)

    def close(self) -> dict[str, int]:
        """At the end of a run (workers stopped): unlink what is left and sweep the prefix;
        returns the stats."""
        for items in self.to_release.values():  # never sent: the workers are stopped
            for s, _ in items:
                shm.unlink_segment(s)
        for s in list(self.refs):
            shm.unlink_segment(s)
        self.stats["released_at_end"] = len(self.refs)
        self.refs.clear()
        self.stats["swept"] = len(shm.sweep(self.prefix))
        return self.stats


__all__ = ["SegmentLedger"]
