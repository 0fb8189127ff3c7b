"""Track network end to end: a tiny training -> model directory -> evaluation round trip, the
shipped default model, and the ``track-net`` stage in a workflow (same inputs and outputs as
the in-memory chain the training uses; budgets; flags and the O2tracknet table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import uproot

from alice_dyn.event.tracks import REJECTED
from alice_dyn.framework.executable import run_specs
from alice_dyn.io import read_timeframes
from alice_dyn.nn import ConfidencePolicy, run_dynamic
from alice_dyn.stages import data_types as dt
from alice_dyn.stages import tpc_cluster_reader_spec, tpc_cluster_transform_spec
from alice_dyn.stages.exit_budget import FULL_DEPTH
from alice_dyn.stages.tpc_tracker import tpc_tracker_spec
from alice_dyn.stages.track_net import TrackNetParam, reject_threshold, track_net_spec
from alice_dyn.tracknet.data_gen import write_mix_file
from alice_dyn.tracknet.dataset import classical_chain
from alice_dyn.tracknet.features import track_inputs
from alice_dyn.tracknet.network import DEFAULT_MODEL_DIR, load_track_net, predict

PP = Path(__file__).resolve().parent.parent / "data_samples" / "pp_sample.root"
TINY_MIX = (
    ("pbpb_periph", "pbpb", dict(centrality_min=0.5, centrality_max=0.9, collisions_per_tf=1)),
)


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_tiny_training_writes_a_complete_model_and_evaluates(tmp_path):
    from alice_dyn.tracknet.evaluate import evaluate_track_net, format_track_net
    from alice_dyn.tracknet.train import train_from_simulation, variant_dirs

    out = tmp_path / "model"
    rep = train_from_simulation(
        out, timeframes=3, seed=5, epochs=1, mix=TINY_MIX, roles=("train", "val", "calib"),
        d=16, dc=8, command="pytest", data_dir=tmp_path / "data",
    )  # fmt: skip
    dirs = variant_dirs(out)
    assert set(dirs) == {"progressive", "depth"} and dirs[rep["choice"]["primary"]] == out
    for path in dirs.values():
        cfg = json.loads((path / "config.json").read_text())
        assert set(cfg["thresholds"]) == {"25", "50", "75"}
        assert set(cfg["reject_threshold"]) == {"99", "98", "by_budget"} and cfg["level_curve"]
        assert cfg["provenance"]["command"] == "pytest" and cfg["feature_scaling"]["track_mean"]
        model, _, _ = load_track_net(path)
        assert model.variant == cfg["variant"]
    assert {"n_train", "variants", "choice", "class_weights"} <= set(rep)
    # the cached datasets are reused
    assert (tmp_path / "data" / "train.npz").exists()
    sim = tmp_path / "sim.root"
    write_mix_file(sim, 1, seed=77, mix=TINY_MIX)
    res = evaluate_track_net(sim, out)
    assert res["n_timeframes"] == 1 and res["n_tracks"] > 50
    for v in ("progressive", "depth"):
        pts = res["variants"][v]["points"]
        assert pts[0]["setting"] == "full" and len(pts) > 4
        assert pts[0]["q2pt_resolution"]["sigma_core"] is not None
    assert "99" in res["classical"]["cuts"] and res["at_equal_flops"]
    assert "track network on 1 timeframes" in format_track_net(res)
    # the uncertainty exit is swept; where tracks leave is broken down by category
    names = [p["setting"] for p in res["variants"]["progressive"]["points"]]
    assert "uncertainty_1" in names and "_exit_index" not in pts[0]
    cats = res["exit_by_category"]["budget_50"]
    n_main = sum(cats[f"occupancy_{k}"]["n"] for k in ("low", "mid", "high"))
    assert n_main == res["n_main"]
    assert cats["looper_leg"]["n"] == res["n_tracks"] - res["n_main"]
    assert sum(c["n"] for k, c in cats.items() if k.startswith("good_pt")) <= res["n_main"]
    json.dumps(res)  # plain JSON


@pytest.mark.shipped_model
def test_shipped_model_loads_runs_and_is_small():
    files = [p for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 3e6
    report = json.loads((DEFAULT_MODEL_DIR / "report.json").read_text())
    assert report["command"].startswith("alice-dyn train track")
    model, scaler, cfg = load_track_net()
    assert cfg["variant"] == report["choice"]["primary"]
    tf = read_timeframes(PP)[0]
    c = classical_chain(tf)
    inp = track_inputs(c.tracks, c.refs, c.clusters, c.bfield_t)
    x = scaler.tensors(inp)
    full = predict(model, x, inp.reco, inp.scale, keep_embedding=True)
    n = len(c.tracks)
    assert full.probs.shape == (n, 3) and np.allclose(full.probs.sum(1), 1.0, atol=1e-5)
    assert full.embedding.shape == (n, 64) and full.embedding.dtype == np.float32
    assert np.all(np.isfinite(full.refined)) and np.all(full.sigma > 0)
    dyn = predict(
        model, x, inp.reco, inp.scale, ConfidencePolicy(cfg["thresholds"]["25"]["thresholds"])
    )
    assert dyn.flops.mean() < 0.6 * full.flops.mean()
    # refined q/pT stays close to the classical fit (corrections of a few sigma at most)
    pull = (full.refined[:, 0] - inp.reco[:, 0]) / inp.scale[:, 0]
    assert np.median(np.abs(pull)) < 3.0


def test_lazy_cluster_inputs_equal_eager_and_skip_unread_rows():
    """Inputs built chunk by chunk (the stage's path) give the eager path's outputs for every
    budget, and an early exit builds fewer (track, row) slots."""
    model, scaler, cfg = load_track_net()
    c = classical_chain(read_timeframes(PP)[0])
    eager = track_inputs(c.tracks, c.refs, c.clusters, c.bfield_t)
    n = len(c.tracks)
    warm = track_inputs(c.tracks, c.refs, c.clusters, c.bfield_t, lazy_clusters=True)
    run_dynamic(model, scaler.tensors(warm), FULL_DEPTH)  # FLOPs table counted on 1 track, cached
    built = {}
    for name in ("full", "75", "25"):
        pol = (
            FULL_DEPTH
            if name == "full"
            else ConfidencePolicy(cfg["thresholds"][name]["thresholds"])
        )
        lazy = track_inputs(c.tracks, c.refs, c.clusters, c.bfield_t, lazy_clusters=True)
        a = run_dynamic(model, scaler.tensors(eager), pol, keep_embedding=True)
        b = run_dynamic(model, scaler.tensors(lazy), pol, keep_embedding=True)
        assert torch.equal(a.exit_index, b.exit_index)
        torch.testing.assert_close(b.outputs, a.outputs, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b.embedding, a.embedding, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b.flops, a.flops)
        built[name] = lazy.clusters.built
    assert built["full"] == n * 152
    assert built["25"] < 0.6 * built["full"]


def _minimal_specs():
    return [
        tpc_cluster_reader_spec([str(PP)]),
        tpc_cluster_transform_spec(),
        tpc_tracker_spec(),
        track_net_spec(),
    ]


def test_stage_equals_the_in_memory_chain_and_reports():
    summary = run_specs(_minimal_specs(), max_timeframes=2, keep_sink=True, progress=False)
    summary.raise_if_failed()
    msgs = [m for m in summary.sink if m.header.data_type == dt.TRACKNET]
    assert len(msgs) == 2
    model, scaler, cfg = load_track_net()
    for msg, tf in zip(msgs, read_timeframes(PP)[:2], strict=True):
        cols = msg.payload
        c = classical_chain(tf)
        inp = track_inputs(c.tracks, c.refs, c.clusters, c.bfield_t)
        pol = ConfidencePolicy(cfg["thresholds"]["50"]["thresholds"])
        ref = predict(model, scaler.tensors(inp), inp.reco, inp.scale, pol, keep_embedding=True)
        np.testing.assert_allclose(cols["prob_fake"], ref.probs[:, 1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cols["q2pt"], ref.refined[:, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(cols["embedding"], ref.embedding, rtol=1e-5, atol=1e-5)
        assert np.array_equal(cols["exit"], ref.exit_index)
        rej = ref.probs[:, 1] > reject_threshold(TrackNetParam(), cfg)
        assert np.array_equal(cols["rejected"].astype(bool), rej)
    reports = summary.tf_reports
    if reports:  # the framework collects pc.report values
        per = next(iter(reports.values()))["track-net"]
        assert abs(sum(per["exit_fractions"]) - 1.0) < 1e-9 and 0 < per["flops_fraction"] <= 1.1


def test_stage_budget_modes_run():
    for kv in (
        "TrackNetParam.budget=full",
        "TrackNetParam.budget=flops;TrackNetParam.flops_fraction=0.3",
        "TrackNetParam.budget=latency;TrackNetParam.max_ms_per_tf=1000",
        "TrackNetParam.budget=threshold;TrackNetParam.threshold=0.5",
    ):
        summary = run_specs(
            _minimal_specs(), max_timeframes=2, keep_sink=True, progress=False,
            config_key_values=[kv],
        )  # fmt: skip
        summary.raise_if_failed()
        cols = [m.payload for m in summary.sink if m.header.data_type == dt.TRACKNET]
        exits = np.concatenate([c["exit"] for c in cols])
        assert exits.min() >= 0 and exits.max() <= 3
        if kv.endswith("full"):
            assert np.all(exits == 3)
        elif "latency" not in kv:
            assert exits.min() == 0
    with pytest.raises(ValueError, match="budget"):
        TrackNetParam(budget="fast")


def test_tpc_reco_flags_rejected_tracks_and_writes_o2tracknet(tmp_path):
    from alice_dyn.cli import main
    from alice_dyn.qa import evaluate_tracking

    reco = tmp_path / "reco.root"
    assert main(["run", "tpc-reco", "-i", str(PP), "-o", str(reco), "--max-tf", "2"]) == 0
    with uproot.open(reco) as f:
        tn = f["DF_0/O2tracknet"].arrays(library="np")
        tr = f["DF_0/O2track_iu"].arrays(["fFlags", "fSigned1Pt"], library="np")
    assert len(tn["fTrackNetFake"]) == len(tr["fFlags"]) > 0
    rejected = (tr["fFlags"] & REJECTED) != 0
    assert np.array_equal(rejected, tn["fTrackNetRejected"] != 0)
    # classical q/pT kept in the track table, the refined one in the network's
    assert not np.array_equal(tr["fSigned1Pt"], tn["fTrackNetSigned1Pt"])
    counts = evaluate_tracking(reco, PP)["counts"]
    assert "n_rejected" in counts and counts["n_rejected"] <= counts["n_main"]
