"""The online comparison harness and its report (:mod:`alice_dyn.online`), and its plots
(:mod:`alice_dyn.plotting.online`).

The report functions are pure: they are pinned here on hand-made run summaries and reports, value
by value and key by key (the JSON keys and their order, the text). The harness runs the toy
workflow (``online_toy_workflow.py``) on a :class:`FakeClock` or only checks its options.
"""

import ast
import json
import math
import types
from pathlib import Path

import pytest

from alice_dyn.framework.online import Burst, FakeClock, ReplaySchedule
from alice_dyn.framework.runtime import RunSummary, TimeframeRecord
from alice_dyn.framework.workflows import load_workflow
from alice_dyn.online import MODES, format_online_report, json_safe, run_online_comparison
from alice_dyn.online.harness import RunSettings, replay_length, static_output
from alice_dyn.online.report import burst_load, compare, mode_report, service_ms

TOY = str(Path(__file__).resolve().parent / "online_toy_workflow.py")
PACKAGE = Path(__file__).resolve().parents[1] / "alice_dyn"


def _toy_input(tmp_path, text="12"):
    path = tmp_path / "in.txt"
    path.write_text(text)
    return str(path)


# --------------------------------------------------------------------------------------------
# one run's report


def _summary() -> RunSummary:
    """Six timeframes (tf_id 200...): four finished, one failed (never done), one incomplete
    (never arrived); arrivals and finishes in s after 10 s."""
    summary = RunSummary("inline-online", wall_seconds=1.5)
    fates = [
        (0.0, 0.05, "processed"), (0.02, 0.09, "processed"), (0.5, None, "failed"),
        (1.0, 1.01, "processed"), (None, None, "incomplete"), (1.2, 1.5, "processed"),
    ]  # fmt: skip
    for i, (arrival, done, status) in enumerate(fates):
        summary.timeframes[i] = TimeframeRecord(
            i, 200 + i, status, arrival_s=None if arrival is None else 10 + arrival,
            done_s=None if done is None else 10 + done, backlog=i % 3, reports={"w": {"k": i}},
        )  # fmt: skip
    return summary


#: per tf_id, metric -> (n_correct, n_total); 999 is not a timeframe of the run
COUNTS = {
    200: {"accuracy": (9, 10), "mode": (1, 2), "purity": (3, 4)},
    203: {"accuracy": (0, 0)},
    999: {"accuracy": (5, 5)},
}
BURSTS = (Burst(4.0, 0.5, 0.01), Burst(2.0, 0.3, 1.1))

MODE_KEY_ORDER = [
    "mode", "output", "config_key_values", "p50_latency_ms", "p99_latency_ms", "max_latency_ms",
    "mean_latency_ms", "mean_service_ms", "burst_service_ms", "timeframes_in", "timeframes_out",
    "timeframes_failed", "timeframes_incomplete", "fraction_over_budget", "p99_within_budget",
    "max_backlog", "accuracy", "accuracy_error", "metrics", "wall_s", "error",
]  # fmt: skip
ROW_KEY_ORDER = ["tf_id", "timeslice", "status", "arrival_s", "latency_ms", "service_ms",
                 "backlog", "accuracy", "metrics", "reports"]  # fmt: skip
TOP_KEY_ORDER = [
    "workflow", "inputs", "rate_hz", "bursts", "budget_ms", "n_timeframes", "burst_interval_ms",
    "keeps_up_in_bursts", "runner", "run_order", "side_by_side", "interleaved", "cores", "warmup",
    "modes_declared", "percentile_method", "adaptive", "static", "accuracy_loss_pp",
    "target_checks", "target_met",
]  # fmt: skip


def test_mode_report_of_a_run_value_by_value():
    m = mode_report("static", _summary(), 60.0, "o.root", ["X.y=1"], COUNTS, None, None, BURSTS)
    # latencies 50, 70, 10, 300 ms; linear percentiles
    assert list(m) == [*MODE_KEY_ORDER, "metric_mode", "purity", "per_timeframe"]
    assert (m["mode"], m["output"], m["config_key_values"]) == ("static", "o.root", ["X.y=1"])
    assert m["p50_latency_ms"] == pytest.approx(60.0)
    assert m["p99_latency_ms"] == pytest.approx(293.1)
    assert m["max_latency_ms"] == pytest.approx(300.0)
    assert m["mean_latency_ms"] == pytest.approx(107.5)
    # time after entering: 50, 90 - 50, -, 10, -, 300 ms; in a burst: the 2nd and the 6th
    assert m["mean_service_ms"] == pytest.approx(100.0)
    assert m["burst_service_ms"] == pytest.approx(170.0)
    assert (m["timeframes_in"], m["timeframes_out"]) == (6, 4)
    assert (m["timeframes_failed"], m["timeframes_incomplete"]) == (1, 1)
    assert m["fraction_over_budget"] == 0.5 and m["p99_within_budget"] is False
    assert m["max_backlog"] == 2
    # pooled over the run's timeframes (999 left out, 0/0 adds nothing); "mode" clashes
    assert m["accuracy"] == pytest.approx(0.9) and m["accuracy_error"] is None
    assert m["metrics"] == pytest.approx({"accuracy": 0.9, "mode": 0.5, "purity": 0.75})
    assert m["metric_mode"] == 0.5 and m["purity"] == 0.75
    assert m["wall_s"] == 1.5 and m["error"] is None
    rows = m["per_timeframe"]
    assert all(list(r) == ROW_KEY_ORDER for r in rows)
    assert [r["tf_id"] for r in rows] == list(range(200, 206))
    assert [r["arrival_s"] for r in rows] == pytest.approx([0.0, 0.02, 0.5, 1.0, None, 1.2])
    assert [r["service_ms"] for r in rows] == pytest.approx([50.0, 40.0, None, 10.0, None, 300.0])
    assert [r["accuracy"] for r in rows] == pytest.approx([0.9, None, None, None, None, None])
    assert rows[3]["metrics"] == {"accuracy": None}
    assert rows[5]["reports"] == {"w": {"k": 5}} and rows[2]["status"] == "failed"


def test_mode_report_without_budget_counts_or_bursts():
    m = mode_report("adaptive", _summary(), None, "o.root", [], None, "why", 9.5)
    assert list(m) == [*MODE_KEY_ORDER, "per_timeframe"]
    assert m["fraction_over_budget"] is None and m["p99_within_budget"] is None
    assert m["burst_service_ms"] is None and m["mean_service_ms"] == pytest.approx(100.0)
    assert m["accuracy"] is None and m["accuracy_error"] == "why" and m["metrics"] == {}
    assert m["per_timeframe"][0]["arrival_s"] == pytest.approx(0.5)  # after the given 9.5 s


def test_mode_report_of_an_empty_run():
    m = mode_report("static", RunSummary("inline-online"), 10.0, "o", [], None, None)
    assert m["p50_latency_ms"] is m["p99_latency_ms"] is m["mean_service_ms"] is None
    assert m["fraction_over_budget"] is None and m["p99_within_budget"] is None
    assert m["timeframes_in"] == m["max_backlog"] == 0 and m["per_timeframe"] == []


def test_service_ms_is_the_time_after_entering():
    rec = types.SimpleNamespace
    recs = [
        rec(arrival_s=0.0, done_s=0.05),  # alone: 50 ms
        rec(arrival_s=0.02, done_s=0.09),  # waited for the first: 90 - 50 = 40 ms
        rec(arrival_s=0.5, done_s=None),  # did not finish
        rec(arrival_s=1.0, done_s=1.01),  # idle before it: 10 ms
        rec(arrival_s=1.0, done_s=1.005),  # finished before the one ahead (in flight): 0
    ]
    assert service_ms(recs) == pytest.approx([50.0, 40.0, None, 10.0, 0.0])


# --------------------------------------------------------------------------------------------
# the two runs against each other


def test_burst_load_against_the_fastest_burst():
    schedule = ReplaySchedule(10.0, list(BURSTS))
    reports = {"static": {"burst_service_ms": 30.0}, "adaptive": {"burst_service_ms": 20.0},
               "x": {"burst_service_ms": None}}  # fmt: skip
    load = burst_load(schedule, reports)
    assert load["burst_interval_ms"] == pytest.approx(25.0)  # 10 Hz x 4
    assert load["keeps_up_in_bursts"] == {"static": False, "adaptive": True, "x": None}
    no_bursts = {"burst_interval_ms": None, "keeps_up_in_bursts": None}
    assert burst_load(ReplaySchedule(10.0), reports) == no_bursts


def test_static_output_name():
    assert static_output("out/reco.root") == str(Path("out/reco.static.root"))
    assert static_output("reco") == "reco.static"


def _mode(p99, acc, n_in=10, n_out=10, budget=100.0):
    return {
        "p99_within_budget": p99 <= budget,
        "timeframes_in": n_in,
        "timeframes_out": n_out,
        "error": None,
        "accuracy": acc,
    }


@pytest.mark.parametrize(
    ("static", "adaptive", "met", "loss"),
    [
        (_mode(300, 0.99), _mode(80, 0.985), True, 0.5),
        (_mode(300, 0.99), _mode(120, 0.985), False, 0.5),  # adaptive over budget
        (_mode(80, 0.99), _mode(80, 0.985), False, 0.5),  # static already within budget
        (_mode(300, 0.99), _mode(80, 0.97), False, 2.0),  # accuracy loss >= 1 pp
        (_mode(300, 0.99), _mode(80, 0.99, n_out=9), False, 0.0),  # a timeframe lost
        (_mode(300, None), _mode(80, None), False, None),  # no accuracy: cannot claim it
    ],
)
def test_target_met(static, adaptive, met, loss):
    res = compare(static, adaptive, 100.0)
    assert res["target_met"] is met
    assert res["accuracy_loss_pp"] == (None if loss is None else pytest.approx(loss))


def _run(p50, p99, mx, over, n_in, n_out, backlog, acc, burst_ms):
    return {"p50_latency_ms": p50, "p99_latency_ms": p99, "max_latency_ms": mx,
            "fraction_over_budget": over, "timeframes_in": n_in, "timeframes_out": n_out,
            "max_backlog": backlog, "accuracy": acc, "burst_service_ms": burst_ms}  # fmt: skip


def test_text_report_with_bursts_and_budget():
    report = {
        "static": _run(131.08, 262.94, 265.6, 1.0, 12, 12, 7, 1.0, 30.04),
        "adaptive": _run(1.04, 1.0, 1.06, 0.0, 12, 12, 0, 0.996, 1.01),
        "rate_hz": 60.0, "bursts": [{"factor": 3.0, "duration_s": 0.1, "start_s": 0.05}],
        "budget_ms": 25.0, "percentile_method": "linear", "burst_interval_ms": 1e3 / 180,
        "accuracy_loss_pp": 0.4, "target_met": True, "target_checks": {"a": True, "b": True},
    }  # fmt: skip
    assert format_online_report(report).splitlines() == [
        "mode         p50 ms    p99 ms    max ms  >budget    in   out backlog  accuracy",
        "-" * 78,
        "static        131.1     262.9     265.6   100.0%    12    12       7   100.00%",
        "adaptive        1.0       1.0       1.1     0.0%    12    12       0    99.60%",
        "rate 60 Hz, bursts 3x 0.1 s @ 0.05 s; budget 25 ms; p99 by numpy.percentile "
        "(method='linear')",
        "in the bursts: a timeframe every 5.6 ms (the fastest burst); per timeframe static "
        "30.0 ms, adaptive 1.0 ms (a run keeps up while it takes less than the interval)",
        "accuracy loss (static - adaptive): 0.40 pp; target met: yes",
    ]


def test_text_report_with_unknowns():
    report = {
        "static": _run(None, None, None, None, 0, 0, 0, None, None),
        "adaptive": _run(2.0, 3.0, 4.0, None, 4, 3, 1, None, None),
        "rate_hz": 200.0, "bursts": [], "budget_ms": None, "percentile_method": "linear",
        "burst_interval_ms": None, "accuracy_loss_pp": None, "target_met": False,
        "target_checks": {"adaptive_p99_within_budget": None, "no_timeframe_lost": False,
                          "x": True},
    }  # fmt: skip
    assert format_online_report(report).splitlines()[2:] == [
        "static            -         -         -        -     0     0       0         -",
        "adaptive        2.0       3.0       4.0        -     4     3       1         -",
        "rate 200 Hz; budget - ms; p99 by numpy.percentile (method='linear')",
        "accuracy loss (static - adaptive): - pp; target met: no (adaptive_p99_within_budget, "
        "no_timeframe_lost)",
    ]


def test_json_safe_writes_non_finite_numbers_as_null():
    doc = {"a": math.inf, "b": [1.5, math.nan, (2, -math.inf)], "c": {"d": "x", "e": None}}
    assert json_safe(doc) == {"a": None, "b": [1.5, None, [2, None]], "c": {"d": "x", "e": None}}
    json.dumps(json_safe(doc), allow_nan=False)


# --------------------------------------------------------------------------------------------
# the harness


def test_replay_length():
    assert replay_length(None, None) is None
    assert replay_length(5, None) == 5 and replay_length(None, 7) == 7
    assert replay_length(5, 7) == 5 and replay_length(9, 7) == 7


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"clock": FakeClock(), "side_by_side": True}, "real clock"),
        ({"clock": FakeClock(), "interleaved": True}, "their own replay clocks"),
        ({"side_by_side": True, "interleaved": True}, "exclude each other"),
        ({"interleaved": True, "settings": RunSettings(runner="multiprocess")}, "inline runner"),
        ({"warmup_timeframes": -1}, "--warmup-tf"),
    ],
)
def test_run_order_options_are_checked_before_any_run(tmp_path, kw, match):
    kw = {"warmup_timeframes": 0, **kw}
    with pytest.raises(ValueError, match=match):
        run_online_comparison(
            load_workflow(TOY), "toy", ["x"], str(tmp_path / "out.json"),
            ReplaySchedule(10.0, []), 10.0, **kw,
        )  # fmt: skip


def test_sequential_runs_on_a_fake_clock(tmp_path):
    """Static then adaptive, each on the schedule of the fake clock (the toy's sleeps are real
    but not on that clock): the whole report, key by key, from the runs' summaries."""
    clock = FakeClock()
    report, summaries = run_online_comparison(
        load_workflow(TOY), "toy.py", [_toy_input(tmp_path, "3")], str(tmp_path / "o" / "r.json"),
        ReplaySchedule(50.0, [Burst(2.0, 0.02, 0.01)]), 30.0, clock=clock, warmup_timeframes=0,
    )  # fmt: skip
    assert list(report) == TOP_KEY_ORDER
    assert list(summaries) == list(MODES) and all(s.ok for s in summaries.values())
    assert report["run_order"] == ["static", "adaptive"] and report["cores"] is None
    assert report["side_by_side"] is False and report["interleaved"] is False
    assert report["warmup"] == {"timeframes_per_mode": 0}
    assert report["modes_declared"] == ["adaptive", "static"]
    assert report["burst_interval_ms"] == pytest.approx(10.0)  # 50 Hz x 2
    assert report["static"]["output"] == static_output(report["adaptive"]["output"])
    for mode in MODES:
        m = report[mode]
        assert m["timeframes_in"] == m["timeframes_out"] == 3
        # 50 Hz, 100 Hz from 0.01 s: the second arrival 0.005 s later
        assert [r["arrival_s"] for r in m["per_timeframe"]] == pytest.approx([0, 0.015, 0.025])
        assert m["p99_latency_ms"] == pytest.approx(0.0)  # nothing took time on the clock
    assert report["n_timeframes"] == 3
    assert report["target_checks"]["static_p99_over_budget"] is False


def test_workflow_without_online_modes_runs_the_user_configuration_twice(tmp_path):
    full = load_workflow(TOY)
    plain = types.SimpleNamespace(define_workflow=full.define_workflow)
    report, summaries = run_online_comparison(
        plain, "toy", [_toy_input(tmp_path, "3")], str(tmp_path / "r.json"),
        ReplaySchedule(500.0), 1000.0, config_key_values=["ToyOnline.cost_ms=0.5"],
        warmup_timeframes=0,
    )  # fmt: skip
    assert report["warmup"] == {"timeframes_per_mode": 0}
    assert report["modes_declared"] == []
    assert report["static"]["config_key_values"] == ["ToyOnline.cost_ms=0.5"]
    assert report["adaptive"]["config_key_values"] == ["ToyOnline.cost_ms=0.5"]
    assert report["adaptive"]["accuracy"] is None and report["target_met"] is False
    assert all(s.ok for s in summaries.values())


# --------------------------------------------------------------------------------------------
# plots


def test_plots_of_a_report(tmp_path):
    from alice_dyn.plotting.online import make_online_plots

    rows = [
        {"arrival_s": 0.1 * i, "latency_ms": 5.0 + i, "accuracy": 0.9 if i % 2 else None,
         "reports": {"net": {"exit_fractions": [0.5, 0.5] if i < 3 else [1.0]}}}
        for i in range(6)
    ] + [{"arrival_s": None, "latency_ms": None, "accuracy": None, "reports": {}}]  # fmt: skip
    run = {"per_timeframe": rows, "accuracy": 0.9}
    report = {
        "workflow": "wf/toy.py", "rate_hz": 10.0, "budget_ms": 8.0, "static": run, "adaptive": run,
        "bursts": [{"factor": 2.0, "duration_s": 0.2, "start_s": 0.1}],
    }  # fmt: skip
    paths = make_online_plots(report, tmp_path / "plots")
    assert [p.name for p in paths] == [
        "online_latency.png", "online_rate.png", "online_exit_fractions_net.png",
        "online_accuracy.png",
    ]  # fmt: skip
    assert all(p.stat().st_size > 0 for p in paths)
    no_accuracy = {**report, **{m: {**run, "accuracy": None} for m in MODES}}
    names = [p.name for p in make_online_plots(no_accuracy, tmp_path / "p2")]
    assert "online_accuracy.png" not in names


# --------------------------------------------------------------------------------------------
# layering (the package-wide import rules are tests/test_layering.py)


def _module_level_imports(path: Path) -> set[str]:
    """The modules ``path`` imports at module level (not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_online_harness_imports_plotting_and_matplotlib_lazily():
    assert not (PACKAGE / "framework" / "online_report.py").exists()  # moved, no alias left
    for path in sorted((PACKAGE / "online").glob("*.py")):
        bad = {
            m for m in _module_level_imports(path)
            if m.startswith(("alice_dyn.plotting", "matplotlib", "mplhep"))
        }  # fmt: skip
        assert not bad, f"{path.name} imports {sorted(bad)} at module level"
