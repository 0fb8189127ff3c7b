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

from dataclasses import dataclass

import numpy as np

from alice_dyn.reco.helix import helices_from_tracks, path_to_radius

TRD_RADII_CM = np.array([297.0, 310.0, 323.0, 336.0, 349.0, 362.0])


@dataclass(frozen=True)
class TRDMatchParam:
    """Settings of the TRD matching (configuration group ``TRDMatchParam``)."""

    max_drphi_cm: float = 1.5
    max_dz_cm: float = 8.0  # with the collision known from TOF
    max_dz_unknown_time_cm: float = 300.0  # without it (z shift unknown)


@dataclass
class TRDMatches:
    """Per track ``(n_tracks,)``: number of tracklets, pattern bits, mean charge (-1 none)."""

    n_tracklets: np.ndarray
    pattern: np.ndarray
    signal: np.ndarray


def match_trd_ref(
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
    """Brute-force reference of :func:`match_trd` (dense ``(n_tracks, n_tracklets)`` per
    layer: only for small inputs)."""
    n = len(tracks)
    n_trk = np.zeros(n, np.int8)
    pattern = np.zeros(n, np.uint8)
    qsum = np.zeros(n)
    if n and len(layer):
        h, zshift, max_dz = _layer_geometry(tracks, bfield_t, track_t0_ps, drift_cm_per_ns, prm)
        used = np.zeros(len(layer), bool)
        for lay, radius in enumerate(TRD_RADII_CM):
            sel = np.flatnonzero(layer == lay)
            if not len(sel):
                continue
            s = path_to_radius(h, radius)
            ok = np.isfinite(s)
            gx, gy, gz = h.at(np.where(ok, s, 0.0))
            gz = gz + zshift
            dphi = np.arctan2(ty[sel], tx[sel])[None, :] - np.arctan2(gy, gx)[:, None]
            drphi = np.abs((np.mod(dphi + np.pi, 2 * np.pi) - np.pi) * radius)
            dz = np.abs(tz[sel][None, :] - gz[:, None])
            score = np.where((drphi < prm.max_drphi_cm) & (dz < max_dz[:, None]), drphi, np.inf)
            k = np.argmin(score, axis=1)
            hit = ok & np.isfinite(score[np.arange(n), k])
            # one tracklet per track; a tracklet claimed twice stays with the closer track
            for t in np.flatnonzero(hit)[np.argsort(score[np.flatnonzero(hit), k[hit]])]:
                j = sel[k[t]]
                if used[j]:
                    continue
                used[j] = True
                n_trk[t] += 1
                pattern[t] |= np.uint8(1 << lay)
                qsum[t] += q[j]
    signal = np.where(n_trk > 0, qsum / np.maximum(n_trk, 1), -1.0)
    return TRDMatches(n_trk, pattern, signal)


def _layer_geometry(tracks, bfield_t, track_t0_ps, drift_cm_per_ns, prm):
    """Helices, z shift from the collision time (cm) and z window per track (cm)."""
    h = helices_from_tracks(tracks, bfield_t)
    side = tracks.side()
    known = np.isfinite(track_t0_ps)
    zshift = np.where(known, side * np.nan_to_num(track_t0_ps) * 1e-3 * drift_cm_per_ns, 0.0)
    max_dz = np.where(known, prm.max_dz_cm, prm.max_dz_unknown_time_cm)
    return h, zshift, max_dz


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
    n = len(tracks)
    n_trk = np.zeros(n, np.int8)
    pattern = np.zeros(n, np.uint8)
    qsum = np.zeros(n)
    if n and len(layer):
        h, zshift, max_dz = _layer_geometry(tracks, bfield_t, track_t0_ps, drift_cm_per_ns, prm)
        layer = np.asarray(layer)
        for lay, radius in enumerate(TRD_RADII_CM):
            sel = np.flatnonzero(layer == lay)
            if not len(sel):
                continue
            s = path_to_radius(h, radius)
            ok = np.isfinite(s)
            gx, gy, gz = h.at(np.where(ok, s, 0.0))
            gz = gz + zshift
            t, j, d = _candidates(
                np.arctan2(gy, gx), gz, ok, np.arctan2(ty[sel], tx[sel]), np.asarray(tz)[sel],
                radius, prm.max_drphi_cm, max_dz,
            )  # fmt: skip
            if not len(t):
                continue
            # each track's best: smallest drphi, then the lower tracklet index (as argmin)
            o = np.lexsort((j, d, t))
            t, j, d = t[o], j[o], d[o]
            first = np.ones(len(t), bool)
            first[1:] = t[1:] != t[:-1]
            t, j, d = t[first], j[first], d[first]
            # a tracklet claimed twice stays with the closer track (stable: track order on ties)
            o = np.argsort(d, kind="stable")
            _, win = np.unique(j[o], return_index=True)
            t, j = t[o][win], sel[j[o][win]]
            n_trk[t] += 1
            pattern[t] |= np.uint8(1 << lay)
            qsum[t] += np.asarray(q)[j]
    signal = np.where(n_trk > 0, qsum / np.maximum(n_trk, 1), -1.0)
    return TRDMatches(n_trk, pattern, signal)


def _candidates(
    phi_t: np.ndarray,
    z_t: np.ndarray,
    ok: np.ndarray,
    phi_h: np.ndarray,
    z_h: np.ndarray,
    radius: float,
    max_drphi: float,
    max_dz: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(track, tracklet, drphi)`` of every pair inside the windows (tracklet: index into
    ``phi_h``); tracklets sorted by phi, each track's phi window found by binary search
    (the list extended by +-2 pi for the wrap-around)."""
    order = np.argsort(phi_h, kind="stable")
    ph = phi_h[order]
    ext_phi = np.concatenate([ph - 2 * np.pi, ph, ph + 2 * np.pi])
    ext_idx = np.concatenate([order, order, order])
    w = max_drphi / radius + 1e-12  # rad, slightly wide: the exact test follows
    tr = np.flatnonzero(ok)
    lo = np.searchsorted(ext_phi, phi_t[tr] - w, side="left")
    hi = np.searchsorted(ext_phi, phi_t[tr] + w, side="right")
    cnt = hi - lo
    t = np.repeat(tr, cnt)
    pos = np.repeat(lo - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))
    j = ext_idx[pos]
    dphi = phi_h[j] - phi_t[t]
    drphi = np.abs((np.mod(dphi + np.pi, 2 * np.pi) - np.pi) * radius)
    keep = (drphi < max_drphi) & (np.abs(z_h[j] - z_t[t]) < max_dz[t])
    t, j, drphi = t[keep], j[keep], drphi[keep]
    # a window wider than half the circle could list a tracklet twice: keep one of each pair
    if w > np.pi / 2 and len(t):
        _, u = np.unique(t.astype(np.int64) * (len(phi_h) + 1) + j, return_index=True)
        t, j, drphi = t[u], j[u], drphi[u]
    return t, j, drphi
