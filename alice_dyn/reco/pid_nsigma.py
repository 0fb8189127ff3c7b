"""n-sigma particle identification with the TPC and TOF, as O2Physics does it.

Layer: reconstruction (NumPy). For each mass hypothesis of e, mu, pi, K, p:

* TPC: ``(signal - expected) / sigma`` with the calibrated expected dE/dx and resolution
  (:class:`~alice_dyn.reco.dedx_calibration.DedxCalibration`) at ``beta*gamma = p / m``
  (``p`` = tpcInnerParam);
* TOF: ``(t - t_exp) / sigma_t`` with ``t_exp = L sqrt(m^2 + p^2) / (c p)`` and ``sigma_t`` the
  TOF resolution (+) the event-time resolution (+) the momentum uncertainty's effect;
* decision (the classical baseline): below ``p_tof_min`` or without TOF ``|n_TPC| < 3``, else
  the quadrature sum ``sqrt(n_TPC^2 + n_TOF^2) < 3``; among the species that pass, the smallest
  wins, except that a muon is chosen only when no other species passes (muons and pions are
  not separable here); none passing gives -1. Invalid values are -999, as in O2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alice_dyn.physics.particles import MASSES_GEV, N_SPECIES_PID, SPEED_OF_LIGHT_CM_PER_NS
from alice_dyn.reco.dedx_calibration import DedxCalibration

INVALID = -999.0
MUON = 1
PID_MASSES = MASSES_GEV[:N_SPECIES_PID]


@dataclass(frozen=True)
class PIDNSigmaParam:
    """Settings of the n-sigma PID (configuration group ``PIDNSigmaParam``)."""

    n_sigma_cut: float = field(default=3.0, metadata={"range": "(0, inf)"})
    p_tof_min_gev: float = field(default=0.5, metadata={"range": "[0, inf)"})
    tof_resolution_ps: float = field(default=70.0, metadata={"range": "(0, inf)"})
    rel_momentum_resolution: float = field(default=0.01, metadata={"range": "[0, inf)"})


def nsigma_tpc(
    signal: np.ndarray, p_gev: np.ndarray, n_clusters: np.ndarray, calib: DedxCalibration
) -> np.ndarray:
    """``(n_tracks, 5)`` TPC n-sigma for e, mu, pi, K, p."""
    out = np.full((len(signal), N_SPECIES_PID), INVALID)
    ok = np.isfinite(signal) & (signal > 0)
    for s, m in enumerate(PID_MASSES):
        exp = calib.expected(p_gev, m)
        sig = calib.sigma(p_gev, m, n_clusters)
        out[:, s] = np.where(ok, (signal - exp) / sig, INVALID)
    return out


def tof_expected_ps(length_cm: np.ndarray, p_gev: np.ndarray, mass: float) -> np.ndarray:
    p = np.maximum(np.asarray(p_gev, dtype=np.float64), 1e-6)
    return length_cm * np.sqrt(mass * mass + p * p) / (SPEED_OF_LIGHT_CM_PER_NS * p) * 1e3


def nsigma_tof(
    signal_ps: np.ndarray,
    length_cm: np.ndarray,
    p_gev: np.ndarray,
    t0_resolution_ps: np.ndarray,
    prm: PIDNSigmaParam = PIDNSigmaParam(),
) -> np.ndarray:
    """``(n_tracks, 5)`` TOF n-sigma (INVALID where the track has no TOF match)."""
    out = np.full((len(signal_ps), N_SPECIES_PID), INVALID)
    has = (length_cm > 0) & (signal_ps > INVALID)
    p = np.asarray(p_gev, dtype=np.float64)
    for s, m in enumerate(PID_MASSES):
        texp = tof_expected_ps(length_cm, p, m)
        # dt_exp/dp * sigma_p = t_exp * m^2 / (p^2 + m^2) * sigma_p/p
        sig_p = texp * m * m / (p * p + m * m) * prm.rel_momentum_resolution
        sigma = np.sqrt(prm.tof_resolution_ps**2 + np.maximum(t0_resolution_ps, 0) ** 2 + sig_p**2)
        out[:, s] = np.where(has, (signal_ps - texp) / sigma, INVALID)
    return out


def nsigma_decision(
    ns_tpc: np.ndarray,
    ns_tof: np.ndarray,
    p_gev: np.ndarray,
    prm: PIDNSigmaParam = PIDNSigmaParam(),
) -> np.ndarray:
    """Species index (0-4) chosen by the n-sigma rule, -1 if none passes. ``(n_tracks,)``."""
    use_tof = (np.asarray(p_gev) >= prm.p_tof_min_gev)[:, None] & (ns_tof > INVALID)
    tpc_ok = ns_tpc > INVALID
    comb = np.where(use_tof, np.hypot(ns_tpc, ns_tof), np.abs(ns_tpc))
    comb = np.where(tpc_ok, comb, np.inf)
    # muons and pions differ by less than the resolution in TPC and TOF: a muon is only
    # chosen when no other hypothesis passes (else most pions would be called muons)
    no_mu = comb.copy()
    no_mu[:, MUON] = np.inf
    rows = np.arange(len(comb))
    best = np.argmin(no_mu, axis=1)
    passed = no_mu[rows, best] < prm.n_sigma_cut
    mu_ok = comb[:, MUON] < prm.n_sigma_cut
    out = np.where(passed, best, np.where(mu_ok, MUON, -1))
    return out.astype(np.int8)
