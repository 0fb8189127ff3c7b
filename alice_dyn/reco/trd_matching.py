"""Matching TPC tracks to TRD tracklets, layer by layer.

Layer: reconstruction (NumPy). For each of the six layers the track's helix is extrapolated to
the layer radius; the nearest tracklet of that layer inside the r-phi window is taken (z is
only loosely constrained: tracklet z is known to a pad row of 8 cm and the track's time is
known only when TOF assigned it to a collision). The TRD signal is the mean tracklet charge
(MIP ~ 1; electrons higher from transition radiation); the pattern has one bit per layer.
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
    """Match tracks to tracklets ``(n_tracklets,)``; ``track_t0_ps`` is each track's collision
    time from TOF (NaN where unknown)."""
    n = len(tracks)
    n_trk = np.zeros(n, np.int8)
    pattern = np.zeros(n, np.uint8)
    qsum = np.zeros(n)
    if n and len(layer):
        h = helices_from_tracks(tracks, bfield_t)
        side = tracks.side()
        known = np.isfinite(track_t0_ps)
        zshift = np.where(known, side * np.nan_to_num(track_t0_ps) * 1e-3 * drift_cm_per_ns, 0.0)
        max_dz = np.where(known, prm.max_dz_cm, prm.max_dz_unknown_time_cm)
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
