"""TPC dE/dx: truncated mean of cluster charges normalised for pad length and track angle.

Layer: reconstruction. Each cluster's charge is divided by the length of track over its pad,
``h sqrt(1 + tgl^2) / |cos(phi)|`` (pad height ``h``, local azimuthal angle ``phi`` of the track
at the cluster, dip ``tgl``), then the sorted values between the fractions 2/128 and 77/128 are
averaged (O2's truncation), corrected for the residual dip-angle dependence and scaled so
that a minimum-ionising pion gives 50 (O2's MIP).
The scale, the expected signal vs beta*gamma and the resolution come from the calibration in
:mod:`alice_dyn.reco.dedx_calibration`.
"""

from __future__ import annotations

import numpy as np

from alice_dyn.kernels.dedx import truncated_mean_tracks
from alice_dyn.reco.helix import helices_from_tracks
from alice_dyn.tpc import geometry as geo

TRUNCATION = (2.0 / 128.0, 77.0 / 128.0)


def cluster_path_norm(tracks, refs, gx, gy, sector, row, bfield_t: float) -> np.ndarray:
    """Per reference (``(n_refs,)``): 1 / (track length over the pad), 1/cm."""
    h = helices_from_tracks(tracks, bfield_t)
    xc, yc = h.centre
    track_of_ref = np.repeat(np.arange(len(tracks)), tracks.n_clusters.astype(np.int64))
    cx, cy = gx[refs], gy[refs]
    sgn = np.sign(h.crv)[track_of_ref]
    # tangent of a circle, counter-clockwise for crv > 0
    tx = -(cy - yc[track_of_ref]) * sgn
    ty = (cx - xc[track_of_ref]) * sgn
    phi = np.arctan2(ty, tx) - geo.SECTOR_ALPHA_RAD[sector[refs]]
    cosphi = np.maximum(np.abs(np.cos(phi)), 0.2)
    tgl = tracks.tgl.astype(np.float64)[track_of_ref]
    length = geo.ROW_PAD_HEIGHT_CM[row[refs]] * np.sqrt(1.0 + tgl * tgl) / cosphi
    return 1.0 / length


def track_dedx(
    tracks,
    refs,
    q_tot,
    q_max,
    gx,
    gy,
    sector,
    row,
    bfield_t: float,
    mip_scale: float,
    tgl_coefficient: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(qTot, qMax) dE/dx per track in O2 units (MIP = 50 with the calibrated ``mip_scale``).

    ``tgl_coefficient`` removes the residual rise with the dip angle (longer paths over a pad
    mean more primaries per cluster, so the truncation cuts less): the means are divided by
    ``1 + tgl_coefficient * tgl^2``.
    """
    # a cluster belongs to one track: the per-reference path length is a per-cluster factor
    norm = np.zeros(len(q_tot))
    norm[refs] = cluster_path_norm(tracks, refs, gx, gy, sector, row, bfield_t)
    start = tracks.cluster_start.astype(np.int64)
    n = tracks.n_clusters.astype(np.int64)
    lo, hi = TRUNCATION
    refs = np.asarray(refs, dtype=np.int64)
    tot = truncated_mean_tracks(np.asarray(q_tot, np.float64), norm, refs, start, n, lo, hi)
    mx = truncated_mean_tracks(np.asarray(q_max, np.float64), norm, refs, start, n, lo, hi)
    corr = mip_scale / (1.0 + tgl_coefficient * tracks.tgl.astype(np.float64) ** 2)
    return tot * corr, mx * corr
