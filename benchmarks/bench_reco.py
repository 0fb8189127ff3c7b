"""Classical reconstruction speed on a Pb-Pb-like timeframe: tracker tracks/s and clusters/s,
dE/dx, TOF matching, TRD matching (each beside its brute-force reference: the ratio), n-sigma
PID; and the TOF matching against its reference on a pp timeframe of 80 collisions (every hit
is tried with every collision's event time).

Run: ``python benchmarks/bench_reco.py``. One core (numba single-threaded), JIT warmed up;
the same timeframe for every step, best of three. Every step is the chain's own function
(:func:`~alice_dyn.reco.tpc_tracker.track_clusters`: the tracker's time includes unpacking the
records and pad -> y, time -> z; :func:`~alice_dyn.reco.tpc_chain.cluster_dedx` on the
``TPC/CLUSTERGLOBAL`` columns of :func:`~alice_dyn.reco.tpc_chain.global_clusters`).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from alice_dyn.reco.dedx_calibration import DedxCalibration
from alice_dyn.reco.pid_nsigma import nsigma_decision, nsigma_tof, nsigma_tpc
from alice_dyn.reco.tof_matching import match_tof, match_tof_ref
from alice_dyn.reco.tpc_chain import cluster_dedx, global_clusters
from alice_dyn.reco.tpc_tracker import TPCTrackerParam, track_clusters
from alice_dyn.reco.trd_matching import match_trd, match_trd_ref
from alice_dyn.sim import SimConfig, simulate_timeframe
from alice_dyn.tpc.geometry import DEFAULT_GAS


def best_of(fn, n=3):
    out, best = None, np.inf
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def main() -> None:
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    cfg = SimConfig.for_system("pbpb", collisions_per_tf=1, centrality_max=0.1, seed=3)
    tf = simulate_timeframe(cfg, 0)
    cl = tf.clusters
    clusters = global_clusters(cl.records, cl.sector, cl.row, DEFAULT_GAS)
    prm, bfield = TPCTrackerParam(), float(tf.meta.bfield_t)

    def tracking(n: int | None = None):
        s = slice(n)
        return track_clusters(cl.sector[s], cl.row[s], cl.records[s], DEFAULT_GAS, prm, bfield)

    tracking(2000)  # JIT
    (tracks, refs), t_trk = best_of(tracking)
    calib = DedxCalibration.load()
    cluster_dedx(tracks, refs, clusters, bfield, 1.0)
    (tot, _), t_dedx = best_of(lambda: cluster_dedx(tracks, refs, clusters, bfield, 1.0))
    col, tof = tf.collisions, tf.tof
    tof_args = (tof.x_cm, tof.y_cm, tof.z_cm, tof.time_ps, col.t0_meas_ps, col.t0_resolution_ps)
    m, t_tof = best_of(lambda: match_tof(tracks, *tof_args, 0.5, 2.58e-3))
    m_ref, t_tof_ref = best_of(lambda: match_tof_ref(tracks, *tof_args, 0.5, 2.58e-3), n=1)
    assert np.array_equal(m.hit, m_ref.hit) and np.array_equal(m.collision, m_ref.collision)
    t0 = np.where(m.collision >= 0, col.t0_meas_ps[np.maximum(m.collision, 0)], np.nan)
    trd = tf.trd
    trd_args = (trd.layer, trd.x_cm, trd.y_cm, trd.z_cm, trd.q, 0.5, t0, 2.58e-3)
    trd_new, t_trd = best_of(lambda: match_trd(tracks, *trd_args))
    trd_ref, t_trd_ref = best_of(lambda: match_trd_ref(tracks, *trd_args), n=1)
    assert np.array_equal(trd_new.pattern, trd_ref.pattern)
    p = tracks.p_gev()

    def pid():
        a = nsigma_tpc(tot * calib.mip_scale, p, tracks.n_clusters, calib)
        b = nsigma_tof(m.signal_ps, m.length_cm, p, m.t0_resolution_ps)
        return nsigma_decision(a, b, p)

    _, t_pid = best_of(pid)
    n_cl, n_tr = len(cl), len(tracks)
    print(f"Pb-Pb 0-10% timeframe: {n_cl} clusters, {n_tr} tracks, {len(tof)} TOF hits (one core)")
    print(f"{'step':<22} {'ms':>9} {'tracks/s':>12} {'clusters/s':>12}")
    for name, t in [
        ("tracker", t_trk),
        ("dE/dx", t_dedx),
        ("TOF matching", t_tof),
        ("TOF brute force (ref)", t_tof_ref),
        ("TRD matching", t_trd),
        ("TRD brute force (ref)", t_trd_ref),
        ("n-sigma PID", t_pid),
    ]:
        print(f"{name:<22} {t * 1e3:>9.1f} {n_tr / t:>12.3e} {n_cl / t:>12.3e}")
    print(f"TOF matching: {t_tof_ref / t_tof:.1f}x faster than the brute-force reference (same)")
    print(f"TRD matching: {t_trd_ref / t_trd:.1f}x faster than the brute-force reference (same)")
    many_collisions_tof()


def many_collisions_tof() -> None:
    """TOF matching on a pp timeframe with 80 collisions, beside its reference."""
    tf = simulate_timeframe(SimConfig.for_system("pp", collisions_per_tf=80, seed=3), 0)
    cl = tf.clusters
    tracks, _ = track_clusters(
        cl.sector, cl.row, cl.records, DEFAULT_GAS, TPCTrackerParam(), tf.meta.bfield_t
    )
    col, tof = tf.collisions, tf.tof
    args = (tof.x_cm, tof.y_cm, tof.z_cm, tof.time_ps, col.t0_meas_ps, col.t0_resolution_ps)
    m, t_new = best_of(lambda: match_tof(tracks, *args, 0.5, 2.58e-3))
    m_ref, t_ref = best_of(lambda: match_tof_ref(tracks, *args, 0.5, 2.58e-3), n=1)
    assert np.array_equal(m.hit, m_ref.hit) and np.array_equal(m.collision, m_ref.collision)
    print(
        f"pp timeframe, {len(col)} collisions, {len(tracks)} tracks, {len(tof)} TOF hits: "
        f"TOF matching {t_new * 1e3:.1f} ms, brute force {t_ref * 1e3:.1f} ms "
        f"({t_ref / t_new:.0f}x, same matches)"
    )


if __name__ == "__main__":
    main()
