"""Event generator: collisions in a timeframe and their charged primaries.

Layer: simulation. Vectorised NumPy with one ``numpy.random.Generator``; deterministic for a
seed. Species are drawn by abundance, pT from a per-species Tsallis spectrum
``dN/dpT ~ pT (1 + (mT - m) / (n T))^-n``, eta uniform in ``|eta| < eta_max``, phi uniform,
both charges equally often. Collision times follow a Poisson process at the interaction rate,
on the 25 ns bunch-crossing grid, so collisions pile up within one drift time (~100 us).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from alice_dyn.physics.particles import MASSES_GEV, pdg_of
from alice_dyn.sim.config import SimConfig
from alice_dyn.tpc.geometry import BUNCH_SPACING_NS


@dataclass
class GeneratedCollisions:
    """Collisions of one timeframe ``(n_collisions,)`` and their primaries ``(n_particles,)``."""

    time_ns: np.ndarray
    bc: np.ndarray
    vertex_cm: np.ndarray  # (n_collisions, 3)
    multiplicity: np.ndarray
    t0_meas_ps: np.ndarray
    t0_resolution_ps: np.ndarray
    # primaries
    species: np.ndarray  # int8 index into physics.particles.SPECIES
    pdg: np.ndarray
    charge: np.ndarray
    collision: np.ndarray
    p_gev: np.ndarray  # (n_particles, 3)


@lru_cache(maxsize=64)
def _tsallis_inverse_cdf(
    mass: float, temp: float, n: float, pt_min: float, pt_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Tabulated inverse CDF ``(u, pT)`` of the Tsallis pT spectrum on ``[pt_min, pt_max]``."""
    pt = np.geomspace(pt_min, pt_max, 4096)
    mt = np.sqrt(pt * pt + mass * mass)
    pdf = pt * np.power(1.0 + (mt - mass) / (n * temp), -n)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(pt))])
    return cdf / cdf[-1], pt


def sample_pt(species: np.ndarray, cfg: SimConfig, rng: np.random.Generator) -> np.ndarray:
    """Transverse momenta (GeV/c) for particles of the given species indices."""
    pt = np.empty(species.shape, dtype=np.float64)
    u = rng.random(species.shape)
    for s in np.unique(species):
        temp, n = cfg.tsallis[s]
        ucdf, grid = _tsallis_inverse_cdf(
            float(MASSES_GEV[s]), temp, n, cfg.pt_min_gev, cfg.pt_max_gev
        )
        sel = species == s
        pt[sel] = np.interp(u[sel], ucdf, grid)
    return pt


def mean_dndeta(cfg: SimConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """Mean charged-particle density dN/deta of ``n`` collisions of the configured system."""
    if cfg.system == "pp":
        return np.full(n, cfg.dndeta)
    centrality = rng.uniform(cfg.centrality_min, cfg.centrality_max, n)
    return cfg.dndeta * np.power(1.0 - centrality, 2.6)


def sample_multiplicity(cfg: SimConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """Number of charged primaries in ``|eta| < eta_max`` for ``n`` collisions."""
    mean = mean_dndeta(cfg, rng, n) * 2.0 * cfg.eta_max
    if cfg.system == "pp":  # negative binomial: Poisson with a Gamma-distributed mean
        mean = rng.gamma(cfg.nbd_k, mean / cfg.nbd_k)
    return rng.poisson(mean).astype(np.int64)


def generate_collisions(cfg: SimConfig, rng: np.random.Generator) -> GeneratedCollisions:
    """Collisions of one timeframe and their charged primaries."""
    n_coll = cfg.collisions_per_tf
    tf_ns = cfg.n_orbits_per_tf * 3564 * BUNCH_SPACING_NS
    # Poisson process on the bunch-crossing grid, starting in the first tenth of the TF
    gaps_ns = rng.exponential(1e6 / cfg.interaction_rate_khz, n_coll)
    t = (
        rng.uniform(0.0, 0.1 * tf_ns) + np.cumsum(gaps_ns) - gaps_ns[:1].sum()
        if n_coll
        else gaps_ns
    )
    bc = np.minimum(np.floor(t / BUNCH_SPACING_NS), tf_ns / BUNCH_SPACING_NS - 1).astype(np.int64)
    time_ns = bc * BUNCH_SPACING_NS + rng.normal(0.0, cfg.bunch_time_spread_ps * 1e-3, n_coll)
    fired = rng.random(n_coll) < cfg.ft0_efficiency
    t0_res = np.where(fired, cfg.ft0_resolution_ps, cfg.bunch_time_spread_ps)
    t0_meas = np.where(
        fired,
        time_ns * 1e3 + rng.normal(0.0, cfg.ft0_resolution_ps, n_coll),
        bc * BUNCH_SPACING_NS * 1e3,  # no FT0: the nominal bunch-crossing time
    )
    vertex = np.column_stack(
        [
            rng.normal(0.0, cfg.vertex_sigma_xy_cm, n_coll),
            rng.normal(0.0, cfg.vertex_sigma_xy_cm, n_coll),
            rng.normal(0.0, cfg.vertex_sigma_z_cm, n_coll),
        ]
    )
    mult = sample_multiplicity(cfg, rng, n_coll)
    n_part = int(mult.sum())
    abundance = np.asarray(cfg.abundances, dtype=np.float64)
    if not cfg.with_deuterons:
        abundance[5] = 0.0
    species = rng.choice(len(abundance), size=n_part, p=abundance / abundance.sum()).astype(np.int8)
    charge = np.where(rng.random(n_part) < 0.5, -1, 1).astype(np.int8)
    pt = sample_pt(species, cfg, rng)
    eta = rng.uniform(-cfg.eta_max, cfg.eta_max, n_part)
    phi = rng.uniform(0.0, 2.0 * np.pi, n_part)
    p = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)])
    return GeneratedCollisions(
        time_ns=time_ns,
        bc=bc,
        vertex_cm=vertex,
        multiplicity=mult.astype(np.int32),
        t0_meas_ps=t0_meas,
        t0_resolution_ps=t0_res.astype(np.float32),
        species=species,
        pdg=pdg_of(species, charge),
        charge=charge,
        collision=np.repeat(np.arange(n_coll, dtype=np.int32), mult),
        p_gev=p,
    )


def gun_collision(
    species: np.ndarray,
    p_gev: np.ndarray,
    charge: np.ndarray,
    vertex_cm: tuple[float, float, float],
    time_ns: float,
    cfg: SimConfig,
    rng: np.random.Generator,
) -> GeneratedCollisions:
    """One collision holding exactly the given particles (a particle gun)."""
    species = np.asarray(species, dtype=np.int8)
    charge = np.asarray(charge, dtype=np.int8)
    p_gev = np.asarray(p_gev, dtype=np.float64).reshape(-1, 3)
    n = len(species)
    if not (len(p_gev) == len(charge) == n):
        raise ValueError("species, p_gev and charge must have the same length")
    if n and (species.min() < 0 or species.max() >= len(MASSES_GEV)):
        raise ValueError(f"species index out of range 0-{len(MASSES_GEV) - 1}")
    t0_meas = time_ns * 1e3 + rng.normal(0.0, cfg.ft0_resolution_ps)
    return GeneratedCollisions(
        time_ns=np.array([time_ns]),
        bc=np.array([int(time_ns // BUNCH_SPACING_NS)]),
        vertex_cm=np.array([vertex_cm], dtype=np.float64),
        multiplicity=np.array([n], dtype=np.int32),
        t0_meas_ps=np.array([t0_meas]),
        t0_resolution_ps=np.array([cfg.ft0_resolution_ps], dtype=np.float32),
        species=species,
        pdg=pdg_of(species, charge),
        charge=charge,
        collision=np.zeros(n, dtype=np.int32),
        p_gev=p_gev,
    )
