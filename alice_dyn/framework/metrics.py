"""Per-processor monitoring: time per timeframe (mean, p50, p99), messages and bytes in/out.

Layer: framework. Rendered as a table at the end of a run and as JSON (``--metrics-json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ProcessorMetrics:
    """Counters of one processor (all lanes together)."""

    name: str
    seconds: list[float] = field(default_factory=list)
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def record(
        self, seconds: float, msgs_in: int, bytes_in: int, msgs_out: int, bytes_out: int
    ) -> None:
        self.seconds.append(seconds)
        self.messages_in += msgs_in
        self.bytes_in += bytes_in
        self.messages_out += msgs_out
        self.bytes_out += bytes_out

    def merge(self, other: ProcessorMetrics) -> None:
        self.seconds += other.seconds
        self.messages_in += other.messages_in
        self.messages_out += other.messages_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out

    def summary(self) -> dict[str, Any]:
        """Times in ms over all timeframes, and apart: the first one (it carries one-off
        start-up: kernel compilation, first use of a model) and the p50/p99 of the others
        (equal to the overall ones with a single timeframe)."""
        t = np.asarray(self.seconds) * 1e3
        rest = t[1:] if t.size > 1 else t
        return {
            "timeframes": len(t),
            "time_ms_mean": float(t.mean()) if t.size else 0.0,
            "time_ms_p50": float(np.percentile(t, 50)) if t.size else 0.0,
            "time_ms_p99": float(np.percentile(t, 99)) if t.size else 0.0,
            "time_ms_first": float(t[0]) if t.size else 0.0,
            "time_ms_p50_after_first": float(np.percentile(rest, 50)) if rest.size else 0.0,
            "time_ms_p99_after_first": float(np.percentile(rest, 99)) if rest.size else 0.0,
            "time_ms_total": float(t.sum()),
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


def _bytes(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


#: a first timeframe this much slower than the others' median, and above START_UP_MIN_MS, is
#: called out under the table as start-up
START_UP_FACTOR = 5.0
START_UP_MIN_MS = 500.0


def format_metrics(metrics: dict[str, ProcessorMetrics]) -> str:
    """The end-of-run table: p50 and p99 of the timeframes after the first, whose time (one-off
    start-up: Numba compiling kernels, a network's first pass) has its own column and, when it
    stands out, a note under the table."""
    head = (
        f"{'processor':<34} {'TFs':>5} {'mean ms':>9} {'first ms':>9} {'p50 ms':>9} "
        f"{'p99 ms':>9} {'msg in':>7} {'msg out':>7} {'bytes in':>10} {'bytes out':>10}"
    )
    lines = [head, "-" * len(head)]
    slow_start = []
    for name, m in metrics.items():
        s = m.summary()
        lines.append(
            f"{name:<34} {s['timeframes']:>5} {s['time_ms_mean']:>9.2f} "
            f"{s['time_ms_first']:>9.2f} {s['time_ms_p50_after_first']:>9.2f} "
            f"{s['time_ms_p99_after_first']:>9.2f} {s['messages_in']:>7} {s['messages_out']:>7} "
            f"{_bytes(s['bytes_in']):>10} {_bytes(s['bytes_out']):>10}"
        )
        first, later = s["time_ms_first"], s["time_ms_p50_after_first"]
        if s["timeframes"] > 1 and first > START_UP_MIN_MS and first > START_UP_FACTOR * later:
            slow_start.append(f"{name} {first / 1e3:.1f} s")
    lines.append("p50/p99: the timeframes after the first")
    if slow_start:
        lines.append(
            "note: the first timeframe carried one-off start-up (Numba compiling kernels on a "
            f"fresh install, first use of a network): {', '.join(slow_start)}"
        )
    return "\n".join(lines)


def write_metrics_json(path: str | Path, metrics: dict[str, ProcessorMetrics], extra: dict) -> None:
    """Write ``{"processors": {name: summary}, **extra}`` to ``path``."""
    doc = {"processors": {n: m.summary() for n, m in metrics.items()}, **extra}
    Path(path).write_text(json.dumps(doc, indent=2))
