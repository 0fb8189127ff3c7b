"""Classical reconstruction: Kalman primitives, tracking, dE/dx, TOF/TRD matching, n-sigma PID."""

from __future__ import annotations

import numpy as np
import pytest

from alice_dyn.event.tracks import LOOPER_LEG
from alice_dyn.physics.particles import MASSES_GEV
from alice_dyn.reco.dedx_calibration import DedxCalibration
from alice_dyn.reco.helix import helices_from_tracks, path_from_beam_line, path_to_radius
from alice_dyn.reco.mc_labels import majority_labels
from alice_dyn.reco.pid_nsigma import INVALID, nsigma_decision, nsigma_tof, nsigma_tpc
from alice_dyn.reco.tof_matching import match_tof
from alice_dyn.reco.tpc_chain import (
    CLUSTER_GLOBAL_COLUMNS,
    cluster_dedx,
    global_clusters,
    global_clusters_o2_buffer,
)
from alice_dyn.reco.tpc_tracker import TPCTrackerParam, track_clusters, track_o2_buffer
from alice_dyn.reco.track_model import propagate, rotate, update
from alice_dyn.sim import SimConfig, simulate_particle_gun, simulate_timeframe
from alice_dyn.tpc.cluster_native import encode_o2_buffer, unpack_clusters
from alice_dyn.tpc.geometry import DEFAULT_GAS

E, MU, PI, K, P = 0, 1, 2, 3, 4


def reconstruct(tf):
    """The chain's transform and tracking steps; ``(tracks, refs, labels, purity, clusters)``."""
    cl = tf.clusters
    bfield = float(tf.meta.bfield_t)
    clusters = global_clusters(cl.records, cl.sector, cl.row, DEFAULT_GAS)
    tracks, refs = track_clusters(
        cl.sector, cl.row, cl.records, DEFAULT_GAS, TPCTrackerParam(), bfield
    )
    labels, purity = majority_labels(
        cl.mc_label, refs, tracks.cluster_start.astype(np.int64), tracks.n_clusters.astype(np.int64)
    )
    return tracks, refs, labels, purity, clusters


def gun(species, p, n=40, eta=0.2, seed=3, time_ns=0.0, **changes):
    cfg = SimConfig.for_system("pp", noise_fraction=0.0, seed=seed, **changes)
    phis = np.linspace(0.25, 6.1, n)
    eta = np.broadcast_to(eta, (n,))
    pt = p / np.cosh(eta)
    p3 = np.column_stack([pt * np.cos(phis), pt * np.sin(phis), pt * np.sinh(eta)])
    charge = np.where(np.arange(n) % 2 == 0, 1, -1)
    return simulate_particle_gun(cfg, np.full(n, species), p3, charge, time_ns=time_ns)


def test_propagation_and_rotation_are_reversible():
    p = np.array([1.0, 5.0, 0.1, 0.3, 1.5])
    c = np.diag([0.01, 0.02, 1e-4, 1e-4, 1e-3])
    p0, c0 = p.copy(), c.copy()
    assert propagate(100.0, p, c, 150.0, 0.5)
    assert propagate(150.0, p, c, 100.0, 0.5)
    assert np.allclose(p, p0, atol=1e-9)
    x = rotate(100.0, p, c, np.deg2rad(5.0))
    x = rotate(x, p, c, -np.deg2rad(5.0))
    assert x == pytest.approx(100.0) and np.allclose(p, p0, atol=1e-9)
    # multiple scattering over 2 x 50 cm only adds variance
    assert np.all(np.diag(c) >= np.diag(c0) * 0.999) and np.allclose(
        np.diag(c), np.diag(c0), rtol=0.2
    )
    chi2 = update(p, c, p[0] + 0.05, p[1], 0.01, 0.01)
    assert chi2 > 0 and c[0, 0] < c0[0, 0]


def test_tracking_finds_high_pt_tracks_with_sub_percent_resolution():
    tf = gun(P, 1.0, n=40)  # protons: no decays in flight
    tracks, _, labels, purity, *_ = reconstruct(tf)
    main = (tracks.flags & LOOPER_LEG) == 0
    assert len(np.unique(labels[main & (purity > 0.9)])) >= 38  # ~all of 40 found, no clones
    assert np.sum(main) <= 41
    q = tf.particles.charge[labels]
    pt_true = np.hypot(tf.particles.px_gev, tf.particles.py_gev)[labels]
    assert np.all(np.sign(tracks.q2pt) == q)
    rel = (tracks.pt_gev() - pt_true) / pt_true
    core = 0.5 * (np.percentile(rel, 84) - np.percentile(rel, 16))
    assert core < 0.012  # TPC-only, energy loss before the TPC included
    assert np.all(np.abs(tracks.tgl - 0.2013) < 0.01)  # sinh(0.2)


def test_tracking_performance_on_a_pp_timeframe():
    tf = simulate_timeframe(SimConfig.for_system("pp", seed=11, collisions_per_tf=20), 0)
    tracks, _, labels, purity, *_ = reconstruct(tf)
    p = tf.particles
    pt = np.hypot(p.px_gev, p.py_gev)
    eta = np.arcsinh(p.pz_gev / pt)
    findable = (pt > 0.3) & (np.abs(eta) < 0.9) & (p.n_tpc_clusters >= 70)
    main = (tracks.flags & LOOPER_LEG) == 0
    good = main & (purity >= 0.9)
    found = np.bincount(labels[good], minlength=len(p))
    assert findable.sum() > 50
    assert np.mean(found[findable] > 0) >= 0.95
    assert np.sum(main & ~good) / main.sum() < 0.02  # fakes
    assert np.sum(np.maximum(found - 1, 0)) / main.sum() < 0.02  # clones


def test_loopers_give_one_main_track():
    tf = gun(MU, 0.15, n=10, eta=0.05)  # 2R = 200 cm < 246 cm: curls inside the TPC
    tracks, _, labels, purity, *_ = reconstruct(tf)
    main = (tracks.flags & LOOPER_LEG) == 0
    assert len(tracks) > np.sum(main)  # later legs exist and are flagged
    counts = np.bincount(labels[main & (purity > 0.9)], minlength=10)
    assert np.sum(counts > 1) <= 1


def test_helix_extrapolation_reaches_the_tof_hit():
    tf = gun(PI, 1.2, n=30, tof_efficiency=1.0)
    tracks, _, labels, *_ = reconstruct(tf)
    h = helices_from_tracks(tracks, 0.5)
    s = path_to_radius(h, 380.0)
    gx, gy, gz = h.at(s)
    length = (s + path_from_beam_line(h)) * np.sqrt(1 + h.tgl**2)
    tof = tf.tof
    n_checked = 0
    for i, lab in enumerate(labels):
        k = np.flatnonzero(tof.label == lab)
        if len(k):
            k = k[0]
            assert np.hypot(gx[i] - tof.x_cm[k], gy[i] - tof.y_cm[k]) < 3.0
            assert abs(gz[i] - tof.z_cm[k]) < 4.0
            assert length[i] == pytest.approx(tof.mc_length_cm[k], rel=2e-3)
            n_checked += 1
    assert n_checked > 15


def test_tof_matching_picks_the_right_collision_time():
    """With a collision 30 us into the timeframe, z is shifted; the matcher undoes it with the
    FT0 time and gets the time of flight of the right hypothesis."""
    tf = gun(K, 1.0, n=30, time_ns=30000.0, tof_efficiency=1.0)
    tracks, _, labels, *_ = reconstruct(tf)
    col = tf.collisions
    other = np.array([col.t0_meas_ps[0] - 2.0e6, col.t0_meas_ps[0], col.t0_meas_ps[0] + 1.5e6])
    m = match_tof(
        tracks, tf.tof.x_cm, tf.tof.y_cm, tf.tof.z_cm, tf.tof.time_ps, other,
        np.full(3, 20.0), 0.5, 2.58e-3,
    )  # fmt: skip
    matched = m.hit >= 0
    assert matched.sum() >= 0.8 * len(tf.tof)
    assert np.all(m.collision[matched] == 1)
    assert np.all(tf.tof.label[m.hit[matched]] == labels[matched])
    p = tracks.p_gev()[matched]
    ns = nsigma_tof(m.signal_ps[matched], m.length_cm[matched], p, m.t0_resolution_ps[matched])
    assert np.median(np.abs(ns[:, K])) < 1.0 and np.median(np.abs(ns[:, PI])) > 3.0


def test_tof_matching_equals_its_brute_force_reference():
    """The window search gives exactly the dense tracks x hits x collisions choice (hit,
    collision, signal, chi2) on a timeframe with many collisions, also for a window wider
    than the whole circle."""
    import dataclasses

    from alice_dyn.reco.tof_matching import TOFMatchParam, match_tof_ref

    tf = simulate_timeframe(SimConfig.for_system("pp", seed=12, collisions_per_tf=24), 0)
    tracks, _, labels, *_ = reconstruct(tf)
    tof, col = tf.tof, tf.collisions
    assert len(tracks) > 200 and len(tof) > 50 and len(col) == 24
    for prm in (TOFMatchParam(), TOFMatchParam(max_chi2=1e7)):
        args = (tof.x_cm, tof.y_cm, tof.z_cm, tof.time_ps, col.t0_meas_ps, col.t0_resolution_ps)
        a = match_tof(tracks, *args, 0.5, 2.58e-3, prm)
        b = match_tof_ref(tracks, *args, 0.5, 2.58e-3, prm)
        for f in dataclasses.fields(a):
            np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), f.name)
        matched = a.hit >= 0
        assert matched.sum() > 0.5 * len(tof)
    # the default window matches to the track's own collision and own hit almost always
    a = match_tof(tracks, *args, 0.5, 2.58e-3)
    ok = (a.hit >= 0) & (labels >= 0)
    assert np.mean(tof.label[a.hit[ok]] == labels[ok]) > 0.9
    assert np.mean(a.collision[ok] == tf.particles.collision[labels[ok]]) > 0.9


def test_looper_z_check_keeps_loopers_and_splits_chance_circles():
    """``TPCTrackerParam.looper_z_check``: real loopers are flagged as before; two tracks on
    the same circle but 20 cm apart in z at the same phase, or on opposite sides of the
    membrane, are not merged with it (and are without it)."""
    import dataclasses

    from alice_dyn.event.tracks import HAS_A_SIDE, HAS_C_SIDE
    from alice_dyn.reco.tpc_tracker import TPCTrackerParam, flag_looper_legs

    def flagged(tracks, z_check):
        t = dataclasses.replace(tracks, flags=tracks.flags & ~np.uint8(LOOPER_LEG))
        flag_looper_legs(t, TPCTrackerParam(looper_z_check=z_check))
        return (t.flags & LOOPER_LEG) != 0

    tracks, *_ = reconstruct(gun(MU, 0.15, n=10, eta=0.05))
    assert flagged(tracks, False).sum() > 10
    np.testing.assert_array_equal(flagged(tracks, True), flagged(tracks, False))
    # one low-pT track and a copy 20 cm further along z, both on the A side
    one = np.flatnonzero(tracks.tgl > 0.02)[:1]
    pair = tracks.take(np.repeat(one, 2))
    pair.z_cm[1] += 20.0
    pair.flags[:] = HAS_A_SIDE
    assert flagged(pair, False).sum() == 1 and flagged(pair, True).sum() == 0
    # the same z but on opposite sides of the membrane: z not comparable, kept apart
    pair.z_cm[1] = pair.z_cm[0]
    assert flagged(pair, True).sum() == 1
    pair.flags[1] = HAS_C_SIDE
    assert flagged(pair, False).sum() == 1 and flagged(pair, True).sum() == 0


def test_dedx_calibration_centres_mip_pions_at_50():
    calib = DedxCalibration.load()
    tf = gun(PI, 0.5, n=60, eta=np.linspace(-0.8, 0.8, 60))
    tracks, refs, _, _, clusters = reconstruct(tf)
    tot, mx = cluster_dedx(tracks, refs, clusters, 0.5, calib.mip_scale, calib.tgl_coefficient)
    good = tracks.n_clusters >= 100
    assert np.median(tot[good]) == pytest.approx(calib.expected(0.5, MASSES_GEV[PI]), rel=0.03)
    assert 0.035 < np.std(tot[good]) / np.mean(tot[good]) < 0.075
    ns = nsigma_tpc(tot[good], tracks.p_gev()[good], tracks.n_clusters[good], calib)
    assert abs(np.median(ns[:, PI])) < 0.5 and 0.6 < np.std(ns[:, PI]) < 1.5
    assert np.all(mx[good] < tot[good])


def test_nsigma_decision_rule():
    ns_tpc = np.array(
        [[9, 0.5, 0.8, 9, 9], [9, 1.0, 5.0, 9, 9], [9, 9, 9, 9, 9], [0.1, 5, 5, 5, 5]]
    )
    ns_tof = np.full((4, 5), INVALID)
    ns_tof[3] = [8, 0.5, 0.5, 0.5, 0.5]  # TOF rejects the electron above 0.5 GeV/c
    d = nsigma_decision(ns_tpc.astype(float), ns_tof, np.array([0.3, 0.3, 0.3, 1.0]))
    assert d.tolist() == [2, 1, -1, -1]  # pion beats muon; muon only alone; none; e rejected


def test_shipped_dedx_calibration_is_reproduced_by_its_command():
    """`alice-dyn calibrate dedx` remakes the shipped table exactly (same seed)."""
    import json

    from alice_dyn.calib.dedx import measure_calibration
    from alice_dyn.reco.dedx_calibration import DEFAULT_CALIBRATION

    shipped = json.loads(DEFAULT_CALIBRATION.read_text())
    assert shipped["made_by"].startswith("alice-dyn calibrate dedx")
    assert json.loads(json.dumps(measure_calibration())) == shipped


def test_trd_matching_equals_the_brute_force_reference():
    """The phi-sorted candidate search gives the dense reference's matches, with and without
    the collision time, for windows up to wider than the whole circle (every track's window
    then wraps around phi = +-pi)."""
    import dataclasses

    from alice_dyn.reco.trd_matching import TRDMatchParam, match_trd, match_trd_ref

    tf = simulate_timeframe(SimConfig.for_system("pp", seed=11, collisions_per_tf=8), 0)
    tracks, _, labels, *_ = reconstruct(tf)
    trd = tf.trd
    n = len(tracks)
    assert n > 50 and len(trd.layer) > 50
    # the true collision time (as TOF would give it), a third of the tracks without
    coll = tf.particles.collision[np.maximum(labels, 0)]
    t0 = np.where((np.arange(n) % 3 == 0) | (labels < 0), np.nan, tf.collisions.t0_meas_ps[coll])
    prms = [TRDMatchParam(), TRDMatchParam(max_drphi_cm=5.0), TRDMatchParam(max_drphi_cm=2000.0)]
    for prm in prms:
        args = (trd.layer, trd.x_cm, trd.y_cm, trd.z_cm, trd.q, 0.5, t0, 2.58e-3, prm)
        a, b = match_trd(tracks, *args), match_trd_ref(tracks, *args)
        for f in dataclasses.fields(a):
            np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), f.name)
        assert (a.n_tracklets > 0).sum() > 0.2 * n


def test_chain_steps_on_the_o2_buffer_equal_their_record_forms():
    """The stages' forms (O2's buffer) of the transform and tracking steps give exactly what
    the record forms give (track dataset, calibration, benchmark); the timeframe's field, not
    ``TPCTrackerParam.bfield_t``, is used."""
    import dataclasses

    tf = simulate_timeframe(SimConfig.for_system("pp", seed=5), 0)
    cl = tf.clusters
    buf = encode_o2_buffer(cl.records, cl.sector, cl.row)
    a = global_clusters(cl.records, cl.sector, cl.row, DEFAULT_GAS)
    b = global_clusters_o2_buffer(buf, DEFAULT_GAS)
    assert list(a) == list(b) == list(CLUSTER_GLOBAL_COLUMNS)
    for k, dtype in CLUSTER_GLOBAL_COLUMNS.items():
        assert a[k].dtype == b[k].dtype == dtype and np.array_equal(a[k], b[k]), k
    prm = TPCTrackerParam()
    t1, r1 = track_clusters(cl.sector, cl.row, cl.records, DEFAULT_GAS, prm, 0.5)
    t2, r2 = track_o2_buffer(buf, DEFAULT_GAS, dataclasses.replace(prm, bfield_t=0.2), 0.5)
    t3, r3 = track_clusters(cl.sector, cl.row, unpack_clusters(cl.records), DEFAULT_GAS, prm, 0.5)
    assert len(t1) > 20 and np.array_equal(r1, r2) and np.array_equal(r1, r3)
    for t in (t2, t3):
        for k, v in t1.columns().items():
            assert np.array_equal(v, t.columns()[k]), k
