"""Every option of the command line is validated before work starts: one line naming the
option and the allowed range, exit code 2, nothing written; quiet broken pipes and Ctrl-C."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alice_dyn.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data_samples" / "pp_sample.root"


def _refused(capsys, argv: list[str], *needles: str) -> str:
    """``main(argv)`` ends with exit code 2 and one line on stderr containing ``needles``."""
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == 2, argv
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--compression", "gzip:9"], ("--compression", "gzip:9", "zlib:0-9")),
        (["--compression", "zlib:12"], ("--compression", "zlib:0-9")),
        (["--noise-fraction", "-1"], ("--noise-fraction", "[0, 10]")),
        (["--seed", "-1"], ("--seed", ">= 0", "-1")),
        (["--first-tf", "-1"], ("--first-tf", ">= 0")),
        (["--timeframes", "0"], ("--timeframes", ">= 1")),
        (["--bfield", "3"], ("--bfield", "0.5", "T")),
        (["--bfield", "0"], ("--bfield",)),
        (["--centrality", "0-10"], ("--centrality", "pbpb")),  # pp has no centrality
        (["--system", "pbpb", "--centrality", "0-120"], ("--centrality", "percent")),
        (["--system", "pbpb", "--centrality", "ten"], ("--centrality", "MIN-MAX")),
        (["--collisions-per-tf", "-2"], ("--collisions-per-tf", ">= 0")),
    ],
)
def test_simulate_options_fail_in_one_line(tmp_path, capsys, extra, needles):
    out = tmp_path / "x.root"
    _refused(capsys, ["simulate", "-o", str(out), "--timeframes", "1", *extra], *needles)
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--max-tf", "-1"], ("--max-tf", ">= 1")),
        (["--max-tf", "0"], ("--max-tf", ">= 1")),
        (["--queue-depth", "0"], ("--queue-depth",)),
        (["--timeout", "-3"], ("--timeout", "> 0")),
        (["--rate", "10"], ("--rate", "only with --online")),
        (["--online"], ("--rate",)),
        (["--online", "--rate", "-5"], ("--rate", "> 0")),
        (["--online", "--rate", "5", "--burst", "4y:10s"], ("--burst",)),
        (["--online", "--rate", "5", "--interleaved", "--side-by-side"], ("exclude",)),
        (["--configKeyValues", "PIDNetParam.budget=fast"], ("PIDNetParam.budget", "fast")),
        (
            ["--configKeyValues", "PIDNetParam.budget=flops;PIDNetParam.flops_fraction=-2"],
            ("PIDNetParam.flops_fraction", "-2"),
        ),
        (["--configKeyValues", "NoSuchParam.x=1"], ("NoSuchParam",)),
        (["--configKeyValues", "TPCGasParam.DriftV=-1"], ("drift_velocity_cm_us=-1.0", "(0, inf)")),
        (["--configKeyValues", "TPCTrackerParam.seed_max_snp=1.5"], ("seed_max_snp", "(0, 1)")),
        (["--configKeyValues", "TOFMatchParam.max_chi2=nan"], ("TOFMatchParam.max_chi2",)),
    ],
)
def test_run_options_fail_in_one_line(tmp_path, capsys, extra, needles):
    out = tmp_path / "reco.root"
    _refused(capsys, ["run", "tpc-reco", "-i", str(SAMPLE), "-o", str(out), *extra], *needles)


def test_run_with_a_missing_input_fails_in_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.root"
    _refused(capsys, ["run", "tpc-reco", "-i", str(missing), "-o", str(tmp_path / "o.root")],
             str(missing), "no such file")  # fmt: skip
    assert not (tmp_path / "o.root").exists()


def test_quickstart_and_evaluate_options(tmp_path, capsys):
    _refused(capsys, ["quickstart", "--timeframes", "-1"], "--timeframes", ">= 1")
    reco = tmp_path / "reco.root"
    reco.write_bytes(b"")
    _refused(capsys, ["evaluate", "pid-net", str(reco), "--truth", str(SAMPLE),
                      "--model", "/nonexistent"], "--model", "/nonexistent")  # fmt: skip
    _refused(capsys, ["evaluate", "tracking", "--truth", str(SAMPLE)], "RECO")
    _refused(capsys, ["evaluate", "tracking", str(tmp_path / "nope.root"), "--truth",
                      str(SAMPLE)], "nope.root", "no such file")  # fmt: skip
    _refused(capsys, ["train", "pid", "-o", str(tmp_path / "m"), "--timeframes", "0"],
             "--timeframes")  # fmt: skip
    _refused(capsys, ["train", "pid", "-o", str(tmp_path / "m"), "--centrality", "70-0"],
             "--centrality")  # fmt: skip
    _refused(capsys, ["calibrate", "dedx", "-o", str(tmp_path / "c.json"), "--per-point", "3"],
             "--per-point", ">= 20")  # fmt: skip


def test_broken_pipe_is_quiet():
    """``alice-dyn inspect FILE | head -1``: no traceback when the reader goes away."""
    cmd = (
        f"{sys.executable} -m alice_dyn.cli inspect {SAMPLE} --json | head -c 10 >/dev/null; "
        "echo ${PIPESTATUS[0]}"
    )
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
    assert res.stdout.strip() in ("0", "141"), res.stdout


def test_disable_an_optional_processor(tmp_path, capsys):
    out = tmp_path / "reco.root"
    base = ["run", "tpc-reco", "-i", str(SAMPLE), "-o", str(out)]
    _refused(capsys, [*base, "--disable", "tpc-tracker"], "--disable", "optional: pid-net")
    copy = ["run", "tpc-copy", "-i", str(SAMPLE), "-o", str(out), "--disable", "pid-net"]
    _refused(capsys, copy, "--disable", "no optional processors")
    assert main([*base, "--disable", "pid-net", "--max-tf", "1"]) == 0
    import uproot

    with uproot.open(out) as f:
        tables = {k.split("/")[-1].split(";")[0] for k in f["DF_0"].keys()}
    assert "O2track_iu" in tables and "O2pidnet" not in tables


def test_a_bad_timeframe_mid_run_ends_in_one_line(tmp_path, capsys):
    """A corrupted input found by the reader stage while running: one line naming the file,
    exit code 2, no metrics table (a processor's own bug stays exit code 1 with the table)."""
    bad = tmp_path / "not_root.root"
    bad.write_bytes(b"this is not a ROOT file" * 10)
    out = tmp_path / "o.root"
    err = _refused(capsys, ["run", "tpc-clusters", "-i", str(bad), "-o", str(out)], str(bad))
    assert err.startswith("alice-dyn run: error:")
    assert "processor" not in err  # the file's problem, not a processor's failure


def test_metrics_table_sets_the_first_timeframe_apart():
    from alice_dyn.framework.metrics import ProcessorMetrics, format_metrics

    m = ProcessorMetrics("tpc-tracker", [12.0, 0.040, 0.050, 0.045])
    s = m.summary()
    assert s["time_ms_first"] == 12000.0 and s["time_ms_p99_after_first"] < 51.0
    assert s["time_ms_p99"] > 1000.0  # over all timeframes, as before
    text = format_metrics({"tpc-tracker": m})
    assert "first ms" in text and "tpc-tracker 12.0 s" in text and "start-up" in text
    quiet = format_metrics({"x": ProcessorMetrics("x", [0.05, 0.04, 0.05])})
    assert "note:" not in quiet


def test_a_directory_without_a_model_fails_in_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    reco = tmp_path / "reco.root"
    assert main(["run", "tpc-copy", "-i", str(SAMPLE), "-o", str(reco), "--max-tf", "1"]) == 0
    capsys.readouterr()
    _refused(capsys, ["evaluate", "track-net", "--truth", str(SAMPLE), "--model", str(empty)],
             str(empty), "no track-network model")  # fmt: skip
    _refused(capsys, ["evaluate", "pid-net", str(reco), "--truth", str(SAMPLE), "--model",
                      str(empty)], str(empty), "no config.json")  # fmt: skip
    out = tmp_path / "o.root"
    kv = f"PIDNetParam.model={empty}"
    _refused(capsys, ["run", "tpc-reco", "-i", str(SAMPLE), "-o", str(out), "--max-tf", "1",
                      "--configKeyValues", kv], str(empty), "no config.json")  # fmt: skip


def test_summary_skip_bad_warns_once(tmp_path, capsys, make_tfs):
    from alice_dyn.io.writer import write_timeframes

    tfs = make_tfs(5, with_empty=False)
    for i in (1, 3):  # two bad timeframes: TRD layer out of range
        tfs[i].trd.layer[:] = 9
    path = tmp_path / "bad.root"
    write_timeframes(path, tfs, validate=False, flush_timeframes=2)
    assert main(["summary", str(path), "--skip-bad"]) == 0
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and "skipped 2 bad timeframes" in err[0], captured.err
    assert "entry 1:" in captured.out and "entry 3:" in captured.out  # listed in the summary


@pytest.mark.slow
def test_a_burst_after_the_last_arrival_is_warned_about(tmp_path, capsys):
    out = tmp_path / "copy.root"
    argv = ["run", "tpc-copy", "-i", str(SAMPLE), "-o", str(out), "--max-tf", "2", "--online",
            "--rate", "100", "--burst", "4x:1s@5s", "--warmup-tf", "0"]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning: the burst 4x from 5 s starts after the last of the 2 timeframes" in err


def test_train_pid_says_it_simulates_the_enriched_sample(tmp_path, monkeypatch):
    from alice_dyn.pid import data_gen

    made = []

    def fake(out_dir, *args, **kwargs):
        made.append(str(out_dir))
        return _TinyData()

    monkeypatch.setattr(data_gen, "make_pid_dataset", fake)
    monkeypatch.setattr(data_gen, "make_enriched_dataset", fake)
    lines: list[str] = []
    sample = data_gen.TrainingSample(work_dir=tmp_path, timeframes=2)
    data_gen.training_data(sample, enriched=True, log=lines.append)
    said = " ".join(lines)
    assert f"{data_gen.ENRICHED_TIMEFRAMES} pbpb timeframes" in said and "whatever" in said
    assert len(made) == 2


class _TinyData:
    """What training_data reads of a dataset: its length and labels."""

    labels = np.array([0, 2, 2, 4])

    def __len__(self) -> int:
        return 4


def test_too_little_training_data_fails_in_one_line(tmp_path, capsys):
    _refused(capsys, ["train", "track", "-o", str(tmp_path / "m"), "--timeframes", "1"],
             "1 timeframes leave no timeframe for calib, val", "at least 6")  # fmt: skip
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["simulate", "-o", "/proc/alice_dyn_x.root", "--timeframes", "1"], "-o"),
        (["summary", str(SAMPLE), "--json", "/proc/alice_dyn_x.json"], "--json"),
        (["run", "tpc-copy", "-i", str(SAMPLE), "-o", "/proc/alice_dyn_x.root"], "-o"),
        (
            [
                "run",
                "tpc-copy",
                "-i",
                str(SAMPLE),
                "-o",
                "x.root",
                "--metrics-json",
                "/proc/alice_dyn/m.json",
            ],
            "--metrics-json",
        ),
        (["calibrate", "dedx", "-o", "/proc/alice_dyn_x.json"], "-o"),
        (["train", "pid", "-o", "/proc/alice_dyn_model"], "-o"),
        (["quickstart", "--out-dir", "/proc/alice_dyn_out"], "--out-dir"),
    ],
)
def test_outputs_that_cannot_be_written_fail_before_any_work(capsys, argv, option):
    _refused(capsys, argv, option, "/proc")


def test_an_output_that_is_a_folder_is_refused(tmp_path, capsys):
    _refused(capsys, ["simulate", "-o", str(tmp_path), "--timeframes", "1"], "is a folder")
