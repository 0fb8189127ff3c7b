"""Particle transport through ALICE's central barrel with the TPC, TRD and TOF response.

Layer: simulation. One Numba kernel follows each charged particle as a helix in the solenoid
field, step by step, with multiple scattering (Highland) and Bethe-Bloch energy loss in the
material it crosses (ITS + inner field cage lumped at r = 78 cm, the TPC gas, the outer field
cage, six TRD layers) and decays in flight. Where the helix crosses a pad-row plane inside a
sector's pad plane, a TPC cluster is made (:func:`_tpc_cluster`): primary ionisation with a
1/E^2 cluster-size spectrum, avalanche fluctuations, diffusion growing with the drift length,
pad/time response, angular effects, ADC saturation, threshold and efficiency. TRD tracklets carry
dE/dx plus transition radiation for electrons; TOF hits a time of flight with its resolution.

Sign convention: the field points along +z; a positive particle turns clockwise seen from +z
(``dphi/ds = -q k B / pT``), as in ALICE with positive L3 polarity.

Determinism: every particle has its own seed, so results do not depend on buffer sizes or on
where the kernel was resumed.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

from alice_dyn.physics.bethe_bloch import ALEPH_SIMULATION, aleph_bethe_bloch
from alice_dyn.physics.particles import B_TO_PT_GEV_PER_T_CM, SPEED_OF_LIGHT_CM_PER_NS
from alice_dyn.sim.config import SimConfig
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc.geometry import TPCGasParam

# --- indices into the parameter vector handed to the kernel -------------------------------
(
    P_BFIELD, P_STEP, P_MAX_TURNS, P_X0_INNER, P_X0_OUTER, P_X0_TRD, P_NPRIM, P_EMIN, P_EMAX,
    P_GAINVAR, P_ADC_PER_E, P_NOISE, P_QMAX_THR, P_CL_EFF, P_PRF, P_SHAPING, P_SIG0Y, P_SIG0Z,
    P_TRD_EFF, P_TOF_EFF, P_TOF_RES, P_TOF_R, P_TOF_HALF_Z, P_VDRIFT_BIN, P_DRIFT_L, P_DIFF_T,
    P_DIFF_L, P_W_ION, P_T0_BINS, P_TIME_BIN_NS, P_SMALL_FRAC, P_SMALL_MEAN, P_SMALL_VAR,
    P_E_CUT, N_PARAMS,
) = range(35)  # fmt: skip

R_INNER_MATERIAL_CM = 78.0
R_TPC_MIN_CM = geo.TPC_INNER_RADIUS_CM
R_TPC_MAX_CM = geo.TPC_OUTER_RADIUS_CM
R_OUTER_MATERIAL_CM = 250.0
TRD_RADII_CM = np.array([297.0, 310.0, 323.0, 336.0, 349.0, 362.0])
TRD_HALF_LENGTH_CM = 350.0
TRD_CHAMBER_GAS_CM = 3.7  # drift + amplification region crossed perpendicularly
TRD_PAD_LENGTH_CM = 8.0
TOF_PAD_RPHI_CM = 2.5
TOF_PAD_Z_CM = 3.5
TOF_Z_GAPS_CM = np.array([-195.5, -58.5, 58.5, 195.5])
DEAD_EDGE_RPHI_CM = 1.5  # support structures at the sector edges of TRD and TOF
X0_GAS_CM = 34480.0  # Ne-CO2-N2 (90-10-5) radiation length
GAS_DENSITY_G_CM3 = 0.00088
MIP_LOSS_GEV_CM2_G = 1.7e-3  # minimum ionising energy loss, GeV / (g/cm^2)
SILICON_X0_G_CM2 = 21.82
TAN_HALF_SECTOR = math.tan(0.5 * geo.SECTOR_WIDTH_RAD)
# c*tau (cm) of e, mu, pi, K, p, d; 0 = stable
CTAU_CM = np.array([0.0, 65865.0, 780.45, 371.2, 0.0, 0.0])

ALEPH = np.array(ALEPH_SIMULATION)
ROW_X_CM = geo.ROW_X_CM
ROW_PAD_HEIGHT_CM = geo.ROW_PAD_HEIGHT_CM
ROW_PAD_WIDTH_CM = geo.ROW_PAD_WIDTH_CM
ROW_N_PADS = geo.ROW_N_PADS
ROW_HALF_WIDTH_CM = geo.ROW_HALF_WIDTH_CM
SECTOR_COS_ALPHA = geo.SECTOR_COS_ALPHA
SECTOR_SIN_ALPHA = geo.SECTOR_SIN_ALPHA
N_ROWS = geo.N_ROWS
N_SECTORS_PER_SIDE = geo.N_SECTORS_PER_SIDE
ADC_MAX = float(geo.ADC_SATURATION - 1)
_BG_MIP = 4.0
_BB_MIP = float(aleph_bethe_bloch(np.array(_BG_MIP)))
GAS_MATERIAL_STEP_CM = 5.0  # gas scattering and energy loss are applied in 5 cm portions


def kernel_params(cfg: SimConfig, gas: TPCGasParam) -> np.ndarray:
    """The parameter vector of :func:`transport_particles` for ``cfg`` and ``gas``."""
    p = np.zeros(N_PARAMS)
    p[P_BFIELD] = cfg.bfield_t
    p[P_STEP] = cfg.step_tpc_cm
    p[P_MAX_TURNS] = cfg.max_turns
    p[P_X0_INNER] = cfg.x0_inner_frac
    p[P_X0_OUTER] = cfg.x0_outer_frac
    p[P_X0_TRD] = cfg.x0_trd_layer_frac
    p[P_NPRIM] = cfg.n_primaries_per_cm
    p[P_EMIN] = cfg.ionisation_emin_ev
    p[P_EMAX] = cfg.ionisation_emax_ev
    p[P_GAINVAR] = cfg.gain_variance
    p[P_ADC_PER_E] = cfg.adc_per_electron
    p[P_NOISE] = cfg.noise_adc
    p[P_QMAX_THR] = cfg.qmax_threshold_adc
    p[P_CL_EFF] = cfg.cluster_efficiency
    p[P_PRF] = cfg.pad_response_sigma_cm
    p[P_SHAPING] = cfg.shaping_sigma_time_bins
    p[P_SIG0Y] = cfg.sigma0_y_cm
    p[P_SIG0Z] = cfg.sigma0_z_cm
    p[P_TRD_EFF] = cfg.trd_efficiency
    p[P_TOF_EFF] = cfg.tof_efficiency
    p[P_TOF_RES] = cfg.tof_resolution_ps
    p[P_TOF_R] = cfg.tof_radius_cm
    p[P_TOF_HALF_Z] = cfg.tof_half_length_cm
    p[P_VDRIFT_BIN] = gas.drift_cm_per_time_bin
    p[P_DRIFT_L] = gas.drift_length_cm
    p[P_DIFF_T] = gas.diffusion_t_cm_sqrtcm
    p[P_DIFF_L] = gas.diffusion_l_cm_sqrtcm
    p[P_W_ION] = gas.w_ion_ev
    p[P_T0_BINS] = gas.t0_time_bins
    p[P_TIME_BIN_NS] = gas.time_bin_us * 1e3
    frac, mean, var = _small_primary_moments(
        cfg.ionisation_emin_ev, cfg.ionisation_emax_ev, gas.w_ion_ev
    )
    p[P_SMALL_FRAC], p[P_SMALL_MEAN], p[P_SMALL_VAR] = frac, mean, var
    p[P_E_CUT] = E_CUT_OVER_EMIN * cfg.ionisation_emin_ev
    return p


@njit(cache=True, fastmath=True, error_model="numpy")
def _bethe_bloch_rel(bg: float) -> float:
    """ALEPH simulation parametrisation normalised to 1 at bg = 4 (MIP units)."""
    p1, p2, p3, p4, p5 = ALEPH[0], ALEPH[1], ALEPH[2], ALEPH[3], ALEPH[4]
    beta = bg / math.sqrt(1.0 + bg * bg)
    bp = beta**p4
    return p1 / bp * (p2 - bp - math.log(p3 + bg ** (-p5))) / _BB_MIP


@njit(cache=True, fastmath=True, error_model="numpy")
def _sector_of(phi: float, z: float) -> int:
    """Sector (0-35) of azimuth ``phi`` (rad) on the side given by the sign of ``z``."""
    sw = 2.0 * math.pi / N_SECTORS_PER_SIDE
    if phi < 0.0:
        phi += 2.0 * math.pi
    s = int(phi / sw) % N_SECTORS_PER_SIDE
    return s + N_SECTORS_PER_SIDE if z < 0.0 else s


@njit(cache=True, fastmath=True, error_model="numpy")
def _phi_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@njit(cache=True, fastmath=True, error_model="numpy")
def _cell_fraction(offset: float, sigma: float) -> float:
    """Fraction of a Gaussian of width ``sigma`` (cells) centred ``offset`` from a cell centre
    that falls into that cell."""
    return _phi_cdf((0.5 - offset) / sigma) - _phi_cdf((-0.5 - offset) / sigma)


E_CUT_OVER_EMIN = 10.0  # primaries above 10 * E_min are sampled one by one


@lru_cache(maxsize=16)
def _small_primary_moments(emin: float, emax: float, w_ion: float) -> tuple[float, float, float]:
    """For the 1/E^2 primary spectrum on ``[emin, emax]``: the fraction of primaries below
    ``E_cut = 10 * emin`` and the mean and variance of their electron count."""
    e_cut = E_CUT_OVER_EMIN * emin
    frac = (1.0 / emin - 1.0 / e_cut) / (1.0 / emin - 1.0 / emax)
    u = (np.arange(200000) + 0.5) / 200000
    e = emin / (1.0 - u * (1.0 - emin / e_cut))
    k = np.maximum(np.floor(e / w_ion + 0.5), 1.0)
    return float(frac), float(k.mean()), float(k.var())


@njit(cache=True, fastmath=True, error_model="numpy")
def _ionisation(n_mean: float, prm: np.ndarray) -> tuple[float, int]:
    """(expected primary clusters, electrons) of a segment with ``n_mean`` expected primaries.

    Each primary's energy follows 1/E^2 on ``[E_min, E_max]`` (eV) and frees ``E / W_ion``
    electrons (at least one): the Landau-like tail of the energy loss. The Poisson process is
    split exactly in two: primaries above ``E_cut`` (the tail, ~10%) are sampled one by one,
    the sum of the many small ones is drawn from a Gaussian with the exact mean and variance
    of their compound-Poisson sum.
    """
    frac = prm[P_SMALL_FRAC]
    lam_small = n_mean * frac
    # compound Poisson sum of the small primaries: mean lam*mu, variance lam*(var + mu^2)
    mu = prm[P_SMALL_MEAN]
    sd = math.sqrt(lam_small * (prm[P_SMALL_VAR] + mu * mu))
    n_e = max(int(lam_small * mu + sd * np.random.normal(0.0, 1.0) + 0.5), 0)
    n_large = np.random.poisson(n_mean * (1.0 - frac))
    e_cut = prm[P_E_CUT]
    a = 1.0 - e_cut / prm[P_EMAX]
    for _ in range(n_large):
        e = e_cut / (1.0 - np.random.random() * a)
        n_e += int(e / prm[P_W_ION] + 0.5)
    return n_mean, n_e


@njit(cache=True, fastmath=True, error_model="numpy")
def _scatter(tx, ty, tz, theta0):
    """Rotate unit direction ``(tx, ty, tz)`` by two Gaussian angles of width ``theta0``."""
    if theta0 <= 0.0:
        return tx, ty, tz
    # two unit vectors perpendicular to t
    if abs(tz) < 0.9:
        ux, uy, uz = -ty, tx, 0.0
    else:
        ux, uy, uz = 0.0, -tz, ty
    nu = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / nu, uy / nu, uz / nu
    vx, vy, vz = ty * uz - tz * uy, tz * ux - tx * uz, tx * uy - ty * ux
    a1 = np.random.normal(0.0, 1.0) * theta0
    a2 = np.random.normal(0.0, 1.0) * theta0
    nx, ny, nz = tx + a1 * ux + a2 * vx, ty + a1 * uy + a2 * vy, tz + a1 * uz + a2 * vz
    nn = math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx / nn, ny / nn, nz / nn


@njit(cache=True, fastmath=True, error_model="numpy")
def _material(p, mass, tx, ty, tz, x_over_x0, density_g_cm2):
    """Apply a layer of ``x_over_x0`` radiation lengths and ``density_g_cm2`` mass thickness
    (both along the track). Returns new momentum (GeV/c; 0 if stopped) and direction."""
    e = math.sqrt(p * p + mass * mass)
    beta = p / e
    if x_over_x0 > 0.0:
        theta0 = 0.0136 / (beta * p) * math.sqrt(x_over_x0) * (1.0 + 0.038 * math.log(x_over_x0))
        if theta0 > 0.0:
            tx, ty, tz = _scatter(tx, ty, tz, theta0)
    if density_g_cm2 > 0.0:
        de = MIP_LOSS_GEV_CM2_G * density_g_cm2 * _bethe_bloch_rel(p / mass)
        e -= de
        if e <= mass * 1.0005:
            return 0.0, tx, ty, tz
        p = math.sqrt(e * e - mass * mass)
    return p, tx, ty, tz


@njit(cache=True, fastmath=True, error_model="numpy")
def _cluster_charges(n_e, pad, time, width_pad, width_time, prm):
    """(qTot, qMax) in ADC counts of a cluster of ``n_e`` electrons at ``pad``, ``time`` (pad
    and time-bin units) with widths ``width_pad``, ``width_time`` (pads, time bins).

    Avalanche fluctuations (Gamma with relative variance gv per electron) and electronic
    noise summed over the cluster's pad-time cells; above 30 electrons the Gamma is replaced
    by the Gaussian of the same mean and variance. qMax is the central cell's share, capped at
    the ADC saturation (the excess is taken off qTot too).
    """
    adc = prm[P_ADC_PER_E]
    gv = prm[P_GAINVAR]
    noise2 = prm[P_NOISE] ** 2 * (1.0 + 4.0 * width_pad * width_time)
    if n_e >= 30:
        q_tot = adc * n_e + math.sqrt(adc * adc * gv * n_e + noise2) * np.random.normal(0.0, 1.0)
    else:
        q_tot = adc * np.random.gamma(n_e / gv, gv) + math.sqrt(noise2) * np.random.normal(0.0, 1.0)
    off_pad = pad - (math.floor(pad) + 0.5)
    off_time = time - (math.floor(time) + 0.5)
    q_max = q_tot * _cell_fraction(off_pad, width_pad) * _cell_fraction(off_time, width_time)
    if q_max > ADC_MAX:
        q_tot -= q_max - (ADC_MAX)
        q_max = ADC_MAX
    return q_tot, q_max


@njit(cache=True, fastmath=True, error_model="numpy")
def _tpc_cluster(sector, row, y, z, snp, tgl, rel, t_coll_bins, prm, out_f, out_i, k):
    """Make the TPC cluster of one pad-row crossing; returns 1 if a cluster was written.

    ``y, z`` sector-local (cm), ``snp`` sine of the local track angle in the xy plane, ``tgl``
    dip tangent, ``rel`` dE/dx (MIP units), ``t_coll_bins`` the collision time (time bins).
    Writes pad, time, sigmas (pads, time bins) and charges (ADC) into column ``k`` of ``out_f
    (6, cap)`` and (sector, row, flags) into ``out_i (3, cap)``.
    """
    h = ROW_PAD_HEIGHT_CM[row]
    w = ROW_PAD_WIDTH_CM[row]
    n_pads = ROW_N_PADS[row]
    csp = math.sqrt(max(1.0 - snp * snp, 1e-4))
    tanphi = snp / csp
    tgl_l = tgl / csp  # dz/dx along the row normal
    dl = min(h * math.sqrt(1.0 + tanphi * tanphi + tgl_l * tgl_l), 6.0 * h)
    drift = prm[P_DRIFT_L] - abs(z)
    if drift < 0.0:
        return 0
    # ionisation
    n_p, n_e = _ionisation(prm[P_NPRIM] * dl * rel, prm)
    if n_e == 0:
        return 0
    # widths: diffusion, pad response / shaping, spread of the ionisation along the pad
    sig_t = prm[P_DIFF_T] * math.sqrt(drift)
    sig_l = prm[P_DIFF_L] * math.sqrt(drift)
    spread_y = h * abs(tanphi)
    spread_z = h * abs(tgl_l)
    width_pad = math.sqrt(sig_t**2 + prm[P_PRF] ** 2 + spread_y**2 / 12.0) / w
    vbin = prm[P_VDRIFT_BIN]
    width_time = math.sqrt(
        (sig_l / vbin) ** 2 + prm[P_SHAPING] ** 2 + (spread_z / vbin) ** 2 / 12.0
    )
    # centroid resolution
    np_eff = max(n_p, 1.0)
    sy = math.sqrt(sig_t**2 / n_e + spread_y**2 / (12.0 * np_eff) + prm[P_SIG0Y] ** 2)
    sz = math.sqrt(sig_l**2 / n_e + spread_z**2 / (12.0 * np_eff) + prm[P_SIG0Z] ** 2)
    y_m = y + np.random.normal(0.0, 1.0) * sy
    z_m = z + np.random.normal(0.0, 1.0) * sz
    side = 1.0 if sector < N_SECTORS_PER_SIDE else -1.0
    pad = side * y_m / w + 0.5 * n_pads
    if pad < 0.0 or pad >= n_pads:
        return 0
    time = (prm[P_DRIFT_L] - side * z_m) / vbin + t_coll_bins + prm[P_T0_BINS]
    if time < 0.0:
        return 0
    q_tot, q_max = _cluster_charges(n_e, pad, time, width_pad, width_time, prm)
    if q_max < prm[P_QMAX_THR] or np.random.random() > prm[P_CL_EFF]:
        return 0
    flags = 0
    if pad < 1.0 or pad > n_pads - 1.0:
        flags |= 0x4  # Edge
    out_f[0, k] = pad
    out_f[1, k] = time
    out_f[2, k] = width_pad
    out_f[3, k] = width_time
    out_f[4, k] = q_max
    out_f[5, k] = max(q_tot, q_max)
    out_i[0, k] = sector
    out_i[1, k] = row
    out_i[2, k] = flags
    return 1


@njit(cache=True, fastmath=True, error_model="numpy")
def _in_dead_edge(gx, gy):
    """True where (gx, gy) lies in the dead region at a sector edge (TRD/TOF supports)."""
    phi = math.atan2(gy, gx)
    if phi < 0.0:
        phi += 2.0 * math.pi
    sw = 2.0 * math.pi / N_SECTORS_PER_SIDE
    d = phi - math.floor(phi / sw) * sw
    r = math.sqrt(gx * gx + gy * gy)
    return min(d, sw - d) * r < DEAD_EDGE_RPHI_CM


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _sector_row_crossings(
    sec, x, y, z, x1, y1, z1, phi, omega, s0, c0, ds, tgl, p, m, rel_step, t_coll_bins, label,
    drift_l, prm, cl_f, cl_i, cl_label, n_cl,
):  # fmt: skip
    """Clusters of the pad rows of sector ``sec`` that one helix step crosses.

    The step goes from ``(x, y, z)`` to ``(x1, y1, z1)`` (global, cm) over ``ds`` cm of
    transverse path; ``phi`` (rad) is the direction at its start, ``s0, c0`` its sine and
    cosine, ``omega`` (rad/cm) the curvature, ``tgl`` the dip tangent, ``p`` (GeV/c) and ``m``
    (GeV) momentum and mass, ``drift_l`` the drift length (cm). ``rel_step`` is the step's dE/dx
    (MIP units), or < 0 if not yet computed.
    Clusters go to column ``n_cl``... of ``cl_f (6, cap)``, ``cl_i (3, cap)``, ``cl_label
    (cap,)`` = ``label``. Returns ``(n_cl, rel_step)`` updated.
    """
    ca = SECTOR_COS_ALPHA[sec]
    sa = SECTOR_SIN_ALPHA[sec]
    lx0 = x * ca + y * sa
    lx1 = x1 * ca + y1 * sa
    lo, hi = min(lx0, lx1), max(lx0, lx1)
    ir = np.searchsorted(ROW_X_CM, lo)
    while ir < N_ROWS and ROW_X_CM[ir] <= hi:
        xr = ROW_X_CM[ir]
        # solve lx(s) = xr on the helix, Newton from the linear estimate
        s = ds * (xr - lx0) / (lx1 - lx0) if lx1 != lx0 else 0.5 * ds
        for _ in range(1):
            ss, cs = math.sin(phi + omega * s), math.cos(phi + omega * s)
            gx = x + (ss - s0) / omega
            gy = y + (c0 - cs) / omega
            f = gx * ca + gy * sa - xr
            fp = cs * ca + ss * sa
            if abs(fp) < 1e-6:
                break
            s -= f / fp
        ss, cs = math.sin(phi + omega * s), math.cos(phi + omega * s)
        gx = x + (ss - s0) / omega
        gy = y + (c0 - cs) / omega
        gz = z + tgl * s
        ly = -gx * sa + gy * ca
        same_side = (gz >= 0.0) == (sec < N_SECTORS_PER_SIDE)
        if (
            0.0 <= s <= ds
            and abs(ly) <= xr * TAN_HALF_SECTOR
            and abs(ly) < ROW_HALF_WIDTH_CM[ir]
            and same_side
            and abs(gz) < drift_l
        ):
            snp = ss * ca - cs * sa  # sin(phi_track - alpha)
            if rel_step < 0.0:
                rel_step = _bethe_bloch_rel(p / m)
            if _tpc_cluster(
                sec, ir, ly, gz, snp, tgl, rel_step, t_coll_bins, prm, cl_f, cl_i, n_cl
            ):
                cl_label[n_cl] = label
                n_cl += 1
        ir += 1
    return n_cl, rel_step


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _tpc_step(
    x, y, z, x1, y1, z1, r0, r1, phi, omega, s0, c0, ds, tgl, p, m, sec_prev, t_coll_bins,
    label, drift_l, prm, cl_f, cl_i, cl_label, n_cl,
):  # fmt: skip
    """TPC clusters of one helix step from ``(x, y, z)`` to ``(x1, y1, z1)`` (global, cm) at
    radii ``r0`` to ``r1`` (cm).

    Crossings are looked for in the sector of each end of the step (``sec_prev``: the sector
    of the start when known from the previous step, else -1). Arguments as in
    :func:`_sector_row_crossings`. Returns ``(n_cl, sec_prev)``: the new cluster count and the
    sector of the step's end (-1 outside the TPC).
    """
    in_tpc = max(r0, r1) > R_TPC_MIN_CM and min(r0, r1) < R_TPC_MAX_CM
    if not (in_tpc and abs(z) < drift_l + 5.0):
        return n_cl, -1
    sec_a = sec_prev if sec_prev >= 0 else _sector_of(math.atan2(y, x), z)
    sec_b = _sector_of(math.atan2(y1, x1), z1)
    rel_step = -1.0  # dE/dx (MIP units) at this step's momentum, computed when needed
    for isec in range(2):
        sec = sec_a if isec == 0 else sec_b
        if isec == 1 and sec_b == sec_a:
            break
        n_cl, rel_step = _sector_row_crossings(
            sec, x, y, z, x1, y1, z1, phi, omega, s0, c0, ds, tgl, p, m, rel_step, t_coll_bins,
            label, drift_l, prm, cl_f, cl_i, cl_label, n_cl,
        )  # fmt: skip
    return n_cl, sec_b


@njit(cache=True, fastmath=True, error_model="numpy")
def _trd_tracklet(i, lay, gx, gy, gz, tx, ty, tgl, p, m, prm, trd_f, trd_n):
    """The tracklet of particle ``i`` in TRD layer ``lay`` at ``(gx, gy, gz)`` (global, cm), if
    the chamber is efficient; returns True if written.

    Direction ``(tx, ty)`` (unit vector's transverse part), dip tangent ``tgl``, momentum ``p``
    (GeV/c) and mass ``m`` (GeV) give the gas path and dE/dx; electrons add transition
    radiation. Writes x, y, pad-centre z (cm), charge (MIP units), layer into
    ``trd_f[i, trd_n[i]]`` (``trd_f (n, 6, 5)``) and increments ``trd_n[i]``.
    """
    if np.random.random() >= prm[P_TRD_EFF]:
        return False
    rl = TRD_RADII_CM[lay]
    # dE/dx in the chamber (MIP units) + TR for electrons
    cos_inc = abs(gx * tx + gy * ty) / (rl * math.sqrt(tx * tx + ty * ty) + 1e-12)
    gas_len = TRD_CHAMBER_GAS_CM / max(cos_inc, 0.2) * math.sqrt(1.0 + tgl * tgl)
    rel = _bethe_bloch_rel(p / m)
    n_mean = 15.0 * gas_len * rel
    _, n_e = _ionisation(n_mean, prm)
    mip_e = 15.0 * TRD_CHAMBER_GAS_CM * 3.3
    qv = n_e / mip_e
    gamma = math.sqrt(1.0 + (p / m) ** 2)
    tr_yield = 1.5 / (1.0 + math.exp(-(math.log10(gamma) - 3.2) / 0.25))
    for _ in range(np.random.poisson(tr_yield)):
        qv += np.random.exponential(0.55)
    it = trd_n[i]
    trd_f[i, it, 0] = gx
    trd_f[i, it, 1] = gy
    trd_f[i, it, 2] = (math.floor(gz / TRD_PAD_LENGTH_CM) + 0.5) * TRD_PAD_LENGTH_CM
    trd_f[i, it, 3] = qv
    trd_f[i, it, 4] = lay
    trd_n[i] = it + 1
    return True


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _trd_layers(
    i, x, y, z, x1, y1, z1, r0, r1, tx, ty, tz, tgl, p, m, trd_done, bits, prm, trd_f, trd_n
):
    """TRD layers crossed outwards by the straight chord from ``(x, y, z)`` to ``(x1, y1, z1)``
    (global, cm; radii ``r0`` to ``r1``), starting at layer ``trd_done``.

    Each crossed layer may give a tracklet (:func:`_trd_tracklet`, sets ``bits |= 0x2``) and
    applies the layer's material to momentum ``p`` (GeV/c) and unit direction ``(tx, ty,
    tz)``. Returns ``(p, tx, ty, tz, trd_done, bits)`` updated; ``p == 0`` if stopped.
    """
    for lay in range(trd_done, 6):
        rl = TRD_RADII_CM[lay]
        if r0 < rl <= r1:
            frac = (rl - r0) / (r1 - r0)
            gx = x + frac * (x1 - x)
            gy = y + frac * (y1 - y)
            gz = z + frac * (z1 - z)
            trd_done = lay + 1
            if abs(gz) < TRD_HALF_LENGTH_CM and not _in_dead_edge(gx, gy):
                if _trd_tracklet(i, lay, gx, gy, gz, tx, ty, tgl, p, m, prm, trd_f, trd_n):
                    bits |= 0x2
            x0 = prm[P_X0_TRD]
            p, tx, ty, tz = _material(p, m, tx, ty, tz, x0, x0 * SILICON_X0_G_CM2 * 0.8)
            if p == 0.0:
                break
    return p, tx, ty, tz, trd_done, bits


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _tof_hit(i, x, y, z, x1, y1, z1, r0, r1, r_tof, p, m, tof_ns, path, dl3, t_coll_ns, prm, tof_f):
    """The TOF hit of particle ``i`` where the chord from ``(x, y, z)`` to ``(x1, y1, z1)``
    (global, cm; radii ``r0 < r_tof <= r1``, 3D length ``dl3``) crosses the TOF radius.

    ``tof_ns`` (ns) and ``path`` (cm) are time and track length at the chord's start,
    ``t_coll_ns`` the collision time (ns), ``p`` (GeV/c) and ``m`` (GeV) the momentum and
    mass. Outside the z acceptance, in a z gap or a dead sector edge, or when inefficient
    nothing is written; else ``tof_f[i] (6,)`` = 1, x, y, z (cm, pad-smeared), time (ps,
    with the resolution), length (cm). Returns True if a hit was written.
    """
    frac = (r_tof - r0) / (r1 - r0)
    gx = x + frac * (x1 - x)
    gy = y + frac * (y1 - y)
    gz = z + frac * (z1 - z)
    e = math.sqrt(p * p + m * m)
    t_hit = tof_ns + frac * dl3 / (p / e * SPEED_OF_LIGHT_CM_PER_NS)
    length = path + frac * dl3
    in_z = abs(gz) < prm[P_TOF_HALF_Z]
    for zg in TOF_Z_GAPS_CM:
        if abs(gz - zg) < 2.0:
            in_z = False
    if not (in_z and not _in_dead_edge(gx, gy) and np.random.random() < prm[P_TOF_EFF]):
        return False
    phi_h = math.atan2(gy, gx) + (np.random.random() - 0.5) * TOF_PAD_RPHI_CM / r_tof
    tof_f[i, 0] = 1.0
    tof_f[i, 1] = r_tof * math.cos(phi_h)
    tof_f[i, 2] = r_tof * math.sin(phi_h)
    tof_f[i, 3] = gz + (np.random.random() - 0.5) * TOF_PAD_Z_CM
    tof_f[i, 4] = (t_coll_ns + t_hit) * 1e3 + np.random.normal(0.0, 1.0) * prm[P_TOF_RES]
    tof_f[i, 5] = length
    return True


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _advance(
    p, m, phi, omega, ds, tgl, dl3, r0, r1, z1, tof_ns, path, turned, gas_path, drift_l, prm
):
    """Advance time, length and direction over a helix step, then apply its material.

    The step of ``ds`` cm transverse (``dl3`` cm 3D) starts at direction ``phi`` (rad) with
    curvature ``omega`` (rad/cm) and dip tangent ``tgl``, and goes from radius ``r0`` to
    ``(r1, z1)`` (cm). Crossing r = 78 cm (ITS + inner field cage) or 250 cm (outer field
    cage) applies that layer; in the TPC gas (``|z1| < drift_l``, cm), material is applied every
    5 cm of ``gas_path``.
    Returns ``(p, tx, ty, tz, tof_ns, path, turned, gas_path)``: momentum (GeV/c, 0 if
    stopped), unit direction, time of flight (ns), 3D length (cm), turned angle (rad), gas
    path not yet applied (cm).
    """
    e = math.sqrt(p * p + m * m)
    tof_ns += dl3 / (p / e * SPEED_OF_LIGHT_CM_PER_NS)
    path += dl3
    turned += abs(omega * ds)
    tx_t, ty_t = math.cos(phi + omega * ds), math.sin(phi + omega * ds)
    norm = math.sqrt(1.0 + tgl * tgl)
    tx, ty, tz = tx_t / norm, ty_t / norm, tgl / norm
    if (r0 < R_INNER_MATERIAL_CM) != (r1 < R_INNER_MATERIAL_CM):
        x0 = prm[P_X0_INNER]
        p, tx, ty, tz = _material(p, m, tx, ty, tz, x0, x0 * SILICON_X0_G_CM2)
    elif (r0 < R_OUTER_MATERIAL_CM) != (r1 < R_OUTER_MATERIAL_CM):
        x0 = prm[P_X0_OUTER]
        p, tx, ty, tz = _material(p, m, tx, ty, tz, x0, x0 * SILICON_X0_G_CM2)
    elif R_TPC_MIN_CM < r1 < R_TPC_MAX_CM and abs(z1) < drift_l:
        gas_path += dl3
        if gas_path >= GAS_MATERIAL_STEP_CM:
            p, tx, ty, tz = _material(
                p, m, tx, ty, tz, gas_path / X0_GAS_CM, gas_path * GAS_DENSITY_G_CM3
            )
            gas_path = 0.0
    return p, tx, ty, tz, tof_ns, path, turned, gas_path


@njit(cache=True, fastmath=True, error_model="numpy")
def _helix_step_length(r0, step_tpc):
    """Transverse step (cm) at radius ``r0`` (cm): up to the inner material (at most 10 cm),
    ``step_tpc`` in the TPC, 4 cm outside it."""
    if r0 < R_INNER_MATERIAL_CM - 1.0:
        return min(10.0, R_INNER_MATERIAL_CM - r0 + 0.5)
    if r0 < R_TPC_MAX_CM + 2.0:
        return step_tpc
    return 4.0


@njit(cache=True, fastmath=True, error_model="numpy", inline="always")
def _follow_particle(
    i, p3, vtx, charge, mass, ctau, t_coll_ns, prm, k_b, step_tpc, max_turn_angle, tbin_ns,
    drift_l, cl_f, cl_i, cl_label, n_cl, tof_f, trd_f, trd_n,
):  # fmt: skip
    """Follow particle ``i`` in helix steps until it stops, decays, reaches TOF, leaves the
    barrel or has turned ``max_turn_angle`` (rad); arrays as in :func:`transport_particles`.

    ``k_b`` is 0.3 * B (GeV/c per cm), ``step_tpc`` the step in the TPC (cm), ``tbin_ns`` the
    time bin (ns) and ``drift_l`` the drift length (cm). Each step: TPC pad-row crossings
    (:func:`_tpc_step`), TRD layers (:func:`_trd_layers`), the TOF hit (:func:`_tof_hit`, ends
    the particle), then time, direction and material (:func:`_advance`).
    Returns ``(n_cl, bits)``: the new cluster count and the TRD (0x2) and TOF (0x4) bits.
    """
    q = charge[i]
    m = mass[i]
    px, py, pz = p3[i, 0], p3[i, 1], p3[i, 2]
    p = math.sqrt(px * px + py * py + pz * pz)
    tx, ty, tz = px / p, py / p, pz / p
    x, y, z = vtx[i, 0], vtx[i, 1], vtx[i, 2]
    decay_len = 1e30
    if ctau[i] > 0.0:
        decay_len = p / m * ctau[i] * np.random.exponential(1.0)
    t_coll_bins = t_coll_ns[i] / tbin_ns
    path = tof_ns = turned = gas_path = 0.0
    sec_prev = -1  # sector of the current point when known from the last step
    bits = trd_done = 0
    while True:
        pt = p * math.sqrt(tx * tx + ty * ty)
        if pt < 1e-4:
            break
        tgl = tz / math.sqrt(tx * tx + ty * ty)
        phi = math.atan2(ty, tx)
        omega = -q * k_b / pt  # rad per cm of transverse path
        r0 = math.sqrt(x * x + y * y)
        ds = _helix_step_length(r0, step_tpc)
        # exact helix step
        s0, c0 = math.sin(phi), math.cos(phi)
        s1, c1 = math.sin(phi + omega * ds), math.cos(phi + omega * ds)
        x1 = x + (s1 - s0) / omega
        y1 = y + (c0 - c1) / omega
        z1 = z + tgl * ds
        r1 = math.sqrt(x1 * x1 + y1 * y1)
        dl3 = ds * math.sqrt(1.0 + tgl * tgl)  # 3D path of this step
        if path + dl3 > decay_len:
            break  # decayed in flight (daughters are not followed)
        n_cl, sec_prev = _tpc_step(
            x, y, z, x1, y1, z1, r0, r1, phi, omega, s0, c0, ds, tgl, p, m, sec_prev,
            t_coll_bins, i, drift_l, prm, cl_f, cl_i, cl_label, n_cl,
        )  # fmt: skip
        if r1 > TRD_RADII_CM[0] - 1.0 and trd_done < 6:  # outward crossings only
            p, tx, ty, tz, trd_done, bits = _trd_layers(
                i, x, y, z, x1, y1, z1, r0, r1, tx, ty, tz, tgl, p, m, trd_done, bits,
                prm, trd_f, trd_n,
            )  # fmt: skip
            if p == 0.0:
                break
        r_tof = prm[P_TOF_R]
        if r0 < r_tof <= r1:
            if _tof_hit(
                i, x, y, z, x1, y1, z1, r0, r1, r_tof, p, m, tof_ns, path, dl3, t_coll_ns[i],
                prm, tof_f,
            ):  # fmt: skip
                bits |= 0x4
            break
        p, tx, ty, tz, tof_ns, path, turned, gas_path = _advance(
            p, m, phi, omega, ds, tgl, dl3, r0, r1, z1, tof_ns, path, turned, gas_path,
            drift_l, prm,
        )  # fmt: skip
        x, y, z = x1, y1, z1
        if p == 0.0 or abs(z) > 400.0 or r1 > r_tof + 10.0 or turned > max_turn_angle:
            break
    return n_cl, bits


@njit(cache=True, fastmath=True, error_model="numpy")
def transport_particles(
    first, p3, vtx, charge, mass, ctau, t_coll_ns, seeds, prm,
    cl_f, cl_i, cl_label, n_cl, reached, n_tpc, tof_f, trd_f, trd_n,
):  # fmt: skip
    """Transport particles ``first, first+1, ...`` until done or the cluster buffer is full.

    Inputs per particle ``(n,)`` / ``(n, 3)``: momentum p3 (GeV/c), vertex vtx (cm), charge,
    mass (GeV), ctau (cm, 0 = stable), collision time (ns), seed. Cluster outputs are appended
    at ``n_cl`` to ``cl_f (6, cap)`` = pad, time, sigma pad, sigma time, qMax, qTot,
    ``cl_i (3, cap)`` = sector, row, flags and ``cl_label``. Per particle: ``reached`` bits,
    ``n_tpc`` clusters, ``tof_f (n, 6)`` = hit flag, x, y, z, time (ps), length (cm) and
    ``trd_f (n, 6, 5)`` = x, y, z, q, flag, with ``trd_n`` tracklets.
    Returns ``(next_particle, n_cl)``; ``next_particle < n`` means the buffer needs to grow.

    Each particle is followed by :func:`_follow_particle`. The helpers draw random numbers in
    the order of the former single kernel, and the output is bit-identical to it. Helpers
    whose arithmetic meets the kernel's are ``inline="always"``: called as separate functions,
    fastmath optimised differently across the call and changed the last bits of, in a Pb-Pb
    timeframe (267,059 clusters), 13 cluster values (TPC crossings), 1,222 TRD values (TRD
    layers), 288 TOF values (TOF hit), 7,296 cluster values (particle loop) and 82,284 cluster
    values (advance). :func:`_trd_tracklet`, :func:`_cluster_charges` and
    :func:`_helix_step_length` are plain calls: bit-identical either way.
    """
    n = p3.shape[0]
    cap = cl_f.shape[1]
    k_b = B_TO_PT_GEV_PER_T_CM * prm[P_BFIELD]
    step_tpc = prm[P_STEP]
    max_turn_angle = 2.0 * math.pi * prm[P_MAX_TURNS]
    tbin_ns = prm[P_TIME_BIN_NS]
    drift_l = prm[P_DRIFT_L]
    # safe upper bound of clusters one particle can leave
    max_per_particle = int(N_ROWS * 2 * (prm[P_MAX_TURNS] + 1)) + 8
    i = first
    while i < n:
        if cap - n_cl < max_per_particle:
            return i, n_cl
        np.random.seed(seeds[i])
        ncl0 = n_cl
        n_cl, bits = _follow_particle(
            i, p3, vtx, charge, mass, ctau, t_coll_ns, prm, k_b, step_tpc, max_turn_angle,
            tbin_ns, drift_l, cl_f, cl_i, cl_label, n_cl, tof_f, trd_f, trd_n,
        )  # fmt: skip
        n_tpc[i] = n_cl - ncl0
        if n_cl > ncl0:
            bits |= 0x1
        reached[i] = bits
        i += 1
    return i, n_cl
