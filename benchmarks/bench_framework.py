"""Framework overhead per message and shared-memory throughput, inline vs multi-process runner.

Layer: benchmark (standalone: ``python benchmarks/bench_framework.py [--small-n 3000]
[--big-n 6] [--size-mb 100]``, under 90 s on 2 cores).

Workflow: one source -> one consumer. The source fills its output (producer's work, not
counted) and writes ``time.perf_counter()`` into the first 8 bytes just before ``run``
returns; the consumer reads it first thing in its ``run``. Hence, per message:

* ``latency``: end of the producer's ``run`` -> start of the consumer's ``run``, i.e. what the
  framework adds (collect, transport, routing, receive). ``perf_counter`` is CLOCK_MONOTONIC on
  Linux, one clock for all processes;
* ``interval``: mean time between two consumer calls in steady state (1 / throughput; with
  processes, producer and consumer overlap);
* ``read``: the consumer summing all the bytes of a large payload (first touch of the
  shared-memory pages in the consumer's process vs the producer's own heap pages inline).

Output modes: ``make`` (framework-allocated, zero copy), ``adopt`` of a heap array (copied into
shared memory when sent), ``object`` (a pickled ``(t, bytes)`` tuple). The 100 MB transport is
then compared with plain ``np.copyto`` of the same size measured in the same run, into a warm
(already touched) and into a fresh destination.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from alice_dyn.framework import (
    ConfigParamSpec,
    DataProcessorSpec,
    InputSpec,
    OutputSpec,
    Task,
    build_topology,
    run_inline,
)
from alice_dyn.framework.runner_mp import run_multiprocess


class Source(Task):
    def init(self, ic) -> None:
        self.n = ic.option("n")
        self.size = ic.option("size")
        self.mode = ic.option("mode")
        if self.mode == "adopt":
            self.heap = [np.ones(self.size, np.uint8) for _ in range(2)]  # touched once here

    def run(self, pc) -> None:
        ts = pc.timeslice
        if self.mode == "make":
            a = pc.outputs.make("BEN/DATA", self.size, np.uint8)
            a.fill(ts % 251)
            a[:8].view(np.float64)[0] = time.perf_counter()
        elif self.mode == "adopt":
            a = self.heap[ts % 2]  # the framework copies it when sent (not before run returns)
            a[:8].view(np.float64)[0] = time.perf_counter()
            pc.outputs.adopt("BEN/DATA", a)
        else:
            pc.outputs.adopt("BEN/DATA", (time.perf_counter(), bytes(self.size)))
        if ts == self.n - 1:
            pc.end_of_stream()


class Consumer(Task):
    def init(self, ic) -> None:
        self.out = ic.option("out")
        self.read_all = ic.option("read")
        self.lat: list[float] = []
        self.t: list[float] = []
        self.read: list[float] = []

    def run(self, pc) -> None:
        t0 = time.perf_counter()
        d = pc.inputs.get("data")
        t_src = d[0] if isinstance(d, tuple) else float(d[:8].view(np.float64)[0])
        self.lat.append(t0 - t_src)
        self.t.append(t0)
        if self.read_all:
            t1 = time.perf_counter()
            d.view(np.uint64).sum()
            self.read.append(time.perf_counter() - t1)

    def end_of_stream(self, ec) -> None:
        np.savez(self.out, lat=self.lat, t=self.t, read=self.read)


def specs(n: int, size: int, mode: str, out: str, read: bool) -> list[DataProcessorSpec]:
    return [
        DataProcessorSpec(
            "bench-source",
            outputs=[OutputSpec("BEN", "DATA")],
            algorithm=Source,
            options=[
                ConfigParamSpec("n", int, 1),
                ConfigParamSpec("size", int, 1000),
                ConfigParamSpec("mode", str, "make"),
            ],
            option_values={"n": n, "size": size, "mode": mode},
        ),
        DataProcessorSpec(
            "bench-consumer",
            inputs=[InputSpec("data", "BEN", "DATA")],
            algorithm=Consumer,
            options=[ConfigParamSpec("out", str, ""), ConfigParamSpec("read", bool, False)],
            option_values={"out": out, "read": read},
        ),
    ]


def measure(
    runner: str, n: int, size: int, mode: str, read: bool, tmp: str, depth: int = 4
) -> dict:
    out = os.path.join(tmp, f"{runner}-{mode}-{size}-{depth}.npz")
    topo = build_topology(specs(n, size, mode, out, read))
    t0 = time.perf_counter()
    if runner == "inline":
        summary = run_inline(topo, progress=False)
    else:
        summary = run_multiprocess(topo, progress=False, queue_depth=depth)
    wall = time.perf_counter() - t0
    summary.raise_if_failed()
    r = np.load(out)
    lat, t, rd = r["lat"], r["t"], r["read"]
    skip = min(n // 2, 2 * depth + 2)  # warm-up: first use of the pooled segments
    return {
        "runner": runner,
        "depth": depth if runner != "inline" else None,
        "size": size,
        "mode": mode,
        "n": n,
        "wall": wall,
        "interval": float(np.diff(t[skip:]).mean()) if n > 2 else float("nan"),
        "lat_p50": float(np.median(lat[skip:])),
        "lat_p99": float(np.percentile(lat[skip:], 99)),
        "read": float(np.median(rd[skip:])) if rd.size else float("nan"),
    }


def copy_bench(size: int, repeat: int) -> dict:
    src = np.ones(size, np.uint8)
    warm = np.empty_like(src)
    np.copyto(warm, src)
    t_warm, t_fresh = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.copyto(warm, src)
        t_warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fresh = np.empty_like(src)
        np.copyto(fresh, src)
        t_fresh.append(time.perf_counter() - t0)
        del fresh
    return {"warm": float(np.median(t_warm)), "fresh": float(np.median(t_fresh))}


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _us(x: float) -> str:
    return "-" if x != x else (f"{x * 1e6:,.0f} us" if x < 1e-2 else f"{x * 1e3:,.1f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small-n", type=int, default=3000, help="timeframes with 1 kB payloads")
    ap.add_argument("--big-n", type=int, default=16, help="timeframes with large payloads")
    ap.add_argument("--size-mb", type=float, default=100.0, help="large payload size (MB)")
    args = ap.parse_args(argv)
    small, big = 1000, int(args.size_mb * 1e6)
    t_start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sn, bn = args.small_n, args.big_n
        rows.append(measure("inline", sn, small, "make", False, tmp))
        rows.append(measure("multiprocess", sn, small, "make", False, tmp, depth=1))
        rows.append(measure("multiprocess", sn, small, "make", False, tmp, depth=4))
        rows.append(measure("multiprocess", sn, small, "object", False, tmp, depth=1))
        rows.append(measure("inline", bn, big, "make", True, tmp))
        rows.append(measure("multiprocess", bn, big, "make", True, tmp, depth=1))
        rows.append(measure("multiprocess", bn, big, "make", True, tmp, depth=4))
        rows.append(measure("inline", bn, big, "adopt", True, tmp))
        rows.append(measure("multiprocess", bn, big, "adopt", True, tmp, depth=1))
    copies = copy_bench(big, 5)

    print(f"framework overhead per message (source -> consumer), {os.cpu_count()} CPUs")
    head = (
        f"{'runner':<13} {'depth':>5} {'payload':>8} {'output':>7} {'TFs':>5} {'wall s':>7} "
        f"{'interval':>10} {'latency p50':>12} {'latency p99':>12} {'consumer read':>14}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        depth = "-" if r["depth"] is None else str(r["depth"])
        print(
            f"{r['runner']:<13} {depth:>5} {_size(r['size']):>8} {r['mode']:>7} {r['n']:>5} "
            f"{r['wall']:>7.2f} {_us(r['interval']):>10} {_us(r['lat_p50']):>12} "
            f"{_us(r['lat_p99']):>12} {_us(r['read']):>14}"
        )
    print()
    print(f"moving {_size(big)} producer -> consumer vs a plain memory copy of the same size")
    head = f"{'path':<52} {'time':>9} {'GB/s':>8} {'vs copyto fresh':>16}"
    print(head)
    print("-" * len(head))

    def line(what: str, seconds: float) -> None:
        gbs = big / seconds / 1e9
        ratio = copies["fresh"] / seconds
        print(f"{what:<52} {_us(seconds):>9} {gbs:>8.1f} {ratio:>15.2f}x")

    line("np.copyto into a warm (touched) destination", copies["warm"])
    line("np.copyto into a fresh destination (page faults)", copies["fresh"])
    mp = {(r["runner"], r["mode"], r["size"], r["depth"]): r for r in rows}
    make, adopt = mp[("multiprocess", "make", big, 1)], mp[("multiprocess", "adopt", big, 1)]
    line("shared memory, make (zero copy), latency", make["lat_p50"])
    line("shared memory, adopt of heap (1 copy), latency", adopt["lat_p50"])
    line("inline, make (same process), latency", mp[("inline", "make", big, None)]["lat_p50"])
    print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
