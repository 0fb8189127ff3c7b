"""The multi-process runner: same results as inline, zero-copy shared memory, failures, no leaks.

The processors live in ``tests/mp_processors.py`` (importable by spawned workers). Every test
runs with its own shared-memory name prefix and checks afterwards that no segment is left.
"""

from __future__ import annotations

import importlib
import os
import secrets
import signal
import sys
import time

import numpy as np
import pytest
from mp_processors import (
    comparison_specs,
    configured_spec,
    counter_spec,
    forward_spec,
    log,
    read_log,
    two_source_specs,
    worker_spec,
)

from alice_dyn.framework import (
    ConfigStore,
    DataProcessorSpec,
    InputSpec,
    OutputSpec,
    SpecError,
    Task,
    build_topology,
    run_inline,
    runtime,
    shm,
)
from alice_dyn.framework import runner_mp as rmp
from alice_dyn.framework.runner_mp import run_multiprocess
from alice_dyn.framework.runtime import FAILED, INCOMPLETE, PROCESSED

pytestmark = pytest.mark.skipif(
    not os.path.isdir(shm.SHM_DIR), reason="needs POSIX shared memory in /dev/shm"
)


@pytest.fixture(autouse=True)
def shm_prefix(monkeypatch):
    """A prefix of this test's own; no segment with it may outlive the test."""
    prefix = f"adyntest{os.getpid():x}{secrets.token_hex(2)}_"
    monkeypatch.setattr(shm, "NAME_PREFIX", prefix)
    yield prefix
    left = shm.list_segments(prefix)
    shm.sweep(prefix)
    assert left == [], f"leaked shared-memory segments: {left}"


def run_mp(specs, policy="dangling", **kw):
    kw.setdefault("progress", False)
    kw.setdefault("timeout_s", 60)
    return run_multiprocess(build_topology(specs, policy), **kw)


def same_payload(p1, p2) -> bool:
    if isinstance(p1, np.ndarray):
        return (
            isinstance(p2, np.ndarray)
            and p1.dtype == p2.dtype
            and p1.shape == p2.shape
            and np.array_equal(p1, p2)
        )
    if isinstance(p1, dict) and p1 and all(isinstance(v, np.ndarray) for v in p1.values()):
        return p1.keys() == p2.keys() and all(same_payload(p1[k], p2[k]) for k in p1)
    return p1 == p2


def assert_same_run(a, b) -> None:
    assert a.error is None and b.error is None, (a.error, b.error)
    assert [m.header for m in a.sink] == [m.header for m in b.sink]
    for m1, m2 in zip(a.sink, b.sink, strict=True):
        assert same_payload(m1.payload, m2.payload), (m1.header, m1.payload, m2.payload)
    assert a.sink_count == b.sink_count
    assert a.timeframes == b.timeframes
    assert list(a.metrics) == list(b.metrics)
    for name, m in a.metrics.items():
        n = b.metrics[name]
        assert (len(m.seconds), m.messages_in, m.messages_out, m.bytes_in, m.bytes_out) == (
            len(n.seconds),
            n.messages_in,
            n.messages_out,
            n.bytes_in,
            n.bytes_out,
        ), name


def infos(summary) -> list[dict]:
    return sorted(
        (m.payload for m in summary.sink if m.header.origin == "WRK"), key=lambda d: d["ts"]
    )


# ---- same results as inline ---------------------------------------------------------------


@pytest.mark.parametrize("policy", ["dangling", "all"])
@pytest.mark.parametrize(
    "lanes",
    [
        pytest.param(None, id="1-lane"),
        pytest.param({"stage-a": 3}, id="3-lanes", marks=pytest.mark.slow),  # ~3 s each
    ],
)
def test_same_outputs_as_inline(policy, lanes):
    topo = build_topology(comparison_specs(7), policy)
    ref = run_inline(topo, keep_sink=True, progress=False)
    got = run_multiprocess(topo, keep_sink=True, progress=False, pipeline=lanes, timeout_s=60)
    assert got.runner == "multiprocess"
    assert_same_run(ref, got)
    assert ref.count(INCOMPLETE) == 4  # needs-odd on even timeslices
    # the stateful single-lane consumer saw every timeslice once, in order
    bout = [m.payload for m in got.sink if m.header.description == "BOUT"]
    assert bout[-1]["seen"] == list(range(7))
    # every segment went back to its producer (or was unlinked) when its last reader finished,
    # except the cached Condition input; the final sweep found nothing
    stats = rmp.last_transport_stats
    assert stats["used"] > 0 and stats["swept"] == 0
    assert stats["returned"] + stats["unlinked"] + stats["released_at_end"] == stats["used"]


def test_spawn_start_method_gives_the_same_outputs():
    topo = build_topology(comparison_specs(4), "dangling")
    ref = run_inline(topo, keep_sink=True, progress=False)
    got = run_multiprocess(
        topo, keep_sink=True, progress=False, pipeline={"stage-a": 2}, start_method="spawn",
        timeout_s=60,
    )  # fmt: skip
    assert_same_run(ref, got)


@pytest.mark.parametrize("max_tf", [None, 0, 3, 7])
def test_two_sources_with_gaps_and_a_sporadic_input(max_tf):
    topo = build_topology(two_source_specs(), "all")
    ref = run_inline(topo, keep_sink=True, progress=False, max_timeframes=max_tf)
    got = run_multiprocess(
        topo, keep_sink=True, progress=False, max_timeframes=max_tf, pipeline={"join": 2}
    )
    assert_same_run(ref, got)
    assert len(got.timeframes) == {None: 9, 0: 0, 3: 3, 7: 7}[max_tf]


def test_max_timeframes_and_config_reach_the_workers():
    store = ConfigStore(["MPTestParam"])
    store.apply_key_values("MPTestParam.scale=2.5;MPTestParam.label=x")
    specs = [counter_spec(10**6), configured_spec()]
    topo = build_topology(specs)
    ref = run_inline(topo, store, max_timeframes=4, keep_sink=True, progress=False)
    got = run_multiprocess(topo, store, max_timeframes=4, keep_sink=True, progress=False)
    assert len(got.timeframes) == 4 and got.ok
    cfg = [m.payload for m in got.sink if m.header.origin == "CFG"]
    assert cfg == [{"scale": 2.5, "label": "x"}] * 4
    assert [m.header for m in ref.sink] == [m.header for m in got.sink]


# ---- worker warm-ups ----------------------------------------------------------------------


def test_worker_warmups_run_in_every_worker_before_it_is_ready(tmp_path, monkeypatch):
    logf = str(tmp_path / "log")

    def warm() -> None:
        log(logf, f"warm {os.getpid()}")

    monkeypatch.setattr(runtime, "_WORKER_WARMUPS", [])
    assert runtime.register_worker_warmup(warm) is warm
    runtime.register_worker_warmup(warm)  # once per function
    s = run_mp([counter_spec(3), worker_spec(log=logf)], pipeline={"worker": 2})
    assert s.ok
    lines = read_log(logf)
    warm_lines = [ln for ln in lines if ln.startswith("warm")]
    assert len(warm_lines) == len(set(warm_lines)) == 3  # one per worker process
    # the driver streams only once every worker is ready: all warm-ups come before any run
    assert lines[:3] == warm_lines and any(ln.startswith("run") for ln in lines)


def test_a_failing_warmup_fails_the_worker_during_init(monkeypatch):
    def broken() -> None:
        raise RuntimeError("no JIT here")

    monkeypatch.setattr(runtime, "_WORKER_WARMUPS", [broken])
    s = run_mp([counter_spec(3), worker_spec()])
    assert s.error is not None and s.error.stage == "process died"
    assert "during init" in s.error.cause and len(s.timeframes) == 0


def test_the_stages_register_the_numba_warmup(monkeypatch):
    # into an empty registry of this test's own: the other tests' workers stay as they were
    monkeypatch.setattr(runtime, "_WORKER_WARMUPS", [])
    import alice_dyn.stages  # noqa: F401  (registers the warm-up on import)

    warmup = sys.modules["alice_dyn.stages._warmup"]  # imported with the stages package
    if not runtime._WORKER_WARMUPS:  # the package was imported before this test
        importlib.reload(warmup)  # registers as on its first import
    assert runtime._WORKER_WARMUPS == [warmup.warm_numba]


# ---- shared memory ------------------------------------------------------------------------


def test_make_is_zero_copy_and_consumers_get_read_only_views(shm_prefix):
    size = 1 << 20
    specs = [counter_spec(4, size=size), worker_spec()]
    s = run_mp(specs, "all", keep_sink=True)
    assert s.ok, s.format()
    got = infos(s)
    assert [i["ts"] for i in got] == [0, 1, 2, 3]
    for i in got:
        assert i["ok"]  # the bytes the producer wrote
        path, offset = i["loc"]
        # the consumer's view is in a shared-memory segment of this run ...
        assert path.startswith(f"/dev/shm/{shm_prefix}"), path
        # ... exactly where the producer's make() put the data: nothing was copied
        assert (path, offset) == tuple(i["src_loc"])
        assert i["owndata"] is False and i["writeable"] is False
        assert i["base_type"] == "mmap"
    # the driver's kept sink payloads are views of shared memory too
    data = [m.payload for m in s.sink if m.header.description == "DATA"]
    assert all(d.base is not None and not d.flags.owndata for d in data)
    assert [int(d[0]) for d in data] == [0, 1, 2, 3]


def test_segments_are_reused_once_every_reader_is_done():
    specs = [counter_spec(20, size=50_000), worker_spec()]
    s = run_mp(specs, keep_sink=True, queue_depth=1)
    assert s.ok, s.format()
    got = infos(s)
    assert all(i["ok"] for i in got)
    # the producer writes into a few pooled segments over and over
    assert len({i["loc"][0] for i in got}) <= 4
    stats = rmp.last_transport_stats
    assert stats["returned"] >= 19 and stats["swept"] == 0


@pytest.mark.parametrize("holder", ["producer", "consumer", "sink"])
def test_views_still_held_are_never_reused(holder):
    specs = [
        counter_spec(12, size=50_000, keep=holder == "producer"),
        worker_spec(keep=holder == "consumer"),
    ]
    # "all": the array also goes to the sink, which keeps it only in the "sink" case
    s = run_mp(specs, "all" if holder == "sink" else "dangling", keep_sink=True, queue_depth=1)
    assert s.ok, s.format()
    got = infos(s)
    assert all(i["ok"] for i in got)
    assert all(i["kept_ok"] for i in got)  # the consumer's old views kept their content
    times = [m.payload for m in s.sink if m.header.description == "TIME"]
    assert all(t["kept_ok"] for t in times)  # the producer's old outputs kept their content
    data = [m.payload for m in s.sink if m.header.description == "DATA"]
    assert (
        [int(d.min()) for d in data]
        == [int(d.max()) for d in data]
        == (list(range(12)) if holder == "sink" else [])
    )
    assert len({i["loc"][0] for i in got}) == 12  # a fresh segment each time


def test_forwarded_input_is_not_copied(shm_prefix):
    specs = [counter_spec(3, size=4096), forward_spec(), worker_spec(origin="FWD")]
    s = run_mp(specs, keep_sink=True)
    assert s.ok, s.format()
    for i in infos(s):
        assert i["ok"] and tuple(i["loc"]) == tuple(i["src_loc"])  # the counter's segment


def test_fan_out_to_several_consumers_and_the_sink(tmp_path):
    logf = str(tmp_path / "log")
    specs = [
        counter_spec(6, size=10_000, log_path=logf),
        worker_spec("w-a", log=logf),
        worker_spec("w-b", subspec=1, log=logf, sleep=0.01),
    ]
    s = run_mp(specs, "all", keep_sink=True, pipeline={"w-a": 2})
    assert s.ok, s.format()
    assert s.sink_count == 6 * 4  # DATA, TIME and both INFOs also to the sink ("all")
    assert all(i["ok"] for i in infos(s))
    assert rmp.last_transport_stats["swept"] == 0
    lines = read_log(logf)
    runs = [n for n, line in enumerate(lines) if line.startswith(("run", "src"))]
    eos = [line for line in lines if line.startswith("eos")]
    first_eos = lines.index(eos[0])
    # end_of_stream after every timeframe, once per instance, in topological order
    assert max(runs) < first_eos
    assert eos == ["eos counter 0", "eos w-a 0", "eos w-a 1", "eos w-b 0"]
    stops = sorted(line for line in lines if line.startswith("stop"))
    assert stops == ["stop counter 0", "stop w-a 0", "stop w-a 1", "stop w-b 0"]


def test_lanes_get_timeslices_in_order_and_metrics_merge():
    specs = [counter_spec(12), worker_spec(sleep=0.01)]
    s = run_mp(specs, keep_sink=True, pipeline={"worker": 3}, queue_depth=2)
    assert s.ok, s.format()
    sink_ts = [m.payload["ts"] for m in s.sink if m.header.origin == "WRK"]
    assert sink_ts == list(range(12))  # consumed downstream in timeslice order
    by_lane: dict[int, list[int]] = {}
    for i in infos(s):
        by_lane.setdefault(i["lane"], []).append(i["ts"])
    assert set(by_lane) == {0, 1, 2}
    for seq in by_lane.values():
        assert seq == sorted(seq)
    assert list(s.metrics) == ["counter", "worker"]
    assert len(s.metrics["worker"].seconds) == 12
    assert s.metrics["worker"].messages_in == 24


def test_backpressure_keeps_the_source_at_most_queue_depth_ahead(shm_prefix):
    depth, n = 2, 10
    specs = [counter_spec(n, size=100_000), worker_spec(sleep=0.04, shm_prefix=shm_prefix)]
    s = run_mp(specs, keep_sink=True, queue_depth=depth)
    assert s.ok, s.format()
    got = infos(s)
    assert [i["ts"] for i in got] == list(range(n))
    for ts in range(depth, n):
        # timeslice ts was made only after the consumer finished ts - depth
        assert got[ts]["t_src"] >= got[ts - depth]["t_end"], ts
    # ... but the source did run ahead (it is not lock-step)
    assert any(got[ts + 1]["t_src"] < got[ts]["t_end"] for ts in range(n - 1))
    # memory is bounded: segments alive while the consumer ran
    assert max(i["live_segments"] for i in got) <= depth + 1
    assert min(i["live_segments"] for i in got) >= 1


# ---- failures -----------------------------------------------------------------------------


def _source_ts(logf) -> set[int]:
    return {int(line.split()[1]) for line in read_log(logf) if line.startswith("src")}


def test_exception_names_processor_and_timeframe(tmp_path):
    logf = str(tmp_path / "log")
    specs = [counter_spec(30, log_path=logf), worker_spec(fail_at=3, sleep=0.01, log=logf)]
    t0 = time.monotonic()
    s = run_mp(specs)
    assert time.monotonic() - t0 < 10
    err = s.error
    assert err is not None and err.processor == "worker" and err.stage == "run"
    assert err.timeslice == 3 and err.tf_id == 3 and "ValueError: bad value at 3" in err.cause
    assert "processor 'worker', timeframe 3 (timeslice 3)" in str(err)
    rec = s.timeframes[3]
    assert (rec.status, rec.processor) == (FAILED, "worker")
    assert all(s.timeframes[t].status == PROCESSED for t in range(3))
    # every timeframe the source made is accounted for; the later ones were aborted
    assert set(s.timeframes) == _source_ts(logf)
    assert all(r.status == FAILED for t, r in s.timeframes.items() if t > 3)
    assert not s.ok
    assert sorted(x for x in read_log(logf) if x.startswith("stop")) == [
        "stop counter 0",
        "stop worker 0",
    ]


@pytest.mark.parametrize("how", ["kill", "exit"])
def test_dead_worker_is_reported_without_hanging(tmp_path, how):
    logf = str(tmp_path / "log")
    specs = [
        counter_spec(40, log_path=logf),
        worker_spec(die_at=2, how=how, sleep=0.01, log=logf),
    ]
    t0 = time.monotonic()
    s = run_mp(specs, pipeline={"worker": 2})
    assert time.monotonic() - t0 < 10
    err = s.error
    assert err is not None and err.processor == "worker" and err.stage == "process died"
    assert err.timeslice == 2
    assert ("SIGKILL" if how == "kill" else "exited with code 3") in err.cause
    assert "holding timeslice(s) [2" in err.cause
    assert (s.timeframes[2].status, s.timeframes[2].processor) == (FAILED, "worker")
    assert set(s.timeframes) == _source_ts(logf)
    assert {r.status for r in s.timeframes.values()} <= {PROCESSED, FAILED}
    # the survivors were stopped properly
    stops = {x for x in read_log(logf) if x.startswith("stop")}
    assert "stop counter 0" in stops and len(stops) == 2


def test_source_killed_from_outside():
    class Stuck(Task):
        def run(self, pc):
            if pc.timeslice == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            pc.outputs.snapshot("CNT/DATA", np.zeros(4))

    specs = [DataProcessorSpec("stuck", outputs=[OutputSpec("CNT", "DATA")], algorithm=Stuck)]
    s = run_mp(specs)
    assert s.error.stage == "process died" and s.error.processor == "stuck"
    assert s.timeframes[0].status == PROCESSED
    assert s.timeframes[1].status == FAILED


def test_timeout_stops_a_stuck_run(monkeypatch):
    monkeypatch.setattr(rmp, "STOP_GRACE_S", 0.3)
    specs = [counter_spec(3), worker_spec(sleep=5.0)]
    t0 = time.monotonic()
    s = run_mp(specs, timeout_s=0.8)
    assert time.monotonic() - t0 < 4
    assert s.error.stage == "timeout" and s.error.processor == "worker"
    assert s.error.timeslice == 0 and "timeout_s=0.8" in s.error.cause
    assert s.timeframes[0].status == FAILED


class _BadInit(Task):
    def init(self, ic):
        raise RuntimeError("no calibration")


class _BadEos(Task):
    def run(self, pc):
        pass

    def end_of_stream(self, ec):
        raise OSError("disk full")


def test_init_and_end_of_stream_failures():
    bad = DataProcessorSpec("bad", inputs=[InputSpec("d", "CNT", "DATA")], algorithm=_BadInit)
    s = run_mp([counter_spec(3), bad])
    assert s.error.processor == "bad" and s.error.stage == "init"
    assert "no calibration" in s.error.cause and s.timeframes == {}

    bad = DataProcessorSpec("bad", inputs=[InputSpec("d", "CNT", "DATA")], algorithm=_BadEos)
    s = run_mp([counter_spec(3), bad])
    assert s.error.processor == "bad" and s.error.stage == "end_of_stream"
    assert s.count(PROCESSED) == 3


def test_unpicklable_object_output_is_a_send_error():
    def lam(pc):
        pc.outputs.adopt("OBJ/X", lambda: 0)

    specs = [
        counter_spec(3),
        DataProcessorSpec(
            "lam", inputs=[InputSpec("d", "CNT", "DATA")], outputs=[OutputSpec("OBJ", "X")],
            algorithm=lam,
        ),
    ]  # fmt: skip
    s = run_mp(specs)
    assert s.error.processor == "lam" and s.error.stage == "send" and s.error.timeslice == 0


def test_bad_arguments():
    topo = build_topology([counter_spec(2), worker_spec()])
    with pytest.raises(SpecError, match="source 'counter'"):
        run_multiprocess(topo, pipeline={"counter": 2})
    with pytest.raises(SpecError, match="unknown processor"):
        run_multiprocess(topo, pipeline={"nope": 2})
    with pytest.raises(ValueError, match="queue_depth"):
        run_multiprocess(topo, queue_depth=0)
