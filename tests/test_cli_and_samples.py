"""The command line and the shipped samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import uproot

from alice_dyn.cli import main
from alice_dyn.io import open_timeframes, read_timeframe
from alice_dyn.io.testing import assert_timeframes_equal
from alice_dyn.sim import SimConfig, simulate_timeframe

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"


def test_simulate_inspect_summary(tmp_path, capsys):
    out = tmp_path / "sub" / "tf.root"
    rc = main(["simulate", "-o", str(out), "--timeframes", "2", "--collisions-per-tf", "3",
               "--system", "pp", "--seed", "5", "--bfield", "0.2"])  # fmt: skip
    assert rc == 0 and out.exists()
    assert "wrote 2 timeframes" in capsys.readouterr().out
    tfs = list(open_timeframes(out))
    assert [tf.meta.tf_id for tf in tfs] == [0, 1]
    assert all(tf.meta.bfield_t == 0.2 and len(tf.collisions) == 3 for tf in tfs)
    assert main(["inspect", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_timeframes"] == 2 and info["n_clusters"] == sum(len(t.clusters) for t in tfs)
    js = tmp_path / "summary.json"
    assert main(["summary", str(out), "--json", str(js)]) == 0
    summary = json.loads(js.read_text())
    assert summary["clusters"] == info["n_clusters"] and summary["collisions"] == 6


@pytest.mark.root
def test_simulate_o2_layout(tmp_path):
    pytest.importorskip("ROOT")
    out = tmp_path / "o2.root"
    assert main(["simulate", "-o", str(out), "--timeframes", "1", "--layout", "o2"]) == 0
    _assert_o2_native(out)
    tf = read_timeframe(out, 0)
    again = simulate_timeframe(SimConfig.for_system("pp", seed=1), 0)
    assert tf.clusters.records.tobytes() == again.clusters.records.tobytes()
    assert np.array_equal(tf.clusters.mc_label, again.clusters.mc_label)
    sectors = tmp_path / "sectors.root"
    argv = ["simulate", "-o", str(sectors), "--timeframes", "1", "--layout", "o2"]
    assert main([*argv, "--o2-branches", "sectors"]) == 0
    _assert_o2_native(sectors, sector=35)
    assert read_timeframe(sectors, 0).clusters.records.tobytes() == tf.clusters.records.tobytes()


def _assert_o2_native(path, sector=None) -> None:
    """O2's branches (as RootTreeWriter writes them), read with uproot; nothing else."""
    suffix = "" if sector is None else f"_{sector}"
    with uproot.open(path) as f:
        tree = f["tpcrec"]
        names = set(tree.keys(recursive=False))
        assert tree[f"TPCClusterNative{suffix}"].member("fClassName") == "vector<char>"
        assert tree[f"TPCClusterNative{suffix}Size"].typename == "uint32_t"
        assert tree[f"TPCClusterNativeMCTruth{suffix}"].streamer.typename == (
            "o2::dataformats::IOMCTruthContainerView"
        )
        assert all(n.startswith(("TPCClusterNative", "TPCClusterNativeMCTruth")) for n in names)
        assert not any("CRC" in n or "MCLabels" in n for n in names)


def test_shipped_o2_sample_is_o2s_layout_with_the_pp_sample_clusters():
    recipe = (SAMPLES / "make_samples.sh").read_text()
    assert "-o pp_sample_o2.root --timeframes 10 --system pp --seed 1 --layout o2" in recipe
    _assert_o2_native(SAMPLES / "pp_sample_o2.root")
    o2 = read_timeframe(SAMPLES / "pp_sample_o2.root", 3)
    pp = read_timeframe(SAMPLES / "pp_sample.root", 3)
    assert o2.clusters.records.tobytes() == pp.clusters.records.tobytes()
    np.testing.assert_array_equal(o2.clusters.mc_label, pp.clusters.mc_label)


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "not_root.root"
    bad.write_bytes(b"this is not a ROOT file" * 10)
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err
    assert main(["inspect", str(tmp_path / "missing.root")]) == 2


def test_bad_simulation_settings_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "-o", str(tmp_path / "x.root"), "--system", "pbpb",
              "--centrality", "50-10"])  # fmt: skip
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--centrality" in err and "percent" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.root").exists()


def test_shipped_pp_sample_is_reproduced_by_its_recipe():
    """data_samples/make_samples.sh made the file; the same seed gives the same timeframes
    (a regression check of the simulation: regenerate the samples if physics changes)."""
    recipe = (SAMPLES / "make_samples.sh").read_text()
    assert "--system pp --seed 1" in recipe
    cfg = SimConfig.for_system("pp", seed=1, run_period="SIM-PP")
    with open_timeframes(SAMPLES / "pp_sample.root") as reader:
        assert len(reader) == 10
        first = next(iter(reader))
    assert_timeframes_equal(simulate_timeframe(cfg, 0), first)


def test_shipped_samples_are_small_and_valid():
    for name in ("pp_sample.root", "pp_sample_o2.root", "pbpb_sample.root"):
        path = SAMPLES / name
        assert path.stat().st_size < 8e6
        with open_timeframes(path) as reader:
            n = sum(1 for _ in reader)
            assert n == len(reader) and reader.n_skipped == 0


def test_console_script_entry_point_runs():
    res = subprocess.run(
        [sys.executable, "-m", "alice_dyn.cli", "--version"], capture_output=True, text=True
    )
    assert res.returncode == 0 and "alice-dyn" in res.stdout


def test_resources_find_the_shipped_samples_and_workflows():
    from alice_dyn import resources

    assert resources.data_samples_dir() == SAMPLES
    assert resources.default_sample() == SAMPLES / "pp_sample.root"
    assert resources.data_sample("pbpb_sample.root") == SAMPLES / "pbpb_sample.root"
    assert {"pp_sample.root", "pbpb_sample.root"} <= set(resources.available_samples())
    assert (resources.workflows_dir() / "tpc_reco.py").is_file()


def test_a_missing_sample_is_a_one_line_usage_error():
    from alice_dyn.framework.errors import UsageError
    from alice_dyn.resources import MissingResourceError, data_sample

    for name in ("no_such.root", "../README.md"):
        with pytest.raises(MissingResourceError) as info:
            data_sample(name)
        msg = str(info.value)
        assert isinstance(info.value, UsageError) and not isinstance(info.value, OSError)
        assert len(msg.splitlines()) == 1 and repr(name) in msg and str(SAMPLES) in msg


def test_resources_import_nothing_of_the_package_but_framework_errors():
    """The framework imports alice_dyn.resources: it must not pull physics in through it."""
    import ast

    import alice_dyn.resources as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m and m.startswith("alice_dyn")} == {
        "alice_dyn.framework.errors"
    }


def test_workflow_search_order_and_distinct_module_names(tmp_path, monkeypatch):
    from alice_dyn.framework.workflows import available_workflows, load_workflow, search_path
    from alice_dyn.resources import workflows_dir

    text = '"""Mine ({})."""\n\n\ndef define_workflow(inputs, output):\n    return []\n'
    for folder in ("env", "workflows"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "tpc_reco.py").write_text(text.format(folder))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALICE_DYN_WORKFLOWS", str(tmp_path / "env"))
    assert search_path() == [tmp_path / "env", tmp_path / "workflows", workflows_dir()]
    assert available_workflows()["tpc-reco"] == tmp_path / "env" / "tpc_reco.py"
    assert available_workflows()["tpc-copy"] == workflows_dir() / "tpc_copy.py"
    mods = [load_workflow(str(p)) for p in (tmp_path / "env" / "tpc_reco.py",
            tmp_path / "workflows" / "tpc_reco.py", workflows_dir() / "tpc_reco.py")]  # fmt: skip
    assert len({m.__name__ for m in mods}) == 3
    assert all(sys.modules[m.__name__] is m for m in mods)
    assert [m.__doc__ for m in mods[:2]] == ["Mine (env).", "Mine (workflows)."]
    assert load_workflow("tpc-reco").__doc__ == "Mine (env)."
