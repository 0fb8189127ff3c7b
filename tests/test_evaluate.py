"""Tracking and PID evaluation against MC truth (alice_dyn.qa.evaluate_*, alice_dyn.io.aod,
alice_dyn.plotting.tracking|pid).

The truth is a small simulated pp file; the RECO file is an AO2D-like file written here with
known tracks built from the truth: perfect, missed, clone, fake (labelled and unlabelled),
looper leg, pT/dE/dx/beta smearing, TOF (mis)matches and PID decisions. The expected numbers are
counted from that construction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import uproot

from alice_dyn.io import BadInputError, TimeframeWriter, read_timeframes
from alice_dyn.io.aod import iter_matched
from alice_dyn.physics.particles import MASSES_GEV, species_index
from alice_dyn.plotting.pid import make_pid_plots
from alice_dyn.plotting.tracking import make_tracking_plots
from alice_dyn.qa.accumulate import Dist
from alice_dyn.qa.evaluate_pid import PID_TABLES, evaluate_pid, format_pid, pid_evaluation
from alice_dyn.qa.evaluate_tracking import (
    TRACK_TABLES,
    evaluate_tracking,
    format_tracking,
    tracking_evaluation,
)
from alice_dyn.sim import SimConfig, simulate_timeframe

TRUTH_TF_IDS = (3, 8, 5)
RECO_TF_IDS = (8, 3)  # out of the truth's order; tf 5 not reconstructed
SIGMA_PT, SIGMA_DEDX, SIGMA_BETA = 0.02, 0.06, 0.01


def _kin(tf):
    mc = tf.particles
    px, py, pz = (np.asarray(a, np.float64) for a in (mc.px_gev, mc.py_gev, mc.pz_gev))
    pt = np.hypot(px, py)
    return pt, np.hypot(pt, pz), np.arcsinh(pz / pt), species_index(mc.pdg).astype(np.int64)


def build_tracks(tf, seed: int) -> tuple[dict, dict]:
    """Track tables for ``tf`` and the construction facts (per track and counters)."""
    rng = np.random.default_rng(seed)
    pt, p, eta, sp = _kin(tf)
    mc = tf.particles
    n_mc = len(mc)
    findable = (np.abs(eta) < 0.9) & (pt > 0.1) & (np.asarray(mc.n_tpc_clusters) >= 70)
    hit = np.full(n_mc, np.nan)
    hit[tf.tof.label[tf.tof.label >= 0]] = tf.tof.time_ps[tf.tof.label >= 0]
    t0 = tf.collisions.t0_meas_ps[mc.collision]
    rows: list[dict] = []
    facts = dict(findable=int(findable.sum()), found=0, findable_hi=0, found_hi=0)

    def track(i, *, kind, flags=0, mask=0, ncls=140):
        r = rng.normal(0.0, SIGMA_PT)
        q = int(mc.charge[i]) if i >= 0 else 1
        pti = pt[i] if i >= 0 else 0.5
        row = dict(
            kind=kind, label=i, flags=flags, mask=mask, ncls=ncls, rel=r,
            s1pt=q / (pti * (1.0 + r)), tgl=np.sinh(eta[i]) if i >= 0 else 0.0,
            pin=p[i] if i >= 0 else 0.5, dedx=50.0 * (1.0 + SIGMA_DEDX * rng.normal()),
            has_tof=0, tof=-999.0, beta=-1.0, pid=-1,
        )  # fmt: skip
        if i >= 0:
            s = sp[i]
            row["pid"] = 2 if s == 5 else (s + 1) % 5 if i % 6 == 5 else -1 if i % 8 == 7 else s
            if kind in ("good", "clone") and (np.isfinite(hit[i]) or i % 11 == 0):
                row["has_tof"] = 0 if i % 13 == 0 and kind == "good" else 1
                shift = 3000.0 if i % 5 == 4 else 0.0
                t = hit[i] if np.isfinite(hit[i]) else t0[i] + 12345.0
                row["tof"] = t - t0[i] + 30.0 * rng.normal() + shift
                m = MASSES_GEV[max(s, 0)]
                row["beta"] = p[i] / math.hypot(p[i], m) + SIGMA_BETA * rng.normal()
        rows.append(row)

    for i in range(n_mc):
        if findable[i] and pt[i] > 0.3:
            facts["findable_hi"] += 1
        if findable[i]:
            cat = i % 10
            if cat == 0:
                continue  # missed
            if cat == 2:
                track(i, kind="fake", mask=0x8000)  # only a fake track carries its label
                continue
            track(i, kind="good", ncls=90 if i % 7 == 0 else 140)
            if cat == 1:
                track(i, kind="clone", ncls=80)
            if cat == 3:
                track(i, kind="looper", flags=0x2)
            facts["found"] += 1
            if pt[i] > 0.3:
                facts["found_hi"] += 1
        elif i % 3 == 0:
            track(i, kind="good")  # reconstructed although not findable
    for _ in range(5):
        track(-1, kind="fake")  # no label
    order = rng.permutation(len(rows))
    rows = [rows[k] for k in order]
    col = lambda key, dt: np.array([r[key] for r in rows], dtype=dt)  # noqa: E731
    tables = {
        "O2track_iu": {
            "fSigned1Pt": col("s1pt", np.float32), "fTgl": col("tgl", np.float32),
            "fFlags": col("flags", np.uint8),
        },
        "O2trackextra": {
            "fTPCInnerParam": col("pin", np.float32), "fTPCSignal": col("dedx", np.float32),
            "fTPCNClsFound": col("ncls", np.uint8), "fTOFSignal": col("tof", np.float32),
            "fBeta": col("beta", np.float32), "fHasTOF": col("has_tof", np.uint8),
        },
        "O2mctracklabel": {
            "fMcParticleId": col("label", np.int32), "fMcMask": col("mask", np.uint16),
        },
        "O2pid": {"fPidNSigma": col("pid", np.int8)},
    }  # fmt: skip
    facts["rows"] = rows
    return tables, facts


def write_reco(path, dfs: list[tuple[int, dict]]) -> None:
    with uproot.recreate(path) as f:
        for n, (tf_id, tables) in enumerate(dfs):
            meta = {"fTfId": np.array([tf_id], np.uint32), "fRunNumber": np.array([1], np.int32)}
            for name, cols in {**tables, "O2tfmeta": meta}.items():
                tree = f.mktree(f"DF_{n}/{name}", {k: v.dtype for k, v in cols.items()})
                tree.extend(cols)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("evaluate")
    cfg = SimConfig.for_system("pp", seed=11, collisions_per_tf=60)
    truth = d / "sim.root"
    with TimeframeWriter(truth) as w:
        for tf_id in TRUTH_TF_IDS:
            w.write(simulate_timeframe(cfg, tf_id))
    by_id = {tf.meta.tf_id: tf for tf in read_timeframes(truth)}
    built = [(tf_id, *build_tracks(by_id[tf_id], seed=tf_id)) for tf_id in RECO_TF_IDS]
    reco = d / "AO2D.root"
    write_reco(reco, [(tf_id, tables) for tf_id, tables, _ in built])
    return dict(dir=d, truth=truth, reco=reco, built=built, by_id=by_id)


@pytest.fixture(scope="module")
def tracking(files):
    return evaluate_tracking(files["reco"], files["truth"])


@pytest.fixture(scope="module")
def pid(files):
    return evaluate_pid(files["reco"], files["truth"])


def _all_rows(files):
    out = []
    for tf_id, _, facts in files["built"]:
        tf = files["by_id"][tf_id]
        pt, p, eta, sp = _kin(tf)
        hit_ids = set(tf.tof.label[tf.tof.label >= 0].tolist())
        for r in facts["rows"]:
            i = r["label"]
            out.append({**r, "pt": pt[i] if i >= 0 else np.nan, "p": p[i] if i >= 0 else np.nan,
                        "eta": eta[i] if i >= 0 else np.nan, "sp": sp[i] if i >= 0 else -1,
                        "has_hit": i in hit_ids})  # fmt: skip
    return out


def _inv_cdf_sigma(x) -> float:
    q16, q84 = np.percentile(np.asarray(x), [15.8655, 84.1345], method="inverted_cdf")
    return 0.5 * (q84 - q16)


def test_counts_efficiency_fake_clone_looper(files, tracking):
    r = tracking
    facts = [f for _, _, f in files["built"]]
    rows = _all_rows(files)
    kinds = [row["kind"] for row in rows]
    n_main = len(rows) - kinds.count("looper")
    assert r["n_timeframes"] == 2
    assert r["n_tracks"] == len(rows)
    assert r["n_findable"] == sum(f["findable"] for f in facts)
    assert r["efficiency_findable"] == pytest.approx(
        sum(f["found"] for f in facts) / sum(f["findable"] for f in facts), abs=1e-12
    )
    assert r["efficiency_pt_above_0p3"] == pytest.approx(
        sum(f["found_hi"] for f in facts) / sum(f["findable_hi"] for f in facts), abs=1e-12
    )
    assert r["fake_rate"] == pytest.approx(kinds.count("fake") / n_main, abs=1e-12)
    assert r["clone_rate"] == pytest.approx(kinds.count("clone") / n_main, abs=1e-12)
    assert r["looper_leg_fraction"] == pytest.approx(kinds.count("looper") / len(rows), abs=1e-12)
    assert r["counts"]["n_looper_legs"] == kinds.count("looper")
    assert r["charge_misid_fraction"] == 0.0
    # per-bin efficiencies add up to the total over the binned range
    bins = r["efficiency_vs_pt"]
    assert sum(b["n"] for b in bins) == r["n_findable"]
    assert sum(b["n_found"] for b in bins) == sum(f["found"] for f in facts)
    for b in bins:
        if b["n"]:
            e = b["n_found"] / b["n"]
            assert b["efficiency"] == pytest.approx(e)
            assert b["efficiency_err"] == pytest.approx(math.sqrt(e * (1 - e) / b["n"]))
    assert sum(b["n"] for b in r["fake_clone_vs_pt"]) <= n_main


def test_pt_resolution(files, tracking):
    rows = _all_rows(files)
    good = [x for x in rows if x["kind"] in ("good", "clone") and abs(x["eta"]) < 0.9]
    # what the file holds (float32 1/pT), as the evaluator sees it
    rel = np.array([(1 / abs(np.float32(x["s1pt"])) - x["pt"]) / x["pt"] for x in good])
    pt = np.array([x["pt"] for x in good])
    win = (pt > 0.9) & (pt < 1.1)
    assert win.sum() > 30
    assert tracking["rel_pt_resolution_1gev"] == pytest.approx(_inv_cdf_sigma(rel[win]), abs=2e-4)
    assert tracking["rel_pt_resolution_1gev_rms"] == pytest.approx(np.std(rel[win]), rel=1e-6)
    assert tracking["rel_pt_resolution_1gev_summary"]["n"] == win.sum()
    # all bins together: the injected sigma, within statistics (1/(1+r) is ~ -r to first order)
    core = [b for b in tracking["resolution_vs_pt"] if b["n"] > 200]
    assert core
    for b in core:
        assert b["sigma_core"] == pytest.approx(SIGMA_PT, rel=0.15)
    assert sum(b["n"] for b in tracking["resolution_vs_pt"]) <= len(good)


def test_dedx_and_tof(files, tracking):
    rows = _all_rows(files)
    good = [x for x in rows if x["kind"] in ("good", "clone") and abs(x["eta"]) < 0.9]
    sel = [
        x for x in good if x["sp"] == 2 and 0.4 < np.float32(x["pin"]) < 0.6 and x["ncls"] >= 100
    ]
    dedx = np.array([np.float32(x["dedx"]) for x in sel], np.float64)
    expected = _inv_cdf_sigma(dedx) / np.percentile(dedx, 50, method="inverted_cdf")
    assert tracking["dedx_resolution"] == pytest.approx(expected, abs=5e-4)
    assert tracking["dedx_resolution_rms"] == pytest.approx(np.std(dedx) / np.mean(dedx), rel=1e-6)
    assert tracking["dedx_resolution"] == pytest.approx(SIGMA_DEDX, rel=0.35)
    # TOF: matched good tracks agree unless shifted (i % 5 == 4) or the particle has no hit
    g_all = [x for x in rows if x["kind"] in ("good", "clone")]
    tofs = [x for x in g_all if x["has_tof"]]
    agree = [x["has_hit"] and x["label"] % 5 != 4 for x in tofs]
    assert tracking["counts"]["n_tof_tracks"] == len(tofs)
    assert tracking["tof_agreement"] == pytest.approx(np.mean(agree))
    assert tracking["tof_mismatch_fraction"] == pytest.approx(1 - np.mean(agree))
    assert 0 < tracking["tof_mismatch_fraction"] < 0.5
    # matching efficiency: particles with a hit and a good track; unmatched when i % 13 == 0
    den = sum(x["kind"] == "good" and x["has_hit"] for x in rows)
    num = sum(x["kind"] == "good" and x["has_hit"] and x["has_tof"] for x in rows)
    assert tracking["tof_matching_efficiency"] == pytest.approx(num / den)
    # beta resolution of agreeing 1 < p < 1.5 GeV/c pions
    dbeta = [
        np.float32(x["beta"]) - x["p"] / math.hypot(x["p"], MASSES_GEV[2])
        for x in g_all
        if x["has_tof"] and x["sp"] == 2 and 1.0 < x["p"] < 1.5 and x["has_hit"]
        and x["label"] % 5 != 4
    ]  # fmt: skip
    if len(dbeta) >= 5:
        assert tracking["tof_beta_resolution"] == pytest.approx(_inv_cdf_sigma(dbeta), abs=1e-4)
    assert tracking["tof_beta_residual"]["n"] == len(dbeta)


def test_pid_counts(files, pid):
    rows = [x for x in _all_rows(files) if x["kind"] in ("good", "clone")]
    sel = [
        x for x in rows
        if abs(np.arcsinh(np.float32(x["tgl"]))) < 0.9 and 0.2 <= np.float32(x["pin"]) < 5.0
    ]  # fmt: skip
    assert pid["n_selected"] == len(sel)
    five = [x for x in sel if 0 <= x["sp"] < 5]
    correct = sum(x["pid"] == x["sp"] for x in five)
    decided = sum(x["pid"] >= 0 for x in five)
    assert pid["nsigma_accuracy"] == pytest.approx(correct / len(five))
    assert pid["accuracy_all"] == pid["nsigma_accuracy"]
    assert pid["accuracy_with_decision"] == pytest.approx(correct / decided)
    assert pid["decision_fraction"] == pytest.approx(decided / len(five))
    for s, name in enumerate(pid["species"]):
        n_true = sum(x["sp"] == s for x in sel)
        n_id = sum(x["pid"] == s for x in sel)
        n_ok = sum(x["sp"] == s and x["pid"] == s for x in sel)
        ps = pid["per_species"][name]
        assert (ps["n_true"], ps["n_identified"], ps["n_correct"]) == (n_true, n_id, n_ok)
        if n_true:
            assert ps["efficiency"] == pytest.approx(n_ok / n_true)
        if n_id:
            assert ps["purity"] == pytest.approx(n_ok / n_id)
            e = n_ok / n_id
            assert ps["purity_err"] == pytest.approx(math.sqrt(e * (1 - e) / n_id))
        assert sum(b["n_true"] for b in ps["vs_p"]) == n_true
    assert np.sum(pid["confusion_matrix"]["counts"]) == len(sel)
    h = pid["histograms"]["dedx_vs_p"]
    assert np.asarray(h["counts"]).shape == (len(h["x_edges"]) - 1, len(h["y_edges"]) - 1)


def test_results_are_json_and_format(tracking, pid):
    for r in (tracking, pid):
        s = json.dumps(r, allow_nan=False)
        assert json.loads(s)["definitions"]
    for key in (
        "efficiency_pt_above_0p3", "fake_rate", "clone_rate", "rel_pt_resolution_1gev",
        "dedx_resolution", "tof_beta_resolution", "looper_leg_fraction", "n_timeframes",
        "n_tracks", "n_findable", "efficiency_vs_pt", "resolution_vs_pt", "definitions",
    ):  # fmt: skip
        assert key in tracking
    assert {"pt_lo", "pt_hi", "n", "efficiency"} <= set(tracking["efficiency_vs_pt"][0])
    text = format_tracking(tracking)
    assert "fake rate" in text and f"{tracking['n_tracks']} tracks" in text
    text = format_pid(pid)
    assert "accuracy" in text and "pi" in text


def test_plots_written(tmp_path, tracking, pid):
    paths = make_tracking_plots(tracking, tmp_path / "trk") + make_pid_plots(pid, tmp_path / "pid")
    assert len(paths) == 6
    for path in paths:
        assert path.suffix == ".png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5000


# --- bad inputs -----------------------------------------------------------------------------------
def test_tf_id_missing_in_truth(files, tmp_path):
    tables = files["built"][0][1]
    reco = tmp_path / "bad_tf.root"
    write_reco(reco, [(8, tables), (999, tables)])
    for func in (evaluate_tracking, evaluate_pid):
        with pytest.raises(BadInputError, match=r"bad_tf\.root: timeframe 1 \(tf_id 999\): .*999"):
            func(reco, files["truth"])


def test_label_out_of_range(files, tmp_path):
    tf_id, tables, _ = files["built"][1]
    n_mc = len(files["by_id"][tf_id].particles)
    bad = {k: dict(v) for k, v in tables.items()}
    lab = bad["O2mctracklabel"]["fMcParticleId"].copy()
    lab[3] = n_mc
    bad["O2mctracklabel"]["fMcParticleId"] = lab
    reco = tmp_path / "bad_label.root"
    write_reco(reco, [(8, files["built"][0][1]), (tf_id, bad)])
    with pytest.raises(BadInputError, match=rf"bad_label\.root: timeframe 1 \(tf_id {tf_id}\)"):
        evaluate_tracking(reco, files["truth"])
    with pytest.raises(BadInputError, match=rf"fMcParticleId {n_mc} out of range.*sim\.root"):
        evaluate_pid(reco, files["truth"])


def test_missing_table_and_wrong_files(files, tmp_path):
    tf_id, tables, _ = files["built"][0]
    reco = tmp_path / "no_pid.root"
    write_reco(reco, [(tf_id, {k: v for k, v in tables.items() if k != "O2pid"})])
    evaluate_tracking(reco, files["truth"])  # the tracking needs no PID table
    with pytest.raises(BadInputError, match=r"no_pid\.root: timeframe 0 .*no table O2pid"):
        evaluate_pid(reco, files["truth"])
    with pytest.raises(BadInputError, match=r"sim\.root: no DF_<n> folders"):
        evaluate_tracking(files["truth"], files["truth"])
    with pytest.raises(BadInputError, match="no MC truth"):
        o2 = tmp_path / "o2.root"
        with TimeframeWriter(o2, layout="o2") as w:
            w.write(files["by_id"][8])
        evaluate_tracking(files["reco"], o2)


# --- mergeable accumulators -----------------------------------------------------------------------
def _assert_same(a, b, path="") -> None:
    """Equal results: integers, strings and None exactly, floats to rounding (sums in another
    order)."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-15), path
    else:
        assert a == b, path


@pytest.mark.parametrize(
    ("new", "tables", "evaluate"),
    [
        (tracking_evaluation, TRACK_TABLES, evaluate_tracking),
        (pid_evaluation, PID_TABLES, evaluate_pid),
    ],
)
def test_evaluation_merges_over_partitions(files, new, tables, evaluate):
    """One accumulator set per timeframe, summed (as over Dask partitions), gives the result of
    one pass over the file."""
    parts = []
    for reco, tf in iter_matched(files["reco"], files["truth"], tables):
        part = new()
        part.add(reco, tf)
        parts.append(part)
    assert len(parts) == 2
    merged = sum(parts[::-1]).result()
    whole = evaluate(files["reco"], files["truth"])
    del whole["reco_file"], whole["truth_file"]
    _assert_same(merged, whole)
    with pytest.raises(ValueError, match="different settings"):
        new((0.1, 1.0)) + new()


# --- the bounded-memory distribution --------------------------------------------------------------
def test_dist_quantiles_match_numpy():
    rng = np.random.default_rng(5)
    x = rng.normal(0.01, 0.02, 20000)
    d = Dist(-0.5, 0.5, 10000)
    for part in np.array_split(x, 7):
        d.fill(part)
    for q in (0.1, 0.158655, 0.5, 0.841345, 0.9):
        assert d.quantile(q) == pytest.approx(
            np.percentile(x, 100 * q, method="inverted_cdf"), abs=1e-4
        )
    assert d.core_sigma() == pytest.approx(0.02, rel=0.03)
    assert d.mean() == pytest.approx(x.mean(), abs=1e-12)
    assert d.std() == pytest.approx(x.std(), rel=1e-9)
    assert d.core_sigma_err() == pytest.approx(0.962 * d.core_sigma() / math.sqrt(len(x)))
    d.fill(np.array([5.0, np.inf, np.nan]))  # overflow counts, NaN does not
    assert d.n == len(x) + 2
    assert math.isnan(Dist(0, 1, 10).quantile(0.5))
    a, b = Dist(-0.5, 0.5, 10000), Dist(-0.5, 0.5, 10000)
    a.fill(x[:5000])
    b.fill(x[5000:])
    m = a + b
    assert m.n == len(x) and m.mean() == pytest.approx(x.mean(), abs=1e-12)
    assert m.quantile(0.3) == pytest.approx(np.percentile(x, 30, method="inverted_cdf"), abs=1e-4)


# --- the real reconstruction ----------------------------------------------------------------------
@pytest.mark.slow
def test_real_tpc_reco_on_the_pp_sample(tmp_path, capsys):
    """The classical chain on the shipped pp sample: the numbers stay in sane ranges."""
    from alice_dyn.cli import main
    from alice_dyn.framework.workflows import available_workflows

    if "tpc-reco" not in available_workflows():
        pytest.skip("no tpc-reco workflow")
    sample = Path(__file__).resolve().parent.parent / "data_samples" / "pp_sample.root"
    reco = tmp_path / "reco.root"
    assert main(["run", "tpc-reco", "-i", str(sample), "-o", str(reco), "--max-tf", "5"]) == 0
    capsys.readouterr()
    r = evaluate_tracking(reco, sample)
    assert r["n_timeframes"] == 5 and r["n_findable"] > 100
    assert r["efficiency_pt_above_0p3"] > 0.9
    assert r["fake_rate"] < 0.05 and r["clone_rate"] < 0.05
    assert 0.001 < r["rel_pt_resolution_1gev"] < 0.03
    assert 0.03 < r["dedx_resolution"] < 0.09
    assert 0.0 < r["tof_beta_resolution"] < 0.03
    assert r["tof_matching_efficiency"] > 0.8 and r["tof_agreement"] > 0.8
    p = evaluate_pid(reco, sample)
    assert p["n_timeframes"] == 5 and p["nsigma_accuracy"] > 0.8
    assert p["per_species"]["pi"]["efficiency"] > 0.85 and p["per_species"]["pi"]["purity"] > 0.9
