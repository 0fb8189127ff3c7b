"""Matching TPC tracks to TOF hits, with the event time from FT0.

Layer: reconstruction (NumPy, vectorised). Tracks are extrapolated as helices to the TOF radius.
Their z was measured for t0 = 0, so for each collision of the timeframe (measured event time
t0) the z at TOF is corrected by ``side * t0 * v_drift``; the hit with the smallest
``(drphi / sigma)^2 + (dz / sigma)^2`` inside the window, over all collisions, is the match.
Only (hit, collision) pairs with a physical time of flight (0.1 < beta < 1.05) compete, which
singles out the collision when several are closer in time than the z resolution resolves.
That assigns the track to a collision; the TOF signal is ``t_hit - t0``, the track length runs
from the point of closest approach to the beam line, and ``beta = L / (c * signal)``.

:func:`match_tof` tries only the hits inside each track's r-phi window (binary search among
the hits sorted by phi), so its cost grows with candidate pairs x collisions;
:func:`match_tof_ref` is the brute-force reference (dense tracks x hits matrices per
collision) it equals, used by the tests and ``benchmarks/bench_reco.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alice_dyn.physics.particles import SPEED_OF_LIGHT_CM_PER_NS
from alice_dyn.reco.helix import helices_from_tracks, path_from_beam_line, path_to_radius
from alice_dyn.reco.phi_window import phi_window_pairs, signed_drphi

TOF_RADIUS_CM = 380.0


@dataclass(frozen=True)
class TOFMatchParam:
    """Settings of the TOF matching (configuration group ``TOFMatchParam``)."""

    radius_cm: float = field(default=TOF_RADIUS_CM, metadata={"range": "(0, inf)"})
    #: pad 2.5 cm / sqrt(12) (+) extrapolation
    sigma_rphi_cm: float = field(default=1.0, metadata={"range": "(0, inf)"})
    #: pad 3.5 cm / sqrt(12) (+) extrapolation
    sigma_z_cm: float = field(default=1.5, metadata={"range": "(0, inf)"})
    max_chi2: float = field(default=16.0, metadata={"range": "(0, inf)"})
    resolution_ps: float = field(default=70.0, metadata={"range": "(0, inf)"})
    min_beta: float = field(default=0.1, metadata={"range": "[0, 1]"})
    max_beta: float = field(default=1.05, metadata={"range": "(0, inf)"})


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


def _empty(n: int) -> TOFMatches:
    return TOFMatches(
        hit=np.full(n, -1, np.int32),
        collision=np.full(n, -1, np.int32),
        signal_ps=np.full(n, -999.0),
        length_cm=np.full(n, -1.0),
        beta=np.full(n, -1.0),
        chi2=np.full(n, -1.0),
        t0_resolution_ps=np.full(n, -1.0),
    )


def _at_tof(tracks, bfield_t: float, prm: TOFMatchParam):
    """Per track: extrapolation ok, phi (rad) and z (cm, t0 = 0) at the TOF radius, the track
    length (cm) from the beam line and the TPC side (+-1)."""
    h = helices_from_tracks(tracks, bfield_t)
    s = path_to_radius(h, prm.radius_cm)
    ok = np.isfinite(s)
    gx, gy, gz = h.at(np.where(ok, s, 0.0))
    length = (np.where(ok, s, 0.0) + path_from_beam_line(h)) * np.sqrt(1.0 + h.tgl**2)
    return ok, np.arctan2(gy, gx), gz, length, tracks.side()


def _pair_chi2(drphi, dz, tof_ns, length, prm: TOFMatchParam) -> np.ndarray:
    """Matching chi2, infinite where the time of flight is unphysical for the collision:
    0.1 < beta < 1.05 (this is what separates collisions closer in time than the z
    resolution allows)."""
    chi2 = (drphi / prm.sigma_rphi_cm) ** 2 + (dz / prm.sigma_z_cm) ** 2
    beta = length / np.maximum(tof_ns * SPEED_OF_LIGHT_CM_PER_NS, 1e-9)
    return np.where((tof_ns > 0) & (beta > prm.min_beta) & (beta < prm.max_beta), chi2, np.inf)


def _fill(out, chi2, length, hit_time_ps, t0_ps, t0_resolution_ps) -> TOFMatches:
    """Complete the matches (``out.hit >= 0``, their collision set) with their signal,
    length, beta, chi2."""
    hit, coll = out.hit, out.collision
    m = hit >= 0
    t0_sel = np.asarray(t0_ps, dtype=np.float64)[coll[m]]
    out.signal_ps[m] = hit_time_ps[hit[m]] - t0_sel
    out.length_cm[m] = length[m]
    out.beta[m] = length[m] / (out.signal_ps[m] * 1e-3 * SPEED_OF_LIGHT_CM_PER_NS)
    out.chi2[m] = chi2[m]
    out.t0_resolution_ps[m] = np.asarray(t0_resolution_ps, dtype=np.float64)[coll[m]]
    return out


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
    """Match ``tracks`` to TOF hits ``(n_hits,)`` given the collisions' event times
    ``(n_collisions,)`` (ps). Each track's candidates are the hits inside its r-phi window
    (``sqrt(max_chi2) * sigma_rphi``, binary search among the hits sorted by phi); every
    candidate is tried with every collision; the smallest chi2 below ``max_chi2`` wins (ties:
    the lower collision, then the lower hit index) — the choice of :func:`match_tof_ref`,
    at a cost that grows with candidate pairs x collisions, not tracks x hits x collisions."""
    n = len(tracks)
    out = _empty(n)
    if n == 0 or len(hit_x) == 0 or len(t0_ps) == 0:
        return out
    ok, phi_t, gz, length, side = _at_tof(tracks, bfield_t, prm)
    phi_h = np.arctan2(hit_y, hit_x)
    w = np.sqrt(prm.max_chi2) * prm.sigma_rphi_cm / prm.radius_cm
    t, j = phi_window_pairs(phi_t, np.flatnonzero(ok), phi_h, w)
    t0 = np.asarray(t0_ps, dtype=np.float64)
    drphi = signed_drphi(phi_h[j], phi_t[t], prm.radius_cm)[:, None]
    z_true = gz[t][:, None] + side[t][:, None] * (t0[None, :] * 1e-3) * drift_cm_per_ns
    dz = hit_z[j][:, None] - z_true
    tof_ns = (hit_time_ps[j][:, None] - t0[None, :]) * 1e-3
    chi2 = _pair_chi2(drphi, dz, tof_ns, length[t][:, None], prm)  # (n_pairs, n_collisions)
    c = np.argmin(chi2, axis=1)  # per pair: the lowest collision among equal chi2
    ck = chi2[np.arange(len(t)), c]
    keep = ck < prm.max_chi2
    t, j, c, ck = t[keep], j[keep], c[keep], ck[keep]
    o = np.lexsort((j, c, ck, t))  # per track: smallest chi2, then collision, then hit
    t, j, c, ck = t[o], j[o], c[o], ck[o]
    first = np.ones(len(t), bool)
    first[1:] = t[1:] != t[:-1]
    best = np.full(n, np.inf)
    out.hit[t[first]], out.collision[t[first]], best[t[first]] = j[first], c[first], ck[first]
    return _fill(out, best, length, hit_time_ps, t0_ps, t0_resolution_ps)


def match_tof_ref(tracks, *args) -> TOFMatches:
    """Brute-force reference of :func:`match_tof` (the same positional arguments; dense
    tracks x hits matrices per collision: only for small inputs)."""
    hit_x, hit_y, hit_z, hit_time_ps, t0_ps, t0_resolution_ps, bfield_t, drift_cm_per_ns = args[:8]
    prm = args[8] if len(args) > 8 else TOFMatchParam()
    n = len(tracks)
    out = _empty(n)
    if n == 0 or len(hit_x) == 0 or len(t0_ps) == 0:
        return out
    ok, phi_t, gz, length, side = _at_tof(tracks, bfield_t, prm)
    drphi = signed_drphi(np.arctan2(hit_y, hit_x)[None, :], phi_t[:, None], prm.radius_cm)
    best_chi2 = np.full(n, np.inf)
    for c, t0 in enumerate(np.asarray(t0_ps, dtype=np.float64)):
        z_true = gz + side * (t0 * 1e-3) * drift_cm_per_ns  # undo the t0 = 0 shift
        dz = hit_z[None, :] - z_true[:, None]
        tof_ns = (hit_time_ps[None, :] - t0) * 1e-3
        chi2 = _pair_chi2(drphi, dz, tof_ns, length[:, None], prm)
        k = np.argmin(chi2, axis=1)
        ck = chi2[np.arange(n), k]
        better = ok & (ck < prm.max_chi2) & (ck < best_chi2)
        best_chi2 = np.where(better, ck, best_chi2)
        out.hit[better] = k[better]
        out.collision[better] = c
    return _fill(out, best_chi2, length, hit_time_ps, t0_ps, t0_resolution_ps)
