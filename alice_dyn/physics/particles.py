"""Particle species used for PID, with PDG codes, masses (GeV/c^2) and charges.

The PID index order is O2's: e, mu, pi, K, p (then d). Electric charge of a PDG code follows
the PDG sign convention: positive codes are e-, mu-, pi+, K+, p, d.
"""

from __future__ import annotations

import numpy as np

SPECIES = ("e", "mu", "pi", "K", "p", "d")
N_SPECIES_PID = 5  # e, mu, pi, K, p (deuterons optional)
PDG_CODES = np.array([11, 13, 211, 321, 2212, 1000010020], dtype=np.int32)
MASSES_GEV = np.array([0.000510999, 0.1056584, 0.13957039, 0.493677, 0.93827209, 1.87561294])
#: charge (units of e) of the particle with the positive PDG code
CHARGE_OF_POSITIVE_CODE = np.array([-1, -1, 1, 1, 1, 1], dtype=np.int8)

SPEED_OF_LIGHT_CM_PER_NS = 29.9792458
#: pT [GeV/c] = B_TO_PT * B [T] * R [cm] * |q|
B_TO_PT_GEV_PER_T_CM = 0.299792458e-2


def species_index(pdg: np.ndarray) -> np.ndarray:
    """PID species index (0-5) of PDG codes (either sign); -1 for anything else."""
    a = np.abs(np.asarray(pdg, dtype=np.int64))
    out = np.full(a.shape, -1, dtype=np.int8)
    for i, code in enumerate(PDG_CODES):
        out[a == code] = i
    return out


def charge_of(pdg: np.ndarray) -> np.ndarray:
    """Electric charge (e) of PDG codes of the known species; 0 for unknown codes."""
    pdg = np.asarray(pdg, dtype=np.int64)
    idx = species_index(pdg)
    q = np.where(idx >= 0, CHARGE_OF_POSITIVE_CODE[np.maximum(idx, 0)], 0)
    return (np.sign(pdg) * q).astype(np.int8)


def pdg_of(species: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """PDG code of a species index with a given charge sign (+1 / -1)."""
    species = np.asarray(species, dtype=np.int64)
    return (PDG_CODES[species] * np.sign(charge) * CHARGE_OF_POSITIVE_CODE[species]).astype(
        np.int32
    )


def curvature_radius_cm(pt_gev: np.ndarray, bfield_t: float, charge: np.ndarray = 1) -> np.ndarray:
    """Helix radius (cm) of a particle of transverse momentum ``pt_gev`` in field ``bfield_t``."""
    return np.asarray(pt_gev) / (B_TO_PT_GEV_PER_T_CM * abs(bfield_t) * np.abs(charge))
