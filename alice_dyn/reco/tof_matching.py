"""Matching TPC tracks to TOF hits, with the event time from FT0.

Layer: reconstruction (NumPy, vectorised). Tracks are extrapolated as helices to the TOF radius.
Their z was measured for t0 = 0, so for each collision of the timeframe (measured event time
t0) the z at TOF is corrected by ``side * t0 * v_drift``; the hit with the smallest
``(drphi / sigma)^2 + (dz / sigma)^2`` inside the window, over all collisions, is the match.
Only (hit, collision) pairs with a physical time of flight (0.1 < beta < 1.05) compete, which
singles out the collision when several are closer in time than the z resolution resolves.
That assigns the track to a collision; the TOF signal is ``t_hit - t0``, the track length runs
from the point of closest approach to the beam line, and ``beta = L / (c * signal)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alice_dyn.physics.particles import SPEED_OF_LIGHT_CM_PER_NS
from alice_dyn.reco.helix import helices_from_tracks, path_from_beam_line, path_to_radius

TOF_RADIUS_CM = 380.0


@dataclass(frozen=True)
class TOFMatchParam:
    """Settings of the TOF matching (configuration group ``TOFMatchParam``)."""

    radius_cm: float = TOF_RADIUS_CM
    sigma_rphi_cm: float = 1.0  # pad 2.5 cm / sqrt(12) (+) extrapolation
    sigma_z_cm: float = 1.5  # pad 3.5 cm / sqrt(12) (+) extrapolation
    max_chi2: float = 16.0
    resolution_ps: float = 70.0
    min_beta: float = 0.1
    max_beta: float = 1.05


@dataclass
class TOFMatches:
    """Per track ``(n_tracks,)``: hit index (-1 none), collision index, signal (ps), length
    (cm), beta, matching chi2 and residuals."""

    hit: np.ndarray
    collision: np.ndarray
    signal_ps: np.ndarray
    length_cm: np.ndarray
    beta: np.ndarray
    chi2: np.ndarray
    t0_resolution_ps: np.ndarray


def match_tof(
    tracks,
    hit_x: np.ndarray,
    hit_y: np.ndarray,
    hit_z: np.ndarray,
    hit_time_ps: np.ndarray,
    t0_ps: np.ndarray,
    t0_resolution_ps: np.ndarray,
    bfield_t: float,
    drift_cm_per_ns: float,
    prm: TOFMatchParam = TOFMatchParam(),
) -> TOFMatches:
    """Match ``tracks`` to TOF hits ``(n_hits,)`` given the collisions' event times."""
    n = len(tracks)
    out = TOFMatches(
        hit=np.full(n, -1, np.int32),
        collision=np.full(n, -1, np.int32),
        signal_ps=np.full(n, -999.0),
        length_cm=np.full(n, -1.0),
        beta=np.full(n, -1.0),
        chi2=np.full(n, -1.0),
        t0_resolution_ps=np.full(n, -1.0),
    )
    if n == 0 or len(hit_x) == 0 or len(t0_ps) == 0:
        return out
    h = helices_from_tracks(tracks, bfield_t)
    s = path_to_radius(h, prm.radius_cm)
    ok = np.isfinite(s)
    gx, gy, gz = h.at(np.where(ok, s, 0.0))
    length = (np.where(ok, s, 0.0) + path_from_beam_line(h)) * np.sqrt(1.0 + h.tgl**2)
    side = tracks.side()
    phi_t = np.arctan2(gy, gx)
    phi_h = np.arctan2(hit_y, hit_x)
    drphi = (np.mod(phi_h[None, :] - phi_t[:, None] + np.pi, 2 * np.pi) - np.pi) * prm.radius_cm
    best_chi2 = np.full(n, np.inf)
    for c, t0 in enumerate(np.asarray(t0_ps, dtype=np.float64)):
        z_true = gz + side * (t0 * 1e-3) * drift_cm_per_ns  # undo the t0 = 0 shift
        dz = hit_z[None, :] - z_true[:, None]
        chi2 = (drphi / prm.sigma_rphi_cm) ** 2 + (dz / prm.sigma_z_cm) ** 2
        # the time of flight must be physical for this collision: 0.1 < beta < 1.05 (this is
        # what separates collisions closer in time than the z resolution allows)
        tof_ns = (hit_time_ps[None, :] - t0) * 1e-3
        beta = length[:, None] / np.maximum(tof_ns * SPEED_OF_LIGHT_CM_PER_NS, 1e-9)
        chi2 = np.where((tof_ns > 0) & (beta > prm.min_beta) & (beta < prm.max_beta), chi2, np.inf)
        k = np.argmin(chi2, axis=1)
        ck = chi2[np.arange(n), k]
        better = ok & (ck < prm.max_chi2) & (ck < best_chi2)
        best_chi2 = np.where(better, ck, best_chi2)
        out.hit[better] = k[better]
        out.collision[better] = c
    m = out.hit >= 0
    t0_sel = np.asarray(t0_ps, dtype=np.float64)[out.collision[m]]
    out.signal_ps[m] = hit_time_ps[out.hit[m]] - t0_sel
    out.length_cm[m] = length[m]
    out.beta[m] = length[m] / (out.signal_ps[m] * 1e-3 * SPEED_OF_LIGHT_CM_PER_NS)
    out.chi2[m] = best_chi2[m]
    out.t0_resolution_ps[m] = np.asarray(t0_resolution_ps, dtype=np.float64)[out.collision[m]]
    return out
