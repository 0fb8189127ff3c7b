"""Kalman-filter primitives for TPC tracks in O2's parametrisation (Numba, scalar code).

Layer: reconstruction. The state ``(y, z, snp, tgl, q2pt)`` lives at sector-local ``x`` in the
frame rotated by ``alpha``; the covariance is a full 5x5 matrix here (packed to O2's 15-element
triangle on output). Propagation at constant field follows the exact circle in the bending
plane (``snp(x2) = snp(x1) + C (x2 - x1)``, curvature ``C = -k B q2pt``, as in the simulation's
convention) with O2's first-order Jacobian; multiple scattering in the gas is added as process
noise; a frame rotation (crossing into the neighbouring sector) transforms state and covariance.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from alice_dyn.physics.particles import B_TO_PT_GEV_PER_T_CM

KB = B_TO_PT_GEV_PER_T_CM  # pT [GeV] = KB * B [T] * R [cm]
X0_GAS_CM = 34480.0
PION_MASS = 0.13957039
MAX_SNP = 0.95
# packed lower-triangle order of O2's covariance
TRI_I = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4])
TRI_J = np.array([0, 0, 1, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4])


@njit(cache=True)
def curvature(q2pt: float, bfield_t: float) -> float:
    """Signed curvature (1/cm) in the bending plane: positive tracks turn clockwise."""
    return -KB * bfield_t * q2pt


@njit(cache=True)
def _similarity(fm, c):
    """``c <- fm c fm^T`` for 5x5 matrices (explicit loops: no BLAS needed)."""
    tmp = np.zeros((5, 5))
    for i in range(5):
        for k in range(5):
            f = fm[i, k]
            if f != 0.0:
                for j in range(5):
                    tmp[i, j] += f * c[k, j]
    for i in range(5):
        for j in range(5):
            acc = 0.0
            for k in range(5):
                f = fm[j, k]
                if f != 0.0:
                    acc += tmp[i, k] * f
            c[i, j] = acc


@njit(cache=True)
def propagate(x, p, c, x2, bfield_t):
    """Propagate state ``p`` (5,) and covariance ``c`` (5, 5) from ``x`` to ``x2`` in place.

    Returns False (and leaves ``p``/``c`` unchanged) if the track cannot reach ``x2``
    (|snp| would exceed ``MAX_SNP``).
    """
    dx = x2 - x
    if dx == 0.0:
        return True
    crv = curvature(p[4], bfield_t)
    f1 = p[2]
    f2 = f1 + crv * dx
    if abs(f1) > MAX_SNP or abs(f2) > MAX_SNP:
        return False
    r1 = math.sqrt((1.0 - f1) * (1.0 + f1))
    r2 = math.sqrt((1.0 - f2) * (1.0 + f2))
    dy2dx = (f1 + f2) / (r1 + r2)
    tgl = p[3]
    if abs(crv * dx) < 1e-6:
        ds = dx * (1.0 + 0.5 * dy2dx * dy2dx)  # transverse path, small-angle limit
    else:
        ds = (math.asin(f2) - math.asin(f1)) / crv
    p[0] += dx * dy2dx
    p[1] += ds * tgl
    p[2] = f2
    # first-order Jacobian (O2's TrackParametrizationWithError::propagateTo)
    r1c = r1 * r1 * r1
    kb = -KB * bfield_t
    f02 = dx / r1c
    f04 = 0.5 * dx * dx / r1c * kb
    f12 = dx * tgl * f1 / r1c
    f13 = dx / r1
    f14 = 0.5 * dx * dx * tgl * f1 / r1c * kb
    f24 = dx * kb
    fm = np.eye(5)
    fm[0, 2] = f02
    fm[0, 4] = f04
    fm[1, 2] = f12
    fm[1, 3] = f13
    fm[1, 4] = f14
    fm[2, 4] = f24
    _similarity(fm, c)
    # multiple scattering in the gas over the path
    path = abs(ds) * math.sqrt(1.0 + tgl * tgl)
    pt = 1.0 / max(abs(p[4]), 1e-3)
    pp = pt * math.sqrt(1.0 + tgl * tgl)
    beta = pp / math.sqrt(pp * pp + PION_MASS * PION_MASS)
    theta2 = (0.0136 / (beta * pp)) ** 2 * path / X0_GAS_CM
    c[2, 2] += theta2 * (1.0 - f2 * f2) * (1.0 + tgl * tgl)
    c[3, 3] += theta2 * (1.0 + tgl * tgl) ** 2
    c[4, 4] += theta2 * tgl * tgl * p[4] * p[4]
    return True


@njit(cache=True)
def rotate(x, p, c, dalpha):
    """Rotate the frame by ``dalpha`` (rad) at the track's point; returns the new x, or NaN if
    the track would run backwards in the new frame."""
    ca = math.cos(dalpha)
    sa = math.sin(dalpha)
    snp = p[2]
    csp = math.sqrt((1.0 - snp) * (1.0 + snp))
    upd_snp = snp * ca - csp * sa
    upd_csp = csp * ca + snp * sa
    if upd_csp <= 0.05 or abs(upd_snp) > MAX_SNP:
        return math.nan
    x2 = x * ca + p[0] * sa
    p[0] = -x * sa + p[0] * ca
    p[2] = upd_snp
    jy = csp / upd_csp
    js = upd_csp / csp
    for k in range(5):
        c[0, k] *= jy
        c[k, 0] *= jy
        c[2, k] *= js
        c[k, 2] *= js
    return x2


@njit(cache=True)
def update(p, c, y, z, sy2, sz2):
    """Kalman update with a measurement (y, z) of variances (sy2, sz2); returns the chi2."""
    r00 = c[0, 0] + sy2
    r01 = c[0, 1]
    r11 = c[1, 1] + sz2
    det = r00 * r11 - r01 * r01
    if det <= 0.0:
        return 1e30
    i00 = r11 / det
    i01 = -r01 / det
    i11 = r00 / det
    d0 = y - p[0]
    d1 = z - p[1]
    chi2 = d0 * d0 * i00 + 2.0 * d0 * d1 * i01 + d1 * d1 * i11
    # gain K = C H^T R^-1, with H selecting (y, z)
    k = np.empty((5, 2))
    for i in range(5):
        k[i, 0] = c[i, 0] * i00 + c[i, 1] * i01
        k[i, 1] = c[i, 0] * i01 + c[i, 1] * i11
    for i in range(5):
        p[i] += k[i, 0] * d0 + k[i, 1] * d1
    hc0 = c[0, :].copy()
    hc1 = c[1, :].copy()
    for i in range(5):
        for j in range(5):
            c[i, j] -= k[i, 0] * hc0[j] + k[i, 1] * hc1[j]
    if abs(p[2]) > MAX_SNP:
        p[2] = math.copysign(MAX_SNP, p[2])
    return chi2


def pack_cov(c: np.ndarray) -> np.ndarray:
    """(..., 5, 5) -> (..., 15) in O2's lower-triangle order."""
    return c[..., TRI_I, TRI_J]
