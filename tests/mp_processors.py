"""Processors for the multi-process runner tests.

Module level (importable from ``tests/``), so that the specs also work with the ``spawn`` start
method. Everything a test needs to observe inside a worker is sent as an output (kept by the
dummy sink) or appended to a log file given as an option.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alice_dyn.framework import (
    ConfigParamSpec,
    DataProcessorSpec,
    InputSpec,
    Lifetime,
    OutputSpec,
    Task,
    config_group,
)

REC = np.dtype([("pad", "<u2"), ("time", "<f4"), ("q", "<u1")])


def shm_location(arr: np.ndarray) -> tuple[str, int] | None:
    """The file mapped at ``arr``'s first byte (from ``/proc/self/maps``) and the offset in it."""
    addr = int(arr.__array_interface__["data"][0])
    with open("/proc/self/maps") as fh:
        for line in fh:
            parts = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi:
                path = parts[5].strip() if len(parts) > 5 else ""
                return path, addr - lo + int(parts[2], 16)
    return None


def log(path: str | None, text: str) -> None:
    if path:
        with open(path, "a") as fh:  # one short append: atomic between processes
            fh.write(text + "\n")


# ---- the comparison workflow (inline vs multiprocess) ----------------------------------------


def gen(pc) -> None:
    """Source: an array (make), columns (make_columns), an object (snapshot), an optional and a
    sometimes-missing output; ``n`` timeframes, tf_id 1000 + timeslice."""
    ts = pc.timeslice
    pc.tf_id = 1000 + ts
    a = pc.outputs.make("TST/ARR", 1000, np.float64)
    a[:] = np.arange(1000) * (ts + 1)
    n = 5 + ts
    cols = pc.outputs.make_columns(
        "TST/COLS", {"x": (n, np.float32), "i": (n, np.int32), "rec": (n, REC)}
    )
    cols["x"][:] = np.linspace(0, 1, n) + ts
    cols["i"][:] = np.arange(n) - ts
    cols["rec"]["pad"] = np.arange(n)
    cols["rec"]["time"] = 0.5 * ts
    cols["rec"]["q"] = 7
    pc.outputs.snapshot("TST/META", {"ts": ts, "tag": "gen", "tf": pc.tf_id})
    if ts % 2 == 0:
        pc.outputs.snapshot("TST/SPOR", np.full(3, ts, np.int16))
    if ts % 2 == 1:
        pc.outputs.adopt("TST/ODD", np.array([ts], np.int64))
    log(pc.option("log"), f"src {ts}")
    if ts == pc.option("n") - 1:
        pc.end_of_stream()


def calib(pc) -> None:
    """Condition source: a new calibration at timeslices 0 and 3, then end of stream."""
    ts = pc.timeslice
    if ts in (0, 3):
        pc.outputs.snapshot("TST/CALIB", np.array([2.0 + ts]))
    if ts == 3:
        pc.end_of_stream()


def stage_a(pc) -> None:
    """Stateless, pipelinable: every way of making an output."""
    arr = pc.inputs.get("arr")
    cols = pc.inputs.get("cols")
    scale = float(pc.inputs.get("calib")[0])
    time.sleep(0.002 * ((pc.timeslice * 7) % 5))  # lanes finish out of order
    out = pc.outputs.make("TST/AARR", arr.shape, np.float64)
    np.multiply(arr, scale, out=out)
    pc.outputs.snapshot("TST/ACOLS", {"x2": cols["x"] * 2, "rec": cols["rec"]})
    pc.outputs.adopt("TST/AHEAP", np.cumsum(arr))
    pc.outputs.adopt("TST/AFWD", cols["x"])  # an input forwarded as it is
    pc.outputs.snapshot(
        "TST/AOBJ",
        {
            "ts": pc.timeslice,
            "tf": pc.tf_id,
            "opt": pc.inputs.is_valid("opt"),
            "calib_ts": pc.inputs.header("calib").timeslice,
        },
    )


class StageB(Task):
    """Single lane and stateful: the order of the timeslices it saw."""

    def init(self, ic) -> None:
        self.seen: list[int] = []

    def run(self, pc) -> None:
        self.seen.append(pc.timeslice)
        total = pc.outputs.make("TST/BSUM", 1, np.float64)
        total[0] = pc.inputs.get("a").sum()
        pc.outputs.snapshot("TST/BOUT", {"seen": list(self.seen), "obj": pc.inputs.get("obj")})


def needs_odd(pc) -> None:
    pc.outputs.snapshot("TST/NO", int(pc.inputs.get("odd")[0]) + pc.timeslice)


def comparison_specs(n: int = 6, log_path: str | None = None) -> list[DataProcessorSpec]:
    gen_out = ["ARR", "COLS", "META", "SPOR", "ODD"]
    a_out = ["AARR", "ACOLS", "AHEAP", "AFWD", "AOBJ"]
    return [
        DataProcessorSpec(
            "gen",
            outputs=[OutputSpec("TST", d) for d in gen_out],
            algorithm=gen,
            options=[ConfigParamSpec("n", int, 6), ConfigParamSpec("log", str, None)],
            option_values={"n": n, "log": log_path},
        ),
        DataProcessorSpec("calib", outputs=[OutputSpec("TST", "CALIB")], algorithm=calib),
        DataProcessorSpec(
            "stage-a",
            inputs=[
                InputSpec("arr", "TST", "ARR"),
                InputSpec("cols", "TST", "COLS"),
                InputSpec("calib", "TST", "CALIB", lifetime=Lifetime.Condition),
                InputSpec("opt", "TST", "SPOR", lifetime=Lifetime.Optional),
            ],
            outputs=[OutputSpec("TST", d) for d in a_out],
            algorithm=stage_a,
        ),
        DataProcessorSpec(
            "stage-b",
            inputs=[InputSpec("a", "TST", "AARR"), InputSpec("obj", "TST", "AOBJ")],
            outputs=[OutputSpec("TST", "BSUM"), OutputSpec("TST", "BOUT")],
            algorithm=StageB,
        ),
        DataProcessorSpec(
            "needs-odd",
            inputs=[InputSpec("arr", "TST", "META"), InputSpec("odd", "TST", "ODD")],
            outputs=[OutputSpec("TST", "NO")],
            algorithm=needs_odd,
        ),
    ]


# ---- small building blocks for the other tests -----------------------------------------------


class Counter(Task):
    """Source of ``n`` timeframes: a ``size``-byte array (make) and the time it was made."""

    def init(self, ic) -> None:
        self.n = ic.option("n")
        self.size = ic.option("size")
        self.log = ic.option("log")
        self.keep = ic.option("keep")
        self.kept: list[tuple[int, np.ndarray]] = []

    def run(self, pc) -> None:
        ts = pc.timeslice
        a = pc.outputs.make("CNT/DATA", self.size, np.uint8)
        a[:] = ts % 251
        if self.keep:  # a producer keeping its outputs: they must never be reused
            self.kept.append((ts, a))
        kept_ok = all(bool((k == t % 251).all()) for t, k in self.kept)
        pc.outputs.snapshot(
            "CNT/TIME",
            {"ts": ts, "t": time.monotonic(), "loc": shm_location(a), "kept_ok": kept_ok},
        )
        log(self.log, f"src {ts}")
        if ts == self.n - 1:
            pc.end_of_stream()

    def end_of_stream(self, ec) -> None:
        log(self.log, "eos counter 0")

    def stop(self) -> None:
        log(self.log, "stop counter 0")


def counter_spec(
    n: int, size: int = 1000, log_path: str | None = None, keep: bool = False
) -> DataProcessorSpec:
    return DataProcessorSpec(
        "counter",
        outputs=[OutputSpec("CNT", "DATA"), OutputSpec("CNT", "TIME")],
        algorithm=Counter,
        options=[
            ConfigParamSpec("n", int, 5),
            ConfigParamSpec("size", int, 1000),
            ConfigParamSpec("log", str, None),
            ConfigParamSpec("keep", bool, False),
        ],
        option_values={"n": n, "size": size, "log": log_path, "keep": keep},
    )


class Forward(Task):
    """Forwards its inputs unchanged (``adopt`` of the received views: no copy)."""

    def run(self, pc) -> None:
        pc.outputs.adopt("FWD/DATA", pc.inputs.get("data"))
        pc.outputs.adopt("FWD/TIME", pc.inputs.get("time"))


def forward_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        "forward",
        inputs=[InputSpec("data", "CNT", "DATA"), InputSpec("time", "CNT", "TIME")],
        outputs=[OutputSpec("FWD", "DATA"), OutputSpec("FWD", "TIME")],
        algorithm=Forward,
    )


class Worker(Task):
    """Consumer of the counter: sleeps, fails or dies at a timeslice; reports what it saw."""

    def init(self, ic) -> None:
        self.lane = ic.lane
        self.name = ic.name
        self.sleep = ic.option("sleep")
        self.fail_at = ic.option("fail_at")
        self.die_at = ic.option("die_at")
        self.how = ic.option("how")
        self.log = ic.option("log")
        self.prefix = ic.option("shm_prefix")
        self.keep = ic.option("keep")
        self.kept: list[tuple[int, np.ndarray]] = []

    def run(self, pc) -> None:
        ts = pc.timeslice
        t_start = time.monotonic()
        log(self.log, f"run {self.name} {self.lane} {ts}")
        data = pc.inputs.get("data")
        if ts == self.fail_at:
            raise ValueError(f"bad value at {ts}")
        if ts == self.die_at:
            if self.how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.sleep)
        if self.keep:  # a consumer keeping views of its inputs: they must stay as they were
            self.kept.append((ts, data))
        kept_ok = all(bool((k == t % 251).all()) for t, k in self.kept)
        base = data
        while isinstance(base, np.ndarray):
            base = base.base
        live = None
        if self.prefix:
            live = len([f for f in os.listdir("/dev/shm") if f.startswith(self.prefix)])
        pc.outputs.snapshot(
            "WRK/INFO",
            {
                "ts": ts,
                "lane": self.lane,
                "t_start": t_start,
                "t_end": time.monotonic(),
                "t_src": pc.inputs.get("time")["t"],
                "src_loc": pc.inputs.get("time")["loc"],
                "loc": shm_location(data),
                "owndata": data.flags.owndata,
                "writeable": data.flags.writeable,
                "base_type": type(base).__name__,
                "ok": bool((data == ts % 251).all()),
                "live_segments": live,
                "kept_ok": kept_ok,
            },
        )

    def end_of_stream(self, ec) -> None:
        log(self.log, f"eos {self.name} {self.lane}")

    def stop(self) -> None:
        log(self.log, f"stop {self.name} {self.lane}")


def worker_spec(
    name: str = "worker", origin: str = "CNT", subspec: int = 0, **options
) -> DataProcessorSpec:
    defaults = {
        "sleep": 0.0,
        "fail_at": -1,
        "die_at": -1,
        "how": "kill",
        "log": None,
        "shm_prefix": None,
        "keep": False,
    }
    types = {"sleep": float, "how": str, "log": str, "shm_prefix": str, "keep": bool}
    return DataProcessorSpec(
        name,
        inputs=[InputSpec("data", origin, "DATA"), InputSpec("time", origin, "TIME")],
        outputs=[OutputSpec("WRK", "INFO", subspec)],
        algorithm=Worker,
        options=[ConfigParamSpec(k, types.get(k, int), v) for k, v in defaults.items()],
        option_values=options,
    )


def read_log(path: str | Path) -> list[str]:
    p = Path(path)
    return p.read_text().splitlines() if p.exists() else []


@config_group("MPTestParam")
@dataclass(frozen=True)
class MPTestParam:
    scale: float = 1.0
    label: str = "default"


def configured(pc) -> None:
    par = pc.config["MPTestParam"]
    pc.outputs.snapshot("CFG/OUT", {"scale": par.scale, "label": par.label})


def configured_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        "configured",
        inputs=[InputSpec("data", "CNT", "DATA")],
        outputs=[OutputSpec("CFG", "OUT")],
        algorithm=configured,
        config_groups=["MPTestParam"],
    )


# ---- two sources of different lengths, gaps, a Sporadic input -----------------------------------


def gappy(pc) -> None:
    """Source with nothing to send every third timeslice; 10 timeslices."""
    ts = pc.timeslice
    if ts % 3 != 1:
        pc.outputs.snapshot("GAP/X", np.array([ts, 10 * ts]))
    if ts == 9:
        pc.end_of_stream()


def short(pc) -> None:
    """Source ending after 5 timeslices."""
    pc.outputs.snapshot("OTH/Y", {"ts": pc.timeslice})
    if pc.timeslice == 4:
        pc.end_of_stream()


def join(pc) -> None:
    x = pc.inputs.get("x") if "x" in pc.inputs else None
    y = pc.inputs.get("y") if "y" in pc.inputs else None
    pc.outputs.snapshot("JOI/Z", {"x": None if x is None else x.tolist(), "y": y})


def two_source_specs(completion_policy: str = "consumeWhenAll") -> list[DataProcessorSpec]:
    """gappy and short feeding join (``completion_policy``)."""
    return [
        DataProcessorSpec("gappy", outputs=[OutputSpec("GAP", "X")], algorithm=gappy),
        DataProcessorSpec("short", outputs=[OutputSpec("OTH", "Y")], algorithm=short),
        DataProcessorSpec(
            "join",
            inputs=[
                InputSpec("x", "GAP", "X"),
                InputSpec("y", "OTH", "Y", lifetime=Lifetime.Sporadic),
            ],
            outputs=[OutputSpec("JOI", "Z")],
            algorithm=join,
            completion_policy=completion_policy,
        ),
    ]


# ---- an input with several parts: per-sector producers and a subspec wildcard ------------------

N_SECTORS = 36


def sector_present(sector: int, ts: int) -> bool:
    """Whether a sector has data at a timeslice: a few gaps, and only sector 8 at timeslice 3."""
    return (ts != 3 or sector == 8) and (sector + ts) % 5 != 0


def sector_parts(pc) -> None:
    """Source: ``TPC/CLUSTERNATIVE/<s>`` for its sectors ``first .. first + count - 1``
    (``(s % 4) + 1`` values ``100 t + s``); ``n`` timeframes, tf_id 1000 + timeslice."""
    ts = pc.timeslice
    pc.tf_id = 1000 + ts
    first = pc.option("first")
    for s in range(first, first + pc.option("count")):
        if sector_present(s, ts):
            arr = pc.outputs.make(f"TPC/CLUSTERNATIVE/{s}", (s % 4) + 1, np.float32)
            arr[:] = 100 * ts + s
    if ts == pc.option("n") - 1:
        pc.end_of_stream()


def sector_source_spec(name: str, first: int, count: int, n: int) -> DataProcessorSpec:
    return DataProcessorSpec(
        name,
        outputs=[OutputSpec("TPC", "CLUSTERNATIVE", s) for s in range(first, first + count)],
        algorithm=sector_parts,
        options=[
            ConfigParamSpec("first", int, 0),
            ConfigParamSpec("count", int, N_SECTORS),
            ConfigParamSpec("n", int, 4),
        ],
        option_values={"first": first, "count": count, "n": n},
    )


def gather(pc) -> None:
    """Reads every part of ``clusters`` (a subspec wildcard): subspecs, sizes and values in
    subspec order, and what ``get`` says (the payload's sum for one part, else "several")."""
    parts = pc.inputs.parts("clusters")
    try:
        one = float(pc.inputs.get("clusters").sum())
    except LookupError:
        one = "several"
    pc.outputs.snapshot(
        "TST/GATHER",
        {
            "ts": pc.timeslice,
            "tf": pc.tf_id,
            "subspecs": [h.subspec for h, _ in parts],
            "values": [float(p[0]) for _, p in parts],
            "sizes": [len(p) for p in pc.inputs.get_all("clusters")],
            "get": one,
        },
    )


def gather_spec(policy: str = "consumeWhenAll") -> DataProcessorSpec:
    return DataProcessorSpec(
        "tpc-gather",
        inputs=[InputSpec("clusters", "TPC", "CLUSTERNATIVE")],
        outputs=[OutputSpec("TST", "GATHER")],
        algorithm=gather,
        completion_policy=policy,
        factory="mp_processors:gather_spec",
        factory_kwargs={"policy": policy},
    )


def sector_specs(producers: int, n: int = 6) -> list[DataProcessorSpec]:
    """``producers`` sources sharing the 36 sectors evenly, and the gathering consumer."""
    per = N_SECTORS // producers
    sources = [sector_source_spec(f"sectors-{i}", i * per, per, n) for i in range(producers)]
    return [*sources, gather_spec()]
