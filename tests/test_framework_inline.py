"""The inline runner: order, lifecycle, errors, consume when all, optional and Condition inputs,
metrics, the dummy sink and the summary.

A bug these tests found (Condition inputs pinning tf_id) is fixed; its test pins the fixed
behaviour.
"""

import pickle

import pytest
from framework_helpers import (
    EVENTS,
    RECEIVED,
    SENT,
    chain,
    clear_records,
    collector_spec,
    events,
    pair,
    recorded,
    source_spec,
    transform_spec,
)

from alice_dyn.framework import (
    DataProcessorSpec,
    InputSpec,
    Lifetime,
    OutputSpec,
    ProcessorError,
    Task,
    build_topology,
    run_inline,
)
from alice_dyn.framework.runtime import FAILED, INCOMPLETE, PROCESSED


@pytest.fixture(autouse=True)
def _records():
    """The helper tasks' records start empty in every test."""
    clear_records()
    yield
    clear_records()


def test_chain_results_in_order_with_tf_id_propagation():
    n = 5
    topo = chain(n)
    summary = run_inline(topo)
    assert summary.error is None and summary.ok
    assert summary.runner == "inline"
    # (timeslice, pc.tf_id, header tf_id of the transform's output, value)
    assert RECEIVED == [(ts, 100 + ts, 100 + ts, 2.0 * ts) for ts in range(n)]
    assert events("run") == [
        (name, ts) for ts in range(n) for name in ("source", "transform", "collector")
    ]
    assert sorted(summary.timeframes) == list(range(n))
    assert [r.tf_id for r in summary.timeframes.values()] == [100 + ts for ts in range(n)]
    assert all(r.status == PROCESSED for r in summary.timeframes.values())


def test_lifecycle_order_init_eos_stop():
    summary = run_inline(chain(3))
    assert summary.error is None
    order = ["source", "transform", "collector"]
    assert [n for n, _ in events("init")] == order
    assert [n for n, _ in events("eos")] == order
    assert [n for n, _ in events("stop")] == order
    kinds = [k for k, *_ in EVENTS]
    last_run = max(i for i, k in enumerate(kinds) if k == "run")
    first_eos = kinds.index("eos")
    assert first_eos > last_run
    assert min(i for i, k in enumerate(kinds) if k == "stop") > max(
        i for i, k in enumerate(kinds) if k == "eos"
    )


def test_error_in_run_stops_the_run_and_names_processor_and_tf():
    n, k = 6, 2
    summary = run_inline(chain(n, fail_at=k))
    err = summary.error
    assert isinstance(err, ProcessorError)
    assert (err.processor, err.stage, err.timeslice, err.tf_id) == ("transform", "run", k, 100 + k)
    assert "'transform'" in str(err) and f"timeframe {100 + k}" in str(err)
    assert "ValueError: bad cluster" in str(err) and "bad cluster" in err.details
    assert not summary.ok
    assert sorted(summary.timeframes) == list(range(k + 1))
    assert [summary.timeframes[ts].status for ts in range(k)] == [PROCESSED] * k
    failed = summary.timeframes[k]
    assert (failed.status, failed.processor, failed.tf_id) == (FAILED, "transform", 100 + k)
    assert "bad cluster" in failed.error
    # nothing after the failure ran: neither the collector at k nor anything at k+1
    assert max(ts for _, ts in events("run")) == k
    assert ("collector", k) not in events("run")
    assert [r[0] for r in RECEIVED] == list(range(k))
    # stop() still reached every processor; end_of_stream did not run after the error
    assert [n for n, _ in events("stop")] == ["source", "transform", "collector"]
    assert events("eos") == []
    with pytest.raises(ProcessorError):
        summary.raise_if_failed()


def test_error_in_source_marks_its_timeframe():
    def run(pc):
        pc.tf_id = 500 + pc.timeslice
        if pc.timeslice == 1:
            raise OSError("file truncated")
        pc.outputs.adopt("TST/A", pc.timeslice)

    summary = run_inline(pair(run, lambda pc: None))
    assert summary.error.processor == "producer" and summary.error.tf_id == 501
    assert summary.timeframes[1].status == FAILED and summary.timeframes[1].tf_id == 501
    assert summary.timeframes[0].status == PROCESSED


def test_error_in_init():
    specs = [
        source_spec(3),
        DataProcessorSpec(
            "transform",
            inputs=[InputSpec("raw", "TST", "RAW")],
            algorithm=recorded("transform", fail_init=True),
        ),
    ]
    summary = run_inline(build_topology(specs))
    err = summary.error
    assert isinstance(err, ProcessorError)
    assert (err.processor, err.stage, err.timeslice) == ("transform", "init", None)
    assert "RuntimeError: cannot open calibration" in str(err)
    assert summary.timeframes == {} and events("run") == []
    assert [n for n, _ in events("stop")] == ["source", "transform"]


def test_error_in_end_of_stream():
    class BadEos(Task):
        def run(self, pc):
            pc.outputs.adopt("TST/A", 0)
            pc.end_of_stream()

        def end_of_stream(self, ec):
            raise RuntimeError("flush failed")

    spec = DataProcessorSpec("writer", outputs=[OutputSpec("TST", "A")], algorithm=BadEos)
    summary = run_inline(build_topology([spec]))
    assert summary.error.stage == "end_of_stream" and summary.error.processor == "writer"
    assert summary.timeframes[0].status == PROCESSED


def _two_producers(lifetime_b, skip_b_at):
    def run_a(pc):
        pc.outputs.adopt("TST/A", pc.inputs.get("raw"))

    def run_b(pc):
        if pc.timeslice != skip_b_at:
            pc.outputs.adopt("TST/B", pc.inputs.get("raw"))

    def run_c(pc):
        RECEIVED.append((pc.timeslice, pc.inputs.is_valid("a"), pc.inputs.is_valid("b")))

    return build_topology(
        [
            source_spec(4),
            DataProcessorSpec(
                "prod-a",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "A")],
                algorithm=run_a,
            ),
            DataProcessorSpec(
                "prod-b",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "B")],
                algorithm=run_b,
            ),
            DataProcessorSpec(
                "consumer",
                inputs=[
                    InputSpec("a", "TST", "A"),
                    InputSpec("b", "TST", "B", lifetime=lifetime_b),
                ],
                algorithm=run_c,
            ),
        ]
    )


def test_consume_when_all_skips_incomplete_timeframe():
    summary = run_inline(_two_producers(Lifetime.Timeframe, skip_b_at=1))
    assert summary.error is None
    assert RECEIVED == [(0, True, True), (2, True, True), (3, True, True)]
    rec = summary.timeframes[1]
    assert (rec.status, rec.processor, rec.tf_id) == (INCOMPLETE, "consumer", 101)
    assert "'b'" in rec.error and "consume when all" in rec.error
    assert [summary.timeframes[t].status for t in (0, 2, 3)] == [PROCESSED] * 3
    d = summary.as_dict()
    assert (d["timeframes_in"], d["timeframes_processed"], d["timeframes_incomplete"]) == (4, 3, 1)
    assert d["failures"] == [
        {
            "timeslice": 1,
            "tf_id": 101,
            "status": INCOMPLETE,
            "processor": "consumer",
            "error": rec.error,
        }
    ]
    assert not summary.ok and summary.error is None
    assert "incomplete in consumer" in summary.format()


def test_optional_input_absent_consumer_still_runs():
    summary = run_inline(_two_producers(Lifetime.Optional, skip_b_at=1))
    assert summary.error is None and summary.ok
    assert RECEIVED == [(0, True, True), (1, True, False), (2, True, True), (3, True, True)]


def _condition_topology(n=4):
    def calib(pc):
        if pc.timeslice == 0:
            SENT.append({"gain": 1.5})
            pc.outputs.adopt("TST/CALIB", SENT[0])

    def use(pc):
        RECEIVED.append(
            (pc.timeslice, pc.tf_id, pc.inputs.get("calib"), float(pc.inputs.get("raw")[0]))
        )
        pc.outputs.adopt("TST/OUT", pc.tf_id)

    return build_topology(
        [
            source_spec(n),
            DataProcessorSpec(
                "calib",
                inputs=[InputSpec("raw", "TST", "RAW")],
                outputs=[OutputSpec("TST", "CALIB")],
                algorithm=calib,
            ),
            DataProcessorSpec(
                "user",
                inputs=[
                    InputSpec("raw", "TST", "RAW"),
                    InputSpec("calib", "TST", "CALIB", lifetime=Lifetime.Condition),
                ],
                outputs=[OutputSpec("TST", "OUT")],
                algorithm=use,
            ),
        ]
    )


def test_condition_input_is_kept_for_later_timeframes():
    summary = run_inline(_condition_topology(4))
    assert summary.error is None and summary.ok
    assert [r[0] for r in RECEIVED] == [0, 1, 2, 3]
    assert all(r[2] is SENT[0] for r in RECEIVED)
    assert [r[3] for r in RECEIVED] == [0.0, 1.0, 2.0, 3.0]


def test_condition_input_does_not_pin_tf_id():
    summary = run_inline(_condition_topology(4), keep_sink=True)
    assert [r[1] for r in RECEIVED] == [100, 101, 102, 103]
    assert [m.header.tf_id for m in summary.sink] == [100, 101, 102, 103]


def test_max_timeframes_stops_an_endless_source():
    topo = build_topology([source_spec(None), collector_spec(), transform_spec()])
    summary = run_inline(topo, max_timeframes=3)
    assert summary.error is None and summary.ok
    assert sorted(summary.timeframes) == [0, 1, 2]
    assert [ts for n, ts in events("run") if n == "source"] == [0, 1, 2]
    assert [n for n, _ in events("eos")] == ["source", "transform", "collector"]
    summary = run_inline(chain(5), max_timeframes=2)
    assert len(summary.timeframes) == 2


def test_metrics_count_messages_bytes_and_time_samples():
    n, size = 3, 4
    summary = run_inline(chain(n))
    m = summary.metrics
    assert list(m) == ["source", "transform", "collector"]
    nbytes = size * 8
    got = {
        name: (pm.messages_in, pm.bytes_in, pm.messages_out, pm.bytes_out, len(pm.seconds))
        for name, pm in m.items()
    }
    assert got == {
        "source": (0, 0, n, n * nbytes, n),
        "transform": (n, n * nbytes, n, n * nbytes, n),
        "collector": (n, n * nbytes, 0, 0, n),
    }
    assert all(t >= 0 for pm in m.values() for t in pm.seconds)
    s = m["transform"].summary()
    assert s["timeframes"] == n and s["bytes_out"] == n * nbytes
    assert s["time_ms_p50"] <= s["time_ms_p99"] and s["time_ms_total"] >= s["time_ms_mean"]


def test_metrics_skip_timeframes_a_processor_did_not_run():
    summary = run_inline(_two_producers(Lifetime.Timeframe, skip_b_at=1))
    assert len(summary.metrics["consumer"].seconds) == 3
    assert summary.metrics["consumer"].messages_in == 6
    assert summary.metrics["prod-b"].messages_out == 3


def test_keep_sink_collects_dangling_outputs():
    n = 3
    topo = build_topology([source_spec(n, extra=True), transform_spec(), collector_spec()])
    summary = run_inline(topo, keep_sink=True)
    assert summary.error is None
    assert summary.sink_count == n
    assert [str(msg.header.data_type) for msg in summary.sink] == ["TST/EXTRA/0"] * n
    assert [msg.header.tf_id for msg in summary.sink] == [100, 101, 102]
    assert [int(msg.payload[0]) for msg in summary.sink] == [0, 1, 2]

    summary = run_inline(topo)  # counted, not kept
    assert summary.sink_count == n and summary.sink == []

    everything = build_topology(
        [source_spec(n, extra=True), transform_spec(), collector_spec()], forwarding_policy="all"
    )
    RECEIVED.clear()
    summary = run_inline(everything, keep_sink=True)
    kinds = sorted(str(msg.header.data_type) for msg in summary.sink)
    assert kinds == ["TST/DOUBLED/0"] * n + ["TST/EXTRA/0"] * n + ["TST/RAW/0"] * n
    assert RECEIVED and len(RECEIVED) == n  # the real consumers still got their data


def test_summary_as_dict_keys_and_values():
    summary = run_inline(chain(3, fail_at=1))
    d = summary.as_dict()
    assert {
        "runner",
        "timeframes_in",
        "timeframes_processed",
        "timeframes_failed",
        "timeframes_incomplete",
        "failures",
        "error",
        "wall_seconds",
        "sink_messages",
    } <= set(d)
    assert (d["timeframes_in"], d["timeframes_processed"], d["timeframes_failed"]) == (2, 1, 1)
    assert d["timeframes_incomplete"] == 0
    assert d["error"] == str(summary.error) and "'transform'" in d["error"]
    (failure,) = d["failures"]
    assert failure["timeslice"] == 1 and failure["tf_id"] == 101
    assert failure["status"] == FAILED and failure["processor"] == "transform"
    assert d["wall_seconds"] > 0

    ok = run_inline(chain(2)).as_dict()
    assert ok["error"] is None and ok["failures"] == [] and ok["timeframes_processed"] == 2


def test_processor_error_pickles():
    err = ProcessorError("tpc-tracker", "run", "ValueError: x", 3, 103, "tb")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err)
    assert (back.processor, back.stage, back.timeslice, back.tf_id, back.details) == (
        "tpc-tracker",
        "run",
        3,
        103,
        "tb",
    )
