"""Per-cluster features of track candidates for the track network, in pad-row slots.

Layer: kernels. For every track (O2 parameters at its reference point, the innermost cluster)
and every one of its clusters (``refs[start[t] : start[t] + n[t]]``, inner to outer), the
cluster's features are written into the slot of its pad row: a float32
``(n_tracks, 152, N_CLUSTER_FEATURES)`` array and a bool ``(n_tracks, 152)`` mask (True = the
track has a cluster in that row), zeros elsewhere. The classical tracker takes at most one
cluster per pad row, so the slot of a cluster is its row (were a row taken twice, the outer
cluster in reference order would win). Row slots let the network read a track by ranges of
rows (e.g. the outer rows first).

Features (:data:`CLUSTER_FEATURES`), with the track's helix from its parameters (curvature
``C = -KB B q2pt``, as :mod:`alice_dyn.reco.track_model`):

=================  ============================================================================
``row``            pad row / 152
``edge``           sector-local y / (local x tan 10 deg): -1 .. 1 across the sector
``dz_ref``         (z - z_ref) / 100 cm, z of the cluster relative to the track's reference z
``log_qtot``       log(max(qTot, 1)) (ADC)
``log_qmax``       log(max(qMax, 1)) (ADC)
``res_t``          asinh(d / 0.05 cm), d = distance of the cluster from the helix circle in the
                   bending plane (positive outside the circle)
``res_z``          asinh(dz / 0.05 cm), dz = z - (z_ref + tgl s) at the cluster's phase
``crossed``        1 if the cluster's sector frame differs from the track's (sector crossing)
``path``           s / 100 cm: transverse path along the helix from the reference point
``gap``            (row - previous cluster's row - 1) / 10 (missing rows before it; 0 first)
``snp_local``      sine of the helix direction at the cluster in the cluster's sector frame
=================  ============================================================================

Inputs: ``track_par`` ``(n_tracks, 7)`` float64 columns ``x, alpha, y, z, snp, tgl, q2pt``
(cm, rad, cm, cm, -, -, c/GeV); ``cluster_xyzq`` ``(n_clusters, 5)`` float64 columns global
``x, y, z`` (cm, as ``TPC/CLUSTERGLOBAL``) and ``q_tot, q_max`` (ADC); ``sector``, ``row``
``(n_clusters,)`` integers; ``bfield_t`` (T). The arithmetic is float64, rounded once.

``rows=(lo, hi)`` limits the output to pad rows ``lo <= row < hi``: ``(n_tracks, hi - lo, 11)``,
the slice ``[:, lo:hi]`` of the full output (the ``gap`` of a chunk's first cluster still counts
from the track's previous cluster). Clusters outside the range cost no arithmetic, so a network
that reads a track by chunks of rows (outer first) and stops early pays only for what it read.

NumPy reference, Numba CPU twin (one track per prange iteration), numba.cuda twin (one thread
per (track, cluster)).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import njit, prange

from alice_dyn.kernels import _cuda
from alice_dyn.kernels._common import check_tracks
from alice_dyn.kernels.backends import Backend, get_backend
from alice_dyn.physics.particles import B_TO_PT_GEV_PER_T_CM
from alice_dyn.tpc import geometry as geo

cuda: Any = None  # numba.cuda, bound by the first GPU call (see _cuda.bind_cuda)
KB = B_TO_PT_GEV_PER_T_CM
N_SLOTS = geo.N_ROWS
CLUSTER_FEATURES = (
    "row", "edge", "dz_ref", "log_qtot", "log_qmax", "res_t", "res_z", "crossed", "path",
    "gap", "snp_local",
)  # fmt: skip
N_CLUSTER_FEATURES = len(CLUSTER_FEATURES)
TAN_HALF_SECTOR = math.tan(0.5 * geo.SECTOR_WIDTH_RAD)
RES_SCALE_CM = 0.05
MIN_CURVATURE = 1e-9  # 1/cm: straighter tracks are treated as this curved
PI = math.pi
TWO_PI = 2.0 * math.pi


def _check(track_par: Any, cluster_xyzq: Any, sector: Any, row: Any, refs, start, n) -> None:
    check_tracks(refs, start, n)
    if track_par.ndim != 2 or track_par.shape != (start.shape[0], 7):
        raise ValueError(f"track_par must be (n_tracks, 7), got {track_par.shape}")
    if cluster_xyzq.ndim != 2 or cluster_xyzq.shape[1] != 5:
        raise ValueError(f"cluster_xyzq must be (n_clusters, 5), got {cluster_xyzq.shape}")
    if sector.shape != (cluster_xyzq.shape[0],) or row.shape != sector.shape:
        raise ValueError("sector and row must be (n_clusters,) like cluster_xyzq")


def _row_range(rows: tuple[int, int] | None) -> tuple[int, int]:
    lo, hi = (0, N_SLOTS) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= lo < hi <= N_SLOTS:
        raise ValueError(f"rows must be (lo, hi) with 0 <= lo < hi <= {N_SLOTS}, got {rows}")
    return lo, hi


# ------------------------------------------------------------------------------------------
# NumPy reference
# ------------------------------------------------------------------------------------------


def _helix_ref(tp: np.ndarray, bfield_t: float) -> tuple[np.ndarray, ...]:
    """Centre, radius, sense and reference phase of the tracks' helices (NumPy)."""
    x, alpha, y, _z, snp, _tgl, q2pt = tp.T
    ca, sa = np.cos(alpha), np.sin(alpha)
    gx0, gy0 = x * ca - y * sa, x * sa + y * ca
    phi = alpha + np.arcsin(np.clip(snp, -0.999999, 0.999999))
    crv = -KB * bfield_t * q2pt
    crv = np.where(
        np.abs(crv) < MIN_CURVATURE, np.where(crv >= 0, MIN_CURVATURE, -MIN_CURVATURE), crv
    )
    sense = np.where(crv > 0, 1.0, -1.0)
    r = 1.0 / np.abs(crv)
    xc = gx0 - sense * r * np.sin(phi)
    yc = gy0 + sense * r * np.cos(phi)
    return xc, yc, r, sense, np.arctan2(gy0 - yc, gx0 - xc)


def track_cluster_features_ref(
    refs: Any,
    start: Any,
    n: Any,
    track_par: Any,
    cluster_xyzq: Any,
    sector: Any,
    row: Any,
    bfield_t: float,
    rows: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`track_cluster_features` (a row range is the slice of all rows)."""
    refs, start, n = np.asarray(refs), np.asarray(start, np.int64), np.asarray(n, np.int64)
    tp, cl = np.asarray(track_par, np.float64), np.asarray(cluster_xyzq, np.float64)
    sector, row = np.asarray(sector), np.asarray(row)
    _check(tp, cl, sector, row, refs, start, n)
    lo, hi = _row_range(rows)
    if (lo, hi) != (0, N_SLOTS):
        out, mask = track_cluster_features_ref(refs, start, n, tp, cl, sector, row, bfield_t)
        return np.ascontiguousarray(out[:, lo:hi]), np.ascontiguousarray(mask[:, lo:hi])
    n_tr = len(n)
    out = np.zeros((n_tr, N_SLOTS, N_CLUSTER_FEATURES), np.float32)
    mask = np.zeros((n_tr, N_SLOTS), bool)
    if not n_tr or not int(n.sum()):
        return out, mask
    xc, yc, r, sense, phi0 = _helix_ref(tp, bfield_t)
    t = np.repeat(np.arange(n_tr), n)
    k = np.arange(len(t)) - np.repeat(np.cumsum(n) - n, n)
    c = refs[start[t] + k].astype(np.int64)
    prev = np.where(k > 0, refs[np.maximum(start[t] + k - 1, 0)], 0).astype(np.int64)
    gx, gy, gz, qt, qm = cl[c].T
    a_cl = geo.SECTOR_ALPHA_RAD[sector[c].astype(np.int64)]
    rw = row[c].astype(np.float64)
    ca, sa = np.cos(a_cl), np.sin(a_cl)
    lx, ly = gx * ca + gy * sa, -gx * sa + gy * ca
    dxc, dyc = gx - xc[t], gy - yc[t]
    ph = np.arctan2(dyc, dxc)
    dphi = ((ph - phi0[t]) + PI) % TWO_PI - PI
    s = sense[t] * dphi * r[t]
    z_ref, tgl, alpha_tr = tp[t, 3], tp[t, 5], tp[t, 1]
    da = ((a_cl - alpha_tr) + PI) % TWO_PI - PI
    gap = np.where(k > 0, (rw - row[prev].astype(np.float64) - 1.0) / 10.0, 0.0)
    feats = np.stack(
        [
            rw / N_SLOTS,
            ly / (lx * TAN_HALF_SECTOR),
            (gz - z_ref) / 100.0,
            np.log(np.where(qt > 1.0, qt, 1.0)),
            np.log(np.where(qm > 1.0, qm, 1.0)),
            np.arcsinh((np.hypot(dxc, dyc) - r[t]) / RES_SCALE_CM),
            np.arcsinh((gz - (z_ref + tgl * s)) / RES_SCALE_CM),
            np.where(np.abs(da) > 1e-3, 1.0, 0.0),
            s / 100.0,
            gap,
            np.sin(ph + sense[t] * 0.5 * PI - a_cl),
        ],
        axis=1,
    )
    slot = row[c].astype(np.int64)
    out[t, slot] = feats.astype(np.float32)
    mask[t, slot] = True
    return out, mask


# ------------------------------------------------------------------------------------------
# scalar bodies shared by the Numba CPU and CUDA twins
# ------------------------------------------------------------------------------------------


@njit(inline="always")
def _helix_one(x, alpha, y, snp, q2pt, bfield_t):
    """``(xc, yc, r, sense, phi0)`` of one track's helix."""
    ca = math.cos(alpha)
    sa = math.sin(alpha)
    gx0 = x * ca - y * sa
    gy0 = x * sa + y * ca
    s = snp
    if s > 0.999999:
        s = 0.999999
    if s < -0.999999:
        s = -0.999999
    phi = alpha + math.asin(s)
    crv = -KB * bfield_t * q2pt
    if abs(crv) < MIN_CURVATURE:
        crv = MIN_CURVATURE if crv >= 0.0 else -MIN_CURVATURE
    sense = 1.0 if crv > 0.0 else -1.0
    r = 1.0 / abs(crv)
    xc = gx0 - sense * r * math.sin(phi)
    yc = gy0 + sense * r * math.cos(phi)
    return xc, yc, r, sense, math.atan2(gy0 - yc, gx0 - xc)


@njit(inline="always")
def _cluster_one(xc, yc, r, sense, phi0, z_ref, tgl, alpha_tr, gx, gy, gz, qt, qm, a_cl, rw, pr):
    """The 11 features of one cluster (``pr``: the previous cluster's row, -1 for none)."""
    ca = math.cos(a_cl)
    sa = math.sin(a_cl)
    lx = gx * ca + gy * sa
    ly = -gx * sa + gy * ca
    dxc = gx - xc
    dyc = gy - yc
    ph = math.atan2(dyc, dxc)
    dphi = ((ph - phi0) + PI) % TWO_PI - PI
    s = sense * dphi * r
    da = ((a_cl - alpha_tr) + PI) % TWO_PI - PI
    gap = (rw - pr - 1.0) / 10.0 if pr >= 0.0 else 0.0
    return (
        rw / N_SLOTS,
        ly / (lx * TAN_HALF_SECTOR),
        (gz - z_ref) / 100.0,
        math.log(qt if qt > 1.0 else 1.0),
        math.log(qm if qm > 1.0 else 1.0),
        math.asinh((math.hypot(dxc, dyc) - r) / RES_SCALE_CM),
        math.asinh((gz - (z_ref + tgl * s)) / RES_SCALE_CM),
        1.0 if abs(da) > 1e-3 else 0.0,
        s / 100.0,
        gap,
        math.sin(ph + sense * 0.5 * PI - a_cl),
    )


@njit(parallel=True, cache=True)
def _features_cpu(refs, start, n, tp, cl, sector, row, bfield_t, alpha_tab, lo, hi, out, mask):
    for t in prange(start.shape[0]):
        xc, yc, r, sense, phi0 = _helix_one(
            tp[t, 0], tp[t, 1], tp[t, 2], tp[t, 4], tp[t, 6], bfield_t
        )
        pr = -1.0
        s0 = np.int64(start[t])
        for k in range(np.int64(n[t])):
            c = np.int64(refs[s0 + k])
            rw = np.int64(row[c])
            if lo <= rw < hi:
                f = _cluster_one(
                    xc, yc, r, sense, phi0, tp[t, 3], tp[t, 5], tp[t, 1], cl[c, 0], cl[c, 1],
                    cl[c, 2], cl[c, 3], cl[c, 4], alpha_tab[np.int64(sector[c])],
                    np.float64(rw), pr,
                )  # fmt: skip
                for j in range(len(f)):
                    out[t, rw - lo, j] = f[j]
                mask[t, rw - lo] = True
            pr = np.float64(rw)


def track_cluster_features_cpu(
    refs: Any,
    start: Any,
    n: Any,
    track_par: Any,
    cluster_xyzq: Any,
    sector: Any,
    row: Any,
    bfield_t: float,
    rows: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Numba CPU twin of :func:`track_cluster_features_ref`."""
    refs, start, n = np.asarray(refs), np.asarray(start), np.asarray(n)
    tp = np.ascontiguousarray(track_par, np.float64)
    cl = np.ascontiguousarray(cluster_xyzq, np.float64)
    sector, row = np.asarray(sector), np.asarray(row)
    _check(tp, cl, sector, row, refs, start, n)
    lo, hi = _row_range(rows)
    out = np.zeros((len(n), hi - lo, N_CLUSTER_FEATURES), np.float32)
    mask = np.zeros((len(n), hi - lo), np.bool_)
    if len(n):
        _features_cpu(
            refs, start, n, tp, cl, sector, row, float(bfield_t), geo.SECTOR_ALPHA_RAD, lo, hi,
            out, mask,
        )  # fmt: skip
    return out, mask


# ------------------------------------------------------------------------------------------
# numba.cuda twin
# ------------------------------------------------------------------------------------------


@functools.cache
def _cuda_kernels():
    _cuda.bind_cuda(globals())
    helix_one = cuda.jit(device=True)(_helix_one.py_func)
    cluster_one = cuda.jit(device=True)(_cluster_one.py_func)

    @cuda.jit
    def features(refs, start, owner, tp, cl, sector, row, bfield_t, alpha_tab, lo, hi, out, mask):
        i = cuda.grid(1)  # one thread per reference: (track, cluster)
        if i < owner.shape[0] and owner[i] >= 0:
            c = np.int64(refs[i])
            rw = np.int64(row[c])
            if rw < lo or rw >= hi:
                return
            t = owner[i]
            s0 = np.int64(start[t])
            k = np.int64(i) - s0
            xc, yc, r, sense, phi0 = helix_one(
                tp[t, 0], tp[t, 1], tp[t, 2], tp[t, 4], tp[t, 6], bfield_t
            )
            pr = -1.0
            if k > 0:
                pr = np.float64(row[np.int64(refs[i - 1])])
            f = cluster_one(
                xc, yc, r, sense, phi0, tp[t, 3], tp[t, 5], tp[t, 1], cl[c, 0], cl[c, 1],
                cl[c, 2], cl[c, 3], cl[c, 4], alpha_tab[np.int64(sector[c])], np.float64(rw), pr,
            )  # fmt: skip
            s = rw - lo
            out[t, s, 0] = f[0]
            out[t, s, 1] = f[1]
            out[t, s, 2] = f[2]
            out[t, s, 3] = f[3]
            out[t, s, 4] = f[4]
            out[t, s, 5] = f[5]
            out[t, s, 6] = f[6]
            out[t, s, 7] = f[7]
            out[t, s, 8] = f[8]
            out[t, s, 9] = f[9]
            out[t, s, 10] = f[10]
            mask[t, s] = True

    return features


def _owners(start: Any, n: Any, n_refs: int, xp: Any) -> Any:
    """``(n_refs,)`` int32: the track each reference belongs to, -1 for none (tracks do not
    share references)."""
    owner = xp.full(n_refs, -1, np.int32)
    total = int(n.sum()) if n.shape[0] else 0
    if total:
        start64, n64 = start.astype(np.int64), n.astype(np.int64)
        track = xp.repeat(xp.arange(n.shape[0], dtype=np.int32), n64)
        first = xp.cumsum(n64) - n64
        pos = xp.repeat(start64 - first, n64) + xp.arange(total, dtype=np.int64)
        owner[pos] = track
    return owner


def track_cluster_features_gpu(
    refs: Any,
    start: Any,
    n: Any,
    track_par: Any,
    cluster_xyzq: Any,
    sector: Any,
    row: Any,
    bfield_t: float,
    rows: tuple[int, int] | None = None,
    *,
    xp: Any = None,
) -> tuple[Any, Any]:
    """numba.cuda twin of :func:`track_cluster_features_ref` (one thread per reference;
    references outside every track or outside ``rows`` do nothing)."""
    xp = _cuda.default_xp(xp)
    refs, start, n, sector, row = (xp.asarray(a) for a in (refs, start, n, sector, row))
    tp = xp.ascontiguousarray(xp.asarray(track_par, np.float64))
    cl = xp.ascontiguousarray(xp.asarray(cluster_xyzq, np.float64))
    _check(tp, cl, sector, row, refs, start, n)
    lo, hi = _row_range(rows)
    out = xp.zeros((n.shape[0], hi - lo, N_CLUSTER_FEATURES), np.float32)
    mask = xp.zeros((n.shape[0], hi - lo), np.bool_)
    if refs.shape[0] and n.shape[0]:
        owner = _owners(start, n, int(refs.shape[0]), xp)
        alpha_tab = _cuda.device_table(xp, "sector_alpha", geo.SECTOR_ALPHA_RAD)
        _cuda_kernels()[_cuda.blocks(refs.shape[0]), _cuda.THREADS_PER_BLOCK](
            refs, start, owner, tp, cl, sector, row, float(bfield_t), alpha_tab, lo, hi, out, mask
        )
    return out, mask


def track_cluster_features(
    refs: Any,
    start: Any,
    n: Any,
    track_par: Any,
    cluster_xyzq: Any,
    sector: Any,
    row: Any,
    bfield_t: float,
    rows: tuple[int, int] | None = None,
    *,
    backend: str | Backend = "cpu",
) -> tuple[Any, Any]:
    """``(features float32 (n_tracks, L, 11), mask bool (n_tracks, L))`` for the pad rows
    ``rows = (lo, hi)`` (default all 152, ``L = hi - lo``); see the module docstring for the
    inputs, the features and the row slots."""
    be = get_backend(backend)
    if be.is_gpu:
        return track_cluster_features_gpu(
            refs, start, n, track_par, cluster_xyzq, sector, row, bfield_t, rows, xp=be.xp
        )
    return track_cluster_features_cpu(
        refs, start, n, track_par, cluster_xyzq, sector, row, bfield_t, rows
    )


__all__ = [
    "CLUSTER_FEATURES",
    "N_CLUSTER_FEATURES",
    "N_SLOTS",
    "track_cluster_features",
    "track_cluster_features_cpu",
    "track_cluster_features_gpu",
    "track_cluster_features_ref",
]
