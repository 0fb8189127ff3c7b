"""Matching TPC tracks to TRD tracklets, layer by layer.

Layer: reconstruction (NumPy). For each of the six layers the track's helix is extrapolated to
the layer radius; the nearest tracklet of that layer inside the r-phi window is taken (z is
only loosely constrained: tracklet z is known to a pad row of 8 cm and the track's time is
known only when TOF assigned it to a collision). The TRD signal is the mean tracklet charge
(MIP ~ 1; electrons higher from transition radiation); the pattern has one bit per layer.

:func:`match_trd` finds each track's candidates among the layer's tracklets sorted by phi
(binary search of the track's r-phi window), so its cost and memory grow with the number of
candidate pairs, not with tracks x tracklets; :func:`match_trd_ref` is the brute-force
reference (dense tracks x tracklets matrices per layer) it equals, used by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alice_dyn.reco.helix import helices_from_tracks, path_to_radius
from alice_dyn.reco.phi_window import phi_window_pairs, signed_drphi

TRD_RADII_CM = np.array([297.0, 310.0, 323.0, 336.0, 349.0, 362.0])


@dataclass(frozen=True)
class TRDMatchParam:
    """Settings of the TRD matching (configuration group ``TRDMatchParam``)."""

    max_drphi_cm: float = field(default=1.5, metadata={"range": "(0, inf)"})
    #: with the collision known from TOF
    max_dz_cm: float = field(default=8.0, metadata={"range": "(0, inf)"})
    #: without it (z shift unknown)
    max_dz_unknown_time_cm: float = field(default=300.0, metadata={"range": "(0, inf)"})


@dataclass
class TRDMatches:
    """Per track ``(n_tracks,)``: number of tracklets, pattern bits, mean charge (-1 none)."""

    n_tracklets: np.ndarray
    pattern: np.ndarray
    signal: np.ndarray


def _match(
    tracks,
    layer: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    tz: np.ndarray,
    q: np.ndarray,
    bfield_t: float,
    track_t0_ps: np.ndarray,
    drift_cm_per_ns: float,
    prm: TRDMatchParam,
    winners,
) -> TRDMatches:
    """The layer loop shared by :func:`match_trd` and :func:`match_trd_ref`: ``winners`` gives
    the matched ``(track, tracklet)`` pairs of one layer."""
    n = len(tracks)
    n_trk = np.zeros(n, np.int8)
    pattern = np.zeros(n, np.uint8)
    qsum = np.zeros(n)
    if n and len(layer):
        h = helices_from_tracks(tracks, bfield_t)
        known = np.isfinite(track_t0_ps)
        zshift = tracks.side() * np.nan_to_num(track_t0_ps) * 1e-3 * drift_cm_per_ns
        zshift = np.where(known, zshift, 0.0)
        max_dz = np.where(known, prm.max_dz_cm, prm.max_dz_unknown_time_cm)
        layer, q = np.asarray(layer), np.asarray(q)
        for lay, radius in enumerate(TRD_RADII_CM):
            sel = np.flatnonzero(layer == lay)
            if not len(sel):
                continue
            s = path_to_radius(h, radius)
            ok = np.isfinite(s)
            gx, gy, gz = h.at(np.where(ok, s, 0.0))
            t, j = winners(
                np.arctan2(gy, gx), gz + zshift, ok, np.arctan2(ty[sel], tx[sel]),
                np.asarray(tz)[sel], float(radius), prm.max_drphi_cm, max_dz,
            )  # fmt: skip
            j = sel[j]
            n_trk[t] += 1
            pattern[t] |= np.uint8(1 << lay)
            qsum[t] += q[j]
    signal = np.where(n_trk > 0, qsum / np.maximum(n_trk, 1), -1.0)
    return TRDMatches(n_trk, pattern, signal)


def _drphi(phi_h, phi_t, radius):
    """|r dphi| (cm), dphi wrapped into [-pi, pi)."""
    return np.abs(signed_drphi(phi_h, phi_t, radius))


def _winners_dense(phi_t, z_t, ok, phi_h, z_h, radius, max_drphi, max_dz):
    """Brute force: ``(n_tracks, n_tracklets)`` matrices; a track's best is the argmin; a
    tracklet claimed twice stays with the closer track (tracks in order of distance)."""
    n = len(phi_t)
    drphi = _drphi(phi_h[None, :], phi_t[:, None], radius)
    dz = np.abs(z_h[None, :] - z_t[:, None])
    score = np.where((drphi < max_drphi) & (dz < max_dz[:, None]), drphi, np.inf)
    k = np.argmin(score, axis=1)
    hit = np.flatnonzero(ok & np.isfinite(score[np.arange(n), k]))
    used = np.zeros(len(phi_h), bool)
    t_out, j_out = [], []
    for t in hit[np.argsort(score[hit, k[hit]], kind="stable")]:
        if not used[k[t]]:
            used[k[t]] = True
            t_out.append(t)
            j_out.append(k[t])
    return np.asarray(t_out, np.int64), np.asarray(j_out, np.int64)


def _winners_sorted(phi_t, z_t, ok, phi_h, z_h, radius, max_drphi, max_dz):
    """Each track's candidates by binary search of its r-phi window among the tracklets sorted
    by phi (:func:`~alice_dyn.reco.phi_window.phi_window_pairs`); the same choice as the brute
    force."""
    t, j = phi_window_pairs(phi_t, np.flatnonzero(ok), phi_h, max_drphi / radius)
    d = _drphi(phi_h[j], phi_t[t], radius)
    keep = (d < max_drphi) & (np.abs(z_h[j] - z_t[t]) < max_dz[t])
    t, j, d = t[keep], j[keep], d[keep]
    # each track's best: smallest drphi, then the lower tracklet index (as the argmin); a
    # window wider than half the circle can list a tracklet twice, which changes nothing here
    o = np.lexsort((j, d, t))
    t, j, d = t[o], j[o], d[o]
    first = np.ones(len(t), bool)
    first[1:] = t[1:] != t[:-1]
    t, j, d = t[first], j[first], d[first]
    # a tracklet claimed twice stays with the closer track (ties: the lower track index)
    o = np.argsort(d, kind="stable")
    _, win = np.unique(j[o], return_index=True)
    return t[o][win], j[o][win]


def match_trd(
    tracks,
    layer: np.ndarray,
    tx: np.ndarray,
    ty: np.ndarray,
    tz: np.ndarray,
    q: np.ndarray,
    bfield_t: float,
    track_t0_ps: np.ndarray,
    drift_cm_per_ns: float,
    prm: TRDMatchParam = TRDMatchParam(),
) -> TRDMatches:
    """Match tracks to tracklets ``(n_tracklets,)`` (cm; ``layer`` 0-5); ``track_t0_ps`` is
    each track's collision time from TOF (NaN where unknown). Per layer a track takes the
    tracklet nearest in r-phi inside the r-phi and z windows (ties: the lower tracklet index);
    a tracklet claimed by several tracks stays with the closest (no second choice)."""
    args = (layer, tx, ty, tz, q, bfield_t, track_t0_ps, drift_cm_per_ns, prm)
    return _match(tracks, *args, _winners_sorted)


def match_trd_ref(tracks, *args) -> TRDMatches:
    """Brute-force reference of :func:`match_trd` (the same positional arguments; dense
    ``(n_tracks, n_tracklets)`` matrices per layer: only for small inputs)."""
    if len(args) == 8:
        args = (*args, TRDMatchParam())
    return _match(tracks, *args, _winners_dense)
