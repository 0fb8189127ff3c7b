"""``alice-dyn run --online``: the adaptive-vs-static replay from the command line, end to end
(sequential, ``--side-by-side``, ``--interleaved``), and its option errors.

The runs use real (tiny) sleeps of the toy workflow (``online_toy_workflow.py``): the assertions
check structure, accounting and orders of magnitude, never exact timings.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from alice_dyn import cli
from alice_dyn.online import static_output

TOY = str(Path(__file__).resolve().parent / "online_toy_workflow.py")

MODE_KEYS = {
    "p50_latency_ms", "p99_latency_ms", "max_latency_ms", "mean_latency_ms", "timeframes_in",
    "timeframes_out", "fraction_over_budget", "p99_within_budget", "accuracy", "wall_s",
    "per_timeframe", "max_backlog", "metrics", "output", "config_key_values",
}  # fmt: skip
ROW_KEYS = {"tf_id", "arrival_s", "latency_ms", "backlog", "accuracy", "reports", "metrics"}


def _toy_input(tmp_path, text="12"):
    path = tmp_path / "in.txt"
    path.write_text(text)
    return str(path)


def _exit_code(args: list[str]) -> int:
    """``alice-dyn ARGS``' exit code, argparse's own errors (option types) included."""
    try:
        return cli.main(args)
    except SystemExit as exc:
        return exc.code


def test_cli_online_end_to_end(tmp_path, capsys):
    out, rep, plots = tmp_path / "o" / "res.json", tmp_path / "rep.json", tmp_path / "plots"
    args = ["run", TOY, "-i", _toy_input(tmp_path), "-o", str(out), "--online", "--rate", "60",
            "--burst", "3x:0.1s@0.05s", "--budget-ms", "25", "--report-json", str(rep),
            "--report-plots", str(plots), "--metrics-json", str(tmp_path / "m.json")]  # fmt: skip
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "target met:" in text and "static" in text and "adaptive" in text
    assert out.exists() and Path(static_output(str(out))).exists()
    assert (tmp_path / "m.json").exists() and (tmp_path / "m.static.json").exists()
    d = json.loads(rep.read_text())
    for key in ("workflow", "rate_hz", "bursts", "budget_ms", "n_timeframes", "adaptive",
                "static", "accuracy_loss_pp", "target_met"):  # fmt: skip
        assert key in d
    assert d["rate_hz"] == 60 and d["budget_ms"] == 25 and d["n_timeframes"] == 12
    for mode in ("static", "adaptive"):  # the static worker sleeps 30 ms, the adaptive 1 ms
        assert d[mode]["burst_service_ms"] is not None
        assert all(r["service_ms"] is not None for r in d[mode]["per_timeframe"])
    assert d["static"]["mean_service_ms"] >= 30.0
    assert "in the bursts: a timeframe every" in text
    # 60 Hz x 3 in the burst: 5.6 ms between arrivals; the static worker sleeps 30 ms
    assert d["burst_interval_ms"] == pytest.approx(1e3 / 180)
    assert d["keeps_up_in_bursts"]["static"] is False
    assert d["bursts"] == [{"factor": 3.0, "duration_s": 0.1, "start_s": 0.05}]
    assert d["run_order"] == ["static", "adaptive"]
    assert d["warmup"]["timeframes_per_mode"] == 1
    assert d["warmup"]["static"]["timeframes"] == d["warmup"]["adaptive"]["timeframes"] == 1
    assert isinstance(d["target_met"], bool)
    assert d["accuracy_loss_pp"] == pytest.approx(0.4)
    for mode, level in (("static", 0), ("adaptive", 2)):
        m = d[mode]
        assert MODE_KEYS <= set(m)
        assert m["timeframes_in"] == m["timeframes_out"] == 12
        assert m["accuracy"] == pytest.approx(0.996 if mode == "adaptive" else 1.0)
        assert m["purity"] == 1.0  # another online_accuracy metric, pooled
        assert isinstance(m["p99_within_budget"], bool)
        assert m["p50_latency_ms"] <= m["p99_latency_ms"] <= m["max_latency_ms"]
        rows = m["per_timeframe"]
        assert [r["tf_id"] for r in rows] == list(range(500, 512))
        assert all(ROW_KEYS <= set(r) for r in rows)
        assert rows[0]["arrival_s"] == 0.0
        assert [r["arrival_s"] for r in rows] == sorted(r["arrival_s"] for r in rows)
        assert {r["reports"]["toy-worker"]["level"] for r in rows} == {level}
    names = {p.name for p in plots.iterdir()}
    assert {"online_latency.png", "online_rate.png", "online_accuracy.png"} <= names
    assert "online_exit_fractions_toy-worker.png" in names


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="side by side runs need 2 CPU cores",
)
def test_cli_online_side_by_side(tmp_path, capsys):
    """Both configurations replay at the same time, each in its own process on its own core:
    same accounting and keys, arrivals on one time axis, the two replays overlapping."""
    rep = tmp_path / "rep.json"
    args = ["run", TOY, "-i", _toy_input(tmp_path), "-o", str(tmp_path / "res.json"),
            "--online", "--rate", "40", "--budget-ms", "40", "--side-by-side",
            "--report-json", str(rep)]  # fmt: skip
    assert cli.main(args) == 0
    assert "side by side" in capsys.readouterr().out
    d = json.loads(rep.read_text())
    assert d["side_by_side"] is True and d["run_order"] == "side_by_side"
    assert set(d["cores"]) == {"static", "adaptive"}
    assert d["cores"]["static"] != d["cores"]["adaptive"]
    assert d["warmup"]["static"]["timeframes"] == d["warmup"]["adaptive"]["timeframes"] == 1
    rows = {m: d[m]["per_timeframe"] for m in ("static", "adaptive")}
    for mode, level in (("static", 0), ("adaptive", 2)):
        assert d[mode]["timeframes_in"] == d[mode]["timeframes_out"] == 12
        assert {r["reports"]["toy-worker"]["level"] for r in rows[mode]} == {level}
    # one time axis, one start: timeframe i arrives at the same moment in both runs
    a, b = ([r["arrival_s"] for r in rows[m]] for m in ("static", "adaptive"))
    assert min(a[0], b[0]) == 0.0
    assert np.allclose(a, b, atol=0.02)
    assert all(r["arrival_s"] is not None for m in rows for r in rows[m])


@pytest.mark.slow
def test_cli_online_interleaved(tmp_path, capsys):
    """Both configurations in one process, one timeframe of each in turn, each on its own
    replay clock: the static run (30 ms per timeframe at a 25 ms period) queues up, and its
    work never shows on the adaptive run's clock (1 ms per timeframe)."""
    rep = tmp_path / "rep.json"
    args = ["run", TOY, "-i", _toy_input(tmp_path), "-o", str(tmp_path / "res.json"),
            "--online", "--rate", "40", "--budget-ms", "40", "--interleaved",
            "--report-json", str(rep)]  # fmt: skip
    assert cli.main(args) == 0
    assert "interleaved" in capsys.readouterr().out
    d = json.loads(rep.read_text())
    assert d["interleaved"] is True and d["side_by_side"] is False
    assert d["run_order"] == "interleaved"
    assert d["cores"]["static"] == d["cores"]["adaptive"]
    assert d["warmup"]["static"]["timeframes"] == d["warmup"]["adaptive"]["timeframes"] == 1
    rows = {m: d[m]["per_timeframe"] for m in ("static", "adaptive")}
    for mode, level in (("static", 0), ("adaptive", 2)):
        assert d[mode]["timeframes_in"] == d[mode]["timeframes_out"] == 12
        assert {r["reports"]["toy-worker"]["level"] for r in rows[mode]} == {level}
        # the schedule, exactly: 40 Hz from 0 s on each run's own clock
        assert [r["arrival_s"] for r in rows[mode]] == pytest.approx(
            [i / 40 for i in range(12)], abs=1e-9
        )
    static, adaptive = (np.array([r["service_ms"] for r in rows[m]]) for m in rows)
    assert static.min() >= 30.0  # it sleeps 30 ms: the queue grows by >= 5 ms a timeframe
    lat = [r["latency_ms"] for r in rows["static"]]
    assert lat[-1] >= lat[0] + 11 * 5.0
    # the static run's 30 ms per timeframe is not on the adaptive run's clock
    assert np.median(adaptive) < 15.0
    assert np.median([r["latency_ms"] for r in rows["adaptive"]]) < 15.0
    assert d["static"]["mean_service_ms"] == pytest.approx(static.mean())
    assert d["static"]["burst_service_ms"] is None  # no burst in this schedule
    assert d["burst_interval_ms"] is None and d["keeps_up_in_bursts"] is None


def test_cli_online_without_truth_reports_null_accuracy(tmp_path):
    rep = tmp_path / "rep.json"
    args = ["run", TOY, "-i", _toy_input(tmp_path, "4 notruth"), "-o", str(tmp_path / "r.json"),
            "--online", "--rate", "200", "--report-json", str(rep)]  # fmt: skip
    assert cli.main(args) == 0
    d = json.loads(rep.read_text())
    assert d["budget_ms"] is None and d["target_met"] is False
    for mode in ("static", "adaptive"):
        assert d[mode]["accuracy"] is None and "no truth" in d[mode]["accuracy_error"]
        assert d[mode]["fraction_over_budget"] is None
        assert d[mode]["timeframes_in"] == d[mode]["timeframes_out"] == 4


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--burst", "4x:1s"], "only with --online"),
        (["--budget-ms", "10"], "only with --online"),
        (["--online"], "--online needs --rate"),
        (["--online", "--rate", "0"], "--rate"),
        (["--online", "--rate", "10", "--burst", "4x"], "--burst '4x'"),
        (["--online", "--rate", "10", "--burst", "2x:2s@1s", "--burst", "2x:1s@2s"], "overlap"),
        (["--online", "--rate", "10", "--budget-ms", "-3"], "--budget-ms"),
        (["--online", "--rate", "10", "--warmup-tf", "-1"], "--warmup-tf"),
        (["--online", "--rate", "10", "--interleaved", "--side-by-side"], "exclude each other"),
        (["--online", "--rate", "10", "--interleaved", "--runner", "multiprocess"], "inline"),
        (["--interleaved"], "only with --online"),
    ],
)
def test_cli_online_option_errors(tmp_path, capsys, extra, match):
    args = ["run", TOY, "-i", _toy_input(tmp_path), "-o", str(tmp_path / "r.json"), *extra]
    assert _exit_code(args) == 2
    assert match in capsys.readouterr().err
