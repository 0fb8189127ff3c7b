"""Stages, O2-style executables (``|`` composition) and workflows on the shipped samples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from alice_dyn.cli import main
from alice_dyn.framework.executable import merge_documents, run_specs, spec_from_json, spec_to_json
from alice_dyn.framework.topology import build_topology
from alice_dyn.io import read_timeframes
from alice_dyn.stages import aod_writer_spec, tpc_cluster_reader_spec, tpc_cluster_transform_spec
from alice_dyn.tpc import transform
from alice_dyn.tpc.cluster_native import unpack_clusters

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
PP = SAMPLES / "pp_sample.root"
BIN = Path(sys.executable).parent


def shell(cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def test_executable_prints_workflow_json_when_piped(tmp_path):
    res = shell(f"alice-dyn-tpc-reader --infile {PP} --max-tf 2 | cat", tmp_path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) == {"workflow", "metadata", "command"}
    assert [p["name"] for p in doc["workflow"]] == ["tpc-cluster-reader"]
    assert "TPC/CLUSTERNATIVE/0" in doc["workflow"][0]["outputs"]
    assert doc["command"].startswith("alice-dyn-tpc-reader --infile")


@pytest.mark.slow
def test_pipe_composition_runs_the_merged_topology(tmp_path):
    out = tmp_path / "out.root"
    cmd = (
        f"alice-dyn-tpc-reader --infile {PP} --max-tf 3 | alice-dyn-tpc-transform "
        f"| alice-dyn-tpc-transform | alice-dyn-aod-writer --outfile {out} "
        "--inputs 'clusters:TPC/CLUSTERGLOBAL;meta:GLO/TFMETA' --metrics-json m.json > log.txt"
    )
    res = shell(cmd, tmp_path)
    log = (tmp_path / "log.txt").read_text()
    assert res.returncode == 0, res.stderr + log
    assert "3 timeframes in, 3 processed" in log
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert set(metrics["processors"]) == {
        "tpc-cluster-reader",
        "tpc-cluster-transform",
        "aod-writer",
    }
    assert metrics["run"]["timeframes_processed"] == 3
    assert " | " in metrics["command"]
    with uproot.open(out) as f:
        assert {"DF_0", "DF_1", "DF_2"} <= {k.split(";")[0] for k in f.keys(recursive=False)}
        assert f["DF_2/O2tfmeta"].num_entries == 1 and f["DF_2/O2clusters"].num_entries > 0


@pytest.mark.slow
def test_pipe_bad_input_names_the_file(tmp_path):
    bad = tmp_path / "bad.root"
    bad.write_bytes(b"not root" * 100)
    res = shell(
        f"alice-dyn-tpc-reader --infile {bad} | alice-dyn-aod-writer --outfile x.root > log.txt",
        tmp_path,
    )
    # a bad input file: one line naming it, exit code 2 (no metrics table, no traceback)
    assert res.returncode == 2
    err = res.stderr.strip()
    assert str(bad) in err and "not a ROOT file" in err and len(err.splitlines()) == 1


def test_json_round_trip_and_merge_by_name():
    reader = tpc_cluster_reader_spec(str(PP), max_tf=1)
    rebuilt = spec_from_json(json.loads(json.dumps(spec_to_json(reader))))
    assert rebuilt.name == reader.name and rebuilt.option_values == reader.option_values
    doc = merge_documents(None, [reader], {"configKeyValues": []}, "a")
    doc = merge_documents(doc, [reader, tpc_cluster_transform_spec()], {}, "b")
    assert [p["name"] for p in doc["workflow"]] == ["tpc-cluster-reader", "tpc-cluster-transform"]
    assert doc["command"] == "a | b" and len(doc["metadata"]) == 2


def test_copy_workflow_loses_nothing(tmp_path):
    out = tmp_path / "copy.root"
    assert main(["run", "tpc-copy", "-i", str(PP), "-o", str(out), "--max-tf", "4"]) == 0
    tfs = read_timeframes(PP, entry_stop=4)
    with uproot.open(out) as f:
        for n, tf in enumerate(tfs):
            cl = f[f"DF_{n}/O2clusters"].arrays(library="np")
            rec = tf.clusters.records
            for field in rec.dtype.names:
                name = "f" + field[0].upper() + field[1:]
                assert np.array_equal(cl[name], rec[field]), field
            assert np.array_equal(cl["fSector"], tf.clusters.sector)
            assert np.array_equal(cl["fRow"], tf.clusters.row)
            assert np.array_equal(
                f[f"DF_{n}/O2labels"]["fLabels"].array(library="np"), tf.clusters.mc_label
            )
            tof = f[f"DF_{n}/O2tof"].arrays(library="np")
            assert np.array_equal(tof["fTimePs"], tf.tof.time_ps)
            assert f[f"DF_{n}/O2tfmeta"]["fTfId"].array(library="np")[0] == tf.meta.tf_id


def test_transform_stage_matches_reference_and_config_changes_it(tmp_path):
    tf = read_timeframes(PP, entry_stop=1)[0]
    u = unpack_clusters(tf.clusters.records)
    specs = lambda: [  # noqa: E731
        tpc_cluster_reader_spec(str(PP), max_tf=1),
        tpc_cluster_transform_spec(),
    ]
    ref = transform.pad_time_to_global(tf.clusters.sector, tf.clusters.row, u.pad, u.time)
    s = run_specs(specs(), keep_sink=True, progress=False)
    assert s.ok
    got = next(m.payload for m in s.sink if m.header.description == "CLUSTERGLOBAL")
    for a, b in zip(ref, (got["x"], got["y"], got["z"]), strict=True):
        assert np.allclose(a, b, atol=1e-4)
    s2 = run_specs(specs(), keep_sink=True, progress=False,
                   config_key_values=["TPCGasParam.DriftV=2.0"])  # fmt: skip
    z2 = next(m.payload for m in s2.sink if m.header.description == "CLUSTERGLOBAL")["z"]
    side = np.where(got["sector"] < 18, 1.0, -1.0)
    drift1 = 250.0 - side * got["z"]
    drift2 = 250.0 - side * z2
    assert np.allclose(drift2, drift1 * 2.0 / 2.58, rtol=1e-4, atol=1e-3)


def test_run_errors_exit_codes(tmp_path, capsys):
    assert main(["run", "no-such-workflow", "-i", str(PP), "-o", str(tmp_path / "x.root")]) == 2
    assert "unknown workflow" in capsys.readouterr().err
    rc = main(["run", "tpc-clusters", "-i", str(PP), "-o", str(tmp_path / "x.root"),
               "--configKeyValues", "TPCGasParam.DriftV=fast"])  # fmt: skip
    assert rc == 2 and "not a valid float" in capsys.readouterr().err
    rc = main(
        [
            "run",
            "tpc-clusters",
            "-i",
            str(tmp_path / "missing.root"),
            "-o",
            str(tmp_path / "x.root"),
        ]
    )
    err = capsys.readouterr().err
    # a missing input is the user's to fix: one line before any work, exit code 2
    assert rc == 2 and "missing.root: no such file" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.root").exists()


def test_workflows_command_lists_the_shipped_workflows(capsys):
    assert main(["workflows"]) == 0
    out = capsys.readouterr().out
    assert "tpc-clusters" in out and "tpc-copy" in out


def test_writer_topology_refuses_an_unproduced_input():
    from alice_dyn.framework.spec import SpecError

    with pytest.raises(SpecError, match="aod-writer"):
        build_topology(
            [tpc_cluster_reader_spec(str(PP)), aod_writer_spec("x.root", "t:TPC/TRACKS")]
        )


def _trees(path):
    with uproot.open(path) as f:
        out = {}
        for k in f.keys():
            if "/" not in k:
                continue
            obj = f[k]
            out[k] = str(obj) if k.endswith("metadata;1") else obj.arrays(library="np")
        return out


def test_aod_writer_folders_do_not_fragment_the_file(tmp_path):
    """Many timeframes of many tables: every DF_<n> folder and row is written, and the file's
    free-space list (TFile header ``nfree``, walked by uproot on every write) stays short
    instead of growing by one hole per timeframe (each folder sized for its keys)."""
    from alice_dyn.framework.spec import DataProcessorSpec, OutputSpec

    n_tf, tables = 60, [f"TAB{i}" for i in range(10)]

    def source(pc):
        for t in tables:
            cols = {f"col_{j}": np.full(7, pc.timeslice + j, np.float32) for j in range(8)}
            pc.outputs.adopt(f"TST/{t}", cols)
        if pc.timeslice == n_tf - 1:
            pc.end_of_stream()

    src = DataProcessorSpec("src", outputs=[OutputSpec("TST", t) for t in tables], algorithm=source)
    out = tmp_path / "many.root"
    inputs = ";".join(f"{t.lower()}:TST/{t}" for t in tables)
    run_specs([src, aod_writer_spec(str(out), inputs)], progress=False).raise_if_failed()
    with uproot.open(out) as f:
        assert sorted(f.keys(recursive=False, cycle=False)) == sorted(
            f"DF_{i}" for i in range(n_tf)
        )
        assert f["DF_59/O2tab9"]["fCol7"].array(library="np").tolist() == [66.0] * 7
        assert f.file.nfree < 10  # was one more per timeframe


@pytest.mark.slow
def test_tpc_reco_inline_and_multiprocess_give_identical_files(tmp_path):
    a, b = tmp_path / "inline.root", tmp_path / "mp.root"
    assert main(["run", "tpc-reco", "-i", str(PP), "-o", str(a), "--max-tf", "3"]) == 0
    rc = main(["run", "tpc-reco", "-i", str(PP), "-o", str(b), "--max-tf", "3",
               "--runner", "multiprocess", "--pipeline", "tpc-tracker:2"])  # fmt: skip
    assert rc == 0
    ta, tb = _trees(a), _trees(b)
    assert set(ta) == set(tb) and any("O2track_iu" in k for k in ta)
    for k, va in ta.items():
        if isinstance(va, str):
            assert va == tb[k]
            continue
        for col, arr in va.items():
            assert np.array_equal(arr, tb[k][col], equal_nan=True), (k, col)


def test_tpc_reco_on_o2_layout_input_without_tof_trd_ft0(tmp_path):
    """O2's tpcrec layout holds TPC clusters only (no FT0, TOF, TRD, MC): the whole chain runs,
    tracks are found and nothing is matched."""
    out = tmp_path / "o2.root"
    assert main(["run", "tpc-reco", "-i", str(SAMPLES / "pp_sample_o2.root"), "-o", str(out),
                 "--max-tf", "2"]) == 0  # fmt: skip
    with uproot.open(out) as f:
        extra = f["DF_0/O2trackextra"].arrays(library="np")
        assert len(extra["fTPCNClsFound"]) > 10
        assert not extra["fHasTOF"].any() and not extra["fHasTRD"].any()


def test_tpc_reco_workflow_options_disable_and_embedding():
    """``define_workflow``'s options (as DPL's ``--disable-*``): the writer writes what the
    stages before it make, and the wiring of every variant is complete."""
    from alice_dyn.framework.spec import SpecError
    from alice_dyn.framework.workflows import load_workflow

    wf = load_workflow("tpc-reco")
    full = wf.define_workflow([str(PP)], "out.root")
    names = [s.name for s in full]
    assert "pid-net" in names and names[-1] == "aod-writer"
    inputs = full[-1].factory_kwargs["inputs"].split(";")
    assert "pidnet:AOD/PIDNET" in inputs and inputs[-1] == "tfmeta:GLO/TFMETA"
    assert not any(b.startswith("tracknetemb:") for b in inputs)
    train = wf.define_workflow([str(PP)], "out.root", disable=("pid-net",), tracknet_embedding=True)
    assert [s.name for s in train] == [n for n in names if n != "pid-net"]
    bindings = train[-1].factory_kwargs["inputs"].split(";")
    assert sorted(bindings) == sorted(
        [b for b in inputs if b != "pidnet:AOD/PIDNET"] + ["tracknetemb:AOD/TRACKNETEMB"]
    )
    for specs in (full, train):
        build_topology(specs)  # every input has a producer
    with pytest.raises(SpecError, match="cannot disable"):
        wf.define_workflow([str(PP)], "out.root", disable=("tpc-tracker",))
