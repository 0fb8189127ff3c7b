"""Helix fit of tracks given as cluster references: circle in (x, y), line in (s, z).

Layer: kernels. Tracks are ``refs[start[i] : start[i] + n[i]]`` (indices into the global cluster
arrays ``gx``, ``gy``, ``gz``, cm), clusters ordered along the direction of travel (inner to
outer, as ``TPCTracks`` cluster references). Per track:

1. circle: Taubin's algebraic fit on coordinates centred on the clusters' mean (safe for
   stiff tracks of R ~ 100 m), a Newton root of a cubic, no matrix algebra. Kasa's simpler
   algebraic fit was tried first and dropped: it shrinks the radius on the TPC's short arcs
   (-19% at R = 100 m, 0.5 mm noise; Taubin: < 0.2%). ``chi2_xy`` is the unweighted sum of
   squared geometric residuals ``(|p - c| - R)^2`` (cm^2);
2. sense of travel: the sign of the swept angle from cluster to cluster (+1 counter-clockwise
   seen from +z, -1 clockwise; the convention of :mod:`alice_dyn.reco.track_model`: positive
   tracks in a positive field turn clockwise);
3. line: ``z = z0 + tgl * s`` by least squares, ``s`` the transverse arc length along the
   direction of travel measured from the circle's point of closest approach to the beam axis
   (phase ``phi0 = atan2(-yc, -xc)``); so ``z0`` is the track's z at its DCA to the beam line and
   ``tgl`` its dip tangent (pz/pt).

Fewer than three clusters, or collinear clusters (infinite radius), give NaN and ``sense = 0``.
The result is a :class:`HelixFit`; :attr:`HelixFit.helix` is the :class:`Helix` that
:mod:`alice_dyn.kernels.matching` extrapolates. One NumPy reference (vectorised over tracks),
a Numba CPU twin (one track per prange iteration) and a numba.cuda twin (one thread per track),
the latter two compiled from one scalar function.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from alice_dyn.kernels import _cuda
from alice_dyn.kernels._common import check_tracks
from alice_dyn.kernels.backends import Backend, get_backend

cuda: Any = None  # numba.cuda, bound by the first GPU call (see _cuda.bind_cuda)


class Helix(NamedTuple):
    """Tracks as global helices, each field ``(n_tracks,)``.

    Centre ``xc``, ``yc`` and radius ``r`` (cm) of the circle in the bending plane; ``sense``
    +1 if the track travels counter-clockwise seen from +z, -1 if clockwise; ``phi0`` the phase
    of the reference point on the circle, which is ``(xc + r cos phi0, yc + r sin phi0, z0)``;
    ``tgl`` = dz/ds along the direction of travel (pz/pt). After a transverse path ``s >= 0``
    the track is at phase ``phi0 + sense * s / r`` and ``z0 + tgl * s``; its 3-D path length
    is ``s * sqrt(1 + tgl^2)``.
    """

    xc: Any
    yc: Any
    r: Any
    sense: Any
    phi0: Any
    tgl: Any
    z0: Any


class HelixFit(NamedTuple):
    """Per-track fit results ``(n_tracks,)``: the fields of :class:`Helix` plus ``chi2_xy``.

    ``xc, yc, r, tgl, z0, chi2_xy, phi0`` float64, ``sense`` int8; the reference point of the
    helix is the point of closest approach to the beam axis.
    """

    xc: Any
    yc: Any
    r: Any
    tgl: Any
    z0: Any
    chi2_xy: Any
    sense: Any
    phi0: Any

    @property
    def helix(self) -> Helix:
        return Helix(self.xc, self.yc, self.r, self.sense, self.phi0, self.tgl, self.z0)


# ------------------------------------------------------------------------------------------
# NumPy reference (vectorised over tracks)
# ------------------------------------------------------------------------------------------


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles into [-pi, pi)."""
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def fit_helices_ref(refs: Any, start: Any, n: Any, gx: Any, gy: Any, gz: Any) -> HelixFit:
    """NumPy reference of :func:`fit_helices`."""
    refs, start, n = np.asarray(refs), np.asarray(start, np.int64), np.asarray(n, np.int64)
    check_tracks(refs, start, n)
    n_tr = len(n)
    trk = np.repeat(np.arange(n_tr), n)
    idx = refs[np.repeat(start - np.cumsum(n) + n, n) + np.arange(n.sum())]  # per-track refs
    x = np.asarray(gx, np.float64)[idx]
    y = np.asarray(gy, np.float64)[idx]
    z = np.asarray(gz, np.float64)[idx]

    def ssum(v):
        return np.bincount(trk, weights=v, minlength=n_tr)

    with np.errstate(divide="ignore", invalid="ignore"):
        m = n.astype(np.float64)
        xm, ym = ssum(x) / m, ssum(y) / m
        u, v = x - xm[trk], y - ym[trk]
        z2 = u * u + v * v
        mxx, myy, mxy = ssum(u * u) / m, ssum(v * v) / m, ssum(u * v) / m
        mxz, myz, mzz = ssum(u * z2) / m, ssum(v * z2) / m, ssum(z2 * z2) / m
        uc, vc, r, ok = _taubin_ref(mxx, myy, mxy, mxz, myz, mzz)
        ok &= n >= 3
        xc, yc = uc + xm, vc + ym
        chi2 = ssum((np.hypot(x - xc[trk], y - yc[trk]) - r[trk]) ** 2)
        # sense: swept angle between consecutive clusters
        dx, dy = x - xc[trk], y - yc[trk]
        same = np.zeros(len(x), bool)
        same[:-1] = trk[1:] == trk[:-1]  # cluster i and i + 1 belong to one track
        cross = np.zeros(len(x))
        cross[:-1] = dx[:-1] * dy[1:] - dy[:-1] * dx[1:]
        swept = ssum(np.where(same, cross, 0.0))
        sense = np.where(swept > 0.0, 1, -1)
        ok &= np.isfinite(r) & (swept != 0.0)
        phi0 = np.arctan2(-yc, -xc)
        # unwrapped phase advance from the DCA point, cluster by cluster
        phi = np.arctan2(dy, dx)
        prev = np.empty(len(x))
        prev[1:] = phi[:-1]
        first = np.ones(len(x), bool)
        first[1:] = ~same[:-1]
        prev[first] = phi0[trk[first]]
        d = np.where(ok[trk], _wrap(phi - prev), 0.0)  # failed tracks must not poison the cumsum
        csum = np.cumsum(d)
        nonempty = n > 0
        seg0 = np.repeat(csum[first] - d[first], n[nonempty])  # cumulative sum before a track
        s = sense[trk] * r[trk] * (csum - seg0)
        s_off, z_off = np.zeros(n_tr), np.zeros(n_tr)  # line fit relative to the first cluster
        s_off[nonempty], z_off[nonempty] = s[first], z[first]
        ds, dz = s - s_off[trk], z - z_off[trk]
        ss, sz, sss, ssz = ssum(ds), ssum(dz), ssum(ds * ds), ssum(ds * dz)
        den = m * sss - ss * ss
        tgl = (m * ssz - ss * sz) / den
        z0 = (sz - tgl * ss) / m + z_off - tgl * s_off
        ok &= den > 0.0
    nan = np.where(ok, 0.0, np.nan)
    return HelixFit(
        xc + nan, yc + nan, r + nan, tgl + nan, z0 + nan, chi2 + nan,
        np.where(ok, sense, 0).astype(np.int8), phi0 + nan,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------
# one scalar body for the Numba CPU and numba.cuda twins
# ------------------------------------------------------------------------------------------


# Taubin's algebraic circle fit from centred moments (N. Chernov's formulation: Newton
# iteration for the smallest root of a cubic). Kasa's fit, the simplest algebraic fit, pulls
# the radius down on short arcs: -19% at R = 100 m over the TPC's 165 cm with 0.5 mm of
# noise (measured here); Taubin's removes that bias to leading order.
TAUBIN_MAX_ITER = 99
TAUBIN_EPS = 1e-12


@njit(inline="always")
def _taubin(mxx, myy, mxy, mxz, myz, mzz):
    """Centre (relative to the centroid) and radius: ``(uc, vc, r, ok)``."""
    mz = mxx + myy
    cov_xy = mxx * myy - mxy * mxy
    var_z = mzz - mz * mz
    a3 = 4.0 * mz
    a2 = -3.0 * mz * mz - mzz
    a1 = var_z * mz + 4.0 * cov_xy * mz - mxz * mxz - myz * myz
    a0 = mxz * (mxz * myy - myz * mxy) + myz * (myz * mxx - mxz * mxy) - var_z * cov_xy
    a22 = a2 + a2
    a33 = a3 + a3 + a3
    x = 0.0
    y = 1e20
    converged = False
    for _ in range(TAUBIN_MAX_ITER):
        y_old = y
        y = a0 + x * (a1 + x * (a2 + x * a3))
        if abs(y) > abs(y_old):  # diverging: fall back to the Kasa-like root 0
            x = 0.0
            converged = True
            break
        dy = a1 + x * (a22 + x * a33)
        if dy == 0.0:
            x = 0.0
            converged = True
            break
        x_old = x
        x = x_old - y / dy
        if abs(x - x_old) <= TAUBIN_EPS * abs(x):
            converged = True
            break
        if x < 0.0:
            x = 0.0
            converged = True
            break
    if not converged:
        x = 0.0
    det = x * x - x * mz + cov_xy
    if not (det > 0.0 or det < 0.0):
        return math.nan, math.nan, math.nan, False
    uc = (mxz * (myy - x) - myz * mxy) / det / 2.0
    vc = (myz * (mxx - x) - mxz * mxy) / det / 2.0
    r = math.sqrt(uc * uc + vc * vc + mz)
    return uc, vc, r, math.isfinite(r)


def _taubin_ref(mxx, myy, mxy, mxz, myz, mzz):
    """:func:`_taubin` vectorised over tracks (same steps, masks for finished tracks)."""
    mz = mxx + myy
    cov_xy = mxx * myy - mxy * mxy
    var_z = mzz - mz * mz
    a3 = 4.0 * mz
    a2 = -3.0 * mz * mz - mzz
    a1 = var_z * mz + 4.0 * cov_xy * mz - mxz * mxz - myz * myz
    a0 = mxz * (mxz * myy - myz * mxy) + myz * (myz * mxx - mxz * mxy) - var_z * cov_xy
    a22, a33 = a2 + a2, a3 + a3 + a3
    x = np.zeros_like(mz)
    y = np.full_like(mz, 1e20)
    act = np.ones(mz.shape, bool)
    for _ in range(TAUBIN_MAX_ITER):
        if not act.any():
            break
        y_old = y
        y = np.where(act, a0 + x * (a1 + x * (a2 + x * a3)), y)
        stop = act & (np.abs(y) > np.abs(y_old))
        dy = a1 + x * (a22 + x * a33)
        stop |= act & (dy == 0.0)
        x = np.where(stop, 0.0, x)
        act &= ~stop
        x_old = x
        x = np.where(act, x_old - y / np.where(act, dy, 1.0), x)
        act &= ~(np.abs(x - x_old) <= TAUBIN_EPS * np.abs(x))
        neg = act & (x < 0.0)
        x = np.where(neg, 0.0, x)
        act &= ~neg
    x = np.where(act, 0.0, x)  # no convergence
    det = x * x - x * mz + cov_xy
    uc = (mxz * (myy - x) - myz * mxy) / det / 2.0
    vc = (myz * (mxx - x) - mxz * mxy) / det / 2.0
    r = np.sqrt(uc * uc + vc * vc + mz)
    return uc, vc, r, (det != 0.0) & np.isfinite(r)


@njit(inline="always")
def _fit_one(refs, lo, m, gx, gy, gz):
    """Fit one track; returns ``(xc, yc, r, tgl, z0, chi2_xy, sense, phi0)``."""
    nan = math.nan
    if m < 3:
        return nan, nan, nan, nan, nan, nan, 0, nan
    xm = 0.0
    ym = 0.0
    for k in range(lo, lo + m):
        j = refs[k]
        xm += np.float64(gx[j])
        ym += np.float64(gy[j])
    xm /= m
    ym /= m
    mxx = myy = mxy = mxz = myz = mzz = 0.0
    for k in range(lo, lo + m):
        j = refs[k]
        u = np.float64(gx[j]) - xm
        v = np.float64(gy[j]) - ym
        z2 = u * u + v * v
        mxx += u * u
        myy += v * v
        mxy += u * v
        mxz += u * z2
        myz += v * z2
        mzz += z2 * z2
    uc, vc, r, ok = _taubin(mxx / m, myy / m, mxy / m, mxz / m, myz / m, mzz / m)
    if not ok:
        return nan, nan, nan, nan, nan, nan, 0, nan
    xc = uc + xm
    yc = vc + ym
    chi2 = 0.0
    swept = 0.0
    for k in range(lo, lo + m):
        j = refs[k]
        dx = np.float64(gx[j]) - xc
        dy = np.float64(gy[j]) - yc
        res = math.hypot(dx, dy) - r
        chi2 += res * res
        if k + 1 < lo + m:
            j2 = refs[k + 1]
            swept += dx * (np.float64(gy[j2]) - yc) - dy * (np.float64(gx[j2]) - xc)
    if not (math.isfinite(r) and swept != 0.0):
        return nan, nan, nan, nan, nan, nan, 0, nan
    sense = 1 if swept > 0.0 else -1
    phi0 = math.atan2(-yc, -xc)
    prev = phi0
    acc = 0.0
    s_off = 0.0
    z_off = 0.0
    ss = sz = sss = ssz = 0.0
    for k in range(lo, lo + m):
        j = refs[k]
        phi = math.atan2(np.float64(gy[j]) - yc, np.float64(gx[j]) - xc)
        d = phi - prev
        d = (d + math.pi) % (2.0 * math.pi) - math.pi
        acc += d
        prev = phi
        s = sense * r * acc
        z = np.float64(gz[j])
        if k == lo:
            s_off = s
            z_off = z
        ds = s - s_off
        dz = z - z_off
        ss += ds
        sz += dz
        sss += ds * ds
        ssz += ds * dz
    den = m * sss - ss * ss
    if not den > 0.0:
        return nan, nan, nan, nan, nan, nan, 0, nan
    tgl = (m * ssz - ss * sz) / den
    z0 = (sz - tgl * ss) / m + z_off - tgl * s_off
    return xc, yc, r, tgl, z0, chi2, sense, phi0


@njit(parallel=True, cache=True)
def _fit_cpu(refs, start, n, gx, gy, gz, xc, yc, r, tgl, z0, chi2, sense, phi0):
    for t in prange(start.shape[0]):
        a, b, c, d, e, f, g, h = _fit_one(refs, np.int64(start[t]), np.int64(n[t]), gx, gy, gz)
        xc[t] = a
        yc[t] = b
        r[t] = c
        tgl[t] = d
        z0[t] = e
        chi2[t] = f
        sense[t] = g
        phi0[t] = h


def _outputs(xp: Any, n_tr: int) -> HelixFit:
    f = [xp.empty(n_tr, np.float64) for _ in range(6)]
    return HelixFit(*f, xp.empty(n_tr, np.int8), xp.empty(n_tr, np.float64))


def fit_helices_cpu(refs: Any, start: Any, n: Any, gx: Any, gy: Any, gz: Any) -> HelixFit:
    """Numba CPU twin of :func:`fit_helices_ref`. Inputs are passed on as int64 indices and
    float64 coordinates (the kernel reads them so anyway): one compiled specialisation
    whatever the callers' dtypes (each costs ~3 s of compilation on a fresh install)."""
    refs, start, n = np.asarray(refs), np.asarray(start), np.asarray(n)
    check_tracks(refs, start, n)
    out = _outputs(np, len(n))
    idx = (np.ascontiguousarray(a, np.int64) for a in (refs, start, n))
    xyz = (np.ascontiguousarray(a, np.float64) for a in (gx, gy, gz))
    _fit_cpu(*idx, *xyz, *out)
    return out


@functools.cache
def _cuda_kernels():
    _cuda.bind_cuda(globals())
    taubin = cuda.jit(device=True)(_taubin.py_func)
    fit_one = _cuda.device_function(cuda, _fit_one.py_func, _taubin=taubin)

    @cuda.jit
    def fit(refs, start, n, gx, gy, gz, xc, yc, r, tgl, z0, chi2, sense, phi0):
        t = cuda.grid(1)
        if t < start.shape[0]:
            a, b, c, d, e, f, g, h = fit_one(refs, np.int64(start[t]), np.int64(n[t]), gx, gy, gz)
            xc[t] = a
            yc[t] = b
            r[t] = c
            tgl[t] = d
            z0[t] = e
            chi2[t] = f
            sense[t] = g
            phi0[t] = h

    return fit


def fit_helices_gpu(
    refs: Any, start: Any, n: Any, gx: Any, gy: Any, gz: Any, *, xp: Any = None
) -> HelixFit:
    """numba.cuda twin of :func:`fit_helices_ref`: one thread per track."""
    xp = _cuda.default_xp(xp)
    refs, start, n, gx, gy, gz = (xp.asarray(a) for a in (refs, start, n, gx, gy, gz))
    check_tracks(refs, start, n)
    out = _outputs(xp, n.shape[0])
    if n.shape[0]:
        _cuda_kernels()[_cuda.blocks(n.shape[0]), _cuda.THREADS_PER_BLOCK](
            refs, start, n, gx, gy, gz, *out
        )
    return out


def fit_helices(
    refs: Any, start: Any, n: Any, gx: Any, gy: Any, gz: Any, *, backend: str | Backend = "cpu"
) -> HelixFit:
    """Helix fit of every track on ``backend`` (see the module docstring).

    ``refs`` int ``(n_refs,)`` cluster indices; ``start``, ``n`` ``(n_tracks,)``; ``gx``, ``gy``,
    ``gz`` ``(n_clusters,)`` global cluster positions (cm; z for the track's collision time).
    """
    be = get_backend(backend)
    if be.is_gpu:
        return fit_helices_gpu(refs, start, n, gx, gy, gz, xp=be.xp)
    return fit_helices_cpu(refs, start, n, gx, gy, gz)


__all__ = [
    "Helix",
    "HelixFit",
    "fit_helices",
    "fit_helices_cpu",
    "fit_helices_gpu",
    "fit_helices_ref",
]
