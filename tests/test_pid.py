"""PID datasets, the dynamic PID network (shipped default and a tiny one trained here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alice_dyn.cli import main
from alice_dyn.io.aod import iter_matched
from alice_dyn.nn import ConfidencePolicy, run_dynamic
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.physics.particles import SPEED_OF_LIGHT_CM_PER_NS
from alice_dyn.pid.dataset import (
    GROUPS,
    NSIGMA_SPECIES,
    SUBSETS,
    TABLES,
    TOF_NSIGMA_COLUMNS,
    PIDDataset,
    dataset_from_reco,
    features_from_columns,
    tof_event_time_resolution,
    tof_matched,
    tof_mismatch_columns,
)
from alice_dyn.pid.evaluate import evaluate_pid_net
from alice_dyn.pid.mismatch import (
    GATE_NSIGMA,
    TOFMismatchPosterior,
    combine,
    gated,
    mismatch_weight,
    sideband_density,
    tof_nsigma,
)
from alice_dyn.pid.network import (
    DEFAULT_MODEL_DIR,
    PRIMARY,
    ReuseScaler,
    load_pid_net,
    load_pid_predictor,
    predict,
    train_pid_net,
    with_tof_mismatch,
)
from alice_dyn.pid.train import enrichment_tracks, train_all
from alice_dyn.reco.pid_nsigma import nsigma_tof

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
PP = SAMPLES / "pp_sample.root"


@pytest.fixture(scope="module")
def pp_reco(tmp_path_factory) -> Path:
    """The pp sample through tpc-reco (~35 s on a loaded machine: the tests on it are slow)."""
    reco = tmp_path_factory.mktemp("pid") / "reco.root"
    assert main(["run", "tpc-reco", "-i", str(PP), "-o", str(reco)]) == 0
    return reco


@pytest.fixture(scope="module")
def pp_dataset(pp_reco) -> PIDDataset:
    return dataset_from_reco(pp_reco, PP, tof_mismatch=True)


@pytest.mark.slow
def test_dataset_groups_masks_and_round_trip(pp_dataset, tmp_path):
    ds = pp_dataset
    assert len(ds) > 500
    for g, cols in GROUPS.items():
        assert ds.features[g].shape == (len(ds), len(cols))
        assert np.all(np.isfinite(ds.features[g]))
        assert np.all(ds.features[g][~ds.masks[g]] == 0.0)  # absent detectors: zeros + mask
    assert ds.masks["track"].all() and ds.masks["tpc"].all()
    assert 0.1 < ds.masks["tof"].mean() < 0.9
    assert set(np.unique(ds.labels)) <= set(range(5)) and np.bincount(ds.labels).argmax() == 2
    assert set(ds.subset_name()) <= set(SUBSETS)
    ds.save(tmp_path / "d.npz")
    back = PIDDataset.load(tmp_path / "d.npz")
    assert np.array_equal(back.labels, ds.labels)
    assert all(np.array_equal(back.features[g], ds.features[g]) for g in GROUPS)


def _columns(reco: dict) -> dict[str, np.ndarray]:
    return {name: reco[name] for table in TABLES.values() for name in table}


@pytest.mark.slow
def test_tof_mismatch_columns_are_consistent(pp_reco):
    n_tof = n_donor = 0
    for reco, _tf in iter_matched(pp_reco, PP, TABLES):
        c = _columns(reco)
        ok = tof_matched(c)
        if ok.sum() < 2:
            continue
        n_tof += int(ok.sum())
        t = c["fTOFSignal"].astype(np.float64)
        length = c["fLength"].astype(np.float64)
        p = c["fTPCInnerParam"].astype(np.float64)
        stored = np.column_stack([c[k] for k in TOF_NSIGMA_COLUMNS]).astype(np.float64)
        # the resolution derived from the stored n-sigma gives them back for the real time
        t0_res = tof_event_time_resolution(c)
        assert np.all(np.isfinite(t0_res[ok])) and np.all(np.isnan(t0_res[~ok]))
        again = nsigma_tof(t, length, p, np.nan_to_num(t0_res))
        assert np.allclose(again[ok], stored[ok], rtol=1e-4, atol=2e-3)
        mis, donor = tof_mismatch_columns(c, np.random.default_rng(5))
        has = donor >= 0
        n_donor += int(has.sum())
        assert not np.any(donor == np.arange(len(donor)))  # never its own time
        assert np.all(ok[donor[has]]) and not np.any(has & ~ok)  # TOF-matched only
        assert np.array_equal(mis["fTOFSignal"][has], c["fTOFSignal"][donor[has]])
        beta = length / (t[np.maximum(donor, 0)] * 1e-3 * SPEED_OF_LIGHT_CM_PER_NS)
        assert np.allclose(mis["fBeta"][has], beta[has], rtol=1e-5)
        assert np.all((mis["fBeta"][has] > 0.1) & (mis["fBeta"][has] < 1.05))  # matcher window
        ns_mis = nsigma_tof(mis["fTOFSignal"].astype(np.float64), length, p, t0_res)
        new = np.column_stack([mis[k] for k in TOF_NSIGMA_COLUMNS]).astype(np.float64)
        assert np.allclose(new[has], ns_mis[has], rtol=1e-5, atol=1e-3)
        for k in ("fTOFSignal", "fBeta", *TOF_NSIGMA_COLUMNS):  # no donor: unchanged
            assert np.array_equal(mis[k][~has], c[k][~has].astype(np.float32))
        # seeded: the same seed draws the same hits, another seed other ones
        _, donor2 = tof_mismatch_columns(c, np.random.default_rng(5))
        _, donor3 = tof_mismatch_columns(c, np.random.default_rng(6))
        assert np.array_equal(donor, donor2)
        assert ok.sum() < 5 or not np.array_equal(donor, donor3)
    assert n_tof > 100 and n_donor > 0.8 * n_tof


@pytest.mark.slow
def test_tof_mismatch_group_and_fraction(pp_dataset):
    ds = pp_dataset
    mis = ds.extra["tof_mismatch"]
    tof = ds.masks["tof"]
    assert mis.shape == ds.features["tof"].shape and np.all(np.isfinite(mis))
    assert np.array_equal(mis[~tof], ds.features["tof"][~tof])  # no TOF: nothing to replace
    changed = (mis != ds.features["tof"]).any(1)
    assert changed[tof].mean() > 0.8
    # a mismatched hit is mostly inconsistent with every hypothesis, a real one is not
    nearest = lambda x: np.abs(x[tof][:, 5:10] * 5).min(1)  # noqa: E731
    assert np.median(nearest(mis)) > 2 * np.median(nearest(ds.features["tof"]))
    before = ds.features["tof"].copy()
    aug = with_tof_mismatch(ds, 0.25, seed=7)
    assert np.array_equal(ds.features["tof"], before)  # the input is left alone
    replaced = (aug.features["tof"] != before).any(1)
    from_mis = (aug.features["tof"] == mis).all(1)
    assert np.all(from_mis | ~replaced) and not np.any(replaced & ~tof)
    k = round(0.25 * tof.sum())
    assert k - int((~changed & tof).sum()) <= replaced.sum() <= k
    for g in ("track", "tpc", "trd"):
        assert aug.features[g] is ds.features[g]
    assert np.array_equal(aug.masks["tof"], tof) and np.array_equal(aug.labels, ds.labels)
    again = with_tof_mismatch(ds, 0.25, seed=7)
    assert np.array_equal(again.features["tof"], aug.features["tof"])
    other = with_tof_mismatch(ds, 0.25, seed=8)
    assert not np.array_equal(other.features["tof"], aug.features["tof"])
    assert with_tof_mismatch(ds, 0.0, seed=7) is ds
    no_extra = PIDDataset(ds.features, ds.masks, ds.labels, ds.p, ds.nsigma)
    with pytest.raises(ValueError, match="tof_mismatch"):
        with_tof_mismatch(no_extra, 0.1, seed=7)


@pytest.mark.slow
def test_tof_mismatch_training_leaves_validation_and_scaling_natural(pp_dataset):
    torch.set_num_threads(1)
    half = len(pp_dataset) // 2
    tr, va = pp_dataset.take(np.arange(half)), pp_dataset.take(np.arange(half, len(pp_dataset)))
    args = dict(seed=2, epochs=1, d=8, depth=2)
    _, sc0, h0 = train_pid_net(tr, va, "sdn", **args)
    model, sc1, h1 = train_pid_net(tr, va, "sdn", tof_mismatch_fraction=0.3, **args)
    assert sc1.mean == sc0.mean and sc1.std == sc0.std  # scaling fitted on the natural data
    assert h1["tof_mismatch"] == {"fraction": 0.3} and "tof_mismatch" not in h0
    assert h1["joint"]["loss"] != h0["joint"]["loss"]  # it trained on other inputs

    def val_loss(ds: PIDDataset) -> float:
        with torch.no_grad():
            outs = model.forward_all(sc1.tensors(ds), raw=True)
            y = torch.as_tensor(ds.labels)
            return float(sum(model.objective.loss(o, y) for o in outs))

    # early stopping saw the natural validation tracks, not mismatched ones
    assert val_loss(va) == pytest.approx(h1["joint"]["best_val_loss"], rel=1e-4)
    assert val_loss(with_tof_mismatch(va, 1.0, seed=2)) != pytest.approx(val_loss(va), rel=1e-3)


@pytest.mark.slow
@pytest.mark.shipped_model
def test_shipped_model_beats_nsigma_and_handles_missing_detectors(pp_dataset):
    model, scaler, cfg = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    assert set(cfg["thresholds"]) == {"25", "50", "75"}
    assert (
        "alice-dyn train pid"
        in json.loads((DEFAULT_MODEL_DIR / "report.json").read_text())["command"]
    )
    probs, exits, flops = predict(model, scaler, pp_dataset)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    acc = np.mean(probs.argmax(1) == pp_dataset.labels)
    nsigma = np.mean(pp_dataset.nsigma == pp_dataset.labels)
    assert acc > nsigma + 0.02
    assert np.all(exits == model.num_exits - 1)
    # the same tracks with TOF and TRD removed: still valid predictions (one model, any subset)
    blind = pp_dataset.take(np.arange(len(pp_dataset)))
    for g in ("tof", "trd"):
        blind.masks[g] = np.zeros_like(blind.masks[g])
        blind.features[g] = np.zeros_like(blind.features[g])
    p2, _, _ = predict(model, scaler, blind)
    assert np.allclose(p2.sum(1), 1.0, atol=1e-5)
    has_tof = pp_dataset.masks["tof"]
    assert np.mean(p2.argmax(1)[has_tof] == pp_dataset.labels[has_tof]) < np.mean(
        probs.argmax(1)[has_tof] == pp_dataset.labels[has_tof]
    )  # TOF information helps where it exists
    # early exits spend fewer FLOPs
    _, exits50, flops50 = predict(
        model, scaler, pp_dataset, ConfidencePolicy(cfg["thresholds"]["50"]["thresholds"])
    )
    assert flops50.mean() < 0.75 * flops.mean() and exits50.min() < model.num_exits - 1


@pytest.mark.slow
def test_train_evaluate_round_trip_with_a_tiny_model(pp_dataset, tmp_path):
    torch.set_num_threads(1)
    report = train_all(
        pp_dataset, tmp_path / "m", seed=3, epochs=2, d=16, depth=2, command="test",
        tof_mismatch_fraction=0.1,
    )  # fmt: skip
    assert report["n_train"] + report["n_val"] + report["n_calibration"] == len(pp_dataset)
    assert report["tof_mismatch"] == {"fraction": 0.1, "seed": 3}
    for net in ("sdn", "ztw", "incremental"):
        cfg = json.loads((tmp_path / "m" / net / "config.json").read_text())
        assert cfg["tof_mismatch"] == {"fraction": 0.1, "seed": 3}
        if net != "incremental":  # the mismatch density measured on the training split
            assert cfg["tof_mismatch_posterior"] == report["tof_mismatch_posterior"]
    post = report["tof_mismatch_posterior"]
    assert post["gate_nsigma"] == GATE_NSIGMA and post["measured"]["method"] == "sideband"
    assert post["density"] == pytest.approx(
        post["measured"]["n_sideband"] / (post["measured"]["n_tof"] * 9.0)
    )
    for sub in (
        "ztw/config.json",
        "ztw/model.safetensors",
        "sdn/config.json",
        "baselines/subset_mlps.json",
        "incremental/config.json",
        "incremental/model.safetensors",
    ):
        assert (tmp_path / "m" / sub).exists()
    r = evaluate_pid_net(pp_dataset, tmp_path / "m")
    for key in ("accuracy_full", "curve", "per_subset", "nsigma_accuracy", "budgets", "at_flops"):
        assert key in r
    methods = {c["method"] for c in r["curve"]}
    assert {"sdn", "ztw", "full"} <= methods
    assert all(0 < c["flops_fraction"] <= 1.0 + 1e-9 for c in r["curve"])
    assert set(r["per_subset"]) == set(SUBSETS)
    assert all({"n", "accuracy", "accuracy_subset_mlp"} <= set(v) for v in r["per_subset"].values())
    inc = r["incremental"]
    assert inc["n_tracks"] == int(np.sum(pp_dataset.masks["tof"] | pp_dataset.masks["trd"]))
    assert 0 < inc["flops_ratio"] < 1 and inc["update_flops"] < inc["full_pass_flops"]


@pytest.mark.slow
@pytest.mark.shipped_model
def test_incremental_update_from_the_cached_first_pass(pp_dataset):
    from alice_dyn.pid import incremental as inc

    model, scaler, _ = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    upd = inc.load_incremental(DEFAULT_MODEL_DIR / "incremental")
    late = pp_dataset.masks["tof"] | pp_dataset.masks["trd"]
    sub = pp_dataset.take(np.flatnonzero(late))
    x = scaler.tensors(sub)
    first = inc.first_pass(model, x)
    # the cache is the TPC-only embedding at the exit each track left (here: the last block)
    with torch.no_grad():
        h_last = list(model.forward_intermediates(inc.tpc_only(x)))[-1]
    torch.testing.assert_close(first.embedding, h_last)
    y = sub.labels
    acc_first = np.mean(first.outputs.argmax(1).numpy() == y)
    acc_upd = np.mean(inc.update(upd, first, x).argmax(1).numpy() == y)
    with torch.no_grad():
        acc_full = np.mean(model(x, mode="one", exit=-1).argmax(1).numpy() == y)
    assert acc_upd > acc_first + 0.01  # the late detectors are used
    assert acc_upd > acc_full - 0.015  # close to recomputing everything
    cost = inc.update_cost(model, upd, x)
    assert cost["ratio"] <= 0.30  # the target: <= 30% of a full pass


@pytest.mark.slow
def test_incremental_update_with_the_tof_mismatch_hypothesis(pp_dataset):
    """Gated tracks get a second update from the same cache with TOF marked absent, combined
    with the first as the network's own passes are; the others keep the plain update."""
    from alice_dyn.pid import incremental as inc
    from alice_dyn.pid.mismatch import TOFMismatchPosterior, combine, gated, tof_nsigma

    model, scaler, cfg = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    upd = inc.load_incremental(DEFAULT_MODEL_DIR / "incremental")
    sub = pp_dataset.take(np.flatnonzero(pp_dataset.masks["tof"] | pp_dataset.masks["trd"]))
    x = scaler.tensors(sub)
    first = inc.first_pass(model, x)
    plain = inc.update(upd, first, x).numpy()
    posterior = TOFMismatchPosterior.from_config(cfg)
    assert posterior is not None
    p, second = inc.update_with_mismatch(upd, first, x, sub, posterior)
    rows = gated(sub, posterior.gate_nsigma)
    np.testing.assert_array_equal(second, rows)
    assert rows.any() and not rows.all()
    np.testing.assert_allclose(p[~rows], plain[~rows], atol=1e-6)
    # the second update by hand: TOF absent, TRD as it arrived, same embedding and exit
    late = inc.late_inputs(x)
    late = {k: v[torch.as_tensor(rows)] for k, v in late.items()}
    late["tof"], late["tof_mask"] = (
        torch.zeros_like(late["tof"]),
        torch.zeros_like(late["tof_mask"]),
    )
    with torch.no_grad():
        p_wo = torch.softmax(
            upd(first.embedding[rows], first.exit_index[rows], late), dim=1
        ).numpy()
    want = combine(plain[rows].astype(np.float64), p_wo, tof_nsigma(sub)[rows], posterior.density)
    np.testing.assert_allclose(p[rows], want, atol=1e-5)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    # no posterior: the update as it is
    p0, none = inc.update_with_mismatch(upd, first, x, sub, None)
    np.testing.assert_allclose(p0, plain, atol=1e-6)
    assert not none.any()


@pytest.mark.slow
@pytest.mark.parametrize("budget", ["full", "50", "flops"])
def test_pid_net_stage_budgets(tmp_path, budget, pp_dataset):
    import uproot

    out = tmp_path / "reco.root"
    kv = f"PIDNetParam.budget={budget};PIDNetParam.flops_fraction=0.3"
    assert (
        main(
            [
                "run",
                "tpc-reco",
                "-i",
                str(SAMPLES / "pbpb_sample.root"),
                "-o",
                str(out),
                "--configKeyValues",
                kv,
            ]
        )
        == 0
    )
    with uproot.open(out) as f:
        tables = [f[f"DF_{n}/O2pidnet"].arrays(library="np") for n in (0, 1)]
    model, scaler, _ = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    # the FLOPs of a track that leaves at the last exit
    full = exit_flops_for(model, scaler.tensors(pp_dataset.take(np.arange(1)))).exit_flops[-1]
    n_second = []
    for t in tables:
        # tracks whose TOF time fits no species also ran without TOF (alice_dyn.pid.mismatch)
        frac = t["fPidNetFlops"].mean() / full
        probs = np.column_stack([t[f"fPidNet{s}"] for s in ("El", "Mu", "Pi", "Ka", "Pr")])
        assert np.allclose(probs.sum(1), 1.0, atol=1e-4)
        if budget == "full":
            second = t["fPidNetFlops"] > 1.5 * full
            assert np.all(t["fPidNetFlops"][~second] == pytest.approx(full))
            assert np.all(t["fPidNetFlops"][second] == pytest.approx(2 * full))
            n_second.append(int(second.sum()))
            assert n_second[-1] < 0.1 * len(second)
        elif budget == "50":
            assert 0.35 < frac < 0.65
        else:  # run-time controller keeps every timeframe under 30% of the FLOPs (+ margin)
            assert frac < 0.33
    if budget == "full":
        assert sum(n_second) > 0, n_second


@pytest.mark.slow
def test_exit_budget_follows_the_timeframe_deadline(pp_dataset):
    """``latency`` mode: the time allowed comes from ``pc.timing`` (deadline, backlog) and the
    stage's keys; tight time lowers the FLOPs, ample time gives the full network back."""
    from alice_dyn.framework.online import FakeClock, TimeframeTiming
    from alice_dyn.stages.exit_budget import ExitBudget
    from alice_dyn.stages.pid_net import PIDNetParam

    class StubContext:
        def __init__(self, timing):
            self.timing = timing
            self.reports: dict = {}

        def report(self, key, value):
            self.reports[key] = value

    model, scaler, cfg = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    x = scaler.tensors(pp_dataset)
    clock = FakeClock()
    prm = PIDNetParam(budget="latency", max_ms_per_tf=1e9, reserve_ms=10.0)
    budget = ExitBudget(prm, model, cfg)
    timing = TimeframeTiming(clock.now(), budget_ms=100.0, backlog=2, clock=clock)
    assert budget.allowed_ms(StubContext(timing)) == 0.0  # a queue behind it: cheapest exits
    timing.backlog = 0
    assert budget.allowed_ms(StubContext(timing)) == pytest.approx(90.0)
    offline = StubContext(TimeframeTiming(clock.now(), clock=clock))
    assert budget.allowed_ms(offline) == 1e9  # no deadline: the stage's own budget only
    first = budget.run(offline, x)  # no cost model yet: the full network
    assert first.exit_index.eq(model.num_exits - 1).all()
    assert sum(offline.reports["exit_fractions"]) == pytest.approx(1.0)
    late = StubContext(TimeframeTiming(clock.now() - 1.0, budget_ms=100.0, clock=clock))
    tight = budget.run(late, x)  # already past its deadline: the cheapest exits
    assert tight.flops_fraction < 0.5 * first.flops_fraction
    assert late.reports["allowed_ms"] < 0
    relaxed = StubContext(TimeframeTiming(clock.now(), budget_ms=1e6, clock=clock))
    again = budget.run(relaxed, x)  # load dropped: back to full depth
    assert again.exit_index.eq(model.num_exits - 1).all()
    # the load: the chain (service_ms) must fit target_load x the arrival interval; the rest
    # of the chain is service_ms less this stage's own recent time
    assert budget.own_ms is not None and budget.own_ms > 0
    for period, service, cut in ((1000.0, 100.0, False), (100.0, 95.0, True)):
        t = TimeframeTiming(clock.now(), budget_ms=1e6, clock=clock, period_ms=period,
                            service_ms=service)  # fmt: skip
        ctx = StubContext(t)
        expect = 0.9 * period - max(service - budget.own_ms, 0.0)
        assert budget.allowed_ms(ctx) == pytest.approx(expect, rel=1e-6)
        res = budget.run(ctx, x)
        assert ctx.reports["load_ms"] == pytest.approx(expect, rel=0.2)
        full = res.exit_index.eq(model.num_exits - 1).all()
        assert bool(full) is not cut  # a chain that no longer fits between arrivals: cheaper
    with pytest.raises(ValueError, match=r"PIDNetParam\.target_load"):
        PIDNetParam(target_load=1.5)


def _ao2d_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random AO2D columns of the tables the PID network reads (some tracks without TOF, TRD)."""
    rng = np.random.default_rng(seed)
    c = {
        "fSigned1Pt": rng.uniform(-3, 3, n), "fTgl": rng.normal(0, 0.5, n),
        "fTPCInnerParam": rng.uniform(0.2, 3, n), "fTPCSignal": rng.uniform(30, 120, n),
        "fTPCSignalQmax": rng.uniform(10, 60, n), "fTPCNClsFound": rng.integers(60, 152, n),
        "fTPCChi2NCl": rng.uniform(0.5, 4, n), "fTRDSignal": rng.uniform(0, 3, n),
        "fTRDPattern": rng.integers(0, 64, n), "fTOFSignal": rng.uniform(1e4, 3e4, n),
        "fLength": rng.uniform(350, 500, n), "fBeta": rng.uniform(0.3, 1.0, n),
        "fHasTOF": (rng.random(n) < 0.6).astype(np.uint8),
        "fHasTRD": (rng.random(n) < 0.3).astype(np.uint8),
    }  # fmt: skip
    for s in NSIGMA_SPECIES:
        c[f"fTPCNSigma{s}"] = rng.normal(0, 3, n)
        c[f"fTOFNSigma{s}"] = rng.normal(0, 5, n)
    return {k: np.asarray(v, np.float32) if v.dtype == np.float64 else v for k, v in c.items()}


def test_pid_predictor_reads_ao2d_columns_as_the_dataset_path_does():
    """The façade the pid-net stage calls: the inputs and probabilities of the dataset path
    (features_from_columns -> PIDDataset -> scaler), the model's own TOF-mismatch posterior; the
    network on the track embedding asks for the embedding and checks its rows."""
    n = 64
    cols = _ao2d_columns(n)
    net = load_pid_predictor()
    feats, masks = features_from_columns(cols)
    ds = PIDDataset(feats, masks, np.zeros(n, np.int64), cols["fTPCInnerParam"], np.zeros(n))
    x, ref = net.inputs_from_columns(cols), net.scaler.tensors(ds)
    assert x.keys() == ref.keys() and all(torch.equal(x[k], ref[k]) for k in x)
    assert net.mismatch is not None and net.scaler.embedding_group() is None
    res = net.run_on_columns(cols, lambda inp: run_dynamic(net.model, inp, ConfidencePolicy(2.0)))
    probs, exits, flops = predict(net.model, net.scaler, ds, None, net.mismatch)
    assert np.array_equal(res.probs, probs) and np.array_equal(res.exit_index, exits)
    assert np.array_equal(res.flops, flops)
    reuse = load_pid_predictor(reuse=True)
    assert isinstance(reuse.scaler, ReuseScaler) and reuse.scaler.embedding_group() == "trackemb"
    d = len(reuse.scaler.emb_mean)
    with pytest.raises(ValueError, match="embedding"):
        reuse.inputs_from_columns(cols)
    with pytest.raises(ValueError, match="3 rows for 64 tracks"):
        reuse.inputs_from_columns(cols, np.zeros((3, d)))
    assert reuse.inputs_from_columns(cols, np.ones((n, d)))["trackemb"].shape == (n, d)


def test_network_stage_groups_share_the_exit_budget_fields_with_their_own_defaults():
    """PIDNetParam and TrackNetParam extend ExitBudgetParam: same keys as before, each group's
    defaults, every shared value checked when the group is made (a one-line ConfigError)."""
    import dataclasses

    from alice_dyn.framework.config import ConfigError, ConfigStore
    from alice_dyn.stages.exit_budget import ExitBudgetParam
    from alice_dyn.stages.pid_net import PIDNetParam
    from alice_dyn.stages.track_net import TrackNetParam

    shared = [f.name for f in dataclasses.fields(ExitBudgetParam)]
    assert len(shared) == 8
    assert [f.name for f in dataclasses.fields(PIDNetParam)] == [
        *shared, "reuse_track_embedding", "tof_mismatch"]  # fmt: skip
    assert [f.name for f in dataclasses.fields(TrackNetParam)] == [*shared, "reject_threshold"]
    pid, trk = PIDNetParam(), TrackNetParam()
    assert (pid.flops_fraction, pid.max_ms_per_tf, pid.reserve_ms) == (0.35, 5.0, 15.0)
    assert (trk.flops_fraction, trk.max_ms_per_tf, trk.reserve_ms) == (0.5, 50.0, 30.0)
    assert (pid.budget, pid.threshold, pid.target_load, pid.threads, pid.model) == (
        "50", 0.9, 0.9, 1, "")  # fmt: skip
    bad = {
        "PIDNetParam.budget=fast": r"PIDNetParam\.budget='fast': must be one of full, 25",
        "PIDNetParam.flops_fraction=-2": r"PIDNetParam\.flops_fraction=-2\.0: must be in \(0, 1\]",
        "TrackNetParam.threshold=1.5": r"TrackNetParam\.threshold=1\.5: must be in \[0, 1\]",
        "TrackNetParam.threshold=nan": r"TrackNetParam\.threshold=nan",
        "PIDNetParam.max_ms_per_tf=0": r"max_ms_per_tf=0\.0: must be > 0",
        "TrackNetParam.reserve_ms=-1": r"reserve_ms=-1\.0: must be >= 0",
        "PIDNetParam.target_load=0": r"target_load=0\.0: must be in \(0, 1\]",
        "TrackNetParam.threads=0": r"TrackNetParam\.threads=0: must be >= 1",
    }
    for kv, message in bad.items():
        store = ConfigStore(["PIDNetParam", "TrackNetParam"])
        store.apply_key_values(kv)
        with pytest.raises(ConfigError, match=message):
            store.as_dict()
    ok = ConfigStore(["PIDNetParam", "TrackNetParam"])
    ok.apply_key_values("PIDNetParam.flops_fraction=1;TrackNetParam.threshold=0")
    assert ok.get("PIDNetParam").flops_fraction == 1.0


def test_an_invalid_budget_key_stops_the_run_in_one_line(tmp_path, capsys):
    out = tmp_path / "x.root"
    kv = "PIDNetParam.budget=flops;PIDNetParam.flops_fraction=-2"
    args = ["run", "tpc-reco", "-i", str(PP), "-o", str(out), "--max-tf", "1"]
    assert main([*args, "--configKeyValues", kv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["alice-dyn run: error: PIDNetParam.flops_fraction=-2.0: must be in (0, 1]"]


@pytest.mark.slow
def test_pid_reuses_the_track_network_embedding(tmp_path):
    """Training data keep the track network's embedding; the reusing network and its control
    train, compare and run in the pid-net stage on the embedding track-net passes on."""
    import uproot

    from alice_dyn.pid import reuse
    from alice_dyn.pid.data_gen import make_pid_dataset
    from alice_dyn.tracknet.network import track_embedding_dim

    torch.set_num_threads(1)
    d = track_embedding_dim()
    ds = make_pid_dataset(tmp_path / "data", 2, system="pp", seed=11, embedding_dim=d)
    emb = ds.extra["trackemb"]
    assert emb.shape == (len(ds), d) and np.isfinite(emb).all() and emb.std() > 0
    back = PIDDataset.load(tmp_path / "data" / "pid.npz")
    assert np.array_equal(back.extra["trackemb"], emb)
    report = reuse.train_reuse_all(ds, tmp_path / "m", seed=2, epochs=2, command="test")
    assert report["reuse"]["flops_per_track"] > report["reuse_control"]["flops_per_track"]
    r_model, r_scaler, r_cfg = reuse.load_reuse(tmp_path / "m" / "reuse")
    assert {"25", "50", "75"} <= set(r_cfg["thresholds"]) and r_cfg["level_curve"]
    control_cfg = reuse.load_reuse(tmp_path / "m" / "reuse_control")[2]
    post = r_cfg["tof_mismatch_posterior"]  # the same sideband density as the standalone net
    assert post == control_cfg["tof_mismatch_posterior"] and post["measured"]["n_tof"] > 0
    st_model, st_scaler, _ = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    cmp_ = reuse.compare_reuse(
        ds, (st_model, st_scaler), (r_model, r_scaler),
        reuse.load_reuse(tmp_path / "m" / "reuse_control")[:2],
    )  # fmt: skip
    assert cmp_["flops_saving"] > 0.5  # one block instead of six
    out = tmp_path / "reco.root"
    kv = f"PIDNetParam.model={tmp_path / 'm'};PIDNetParam.reuse_track_embedding=true"
    assert main(["run", "tpc-reco", "-i", str(PP), "-o", str(out), "--configKeyValues", kv]) == 0
    with uproot.open(out) as f:
        t = f["DF_0/O2pidnet"].arrays(library="np")
    assert np.allclose(sum(t[f"fPidNet{s}"] for s in ("El", "Mu", "Pi", "Ka", "Pr")), 1, atol=1e-4)


def _toy(labels, p, nsigma) -> PIDDataset:
    n = len(labels)
    return PIDDataset(
        {g: np.zeros((n, len(c)), np.float32) for g, c in GROUPS.items()},
        {g: np.ones(n, bool) for g in GROUPS},
        np.asarray(labels, np.int64),
        np.asarray(p, np.float32),
        np.asarray(nsigma, np.int8),
    )


def test_equal_efficiency_comparison_is_exact_and_skips_tiny_bins():
    """The network keeps exactly as many true tracks as n-sigma (the tightest threshold that
    does), bins with too few true tracks or no n-sigma hit are listed, not compared."""
    from alice_dyn.pid.vs_nsigma import MIN_TRUE_COMPARED, at_equal_efficiency

    rng = np.random.default_rng(0)
    n = 4000
    labels = rng.choice(5, n, p=[0.02, 0.01, 0.77, 0.1, 0.1])
    p = np.full(n, 0.45)  # every track in the 0.4-0.5 bin
    p[:200] = 1.2  # a second bin (1-1.5 GeV/c) ...
    labels[:200] = 2
    labels[:5] = 0  # ... with 5 electrons only: not compared
    nsigma = np.where(rng.random(n) < 0.8, labels, (labels + 1) % 5)
    probs = np.full((n, 5), 0.05)
    probs[np.arange(n), labels] = 0.8 * rng.random(n)  # imperfect ranking
    probs = probs / probs.sum(1, keepdims=True)
    eq = at_equal_efficiency(probs, _toy(labels, p, nsigma))
    e_bins = {b["p_lo"]: b for b in eq["e"]["bins"]}
    assert not e_bins[1.0]["compared"] and "fewer than" in e_bins[1.0]["reason"]
    assert e_bins[1.0]["n_true"] < MIN_TRUE_COMPARED
    assert not e_bins[0.2]["compared"]  # empty bin
    b = e_bins[0.4]
    assert b["compared"] and b["n_true"] >= MIN_TRUE_COMPARED
    assert b["efficiency_network"] == pytest.approx(b["efficiency"])  # distinct scores: exact
    assert b["diff"] == pytest.approx(b["purity"] - b["purity_nsigma"])
    assert b["diff_err"] > 0 and b["diff_err_bootstrap"] > 0
    for v in eq.values():
        assert v["n_bins_compared"] + v["n_bins_not_compared"] == len(v["bins"])
        assert v["n_bins_network_as_pure"] <= v["n_bins_within_stat_error"] <= v["n_bins_compared"]
    # n-sigma at 100% efficiency: the network keeps every true track too; a perfect ranking
    # is then at least as pure, whatever n-sigma's purity
    ns_all = np.where(labels == 0, 0, nsigma)
    perfect = np.eye(5)[labels] * 0.9 + 0.02
    eq2 = at_equal_efficiency(perfect, _toy(labels, p, ns_all))
    b2 = {b["p_lo"]: b for b in eq2["e"]["bins"]}[0.4]
    assert b2["efficiency"] == 1.0 and b2["efficiency_network"] == 1.0 and b2["purity"] == 1.0


def test_oversampling_and_the_prior_shift_back():
    from alice_dyn.pid.network import (
        oversample,
        oversampling_factors,
        pid_net,
        shift_head_biases,
    )

    labels = np.array([0] * 10 + [1] * 5 + [2] * 900 + [3] * 50 + [4] * 35)
    f = oversampling_factors(labels, 0.05)
    assert f == [5, 8, 1, 1, 1]  # 1% -> x5; 0.5% -> x10, capped at 8; common classes kept
    ds = _toy(labels, np.ones(len(labels)), labels)
    assert np.bincount(oversample(ds, f).labels).tolist() == [50, 40, 900, 50, 35]
    torch.manual_seed(0)
    model = pid_net(method="sdn", d=8, depth=2).eval()
    x = {g: torch.randn(4, len(c)) for g, c in GROUPS.items()}
    x.update({g + "_mask": torch.ones(4) for g in GROUPS})
    with torch.no_grad():
        before = model.forward_all(x)
        shift_head_biases(model, f)
        after = model.forward_all(x)
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(a - b, torch.log(torch.tensor(f, dtype=a.dtype)).expand_as(a))
    with pytest.raises(ValueError):
        shift_head_biases(pid_net(method="ztw", d=8, depth=2), f)


def _without(ds: PIDDataset, groups: tuple[str, ...]) -> PIDDataset:
    out = ds.take(np.arange(len(ds)))
    for g in groups:
        out.masks[g] = np.zeros_like(out.masks[g])
        out.features[g] = np.zeros_like(out.features[g])
    return out


@pytest.mark.slow
def test_tof_mismatch_posterior_combines_two_passes_of_one_batch(pp_dataset):
    """Gated tracks (TOF fits no species within 3 sigma) get (1 - w) P(with TOF) + w P(without
    TOF) from one batch; the others keep the network's probabilities; FLOPs count both."""
    model, scaler, cfg = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    post = TOFMismatchPosterior.from_config(cfg)
    assert post is not None and 0 < post.density < 1e-2
    # the TOF mismatch templates make gated tracks (another track's TOF time)
    ds = pp_dataset.take(np.arange(len(pp_dataset)))
    tof = np.flatnonzero(ds.masks["tof"])[::3]
    ds.features["tof"][tof] = ds.extra["tof_mismatch"][tof]
    rows = gated(ds)
    ns = tof_nsigma(ds)
    assert rows.sum() > 20 and np.all(np.abs(ns[rows]).min(1) > GATE_NSIGMA)
    assert not np.any(rows & ~ds.masks["tof"])
    p_with, _, fl_with = predict(model, scaler, ds)
    p_without, _, fl_without = predict(model, scaler, _without(ds, ("tof",)))
    p, exits, fl = predict(model, scaler, ds, mismatch=post)
    np.testing.assert_allclose(p[~rows], p_with[~rows], atol=1e-6)
    ref = combine(p_with[rows], p_without[rows], ns[rows], post.density)
    np.testing.assert_allclose(p[rows], ref, atol=1e-5)
    np.testing.assert_allclose(fl, fl_with + np.where(rows, fl_without, 0.0))
    assert np.all(exits == model.num_exits - 1)
    # the mismatch is what the gated tracks mostly are: the term helps them on average
    y = ds.labels[rows]
    assert np.mean(p[rows].argmax(1) == y) >= np.mean(p_with[rows].argmax(1) == y)
    # with early exits the second pass exits early too, under the same policy
    pol = ConfidencePolicy(cfg["thresholds"]["50"]["thresholds"])
    p50, _, fl50 = predict(model, scaler, ds, pol, post)
    assert np.allclose(p50.sum(1), 1.0, atol=1e-5) and fl50.mean() < 0.75 * fl.mean()


def test_tof_mismatch_weight_and_sideband_density():
    # TPC says pion; a TOF time at the pion's expectation: a match; 10 sigma off all: mismatch
    p_without = np.array([[0.01, 0.01, 0.96, 0.01, 0.01]] * 2)
    ns = np.array([[4.0, 1.0, 0.0, -5.0, -9.0], [10.0] * 5])
    w = mismatch_weight(p_without, ns, 1e-4)
    assert w[0] == pytest.approx(
        1e-4 / (1e-4 + 0.96 / np.sqrt(2 * np.pi) + 0.01 * 0.24197 + 0.01 * 0.00013), rel=1e-3
    )
    assert w[0] < 1e-3 and w[1] > 0.999
    # the density from the sidebands: true-species |n| in [5, 9.5) per TOF track per unit n
    n = 1000
    own = np.full(n, 0.4)
    own[:20] = 7.0  # sideband (both signs)
    own[20:30] = -6.0
    own[30:40] = 10.0  # the clip: not counted
    labels = np.arange(n) % 5
    tof = np.zeros((n, 10), np.float32)
    tof[:, 5:10] = 2.0  # other hypotheses: 10 sigma
    tof[np.arange(n), 5 + labels] = own / 5.0
    has_tof = np.ones(n, bool)
    has_tof[-100:] = False  # without TOF: ignored
    ds = PIDDataset(
        {"track": np.zeros((n, 6)), "tpc": np.zeros((n, 8)), "tof": tof, "trd": np.zeros((n, 2))},
        {"track": np.ones(n, bool), "tpc": np.ones(n, bool), "tof": has_tof,
         "trd": np.zeros(n, bool)},
        labels, np.ones(n), np.zeros(n, np.int8),
    )  # fmt: skip
    post, info = sideband_density(ds)
    assert info["n_tof"] == 900 and info["n_sideband"] == 30
    assert post.density == pytest.approx(30 / (900 * 2 * 4.5))
    assert info["fraction_beyond_sideband_start"] == pytest.approx(40 / 900)
    with pytest.raises(ValueError, match="no TOF"):
        sideband_density(ds.take(np.arange(900, 1000)))


@pytest.mark.slow
def test_enrichment_adds_rare_tracks_and_shifts_the_prior_back(pp_dataset, tmp_path):
    """Electrons and muons of an enriched simulation join the SDN network's training and
    early-stopping data; the logits are shifted back by log(class count with / without)."""
    torch.set_num_threads(1)
    natural = pp_dataset.take(np.arange(len(pp_dataset)))
    natural.extra = {}
    enriched = pp_dataset  # any labelled tracks: only its electrons and muons are taken
    etr, eva = enrichment_tracks(enriched, 0.3, seed=4)
    n_rare = int(np.sum(enriched.labels <= 1))
    assert len(etr) + len(eva) == n_rare and set(np.unique(etr.labels)) <= {0, 1}
    assert len(eva) == int(0.3 * n_rare) and not etr.extra
    tr, va = (
        natural.take(np.arange(0, len(natural), 2)),
        natural.take(np.arange(1, len(natural), 2)),
    )
    args = dict(seed=1, epochs=1, d=16, depth=2)
    _, _, hist = train_pid_net(tr, va, "sdn", enrich=(etr, eva), **args)
    before = np.bincount(tr.labels, minlength=5)
    expect = (before + np.bincount(etr.labels, minlength=5)) / np.maximum(before, 1)
    np.testing.assert_allclose(hist["enrichment"]["factors"], expect)
    assert hist["enrichment"]["factors"][2:] == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="SDN"):
        train_pid_net(tr, va, "ztw", enrich=(etr, eva), **args)
    with pytest.raises(ValueError, match="extra"):
        train_pid_net(pp_dataset, va, "sdn", enrich=(etr, eva), **args)
    report = train_all(natural, tmp_path / "m", seed=3, epochs=1, d=16, depth=2, enriched=enriched)
    assert report["enriched"]["n_train"] + report["enriched"]["n_val"] == n_rare
    sdn = json.loads((tmp_path / "m" / "sdn" / "config.json").read_text())
    ztw = json.loads((tmp_path / "m" / "ztw" / "config.json").read_text())
    assert sdn["enrichment"]["factors"][0] > 1 and "enrichment" not in ztw
