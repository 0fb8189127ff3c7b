"""Calibration of the TPC dE/dx response on the project's own simulation.

Layer: calibration (simulates with :mod:`alice_dyn.sim`, reconstructs with
:mod:`alice_dyn.reco`). The truncated mean is not proportional to the mean energy loss
(docs/simulation.md), so, as O2 fits its own Bethe-Bloch parameters to measured truncated
means, this module measures the expected
signal and its resolution as a table in log10(beta*gamma): particle guns of e, pi, K, p and d
over a grid of momenta (:data:`CALIBRATION_POINTS`) are simulated, tracked with the chain's
tracking step (:func:`alice_dyn.reco.tpc_tracker.track_clusters`) and their dE/dx measured
with its dE/dx step (:func:`alice_dyn.reco.tpc_chain.cluster_dedx`); the median and the core
width of each point make the table, and the value at beta*gamma = 4 fixes the MIP scale
(MIP = 50). The table and its loading are :class:`alice_dyn.reco.dedx_calibration.
DedxCalibration`.

``alice-dyn calibrate dedx -o FILE`` remakes the shipped table
(``alice_dyn/reco/data/dedx_calibration.json``) exactly.
"""

from __future__ import annotations

import numpy as np

from alice_dyn.event.tracks import LOOPER_LEG, TPCTracks
from alice_dyn.physics.particles import MASSES_GEV
from alice_dyn.reco.dedx_calibration import REFERENCE_CLUSTERS
from alice_dyn.reco.tpc_chain import cluster_dedx
from alice_dyn.reco.tpc_tracker import TPCTrackerParam, track_clusters
from alice_dyn.sim import SimConfig, simulate_particle_gun
from alice_dyn.tpc import transform
from alice_dyn.tpc.cluster_native import unpack_clusters
from alice_dyn.tpc.geometry import DEFAULT_GAS

# (species index, momenta in GeV/c): beta*gamma from ~0.3 to ~6000
CALIBRATION_POINTS = (
    (0, (0.2, 0.5, 1.0, 3.0)),
    (2, (0.15, 0.2, 0.3, 0.4, 0.56, 0.8, 1.2, 2.0, 5.0, 12.0)),
    (3, (0.25, 0.32, 0.4, 0.55, 0.8, 1.2, 2.0, 4.0)),
    (4, (0.35, 0.45, 0.6, 0.8, 1.1, 1.6, 2.5, 4.0)),
    (5, (0.7, 1.0, 1.5, 2.5)),
)


def _smooth(x: np.ndarray, y: np.ndarray, half_width: float, degree: int) -> np.ndarray:
    """Local polynomial regression: at each x a fit of degree ``degree`` to the points within
    ``half_width`` (statistical fluctuations of single points do not enter the table)."""
    out = np.empty_like(y)
    for i, x0 in enumerate(x):
        sel = np.abs(x - x0) <= half_width
        deg = min(degree, int(sel.sum()) - 1)
        out[i] = np.polyval(np.polyfit(x[sel] - x0, y[sel], deg), 0.0) if deg > 0 else y[sel].mean()
    return out


def gun_dedx(
    species: int,
    p_gev: float,
    tf_id: int,
    tgl_coefficient: float,
    *,
    seed: int,
    n_per_point: int,
    bfield_t: float,
) -> tuple[TPCTracks, np.ndarray, np.ndarray]:
    """Gun of ``n_per_point`` particles of ``species`` at momentum ``p_gev`` (|eta| < 0.9
    uniform, azimuths spread, alternating charge; seed ``[seed, tf_id]``), reconstructed:
    ``(tracks, raw dE/dx (n_tracks,) at MIP scale 1, good (n_tracks,) bool)``, good = at least
    60 clusters, a finite signal and not a looper leg.

    The clusters' global x, y are the float64 NumPy reference transform of pad and row (as
    the shipped table was measured), not the chain's float32 ``TPC/CLUSTERGLOBAL``: those would
    move the MIP scale by ~1e-10 (relative) and the command would no longer remake the table.
    """
    cfg = SimConfig.for_system("pp", seed=seed, noise_fraction=0.0, bfield_t=bfield_t)
    rng = np.random.default_rng([seed, tf_id])
    phis = np.linspace(0.2, 6.1, n_per_point)
    eta = rng.uniform(-0.9, 0.9, n_per_point)
    pt = p_gev / np.cosh(eta)
    p3 = np.column_stack([pt * np.cos(phis), pt * np.sin(phis), pt * np.sinh(eta)])
    charge = np.where(np.arange(n_per_point) % 2 == 0, 1, -1)
    tf = simulate_particle_gun(
        cfg, np.full(n_per_point, species), p3, charge, time_ns=0.0, tf_id=tf_id
    )
    cl = tf.clusters
    u = unpack_clusters(cl.records)
    tracks, refs = track_clusters(cl.sector, cl.row, u, DEFAULT_GAS, TPCTrackerParam(), bfield_t)
    gx, gy, _ = transform.pad_time_to_global(cl.sector, cl.row, u.pad, u.time, 0.0, DEFAULT_GAS)
    columns = {"x": gx, "y": gy, "sector": cl.sector, "row": cl.row, "q_tot": u.q_tot,
               "q_max": u.q_max}  # fmt: skip
    raw, _ = cluster_dedx(tracks, refs, columns, bfield_t, 1.0, tgl_coefficient)
    good = (tracks.n_clusters >= 60) & np.isfinite(raw) & ((tracks.flags & LOOPER_LEG) == 0)
    return tracks, raw, good


def measure_calibration(seed: int = 1, n_per_point: int = 60, bfield_t: float = 0.5) -> dict:
    """Simulate, reconstruct and tabulate (see the module docstring); returns the JSON dict
    of :meth:`alice_dyn.reco.dedx_calibration.DedxCalibration.load`."""
    kw = dict(seed=seed, n_per_point=n_per_point, bfield_t=bfield_t)
    # 1. residual dip-angle dependence, from minimum-ionising pions: raw ~ m (1 + a tgl^2)
    tgl2, vals = [], []
    for k in range(4):
        tracks, raw, good = gun_dedx(2, 0.5, 1000 + k, 0.0, **kw)
        tgl2 += list(tracks.tgl[good].astype(np.float64) ** 2)
        vals += list(raw[good])
    tgl2, vals = np.array(tgl2), np.array(vals)
    m0, m1 = np.polyfit(tgl2, vals, 1)[::-1]  # least squares of vals = m0 + m1 tgl^2
    tgl_coefficient = float(m1 / m0)
    # 2. the table, over |eta| < 0.9 with the correction applied
    rows = []
    k = 0
    for species, momenta in CALIBRATION_POINTS:
        mass = MASSES_GEV[species]
        for p in momenta:
            k += 1
            tracks, raw, good = gun_dedx(species, p, k, tgl_coefficient, **kw)
            good &= tracks.n_clusters >= 100
            if good.sum() < 10:
                continue
            lbg = np.log10(np.median(tracks.p_gev()[good]) / mass)
            med = np.median(raw[good])
            core = 0.5 * (np.percentile(raw[good], 84) - np.percentile(raw[good], 16))
            ncl = float(np.mean(tracks.n_clusters[good]))
            rows.append((lbg, med, core / med * np.sqrt(ncl / REFERENCE_CLUSTERS)))
    rows.sort()
    lbg, med, rel = (np.array(v) for v in zip(*rows, strict=True))
    med = _smooth(lbg, med, 0.2, degree=2)
    rel = _smooth(lbg, rel, 0.6, degree=0)
    mip_raw = float(np.interp(np.log10(4.0), lbg, med))
    scale = 50.0 / mip_raw
    return {
        "version": 1,
        "made_by": f"alice-dyn calibrate dedx --seed {seed} --per-point {n_per_point}",
        "bfield_t": bfield_t,
        "mip_scale": scale,
        "tgl_coefficient": round(tgl_coefficient, 5),
        "n_clusters_ref": REFERENCE_CLUSTERS,
        "log10_bg": lbg.round(5).tolist(),
        "signal": (med * scale).round(4).tolist(),
        "rel_sigma": rel.round(5).tolist(),
    }
