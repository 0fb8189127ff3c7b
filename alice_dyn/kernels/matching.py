"""Track extrapolation to a cylinder and nearest-hit matching (TOF, TRD layers).

Layer: kernels. Tracks are global helices (:class:`~alice_dyn.kernels.helix.Helix`: centre,
radius, sense of travel, phase of the reference point, tgl, z at the reference point), made
either by :func:`~alice_dyn.kernels.helix.fit_helices` (reference point: the DCA to the beam
axis) or from O2 track parameters by :func:`helix_from_track_params` (reference point: the
parameters' point, e.g. ``tpcInnerParam``).

* :func:`extrapolate_to_cylinder` ``(helix, radius)`` -> ``(gx, gy, gz, length, ok)``: the first
  outward crossing of the cylinder ``r = radius`` (cm) found going forward (``s >= 0``) from the
  reference point, and the 3-D path length to it; ``ok`` False (and NaN) where the circle never
  reaches the cylinder.
* :func:`match_hits` ``(track_pos (n_tr, 3), hit_pos (n_hit, 3), max_drphi, max_dz)`` -> index
  of the nearest hit with ``|r_track * dphi| <= max_drphi`` and ``|dz| <= max_dz`` (distance
  ``sqrt(drphi^2 + dz^2)``, ties to the lower hit index), -1 if none. CPU: hits sorted by phi,
  binary search of each track's phi window; GPU: brute force (fine at TOF hit counts of a
  timeframe slice; a sorted search would be next).

Each kernel: NumPy reference, Numba CPU twin, numba.cuda twin (one thread per track).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import njit, prange

from alice_dyn.kernels import _cuda
from alice_dyn.kernels.backends import Backend, get_backend
from alice_dyn.kernels.helix import Helix
from alice_dyn.physics.particles import B_TO_PT_GEV_PER_T_CM

cuda: Any = None  # numba.cuda, bound by the first GPU call (see _cuda.bind_cuda)
KB = B_TO_PT_GEV_PER_T_CM  # curvature C = -KB * B * q2pt (1/cm), as reco.track_model
TWO_PI = 2.0 * math.pi


def helix_from_track_params(
    x: Any, alpha: Any, y: Any, z: Any, snp: Any, tgl: Any, q2pt: Any, bfield_t: float
) -> Helix:
    """:class:`Helix` of O2 track parameters (NumPy), reference point at the parameters' point.

    ``x, y, z`` (cm) in the frame rotated by ``alpha`` (rad); ``snp`` sine of the local
    direction, the track moving towards larger ``x``; ``q2pt`` signed 1/pT (c/GeV); ``bfield_t``
    the solenoid field (T). Curvature ``C = -KB * B * q2pt``: ``C > 0`` turns counter-clockwise
    (``sense = +1``). ``q2pt = 0`` (a straight line) gives NaN and ``sense = 0``.
    """
    f8 = np.float64
    x, alpha, y, z = (np.asarray(a, f8) for a in (x, alpha, y, z))
    snp, tgl, q2pt = (np.asarray(a, f8) for a in (snp, tgl, q2pt))
    ca, sa = np.cos(alpha), np.sin(alpha)
    gx, gy = x * ca - y * sa, x * sa + y * ca
    phi = alpha + np.arcsin(np.clip(snp, -1.0, 1.0))  # global direction of travel
    crv = -KB * bfield_t * q2pt
    sense = np.sign(crv).astype(np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(crv != 0.0, 1.0 / np.abs(crv), np.nan)
    xc = gx - sense * r * np.sin(phi)
    yc = gy + sense * r * np.cos(phi)
    phi0 = np.arctan2(gy - yc, gx - xc)
    return Helix(xc, yc, r, sense, phi0, tgl, z)


def helix_at(helix: Helix, s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global ``(x, y, z)`` (cm) after transverse path ``s`` (cm) along each helix (NumPy)."""
    h = helix
    ph = h.phi0 + h.sense * np.asarray(s, np.float64) / h.r
    return h.xc + h.r * np.cos(ph), h.yc + h.r * np.sin(ph), h.z0 + h.tgl * np.asarray(s)


def _helix_arrays(helix: Helix, xp: Any) -> tuple:
    """The helix fields as ``xp`` arrays (float64; sense int8), equal shapes."""
    h = [xp.asarray(a, np.float64) for a in helix]
    h[3] = xp.asarray(helix.sense, np.int8)
    shape = h[0].shape
    if any(a.shape != shape for a in h) or len(shape) != 1:
        raise ValueError("helix fields must be 1-D arrays of one length")
    return tuple(h)


# ------------------------------------------------------------------------------------------
# extrapolation to a cylinder
# ------------------------------------------------------------------------------------------


def extrapolate_to_cylinder_ref(helix: Helix, radius: float):
    """NumPy reference of :func:`extrapolate_to_cylinder`."""
    xc, yc, r, sense, phi0, tgl, z0 = _helix_arrays(helix, np)
    sg = sense.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.hypot(xc, yc)
        ok = (r > 0.0) & (d > 0.0) & (np.abs(r - radius) <= d) & (d <= r + radius) & (sg != 0)
        cosb = np.clip((r * r + d * d - radius * radius) / (2.0 * r * d), -1.0, 1.0)
        beta = np.arccos(cosb)
        base = np.arctan2(-yc, -xc)
        best = np.full(len(r), np.inf)
        best_ph = np.full(len(r), np.nan)
        for k in (-1.0, 1.0):
            ph = base + k * beta
            outward = sg * (yc * np.cos(ph) - xc * np.sin(ph)) >= 0.0
            s = r * np.mod(sg * (ph - phi0), TWO_PI)
            take = ok & outward & (s < best)
            best = np.where(take, s, best)
            best_ph = np.where(take, ph, best_ph)
        ok &= np.isfinite(best)
        s = np.where(ok, best, np.nan)
        gx = xc + r * np.cos(best_ph)
        gy = yc + r * np.sin(best_ph)
        gz = z0 + tgl * s
        length = s * np.sqrt(1.0 + tgl * tgl)
    nan = np.where(ok, 0.0, np.nan)
    return gx + nan, gy + nan, gz + nan, length + nan, ok


@njit(inline="always")
def _cylinder_one(xc, yc, r, sense, phi0, tgl, z0, radius):
    """One helix: ``(gx, gy, gz, length, ok)``."""
    nan = math.nan
    sg = np.float64(sense)
    d = math.hypot(xc, yc)
    if not (r > 0.0 and d > 0.0 and abs(r - radius) <= d and d <= r + radius and sg != 0.0):
        return nan, nan, nan, nan, False
    cosb = (r * r + d * d - radius * radius) / (2.0 * r * d)
    cosb = -1.0 if cosb < -1.0 else (1.0 if cosb > 1.0 else cosb)  # no min/max on the GPU
    beta = math.acos(cosb)
    base = math.atan2(-yc, -xc)
    best = math.inf
    best_ph = nan
    for k in range(2):
        ph = base + (2.0 * k - 1.0) * beta
        if sg * (yc * math.cos(ph) - xc * math.sin(ph)) >= 0.0:  # moving outward there
            s = r * ((sg * (ph - phi0)) % TWO_PI)
            if s < best:
                best = s
                best_ph = ph
    if not math.isfinite(best):
        return nan, nan, nan, nan, False
    return (
        xc + r * math.cos(best_ph),
        yc + r * math.sin(best_ph),
        z0 + tgl * best,
        best * math.sqrt(1.0 + tgl * tgl),
        True,
    )


@njit(parallel=True, cache=True)
def _cylinder_cpu(xc, yc, r, sense, phi0, tgl, z0, radius, gx, gy, gz, length, ok):
    for t in prange(xc.shape[0]):
        a, b, c, d, e = _cylinder_one(xc[t], yc[t], r[t], sense[t], phi0[t], tgl[t], z0[t], radius)
        gx[t] = a
        gy[t] = b
        gz[t] = c
        length[t] = d
        ok[t] = e


def _cylinder_outputs(xp: Any, n: int) -> tuple:
    return (*(xp.empty(n, np.float64) for _ in range(4)), xp.empty(n, np.bool_))


def extrapolate_to_cylinder_cpu(helix: Helix, radius: float):
    """Numba CPU twin of :func:`extrapolate_to_cylinder_ref`."""
    h = _helix_arrays(helix, np)
    out = _cylinder_outputs(np, h[0].shape[0])
    _cylinder_cpu(*h, float(radius), *out)
    return out


# ------------------------------------------------------------------------------------------
# nearest hit in a (r phi, z) window
# ------------------------------------------------------------------------------------------


def _wrap_pi(a):
    """Angle into [-pi, pi) (Python/NumPy float modulo, identical in every twin)."""
    return (a + math.pi) % TWO_PI - math.pi


def _polar(pos: Any, xp: Any) -> tuple[Any, Any, Any]:
    """``(r, phi, z)`` float64 of ``(n, 3)`` positions."""
    pos = xp.asarray(pos, np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must be (n, 3), got {pos.shape}")
    return xp.hypot(pos[:, 0], pos[:, 1]), xp.arctan2(pos[:, 1], pos[:, 0]), pos[:, 2].copy()


def match_hits_ref(
    track_pos: Any, hit_pos: Any, max_drphi: float, max_dz: float, chunk: int = 2048
) -> np.ndarray:
    """NumPy reference of :func:`match_hits` (brute force, ``chunk`` tracks at a time)."""
    rt, pt, zt = _polar(track_pos, np)
    _, ph, zh = _polar(hit_pos, np)
    out = np.full(len(rt), -1, np.int32)
    if not len(ph):
        return out
    for a in range(0, len(rt), chunk):
        sl = slice(a, a + chunk)
        drphi = rt[sl, None] * _wrap_pi(ph[None, :] - pt[sl, None])
        dz = zh[None, :] - zt[sl, None]
        inside = (np.abs(drphi) <= max_drphi) & (np.abs(dz) <= max_dz)
        d2 = np.where(inside, drphi * drphi + dz * dz, np.inf)
        best = np.argmin(d2, axis=1)
        found = np.isfinite(d2[np.arange(d2.shape[0]), best])
        out[sl] = np.where(found, best, -1)
    return out


@njit(inline="always")
def _consider(j, rt, pt, zt, ph, zh, max_drphi, max_dz, best, best_d2):
    """Window test and distance of hit ``j``; returns the updated ``(best, best_d2)``."""
    drphi = rt * (((ph[j] - pt) + math.pi) % TWO_PI - math.pi)
    dz = zh[j] - zt
    if abs(drphi) <= max_drphi and abs(dz) <= max_dz:
        d2 = drphi * drphi + dz * dz
        if d2 < best_d2 or (d2 == best_d2 and j < best):
            return j, d2
    return best, best_d2


@njit(parallel=True, cache=True)
def _match_cpu(rt, pt, zt, ph_sorted, by_phi, ph, zh, max_drphi, max_dz, out):
    n_hit = ph_sorted.shape[0]
    for t in prange(rt.shape[0]):
        best = -1
        best_d2 = math.inf
        if rt[t] > 0.0 and n_hit > 0:
            w = max_drphi / rt[t] * (1.0 + 1e-9) + 1e-12  # phi half-window, a hair wide
            if w >= math.pi:
                lo1, hi1, lo2, hi2 = 0, n_hit, 0, 0
            else:
                a = pt[t] - w
                b = pt[t] + w
                lo2 = hi2 = 0
                if a < -math.pi:
                    lo1 = np.searchsorted(ph_sorted, a + TWO_PI)
                    hi1 = n_hit
                    lo2 = 0
                    hi2 = np.searchsorted(ph_sorted, b, side="right")
                elif b >= math.pi:
                    lo1 = np.searchsorted(ph_sorted, a)
                    hi1 = n_hit
                    lo2 = 0
                    hi2 = np.searchsorted(ph_sorted, b - TWO_PI, side="right")
                else:
                    lo1 = np.searchsorted(ph_sorted, a)
                    hi1 = np.searchsorted(ph_sorted, b, side="right")
            for k in range(lo1, hi1):
                best, best_d2 = _consider(
                    by_phi[k], rt[t], pt[t], zt[t], ph, zh, max_drphi, max_dz, best, best_d2
                )
            for k in range(lo2, hi2):
                best, best_d2 = _consider(
                    by_phi[k], rt[t], pt[t], zt[t], ph, zh, max_drphi, max_dz, best, best_d2
                )
        out[t] = best


def match_hits_cpu(track_pos: Any, hit_pos: Any, max_drphi: float, max_dz: float) -> np.ndarray:
    """Numba CPU twin of :func:`match_hits_ref`: hits sorted by phi, binary-searched windows."""
    rt, pt, zt = _polar(track_pos, np)
    _, ph, zh = _polar(hit_pos, np)
    by_phi = np.argsort(ph, kind="stable").astype(np.int64)
    out = np.empty(len(rt), np.int32)
    _match_cpu(rt, pt, zt, ph[by_phi], by_phi, ph, zh, float(max_drphi), float(max_dz), out)
    return out


# ------------------------------------------------------------------------------------------
# numba.cuda twins
# ------------------------------------------------------------------------------------------


@functools.cache
def _cuda_kernels():
    _cuda.bind_cuda(globals())
    cylinder_one = cuda.jit(device=True)(_cylinder_one.py_func)
    consider = cuda.jit(device=True)(_consider.py_func)

    @cuda.jit
    def cylinder(xc, yc, r, sense, phi0, tgl, z0, radius, gx, gy, gz, length, ok):
        t = cuda.grid(1)
        if t < xc.shape[0]:
            a, b, c, d, e = cylinder_one(
                xc[t], yc[t], r[t], sense[t], phi0[t], tgl[t], z0[t], radius
            )
            gx[t] = a
            gy[t] = b
            gz[t] = c
            length[t] = d
            ok[t] = e

    @cuda.jit
    def match(rt, pt, zt, ph, zh, max_drphi, max_dz, out):
        t = cuda.grid(1)
        if t < rt.shape[0]:
            best = -1
            best_d2 = math.inf
            if rt[t] > 0.0:
                for j in range(ph.shape[0]):
                    best, best_d2 = consider(
                        j, rt[t], pt[t], zt[t], ph, zh, max_drphi, max_dz, best, best_d2
                    )
            out[t] = best

    return cylinder, match


def extrapolate_to_cylinder_gpu(helix: Helix, radius: float, *, xp: Any = None):
    """numba.cuda twin of :func:`extrapolate_to_cylinder_ref`: one thread per track."""
    xp = _cuda.default_xp(xp)
    h = _helix_arrays(helix, xp)
    n = h[0].shape[0]
    out = _cylinder_outputs(xp, n)
    if n:
        _cuda_kernels()[0][_cuda.blocks(n), _cuda.THREADS_PER_BLOCK](*h, float(radius), *out)
    return out


def match_hits_gpu(
    track_pos: Any, hit_pos: Any, max_drphi: float, max_dz: float, *, xp: Any = None
) -> Any:
    """numba.cuda twin of :func:`match_hits_ref`: one thread per track over all hits."""
    xp = _cuda.default_xp(xp)
    rt, pt, zt = _polar(track_pos, xp)
    _, ph, zh = _polar(hit_pos, xp)
    out = xp.empty(rt.shape[0], np.int32)
    if rt.shape[0]:
        _cuda_kernels()[1][_cuda.blocks(rt.shape[0]), _cuda.THREADS_PER_BLOCK](
            rt, pt, zt, ph, zh, float(max_drphi), float(max_dz), out
        )
    return out


# ------------------------------------------------------------------------------------------
# dispatch
# ------------------------------------------------------------------------------------------


def extrapolate_to_cylinder(helix: Helix, radius: float, *, backend: str | Backend = "cpu"):
    """``(gx, gy, gz, length, ok)`` of each helix at the cylinder ``r = radius`` (cm).

    Float64 ``(n_tracks,)`` positions (cm) and 3-D path lengths from the reference point (cm),
    ``ok`` bool; see the module docstring.
    """
    be = get_backend(backend)
    if be.is_gpu:
        return extrapolate_to_cylinder_gpu(helix, radius, xp=be.xp)
    return extrapolate_to_cylinder_cpu(helix, radius)


def match_hits(
    track_pos: Any,
    hit_pos: Any,
    max_drphi: float,
    max_dz: float,
    *,
    backend: str | Backend = "cpu",
) -> Any:
    """Index (int32 ``(n_tracks,)``) of the nearest hit in each track's window, -1 if none.

    ``track_pos`` ``(n_tr, 3)`` extrapolated global positions (cm), ``hit_pos`` ``(n_hit, 3)``;
    window ``|r_track * dphi| <= max_drphi`` and ``|dz| <= max_dz`` (cm). Tracks with NaN
    positions get -1. Hits may be matched to several tracks (no exclusivity here).
    """
    be = get_backend(backend)
    if be.is_gpu:
        return match_hits_gpu(track_pos, hit_pos, max_drphi, max_dz, xp=be.xp)
    return match_hits_cpu(track_pos, hit_pos, max_drphi, max_dz)


__all__ = [
    "extrapolate_to_cylinder",
    "extrapolate_to_cylinder_cpu",
    "extrapolate_to_cylinder_gpu",
    "extrapolate_to_cylinder_ref",
    "helix_at",
    "helix_from_track_params",
    "match_hits",
    "match_hits_cpu",
    "match_hits_gpu",
    "match_hits_ref",
]
