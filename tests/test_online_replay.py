"""Replay mechanics of online mode (:mod:`alice_dyn.framework.online` and the runners): schedule,
pacing, ``pc.timing``, ``pc.report``, the replay clock, stepping an inline run, the idle
collector.

Time-dependent logic runs on a :class:`FakeClock` (tasks advance it to "work"), so the assertions
are exact and independent of the machine; the multi-process runs use real (tiny) sleeps and only
check structure and accounting, never timings.
"""

import itertools
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from alice_dyn.framework import (
    DataProcessorSpec,
    InputSpec,
    OutputSpec,
    build_topology,
    run_inline,
    run_multiprocess,
)
from alice_dyn.framework import online as online_mod
from alice_dyn.framework.online import (
    Burst,
    FakeClock,
    OnlineOptions,
    ReplaySchedule,
    TimeframeTiming,
    parse_burst,
)
from alice_dyn.framework.runtime import PROCESSED
from alice_dyn.framework.workflows import load_workflow

TOY = str(Path(__file__).resolve().parent / "online_toy_workflow.py")

# --------------------------------------------------------------------------------------------
# schedule


@pytest.mark.parametrize(
    ("text", "burst"),
    [
        ("4x:10s", Burst(4.0, 10.0, 5.0)),
        ("4x:10s@5s", Burst(4.0, 10.0, 5.0)),
        ("3x:2.5s@12s", Burst(3.0, 2.5, 12.0)),
        ("1.5X:0.5@0", Burst(1.5, 0.5, 0.0)),
        (" 2x : 1s @ 3s ", Burst(2.0, 1.0, 3.0)),
    ],
)
def test_parse_burst(text, burst):
    assert parse_burst(text) == burst


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("4x", "expected FACTORx:DURATIONs"),
        ("x:10s", "expected"),
        ("4:10s", "expected"),
        ("4x:10s@", "expected"),
        ("0x:10s", "factor must be a positive number"),
        ("4x:0s", "duration must be a positive number"),
        ("4x:-1s", "duration must be a positive number"),
        ("4x:1s@-2s", "start must be >= 0"),
        ("1e400x:1s", "factor"),
    ],
)
def test_parse_burst_errors_name_the_option(text, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_burst(text)
    assert "--burst" in str(info.value)


def test_arrival_counts_in_each_window():
    s = ReplaySchedule(10.0, [parse_burst("4x:1s@0.5s")])
    a = s.arrival_times(60)
    assert a[0] == 0.0 and np.all(np.diff(a) > 0)
    assert np.count_nonzero(a < 0.5) == 5  # 10 Hz for 0.5 s
    assert np.count_nonzero((a >= 0.5) & (a < 1.5)) == 40  # 40 Hz for 1 s
    assert np.count_nonzero((a >= 1.5) & (a < 2.5)) == 10  # back to 10 Hz
    assert np.allclose(np.diff(a[5:45]), 1 / 40) and np.allclose(np.diff(a[45:]), 0.1)
    assert s.arrived_by(0.0) == 1 and s.arrived_by(-1.0) == 0 and s.arrived_by(1.5) == 46
    assert s.rate_at(np.array([0.0, 0.5, 1.49, 1.5])).tolist() == [10, 40, 40, 10]


def test_schedule_without_bursts_and_adjacent_bursts():
    assert np.allclose(ReplaySchedule(20.0).arrival_times(4), [0, 0.05, 0.1, 0.15])
    s = ReplaySchedule(10.0, [Burst(2, 1, 1), Burst(3, 1, 0)])  # adjacent, given unordered
    assert [b.start_s for b in s.bursts] == [0.0, 1.0]
    a = s.arrival_times(100)
    assert np.count_nonzero(a < 1) == 30 and np.count_nonzero((a >= 1) & (a < 2)) == 20
    assert s.as_dict()["bursts"][0] == {"factor": 3, "duration_s": 1, "start_s": 0}


@pytest.mark.parametrize(
    ("rate", "bursts", "match"),
    [
        (0.0, [], "--rate"),
        (-5.0, [], "--rate"),
        (math.nan, [], "--rate"),
        (10.0, [Burst(2, 2, 1), Burst(3, 1, 2.5)], "--burst: bursts overlap"),
        (10.0, [Burst(0, 1, 1)], "factor"),
        (10.0, [Burst(2, 1, -1)], "start"),
    ],
)
def test_schedule_errors(rate, bursts, match):
    with pytest.raises(ValueError, match=match):
        ReplaySchedule(rate, bursts)


def test_online_options_check_the_budget():
    with pytest.raises(ValueError, match="--budget-ms"):
        OnlineOptions(ReplaySchedule(1.0), budget_ms=0)


def test_timeframe_timing_on_a_fake_clock():
    clock = FakeClock(50.0)
    t = TimeframeTiming(50.0, budget_ms=100.0, backlog=3, clock=clock)
    clock.advance(0.03)
    assert t.deadline_s == pytest.approx(50.1)
    assert t.elapsed_ms() == pytest.approx(30.0)
    assert t.time_left_ms() == pytest.approx(70.0)
    none = TimeframeTiming(50.0, clock=clock)
    assert none.deadline_s is None and none.time_left_ms() == math.inf


# --------------------------------------------------------------------------------------------
# the inline runner in online mode (fake clock: tasks advance it)


def chain(n, clock, work_s, seen, report_bad=False):
    """source -> worker (advances ``clock`` by ``work_s``) -> sink; every task logs
    ``(name, timeslice, timing, now)`` into ``seen``; the worker reports values."""

    def log(pc):
        seen.append((pc.name, pc.timeslice, pc.timing, clock.now()))

    def source(pc):
        log(pc)
        pc.tf_id = 100 + pc.timeslice
        pc.outputs.snapshot("TST/RAW", np.full(2, pc.timeslice))
        if pc.timeslice == n - 1:
            pc.end_of_stream()

    def worker(pc):
        log(pc)
        clock.advance(work_s)
        pc.report("backlog", pc.timing.backlog)
        pc.report("fractions", np.array([0.25, 0.75]))
        pc.report("level", np.int64(2))
        if report_bad:
            pc.report("bad", "not a number")
        pc.outputs.snapshot("TST/OUT", pc.inputs.get("raw") * 2)

    def sink(pc):
        log(pc)
        pc.report("time_left_ms", pc.timing.time_left_ms())

    return build_topology(
        [
            DataProcessorSpec("src", outputs=[OutputSpec("TST", "RAW")], algorithm=source),
            DataProcessorSpec(
                "worker",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "OUT")],
                algorithm=worker,
            ),
            DataProcessorSpec("sink", inputs=[InputSpec("out", "TST", "OUT")], algorithm=sink),
        ]
    )


def test_online_run_paces_the_source_and_accounts_for_every_timeframe():
    clock, seen, n = FakeClock(), [], 6
    opts = OnlineOptions(ReplaySchedule(10.0), budget_ms=50.0, clock=clock)
    start = clock.now()
    summary = run_inline(chain(n, clock, 0.0, seen), progress=False, online=opts)
    assert summary.ok and summary.runner == "inline-online"
    assert len(summary.timeframes) == summary.count(PROCESSED) == n
    assert clock.sleeps == pytest.approx([0.1] * (n - 1))  # waits for each arrival
    src = [(ts, t, now) for name, ts, t, now in seen if name == "src"]
    assert [now - start for _, _, now in src] == pytest.approx(np.arange(n) * 0.1)
    for ts, timing, _ in src:
        assert timing.arrival_s - start == pytest.approx(0.1 * ts)
        assert timing.backlog == 0 and timing.budget_ms == 50.0
        assert timing.deadline_s == pytest.approx(timing.arrival_s + 0.05)
    recs = [summary.timeframes[i] for i in range(n)]
    assert [r.tf_id for r in recs] == list(range(100, 100 + n))
    assert all(r.latency_ms == pytest.approx(0.0) for r in recs)


def test_slow_task_builds_a_backlog_and_nothing_is_dropped():
    clock, seen, n = FakeClock(), [], 8
    opts = OnlineOptions(ReplaySchedule(10.0), budget_ms=100.0, clock=clock)
    summary = run_inline(chain(n, clock, 0.25, seen), progress=False, online=opts)
    assert summary.ok and len(summary.timeframes) == summary.count(PROCESSED) == n
    assert clock.sleeps == []  # always behind: every timeframe enters at once
    # every processor of a timeslice sees the same timing object
    by_ts: dict[int, set] = {}
    for _, ts, timing, _ in seen:
        by_ts.setdefault(ts, set()).add((timing.arrival_s, timing.backlog, timing.deadline_s))
    assert all(len(v) == 1 for v in by_ts.values()) and sorted(by_ts) == list(range(n))
    # entered at 0.25 s * i while arriving at 0.1 s * i: waiting = floor(2.5 i) - i
    seen_backlog = [summary.tf_reports[100 + i]["worker"]["backlog"] for i in range(n)]
    assert seen_backlog == [math.floor(1.5 * i) for i in range(n)]
    assert all(b >= a for a, b in itertools.pairwise(seen_backlog))
    # the summary only counts timeframes that exist (the schedule goes on after the last)
    assert [summary.timeframes[i].backlog for i in range(n)] == [
        min(math.floor(1.5 * i), n - 1 - i) for i in range(n)
    ]
    lat = [summary.timeframes[i].latency_ms for i in range(n)]
    assert lat == pytest.approx([250.0 + 150.0 * i for i in range(n)])
    # the load tasks see: the arrival interval (100 ms) and the chain's time per timeframe
    # (250 ms, an average over the finished ones), unknown for the first timeframe
    src = {ts: t for name, ts, t, _ in seen if name == "worker"}
    assert src[0].period_ms is None and src[0].service_ms is None
    assert all(src[i].period_ms == pytest.approx(100.0) for i in range(1, n))
    assert all(src[i].service_ms == pytest.approx(250.0) for i in range(1, n))
    # the sink runs after the worker: time left = deadline - now
    left = [summary.tf_reports[100 + i]["sink"]["time_left_ms"] for i in range(n)]
    assert left == pytest.approx([100.0 - x for x in lat])


def test_known_replay_length_caps_the_backlog_tasks_see():
    clock, seen, n = FakeClock(), [], 6
    opts = OnlineOptions(ReplaySchedule(10.0), budget_ms=100.0, n_timeframes=n, clock=clock)
    summary = run_inline(chain(n, clock, 0.25, seen), progress=False, online=opts)
    seen_backlog = [summary.tf_reports[100 + i]["worker"]["backlog"] for i in range(n)]
    assert seen_backlog == [min(math.floor(1.5 * i), n - 1 - i) for i in range(n)]


def test_reports_reach_the_summary_and_its_json():
    clock, seen = FakeClock(), []
    summary = run_inline(
        chain(3, clock, 0.01, seen),
        progress=False,
        online=OnlineOptions(ReplaySchedule(5.0), clock=clock),
    )
    rep = summary.tf_reports
    assert set(rep) == {100, 101, 102}
    assert rep[101]["worker"] == {"backlog": 0, "fractions": [0.25, 0.75], "level": 2}
    assert type(rep[101]["worker"]["level"]) is int
    assert rep[101]["sink"]["time_left_ms"] == math.inf  # no budget
    d = summary.as_dict()
    assert [r["tf_id"] for r in d["timeframe_reports"]] == [100, 101, 102]
    json.dumps(d)


def test_bad_report_value_fails_the_processor():
    clock = FakeClock()
    summary = run_inline(chain(2, clock, 0.0, [], report_bad=True), progress=False)
    assert summary.error is not None and summary.error.processor == "worker"
    assert "pc.report('bad'" in summary.error.cause


def test_offline_run_has_timing_and_unchanged_json(monkeypatch):
    clock, seen = FakeClock(7.0), []
    monkeypatch.setattr(online_mod, "clock", clock)
    summary = run_inline(chain(3, clock, 0.02, seen), progress=False)
    assert summary.ok and summary.runner == "inline"
    for _, _, timing, _ in seen:
        assert timing.budget_ms is None and timing.deadline_s is None and timing.backlog == 0
    src = {ts: (t, now) for name, ts, t, now in seen if name == "src"}
    assert all(t.arrival_s == now for t, now in src.values())  # when the source produced it
    assert [summary.timeframes[i].latency_ms for i in range(3)] == pytest.approx([20.0] * 3)
    # without pc.report the summary's JSON keeps its keys
    plain = build_topology(
        [
            DataProcessorSpec(
                "s",
                outputs=[OutputSpec("TST", "RAW")],
                algorithm=lambda pc: (pc.outputs.snapshot("TST/RAW", 1), pc.end_of_stream()),
            )
        ]
    )
    assert "timeframe_reports" not in run_inline(plain, progress=False).as_dict()


# --------------------------------------------------------------------------------------------
# the multi-process runner in online mode, and the load tasks see


def _report_timing(pc):
    pc.report("arrival", pc.timing.arrival_s)
    pc.report("backlog", pc.timing.backlog)
    pc.report("deadline", pc.timing.deadline_s)


def _mp_source(pc):
    _report_timing(pc)
    pc.tf_id = 100 + pc.timeslice
    pc.outputs.snapshot("TST/RAW", np.full(2, pc.timeslice))
    if pc.timeslice == 4:
        pc.end_of_stream()


def _mp_worker(pc):
    import gc

    _report_timing(pc)
    pc.report("gc_enabled", int(gc.isenabled()))
    pc.report("gc_frozen", gc.get_freeze_count())
    pc.outputs.snapshot("TST/OUT", pc.inputs.get("raw") * 2)


def _mp_sink(pc):
    _report_timing(pc)


def _mp_chain(worker):
    """source -> ``worker`` -> sink, for the multi-process runner (module-level algorithms)."""
    return build_topology(
        [
            DataProcessorSpec("src", outputs=[OutputSpec("TST", "RAW")], algorithm=_mp_source),
            DataProcessorSpec(
                "worker",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "OUT")],
                algorithm=worker,
            ),
            DataProcessorSpec("sink", inputs=[InputSpec("o", "TST", "OUT")], algorithm=_mp_sink),
        ]
    )


def test_multiprocess_runner_online():
    topo = _mp_chain(_mp_worker)
    schedule = ReplaySchedule(100.0, [Burst(2.0, 0.02, 0.01)])
    opts = OnlineOptions(schedule, budget_ms=500.0)
    summary = run_multiprocess(topo, progress=False, online=opts, timeout_s=60)
    assert summary.ok and summary.runner == "multiprocess-online"
    assert len(summary.timeframes) == summary.count(PROCESSED) == 5
    recs = [summary.timeframes[i] for i in range(5)]
    arrivals = np.asarray([r.arrival_s for r in recs])
    assert arrivals - arrivals[0] == pytest.approx(schedule.arrival_times(5), abs=1e-9)
    assert all(r.latency_ms is not None and r.latency_ms >= 0 for r in recs)
    for r in recs:  # every process saw the same timing
        reps = r.reports
        assert set(reps) == {"src", "worker", "sink"}
        assert len({(v["arrival"], v["backlog"], v["deadline"]) for v in reps.values()}) == 1
        assert reps["src"]["arrival"] == r.arrival_s
        assert reps["src"]["deadline"] == pytest.approx(r.arrival_s + 0.5)
        # the worker process keeps the collector out of the timed path (quiet_gc)
        assert reps["worker"]["gc_enabled"] == 0 and reps["worker"]["gc_frozen"] > 0


def _burn_cpu(seconds):
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        pass


def _mp_busy_worker(pc):
    _burn_cpu(0.02)  # 20 ms of CPU per timeframe
    t = pc.timing
    pc.report("service_ms", math.nan if t.service_ms is None else t.service_ms)
    pc.report("parallelism", t.parallelism)
    pc.outputs.snapshot("TST/OUT", pc.inputs.get("raw") * 2)


def test_multiprocess_runner_tells_the_load():
    """With ``--runner multiprocess`` tasks see ``service_ms``: the sum over processors of
    their CPU time per timeframe (moving averages, once every processor has run), and the cores
    it is shared over."""
    topo = _mp_chain(_mp_busy_worker)
    opts = OnlineOptions(ReplaySchedule(5.0), budget_ms=1000.0)
    summary = run_multiprocess(topo, progress=False, online=opts, timeout_s=60)
    assert summary.ok and summary.count(PROCESSED) == 5
    seen = [summary.timeframes[i].reports["worker"] for i in range(5)]
    cores = min(len(os.sched_getaffinity(0)), 3)
    assert all(r["parallelism"] == cores for r in seen)
    known = [r["service_ms"] for r in seen if not math.isnan(r["service_ms"])]
    assert math.isnan(seen[0]["service_ms"])  # nothing finished yet
    # 200 ms between arrivals: once the workers are warm a timeframe is done before the next
    # one arrives, and then the worker's 20 ms of CPU (plus the others' little) are known
    assert known and all(20.0 <= v < 1000.0 for v in known)


def test_load_allowance_inline_and_in_parallel():
    """Inline a stage may take target x period less the rest of the chain; with parallelism the
    chain's time is shared over the cores, but one lane still takes its timeframes in turn."""
    t = TimeframeTiming(0.0, budget_ms=1e3, period_ms=100.0, service_ms=150.0)
    assert t.load_allowance_ms(40.0, 0.9) == pytest.approx(90.0 - 110.0)
    assert t.load_allowance_ms(None, 0.9) is None
    assert TimeframeTiming(0.0, period_ms=100.0).load_allowance_ms(40.0, 0.9) is None
    t2 = TimeframeTiming(0.0, period_ms=100.0, service_ms=150.0, parallelism=2.0)
    assert t2.load_allowance_ms(40.0, 0.9) == pytest.approx(2 * 90.0 - 110.0)
    t3 = TimeframeTiming(0.0, period_ms=100.0, service_ms=60.0, parallelism=2.0)
    assert t3.load_allowance_ms(40.0, 0.9) == pytest.approx(90.0)  # the lane's own cap


# --------------------------------------------------------------------------------------------
# what the interleaved replay is built on: the replay clock, an inline run step by step


def test_replay_clock_runs_only_while_its_run_works_and_jumps_waits():
    clk = online_mod.ReplayClock(start=100.0)
    assert clk.now() == 100.0
    time.sleep(0.02)  # stopped: no time passes on it
    assert clk.now() == 100.0
    with clk.running():
        time.sleep(0.02)
        inside = clk.now()
    assert 100.015 <= inside
    after = clk.now()
    time.sleep(0.02)
    assert clk.now() == after  # stopped again
    clk.sleep(5.0)  # a wait is jumped over at once
    assert clk.now() == pytest.approx(after + 5.0)
    clk.sleep(-1.0)
    assert clk.now() == pytest.approx(after + 5.0)
    with clk.running(), pytest.raises(RuntimeError, match="re-entrant"):
        with clk.running():
            pass


def test_iter_inline_steps_through_the_timeslices():
    from alice_dyn.framework.config import ConfigStore
    from alice_dyn.framework.runner_inline import iter_inline

    module = load_workflow(TOY)

    def topology(tmp):
        return build_topology(module.define_workflow([tmp], tmp + ".json"))

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "in.txt")
        Path(path).write_text("5")
        steps = iter_inline(topology(path), ConfigStore(["ToyOnline"]), progress=False)
        seen = []
        with pytest.raises(StopIteration) as done:
            while True:
                seen.append(next(steps))
        summary = done.value.value
        assert seen == [0, 1, 2, 3, 4]
        assert summary.ok and len(summary.timeframes) == 5
        again = run_inline(topology(path), ConfigStore(["ToyOnline"]), progress=False)
        assert again.ok and len(again.timeframes) == 5


# --------------------------------------------------------------------------------------------
# the garbage collector out of the timed path


def test_idle_collector_keeps_full_collections_rare_and_inside_idle_time(monkeypatch):
    import gc

    from alice_dyn.framework import online as onl

    calls = []
    with onl.quiet_gc():
        monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
        col = onl.IdleCollector()
        col.idle(1.0)  # nothing ran since the start-up collection: nothing to collect
        assert calls == []
        for _ in range(onl.GC_FULL_EVERY - 1):
            col.timeslice()
            col.idle(0.05)
        assert set(calls) == {(1,)} and len(calls) == onl.GC_FULL_EVERY - 1
        col.full_s = 0.2  # the last full collection took 200 ms
        col.timeslice()
        col.idle(0.3)  # too short for a full one (< 2 x 200 ms): the young generations
        assert calls[-1] == (1,)
        col.timeslice()
        col.idle(0.5)  # long enough
        assert calls[-1] == ()
        n = len(calls)
        col.timeslice()
        col.idle(None)  # the next full one waits GC_FULL_EVERY timeslices again
        assert calls[n:] == [(1,)]
        # never idle long enough: young collections, and a full one after GC_FULL_FORCE_EVERY
        calls.clear()
        col.full_s = 10.0
        for _ in range(onl.GC_FULL_FORCE_EVERY):
            col.timeslice()
            col.busy()
        assert calls.count(()) == 1 and calls[-1] == ()
        assert calls.count((1,)) == (onl.GC_FULL_FORCE_EVERY - 2) // onl.GC_EVERY_TIMESLICES
        monkeypatch.undo()
    assert gc.isenabled()
    calls.clear()
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
    col = onl.IdleCollector()  # collector on (offline): never collects itself
    for _ in range(2 * onl.GC_EVERY_TIMESLICES):
        col.timeslice()
        col.busy()
        col.idle(None)
    assert calls == []


def test_quiet_gc_freezes_startup_objects_and_collects_while_waiting(monkeypatch):
    import gc

    from alice_dyn.framework import online as onl

    calls = []
    real_collect = gc.collect
    assert gc.isenabled()
    with onl.quiet_gc():
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
        clock = onl.FakeClock()
        pacer = onl.Pacer(onl.OnlineOptions(onl.ReplaySchedule(10.0), clock=clock))
        pacer.wait(0)  # the first arrival is due at once: no idle time, no collection
        assert calls == []
        pacer.wait(1)  # 100 ms to wait: the young generations in the idle time
        assert calls == [(1,)]
        clock.advance(100.0)  # far behind: no idle time ...
        for i in range(2, 2 + onl.GC_EVERY_TIMESLICES):
            pacer.wait(i)
        assert calls == [(1,), (1,)]  # ... but at the latest after GC_EVERY_TIMESLICES
        # idle again, GC_FULL_EVERY timeslices after the start: a full collection
        pacer.wait(2 + onl.GC_EVERY_TIMESLICES + 1000)
        assert calls[-1] == ()
        monkeypatch.setattr(gc, "collect", real_collect)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    with onl.quiet_gc(False):
        assert gc.isenabled()
