"""Classical TPC track finding: triplet seeding in outer rows, Kalman-filter following.

Layer: reconstruction (CPU, Numba). Per timeframe:

1. clusters are binned by (sector, pad row) and sorted by local y inside each bin with the
   binning kernel (:func:`alice_dyn.kernels.bin_clusters`), for binary-search neighbour look-up;
2. seeds: for every seed row from the outermost inwards and every sector, an unused cluster,
   a partner ``gap`` rows further in (slope and dip windows) and a third one on the straight
   extrapolation (curvature window); the circle through the three gives the initial state;
3. following: the Kalman filter propagates inward row by row, picks the cluster of smallest
   chi2 inside the window, crosses into the neighbouring sector when the track leaves the
   sector (frame rotation), and stops after too many rows without a cluster (rows in the dead
   zone between sectors do not count);
4. accepted candidates (enough clusters, chi2/ndf) are refitted outward then inward; the final
   parameters sit at the innermost cluster (O2's ``tpcInnerParam``); their clusters are used up;
5. looper legs: tracks on the same circle as a longer track (low-pT particles curling inside
   the TPC or re-entering it from outside) are flagged ``LOOPER_LEG`` instead of counting as
   new tracks.

z is measured for t0 = 0 (the start of the timeframe): tracks of later collisions are shifted
along z, which the fit absorbs in the z parameter.

:func:`track_clusters` (and :func:`track_o2_buffer` for O2's buffer) is the tracking step from
ClusterNative records; the ``tpc-tracker`` stage, the track network's dataset, the dE/dx
calibration and the benchmark all call it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from alice_dyn.event.tracks import CROSSED_SECTOR, HAS_A_SIDE, HAS_C_SIDE, LOOPER_LEG, TPCTracks
from alice_dyn.kernels.binning import bin_clusters
from alice_dyn.reco.track_model import KB, pack_cov, propagate, rotate, update
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc import transform
from alice_dyn.tpc.cluster_native import (
    UnpackedClusters,
    decode_o2_buffer,
    sector_row_from_index,
    unpack_clusters,
)
from alice_dyn.tpc.geometry import TPCGasParam

ROW_X_CM = geo.ROW_X_CM
ROW_PAD_HEIGHT_CM = geo.ROW_PAD_HEIGHT_CM
ROW_HALF_WIDTH_CM = geo.ROW_HALF_WIDTH_CM
SECTOR_ALPHA_RAD = geo.SECTOR_ALPHA_RAD
N_ROWS = geo.N_ROWS
N_SECTORS = geo.N_SECTORS
N_PER_SIDE = geo.N_SECTORS_PER_SIDE
TAN_HALF_SECTOR = math.tan(0.5 * geo.SECTOR_WIDTH_RAD)
SECTOR_STEP_RAD = geo.SECTOR_WIDTH_RAD


@dataclass(frozen=True)
class TPCTrackerParam:
    """Settings of the classical tracker (configuration group ``TPCTrackerParam``)."""

    bfield_t: float = 0.5
    min_clusters: int = field(default=30, metadata={"range": "[3, 1000]"})
    seed_gap_rows: int = field(default=3, metadata={"range": "[1, 150]"})
    seed_max_snp: float = field(default=0.85, metadata={"range": "(0, 1)"})
    seed_max_tgl: float = field(default=2.0, metadata={"range": "(0, inf)"})
    #: pT > 0.06 GeV/c at 0.5 T
    seed_min_radius_cm: float = field(default=40.0, metadata={"range": "(0, inf)"})
    #: max chi2 (2 dof) of a cluster added to a track
    chi2_cluster: float = field(default=25.0, metadata={"range": "(0, inf)"})
    max_chi2_ndf: float = field(default=6.0, metadata={"range": "(0, inf)"})
    max_missing_rows: int = field(default=10, metadata={"range": "[0, 152]"})
    sigma0_y_cm: float = field(default=0.03, metadata={"range": "[0, inf)"})
    sigma0_z_cm: float = field(default=0.04, metadata={"range": "[0, inf)"})
    diffusion_t: float = field(default=0.0209, metadata={"range": "[0, inf)"})
    diffusion_l: float = field(default=0.0221, metadata={"range": "[0, inf)"})
    adc_per_electron: float = field(default=2.0, metadata={"range": "(0, inf)"})
    drift_length_cm: float = field(default=250.0, metadata={"range": "(0, inf)"})
    #: legs' circle centres agree within max(3 cm, 10% of R)
    looper_centre_cm: float = field(default=3.0, metadata={"range": "[0, inf)"})
    looper_centre_frac: float = field(default=0.10, metadata={"range": "[0, inf)"})
    #: energy loss between legs shrinks the radius
    looper_radius_frac: float = field(default=0.10, metadata={"range": "[0, inf)"})
    #: legs among tracks with R < 200 cm: 2R < r(TOF) + margin
    looper_max_radius_cm: float = field(default=200.0, metadata={"range": "(0, inf)"})
    # legs must also be on one side and agree in z with one helix (within 3 cm + 10% of the z
    # step); false: the circle alone (merges chance circles at Pb-Pb occupancy)
    looper_z_check: bool = True
    looper_dz_cm: float = field(default=3.0, metadata={"range": "[0, inf)"})
    looper_dz_frac: float = field(default=0.10, metadata={"range": "[0, inf)"})

    def vector(self) -> np.ndarray:
        return np.array(
            [
                self.bfield_t, self.min_clusters, self.seed_gap_rows, self.seed_max_snp,
                self.seed_max_tgl, self.seed_min_radius_cm, self.chi2_cluster, self.max_chi2_ndf,
                self.max_missing_rows, self.sigma0_y_cm, self.sigma0_z_cm, self.diffusion_t,
                self.diffusion_l, self.adc_per_electron, self.drift_length_cm,
            ],
            dtype=np.float64,
        )  # fmt: skip


(
    K_B, K_MINCL, K_GAP, K_SEEDSNP, K_SEEDTGL, K_SEEDR, K_CHI2CL, K_CHI2NDF, K_MISS, K_S0Y,
    K_S0Z, K_DT, K_DL, K_ADC, K_DRIFTL,
) = range(15)  # fmt: skip


@njit(cache=True)
def _cluster_errors(row, z, qtot, snp, tgl, prm):
    """Variances (y, z) of a cluster: diffusion / sqrt(electrons), angular spread, floor."""
    drift = max(prm[K_DRIFTL] - abs(z), 1.0)
    ne = max(qtot / prm[K_ADC], 5.0)
    h = ROW_PAD_HEIGHT_CM[row]
    csp2 = max(1.0 - snp * snp, 0.05)
    tan2 = snp * snp / csp2
    tglr2 = tgl * tgl / csp2
    nprim = max(ne / 3.0, 3.0)
    sy2 = prm[K_S0Y] ** 2 + prm[K_DT] ** 2 * drift / ne + h * h * tan2 / (12.0 * nprim)
    sz2 = prm[K_S0Z] ** 2 + prm[K_DL] ** 2 * drift / ne + h * h * tglr2 / (12.0 * nprim)
    return sy2, sz2


@njit(cache=True)
def _lower_bound(ys, lo, hi, value):
    """First index in [lo, hi) of the sorted ``ys`` with ys[i] >= value."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ys[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _neighbour(sector, direction):
    """Sector next to ``sector`` on the same side; direction +1 = larger alpha."""
    side = sector // N_PER_SIDE
    return side * N_PER_SIDE + (sector % N_PER_SIDE + direction) % N_PER_SIDE


@njit(cache=True)
def _best_cluster(sec, row, p, c, ys, zs, qs, used, bin_start, prm):
    """Index of the unused cluster of (sec, row) with the smallest chi2 (or -1) and its chi2."""
    b = sec * N_ROWS + row
    lo, hi = bin_start[b], bin_start[b + 1]
    if hi <= lo:
        return -1, 0.0
    sy2, sz2 = _cluster_errors(row, p[1], 100.0, p[2], p[3], prm)
    wy = 4.0 * math.sqrt(c[0, 0] + sy2) + 0.05
    wz = 4.0 * math.sqrt(c[1, 1] + sz2) + 0.05
    i = _lower_bound(ys, lo, hi, p[0] - wy)
    best, best_chi2 = -1, prm[K_CHI2CL]
    while i < hi and ys[i] <= p[0] + wy:
        if not used[i] and abs(zs[i] - p[1]) < wz:
            ey2, ez2 = _cluster_errors(row, zs[i], qs[i], p[2], p[3], prm)
            r00 = c[0, 0] + ey2
            r11 = c[1, 1] + ez2
            r01 = c[0, 1]
            det = r00 * r11 - r01 * r01
            d0 = ys[i] - p[0]
            d1 = zs[i] - p[1]
            chi2 = (d0 * d0 * r11 - 2.0 * d0 * d1 * r01 + d1 * d1 * r00) / det
            if chi2 < best_chi2:
                best, best_chi2 = i, chi2
        i += 1
    return best, best_chi2


@njit(cache=True)
def _go_to_row(x, p, c, sec, row, prm):
    """Propagate to pad row ``row``, rotating into the neighbouring sector if the track leaves
    the current one. Returns (ok, x, sector, crossed)."""
    xr = ROW_X_CM[row]
    crossed = False
    for _ in range(2):
        if not propagate(x, p, c, xr, prm[K_B]):
            return False, x, sec, crossed
        x = xr
        if abs(p[0]) <= xr * TAN_HALF_SECTOR:
            return True, x, sec, crossed
        direction = 1 if p[0] > 0 else -1
        xn = rotate(x, p, c, direction * SECTOR_STEP_RAD)
        if math.isnan(xn):
            return False, x, sec, crossed
        x = xn
        sec = _neighbour(sec, direction)
        crossed = True
    return True, x, sec, crossed


@njit(cache=True)
def _refit(idx, n, secs, rows, ys, zs, qs, p, c, x, sec, prm, inward):
    """Re-filter the clusters ``idx[:n]`` (inner to outer) outward or inward; returns
    (ok, x, sector, chi2)."""
    for i in range(5):
        for j in range(5):
            if i != j:
                c[i, j] = 0.0
    c[0, 0] = 1.0
    c[1, 1] = 1.0
    c[2, 2] = 0.01
    c[3, 3] = 0.01
    c[4, 4] = max(c[4, 4] * 100.0, 0.25 * p[4] * p[4] + 0.01)
    chi2 = 0.0
    for k in range(n):
        j = idx[n - 1 - k] if inward else idx[k]
        if secs[j] != sec:
            d = SECTOR_ALPHA_RAD[secs[j]] - SECTOR_ALPHA_RAD[sec]
            d = (d + math.pi) % (2.0 * math.pi) - math.pi
            xn = rotate(x, p, c, d)
            if math.isnan(xn):
                return False, x, sec, chi2
            x = xn
            sec = secs[j]
        if not propagate(x, p, c, ROW_X_CM[rows[j]], prm[K_B]):
            return False, x, sec, chi2
        x = ROW_X_CM[rows[j]]
        ey2, ez2 = _cluster_errors(rows[j], zs[j], qs[j], p[2], p[3], prm)
        chi2 += update(p, c, ys[j], zs[j], ey2, ez2)
    return True, x, sec, chi2


@njit(cache=True)
def _seed(i1, j, x1, x2, x3, b3, ys, zs, used, bin_start, p, c, prm):
    """Seed from cluster ``i1`` (row at ``x1``) and ``j`` (``x2``): the unused third cluster
    nearest the straight extrapolation to ``x3`` in bin ``b3``, then the circle through them.
    Returns whether the seed is valid; if so, ``p``/``c`` hold its state at ``x1``."""
    curv_min_r = prm[K_SEEDR]
    y1, z1 = ys[i1], zs[i1]
    dx12 = x1 - x2
    y2, z2 = ys[j], zs[j]
    slope_y = (y1 - y2) / dx12
    slope_z = (z1 - z2) / dx12
    y3p = y2 - slope_y * (x2 - x3)
    z3p = z2 - slope_z * (x2 - x3)
    wy3 = 0.3 + (x2 - x3) * dx12 / curv_min_r
    k3 = _lower_bound(ys, bin_start[b3], bin_start[b3 + 1], y3p - wy3)
    best3, bestd = -1, 1e30
    while k3 < bin_start[b3 + 1] and ys[k3] <= y3p + wy3:
        if not used[k3] and abs(zs[k3] - z3p) < 0.6:
            d = abs(ys[k3] - y3p) + abs(zs[k3] - z3p)
            if d < bestd:
                best3, bestd = k3, d
        k3 += 1
    if best3 < 0:
        return False
    y3, z3 = ys[best3], zs[best3]
    # circle through the three points, travelling inner -> outer (3 -> 2 -> 1)
    ax, ay = x2 - x3, y2 - y3
    bx, by = x1 - x2, y1 - y2
    l23 = math.hypot(ax, ay)
    l12 = math.hypot(bx, by)
    l13 = math.hypot(x1 - x3, y1 - y3)
    crv = 2.0 * (ax * by - ay * bx) / (l23 * l12 * l13)
    if abs(crv) * curv_min_r > 1.0:
        return False
    phi1 = math.atan2(by, bx) + 0.5 * crv * l12
    s13 = l13 * (1.0 + (crv * l13) ** 2 / 24.0)
    p[0] = y1
    p[1] = z1
    p[2] = math.sin(phi1)
    p[3] = (z1 - z3) / s13
    p[4] = -crv / (KB * prm[K_B])
    if abs(p[2]) > prm[K_SEEDSNP]:
        return False
    c[:, :] = 0.0
    c[0, 0] = 0.04
    c[1, 1] = 0.04
    c[2, 2] = 0.01
    c[3, 3] = 0.01
    c[4, 4] = (0.5 * abs(p[4]) + 0.3) ** 2
    return True


@njit(cache=True)
def _follow(i1, r1, s, p, c, cand, used, ys, zs, qs, bin_start, prm):
    """Follow the seed of cluster ``i1`` (row ``r1``, sector ``s``, state ``p``/``c``) inward
    row by row, marking the clusters taken in ``used`` and ``cand`` (outer -> inner).
    Returns ``(n clusters, x, sector, flags)``."""
    max_miss = int(prm[K_MISS])
    x = ROW_X_CM[r1]
    sec = s
    n = 0
    flags = 0
    ey2, ez2 = _cluster_errors(r1, zs[i1], qs[i1], p[2], p[3], prm)
    update(p, c, ys[i1], zs[i1], ey2, ez2)
    cand[n] = i1
    n += 1
    misses = 0
    used[i1] = True  # provisional, so the track cannot pick it twice
    for r in range(r1 - 1, -1, -1):
        ok, x, sec, crossed = _go_to_row(x, p, c, sec, r, prm)
        if not ok:
            break
        if crossed:
            flags |= CROSSED_SECTOR
        k, _ = _best_cluster(sec, r, p, c, ys, zs, qs, used, bin_start, prm)
        if k >= 0:
            ey2, ez2 = _cluster_errors(r, zs[k], qs[k], p[2], p[3], prm)
            update(p, c, ys[k], zs[k], ey2, ez2)
            cand[n] = k
            used[k] = True
            n += 1
            misses = 0
        elif abs(p[0]) < ROW_HALF_WIDTH_CM[r]:
            misses += 1
            if misses > max_miss:
                break
    return n, x, sec, flags


@njit(cache=True)
def _accept(cand, n, secs, rows, ys, zs, qs, p, c, x, sec, prm):
    """Enough clusters, then refit outward and inward (``cand`` reversed to inner -> outer)
    and the chi2/ndf cut. Returns ``(accepted, x, sector, chi2)`` with the inward fit in
    ``p``/``c``."""
    if n < int(prm[K_MINCL]):
        return False, x, sec, 0.0
    # cand is outer -> inner: reverse to inner -> outer
    for a in range(n // 2):
        cand[a], cand[n - 1 - a] = cand[n - 1 - a], cand[a]
    ok, x, sec, _ = _refit(cand, n, secs, rows, ys, zs, qs, p, c, x, sec, prm, False)
    if not ok:
        return False, x, sec, 0.0
    ok, x, sec, chi2 = _refit(cand, n, secs, rows, ys, zs, qs, p, c, x, sec, prm, True)
    return ok and chi2 / (2.0 * n - 5.0) < prm[K_CHI2NDF], x, sec, chi2


@njit(cache=True)
def find_tracks_kernel(secs, rows, ys, zs, qs, bin_start, prm):
    """Find tracks among clusters sorted by (sector, row, y): seeds (:func:`_seed`), followed
    inward (:func:`_follow`), refitted and accepted (:func:`_accept`).

    Returns per track: params (n, 5), x, sector, cov (n, 5, 5), chi2, n_clusters,
    cluster_start, flags; and the cluster references (indices in the sorted order).
    """
    n_cl = secs.shape[0]
    min_cl = int(prm[K_MINCL])
    gap = int(prm[K_GAP])
    max_tracks = n_cl // max(min_cl, 1) + 1
    t_par = np.zeros((max_tracks, 5))
    t_x = np.zeros(max_tracks)
    t_sec = np.zeros(max_tracks, dtype=np.int32)
    t_cov = np.zeros((max_tracks, 5, 5))
    t_chi2 = np.zeros(max_tracks)
    t_ncl = np.zeros(max_tracks, dtype=np.int32)
    t_start = np.zeros(max_tracks, dtype=np.int32)
    t_flags = np.zeros(max_tracks, dtype=np.uint8)
    refs = np.empty(n_cl, dtype=np.int32)
    used = np.zeros(n_cl, dtype=np.bool_)
    cand = np.empty(2 * N_ROWS + 8, dtype=np.int32)
    n_tr = 0
    n_ref = 0
    p = np.empty(5)
    c = np.empty((5, 5))
    # seed rows from the outside in, all sectors at each row: a track is seeded at its outer
    # end before its inner part (possibly in another sector) can start a track of its own
    for r1 in range(N_ROWS - 1, 2 * gap - 1, -1):
        for s in range(N_SECTORS):
            b1 = s * N_ROWS + r1
            r2 = r1 - gap
            r3 = r2 - gap
            b2 = s * N_ROWS + r2
            b3 = s * N_ROWS + r3
            x1, x2, x3 = ROW_X_CM[r1], ROW_X_CM[r2], ROW_X_CM[r3]
            for i1 in range(bin_start[b1], bin_start[b1 + 1]):
                if used[i1]:
                    continue
                y1, z1 = ys[i1], zs[i1]
                dx12 = x1 - x2
                tan_max = prm[K_SEEDSNP] / math.sqrt(1.0 - prm[K_SEEDSNP] ** 2)
                wy = tan_max * dx12 + 0.3
                wz = prm[K_SEEDTGL] * dx12 / math.sqrt(1.0 - prm[K_SEEDSNP] ** 2) + 0.5
                j = _lower_bound(ys, bin_start[b2], bin_start[b2 + 1], y1 - wy)
                found = False
                while j < bin_start[b2 + 1] and ys[j] <= y1 + wy and not found:
                    if used[j] or abs(zs[j] - z1) > wz:
                        j += 1
                        continue
                    if not _seed(i1, j, x1, x2, x3, b3, ys, zs, used, bin_start, p, c, prm):
                        j += 1
                        continue
                    n, x, sec, flags = _follow(i1, r1, s, p, c, cand, used, ys, zs, qs,
                                               bin_start, prm)  # fmt: skip
                    ok, x, sec, chi2 = _accept(cand, n, secs, rows, ys, zs, qs, p, c, x, sec, prm)
                    if not ok:
                        for a in range(n):
                            used[cand[a]] = False
                        j += 1
                        continue
                    t_par[n_tr, :] = p
                    t_x[n_tr] = x
                    t_sec[n_tr] = sec
                    t_cov[n_tr] = c
                    t_chi2[n_tr] = chi2
                    t_ncl[n_tr] = n
                    t_start[n_tr] = n_ref
                    for a in range(n):
                        refs[n_ref + a] = cand[a]
                        flags |= HAS_A_SIDE if secs[cand[a]] < N_PER_SIDE else HAS_C_SIDE
                    t_flags[n_tr] = flags
                    n_ref += n
                    n_tr += 1
                    found = True
    return (
        t_par[:n_tr], t_x[:n_tr], t_sec[:n_tr], t_cov[:n_tr], t_chi2[:n_tr], t_ncl[:n_tr],
        t_start[:n_tr], t_flags[:n_tr], refs[:n_ref],
    )  # fmt: skip


def _same_helix_in_z(k, m, phi, z, tgl, rad, sides, prm: TPCTrackerParam) -> bool:
    """Whether legs ``k`` and ``m`` (already on one circle) can lie on one helix in z (always,
    without ``looper_z_check``): both on the same single side of the central membrane (their z
    for t0 = 0 are shifted alike), and ``|dz|`` equal to ``|tgl| R`` times the angle between
    them around the centre (``d`` or ``2 pi - d``, plus whole turns)."""
    if not prm.looper_z_check:
        return True
    if sides[k] != sides[m] or sides[k] == (HAS_A_SIDE | HAS_C_SIDE):
        return False  # z not comparable (unknown t0): such legs stay separate tracks
    dz = abs(z[m] - z[k])
    step = 0.5 * (abs(tgl[k]) + abs(tgl[m])) * 0.5 * (rad[k] + rad[m])  # |dz| per radian
    d = (phi[m] - phi[k]) % (2.0 * math.pi)
    for base in (d, 2.0 * math.pi - d):
        for turn in range(4):
            expect = step * (base + 2.0 * math.pi * turn)
            if abs(dz - expect) < prm.looper_dz_cm + prm.looper_dz_frac * expect:
                return True
            if expect > dz + prm.looper_dz_cm:
                break
    return False


def flag_looper_legs(tracks: TPCTracks, prm: TPCTrackerParam) -> None:
    """Flag tracks lying on the circle of a longer track as ``LOOPER_LEG`` (in place).

    Low-pT particles curl: inside the TPC (2R < 246 cm) and also beyond it (they turn in the
    TRD/TOF region and re-enter). Every leg is found as a track; legs share the helix's circle
    in the bending plane (an inward leg, fitted as going outward, has the opposite charge but
    the same centre and radius) and the same |tgl|; energy loss between legs shrinks the
    circle by a few percent. With ``looper_z_check``, legs must also be on one side of the
    central membrane and lie on one helix in z: their z differ by |tgl| R times the angle
    between them around the centre (that angle, or 2 pi less it, plus whole turns); without
    it, at Pb-Pb occupancy tracks of different particles whose circles agree by chance are
    merged (docs/known_limits.md). The first leg (nearest the
    collision along the helix, which carries the right charge and the right direction) keeps
    the particle.
    """
    n = len(tracks)
    if n < 2:
        return
    crv = -KB * prm.bfield_t * tracks.q2pt.astype(np.float64)
    cand = np.flatnonzero(np.abs(crv) * prm.looper_max_radius_cm > 1.0)
    if len(cand) < 2:
        return
    x = tracks.x_cm.astype(np.float64)[cand]
    y = tracks.y_cm.astype(np.float64)[cand]
    a = tracks.alpha_rad.astype(np.float64)[cand]
    snp = tracks.snp.astype(np.float64)[cand]
    csp = np.sqrt(np.maximum(1 - snp * snp, 1e-9))
    r = 1.0 / crv[cand]
    # centre: distance R to the left of the direction of travel (right for crv < 0)
    xc, yc = x - snp * r, y + csp * r
    gxc = xc * np.cos(a) - yc * np.sin(a)
    gyc = xc * np.sin(a) + yc * np.cos(a)
    rad = np.abs(r)
    tgl = tracks.tgl.astype(np.float64)[cand]
    # the reference point (innermost cluster) as an angle around the centre, and its z
    gx = x * np.cos(a) - y * np.sin(a)
    gy = x * np.sin(a) + y * np.cos(a)
    phi = np.arctan2(gy - gyc, gx - gxc)
    z = tracks.z_cm.astype(np.float64)[cand]
    sides = (tracks.flags[cand] & (HAS_A_SIDE | HAS_C_SIDE)).astype(np.int64)
    cell = max(prm.looper_centre_cm, prm.looper_centre_frac * prm.looper_max_radius_cm)
    grid: dict[tuple[int, int], list[int]] = {}
    for k in range(len(cand)):
        grid.setdefault((int(gxc[k] // cell), int(gyc[k] // cell)), []).append(k)
    # groups of legs on one circle (union-find over the same-circle relation)
    parent = np.arange(len(cand))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for k in range(len(cand)):
        cx, cy = int(gxc[k] // cell), int(gyc[k] // cell)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for m in grid.get((cx + dx, cy + dy), ()):
                    if m > k and (
                        math.hypot(gxc[k] - gxc[m], gyc[k] - gyc[m])
                        < max(prm.looper_centre_cm, prm.looper_centre_frac * rad[k])
                        and abs(rad[k] - rad[m]) < prm.looper_radius_frac * rad[k]
                        and abs(abs(tgl[k]) - abs(tgl[m])) < 0.05 + 0.05 * abs(tgl[k])
                        and _same_helix_in_z(k, m, phi, z, tgl, rad, sides, prm)
                    ):
                        parent[root(m)] = root(k)
    # the first leg is the one nearest the vertex along the helix: legs follow each other in
    # z away from the collision, so it has the smallest side * z at its innermost cluster
    # (the common t0 = 0 shift of z does not change the order)
    side_z = (tracks.side() * tracks.z_cm.astype(np.float64))[cand]
    roots = np.array([root(k) for k in range(len(cand))])
    for r0 in np.unique(roots):
        members = np.flatnonzero(roots == r0)
        if len(members) < 2:
            continue
        first = members[np.argmin(side_z[members])]
        for m in members:
            if m != first:
                tracks.flags[cand[m]] |= LOOPER_LEG


def find_tracks(
    sector: np.ndarray,
    row: np.ndarray,
    y_cm: np.ndarray,
    z_cm: np.ndarray,
    q_tot: np.ndarray,
    prm: TPCTrackerParam = TPCTrackerParam(),
) -> tuple[TPCTracks, np.ndarray]:
    """Find the tracks of one timeframe.

    Inputs ``(n_clusters,)`` in the timeframe's cluster order: sector, row, sector-local y and
    z (cm, t0 = 0) and qTot. Returns the tracks and their cluster references (indices into the
    input arrays, inner to outer per track).
    """
    sector = np.asarray(sector, dtype=np.int64)
    row = np.asarray(row, dtype=np.int64)
    order, bin_start = bin_clusters(sector, row, np.asarray(y_cm, dtype=np.float64))
    order = order.astype(np.int64)
    bin_start = bin_start.astype(np.int64)
    res = find_tracks_kernel(
        sector[order].astype(np.int32),
        row[order].astype(np.int32),
        np.ascontiguousarray(np.asarray(y_cm, dtype=np.float64)[order]),
        np.ascontiguousarray(np.asarray(z_cm, dtype=np.float64)[order]),
        np.ascontiguousarray(np.asarray(q_tot, dtype=np.float64)[order]),
        bin_start,
        prm.vector(),
    )
    par, x, sec, cov, chi2, ncl, start, flags, refs = res
    tracks = TPCTracks(
        x_cm=x.astype(np.float32),
        alpha_rad=SECTOR_ALPHA_RAD[sec].astype(np.float32),
        y_cm=par[:, 0].astype(np.float32),
        z_cm=par[:, 1].astype(np.float32),
        snp=par[:, 2].astype(np.float32),
        tgl=par[:, 3].astype(np.float32),
        q2pt=par[:, 4].astype(np.float32),
        cov=pack_cov(cov).astype(np.float32),
        time0_bins=np.zeros(len(x), np.float32),
        chi2=chi2.astype(np.float32),
        n_clusters=ncl.astype(np.int16),
        cluster_start=start.astype(np.int32),
        flags=flags.astype(np.uint8),
    )
    flag_looper_legs(tracks, prm)
    return tracks, order[refs].astype(np.int32)


def track_clusters(
    sector: np.ndarray,
    row: np.ndarray,
    clusters: np.ndarray | UnpackedClusters,
    gas: TPCGasParam,
    prm: TPCTrackerParam,
    bfield_t: float,
) -> tuple[TPCTracks, np.ndarray]:
    """The tracking step of the classical chain (``tpc-tracker``), written once.

    ``clusters``: ``(n,)`` ClusterNative records (or their :func:`unpack_clusters` values) of
    known ``sector``/``row`` ``(n,)``; pad -> sector-local y and time -> z (cm) for a collision
    at t0 = 0 with the drift parameters ``gas``, then :func:`find_tracks` with ``prm`` in the
    field ``bfield_t`` (T, the timeframe's). Returns ``(tracks, cluster references)``.
    """
    u = clusters if isinstance(clusters, UnpackedClusters) else unpack_clusters(clusters)
    y = transform.pad_to_y(sector, row, u.pad)
    z = transform.time_to_z(sector, u.time, 0.0, gas)
    prm = dataclasses.replace(prm, bfield_t=float(bfield_t))
    return find_tracks(sector, row, y, z, u.q_tot, prm)


def track_o2_buffer(
    buffer: np.ndarray | bytes, gas: TPCGasParam, prm: TPCTrackerParam, bfield_t: float
) -> tuple[TPCTracks, np.ndarray]:
    """:func:`track_clusters` of O2's ClusterNative buffer (``TPC/CLUSTERNATIVE``, uint8);
    the references index its records."""
    index, records = decode_o2_buffer(buffer)
    sector, row = sector_row_from_index(index)
    return track_clusters(sector, row, records, gas, prm, bfield_t)
