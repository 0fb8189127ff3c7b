"""Calibration of the TPC dE/dx response on the project's own simulation.

Layer: reconstruction. The truncated mean is not proportional to the mean energy loss (see
the README), so, as O2 fits its own Bethe-Bloch parameters to measured truncated means, this
module measures the expected signal and its resolution as a table in log10(beta*gamma):
particle guns of e, pi, K, p and d over a grid of momenta are simulated, reconstructed with the
classical tracker and the dE/dx of :mod:`alice_dyn.reco.dedx`; the median and the core width
of each point make the table, and the value at beta*gamma = 4 fixes the MIP scale (MIP = 50).

``alice-dyn calibrate dedx -o FILE`` remakes the shipped table
(``alice_dyn/reco/data/dedx_calibration.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alice_dyn.physics.particles import MASSES_GEV

DEFAULT_CALIBRATION = Path(__file__).parent / "data" / "dedx_calibration.json"
# (species index, momenta in GeV/c): beta*gamma from ~0.3 to ~6000
CALIBRATION_POINTS = (
    (0, (0.2, 0.5, 1.0, 3.0)),
    (2, (0.15, 0.2, 0.3, 0.4, 0.56, 0.8, 1.2, 2.0, 5.0, 12.0)),
    (3, (0.25, 0.32, 0.4, 0.55, 0.8, 1.2, 2.0, 4.0)),
    (4, (0.35, 0.45, 0.6, 0.8, 1.1, 1.6, 2.5, 4.0)),
    (5, (0.7, 1.0, 1.5, 2.5)),
)
REFERENCE_CLUSTERS = 140.0


@dataclass(frozen=True)
class DedxCalibration:
    """Expected dE/dx (O2 units, MIP = 50) and relative resolution vs log10(beta*gamma)."""

    mip_scale: float
    log10_bg: np.ndarray
    signal: np.ndarray
    rel_sigma: np.ndarray
    n_clusters_ref: float = REFERENCE_CLUSTERS
    tgl_coefficient: float = 0.0

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALIBRATION) -> DedxCalibration:
        d = json.loads(Path(path).read_text())
        return cls(
            float(d["mip_scale"]),
            np.asarray(d["log10_bg"]),
            np.asarray(d["signal"]),
            np.asarray(d["rel_sigma"]),
            float(d.get("n_clusters_ref", REFERENCE_CLUSTERS)),
            float(d.get("tgl_coefficient", 0.0)),
        )

    def expected(self, p_gev: np.ndarray, mass_gev: np.ndarray | float) -> np.ndarray:
        """Expected signal for momentum ``p_gev`` and mass (extrapolated flat at the ends)."""
        lbg = np.log10(np.maximum(np.asarray(p_gev, dtype=np.float64) / mass_gev, 1e-3))
        return np.interp(lbg, self.log10_bg, self.signal)

    def sigma(
        self, p_gev: np.ndarray, mass_gev: np.ndarray | float, n_clusters: np.ndarray
    ) -> np.ndarray:
        """Absolute resolution: relative width at that beta*gamma, scaled by sqrt(N_ref / N)."""
        lbg = np.log10(np.maximum(np.asarray(p_gev, dtype=np.float64) / mass_gev, 1e-3))
        rel = np.interp(lbg, self.log10_bg, self.rel_sigma)
        n = np.maximum(np.asarray(n_clusters, dtype=np.float64), 10.0)
        return rel * self.expected(p_gev, mass_gev) * np.sqrt(self.n_clusters_ref / n)


def _smooth(x: np.ndarray, y: np.ndarray, half_width: float, degree: int) -> np.ndarray:
    """Local polynomial regression: at each x a fit of degree ``degree`` to the points within
    ``half_width`` (statistical fluctuations of single points do not enter the table)."""
    out = np.empty_like(y)
    for i, x0 in enumerate(x):
        sel = np.abs(x - x0) <= half_width
        deg = min(degree, int(sel.sum()) - 1)
        out[i] = np.polyval(np.polyfit(x[sel] - x0, y[sel], deg), 0.0) if deg > 0 else y[sel].mean()
    return out


def measure_calibration(seed: int = 1, n_per_point: int = 60, bfield_t: float = 0.5) -> dict:
    """Simulate, reconstruct and tabulate (see the module docstring); returns the JSON dict."""
    from alice_dyn.reco.dedx import track_dedx
    from alice_dyn.reco.tpc_tracker import TPCTrackerParam, find_tracks
    from alice_dyn.sim import SimConfig, simulate_particle_gun
    from alice_dyn.tpc import transform
    from alice_dyn.tpc.cluster_native import unpack_clusters

    cfg = SimConfig.for_system("pp", seed=seed, noise_fraction=0.0, bfield_t=bfield_t)
    prm = TPCTrackerParam(bfield_t=bfield_t)

    def reconstruct(species: int, p: float, tf_id: int, tgl_coefficient: float):
        """Gun of ``n_per_point`` particles, |eta| < 0.9 uniform; raw dE/dx of good tracks."""
        rng = np.random.default_rng([seed, tf_id])
        phis = np.linspace(0.2, 6.1, n_per_point)
        eta = rng.uniform(-0.9, 0.9, n_per_point)
        pt = p / np.cosh(eta)
        p3 = np.column_stack([pt * np.cos(phis), pt * np.sin(phis), pt * np.sinh(eta)])
        charge = np.where(np.arange(n_per_point) % 2 == 0, 1, -1)
        tf = simulate_particle_gun(
            cfg, np.full(n_per_point, species), p3, charge, time_ns=0.0, tf_id=tf_id
        )
        cl = tf.clusters
        u = unpack_clusters(cl.records)
        y = transform.pad_to_y(cl.sector, cl.row, u.pad)
        z = transform.time_to_z(cl.sector, u.time, 0.0)
        gx, gy = transform.local_to_global(cl.sector, transform.geo.ROW_X_CM[cl.row], y)
        tracks, refs = find_tracks(cl.sector, cl.row, y, z, u.q_tot, prm)
        raw, _ = track_dedx(
            tracks,
            refs,
            u.q_tot,
            u.q_max,
            gx,
            gy,
            cl.sector,
            cl.row,
            bfield_t,
            1.0,
            tgl_coefficient,
        )
        good = (tracks.n_clusters >= 60) & np.isfinite(raw) & ((tracks.flags & 0x2) == 0)
        return tracks, raw, good

    # 1. residual dip-angle dependence, from minimum-ionising pions: raw ~ m (1 + a tgl^2)
    tgl2, vals = [], []
    for k in range(4):
        tracks, raw, good = reconstruct(2, 0.5, 1000 + k, 0.0)
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
            tracks, raw, good = reconstruct(species, p, k, tgl_coefficient)
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
