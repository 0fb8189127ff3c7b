"""Synthetic but valid timeframes and a field-by-field comparison, for I/O tests and benchmarks.

Layer: I/O (test support). The values are random within the schema's ranges — sectors 0-35,
rows 0-151, pads within the row, clusters in (sector, row) order, labels pointing at existing
particles — and shaped loosely like real data (tracks leave runs of clusters across rows, times
cluster around the collisions) so that compression ratios are meaningful. This is *not* the
physics simulation (:mod:`alice_dyn.sim`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from alice_dyn.event.timeframe import (
    REACHED_TOF,
    REACHED_TPC,
    REACHED_TRD,
    Collisions,
    MCParticles,
    Timeframe,
    TimeframeMeta,
    TOFHits,
    TPCClusters,
    TRDTracklets,
)
from alice_dyn.tpc.cluster_native import pack_clusters
from alice_dyn.tpc.geometry import LHC_ORBIT_NS, N_ROWS, N_SECTORS, ROW_N_PADS

#: orbits per timeframe (O2 default 128 in Run 3 early data, 32 later; 32 keeps TFs small)
ORBITS_PER_TF = 32
_PDG = np.array([211, -211, 321, -321, 2212, -2212, 11, -11, 13, -13], dtype=np.int32)


def synthetic_timeframe(
    rng: np.random.Generator | int = 0,
    *,
    tf_id: int = 0,
    n_collisions: int = 2,
    particles_per_collision: int = 20,
    noise_fraction: float = 0.05,
    system: str = "pp",
    run_number: int = 544_000,
    run_period: str = "LHC23zz",
    bfield_t: float = 0.5,
) -> Timeframe:
    """A valid random timeframe; about ``60 * n_collisions * particles_per_collision`` clusters.

    Built per detector in a fixed order of random draws (collisions, particles, TPC, TOF, TRD),
    so a seed always gives the same timeframe.
    """
    rng = np.random.default_rng(rng)
    tf_ns = ORBITS_PER_TF * LHC_ORBIT_NS
    collisions = _collisions(rng, n_collisions, particles_per_collision, tf_ns)
    truth = _truth(rng, collisions.multiplicity)
    clusters, n_cl = _tpc_clusters(rng, truth, collisions.time_ns, noise_fraction, tf_ns)
    particles = _mc_particles(truth, collisions, n_cl)
    tof = _tof_hits(rng, truth, collisions.time_ns)
    trd = _trd_tracklets(rng, truth)
    meta = TimeframeMeta(
        tf_id=tf_id,
        first_orbit=tf_id * ORBITS_PER_TF,
        run_number=run_number,
        run_period=run_period,
        bfield_t=bfield_t,
        system=system,
    )
    tf = Timeframe(meta, clusters, collisions, particles, tof, trd)
    tf.check()
    return tf


class _Truth(NamedTuple):
    """Per particle ``(n_p,)``: collision index, PDG code, pT (GeV/c), phi (rad), eta and the
    ``REACHED_*`` bits."""

    coll: np.ndarray
    pdg: np.ndarray
    pt: np.ndarray
    phi: np.ndarray
    eta: np.ndarray
    reached: np.ndarray


def _collisions(
    rng: np.random.Generator, n_col: int, particles_per_collision: int, tf_ns: float
) -> Collisions:
    """``n_col`` collisions at random times (ns) in the timeframe, sorted, with vertices (cm)
    around the origin and a 20 ps T0 measurement."""
    col_time = np.sort(rng.uniform(0, tf_ns, n_col))
    return Collisions(
        time_ns=col_time,
        vx_cm=rng.normal(0, 0.01, n_col).astype(np.float32),
        vy_cm=rng.normal(0, 0.01, n_col).astype(np.float32),
        vz_cm=rng.normal(0, 5.0, n_col).astype(np.float32),
        multiplicity=np.full(n_col, particles_per_collision, dtype=np.int32),
        t0_meas_ps=col_time * 1e3 + rng.normal(0, 20, n_col),
        t0_resolution_ps=np.full(n_col, 20.0, dtype=np.float32),
    )


def _truth(rng: np.random.Generator, mult: np.ndarray) -> _Truth:
    """``mult[c]`` particles of collision ``c``: species, exponential pT, flat phi and
    |eta| < 0.9; all reach the TPC, pT > 0.5 GeV/c the TRD, 60% of pT > 0.6 GeV/c the TOF."""
    n_p = int(mult.sum())
    coll = np.repeat(np.arange(mult.size, dtype=np.int32), mult)
    pdg = rng.choice(_PDG, n_p)
    pt = rng.exponential(0.6, n_p) + 0.1
    phi = rng.uniform(0, 2 * np.pi, n_p)
    eta = rng.uniform(-0.9, 0.9, n_p)
    reached = np.full(n_p, REACHED_TPC, dtype=np.uint8)
    reached[pt > 0.5] |= REACHED_TRD
    reached[(pt > 0.6) & (rng.random(n_p) < 0.6)] |= REACHED_TOF
    return _Truth(coll, pdg, pt, phi, eta, reached)


def _tpc_clusters(
    rng: np.random.Generator, truth: _Truth, col_time: np.ndarray, noise_fraction: float,
    tf_ns: float,
) -> tuple[TPCClusters, np.ndarray]:  # fmt: skip
    """Each particle leaves a run of consecutive rows in one sector, times (time bins of 200
    ns) near its collision's; ``noise_fraction`` more clusters are unlabelled noise. Returns
    the clusters in (sector, row, time) order and the clusters per particle (int16)."""
    n_p = truth.pt.size
    first_row = rng.integers(0, N_ROWS // 2, n_p)
    n_rows = rng.integers(10, N_ROWS, n_p)
    n_rows = np.minimum(n_rows, N_ROWS - first_row)
    sector_p = ((truth.phi / (2 * np.pi / 18)).astype(np.int64) % 18) + 18 * (truth.eta < 0)
    labels = np.repeat(np.arange(n_p, dtype=np.int32), n_rows)
    starts = np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    row = (np.repeat(first_row, n_rows) + np.arange(labels.size) - starts).astype(np.int64)
    sector = sector_p[labels]
    t0_bins = col_time[truth.coll[labels]] / 200.0
    time = t0_bins + rng.uniform(0, 500, n_p)[labels] + rng.normal(0, 0.5, labels.size)
    n_noise = int(noise_fraction * labels.size)
    sector = np.concatenate([sector, rng.integers(0, N_SECTORS, n_noise)])
    row = np.concatenate([row, rng.integers(0, N_ROWS, n_noise)])
    time = np.concatenate([time, rng.uniform(0, tf_ns / 200.0, n_noise)])
    labels = np.concatenate([labels, np.full(n_noise, -1, dtype=np.int32)])
    n_pads = ROW_N_PADS[row]
    pad = rng.uniform(0.5, 1.0, row.size) * (n_pads - 1)
    q_max = rng.gamma(3.0, 20.0, row.size)
    order = np.lexsort((time, row, sector))
    records = pack_clusters(
        time=np.clip(time, 0, None)[order],
        pad=pad[order],
        sigma_time=rng.uniform(0.3, 1.5, row.size),
        sigma_pad=rng.uniform(0.3, 1.2, row.size),
        q_max=q_max[order],
        q_tot=(q_max * rng.uniform(2.0, 6.0, row.size))[order],
        flags=rng.choice(np.array([0, 0, 0, 1, 2, 4, 8]), row.size),
    )
    clusters = TPCClusters(
        records=records,
        sector=sector[order].astype(np.uint8),
        row=row[order].astype(np.uint8),
        mc_label=labels[order],
    )
    return clusters, np.bincount(labels[labels >= 0], minlength=n_p).astype(np.int16)


def _mc_particles(truth: _Truth, collisions: Collisions, n_cl: np.ndarray) -> MCParticles:
    """The MC particle table: momenta (GeV/c) from pT, phi, eta; vertices (cm) of their
    collisions; electrons negative for positive PDG codes, other species positive."""
    pdg, pt, phi, eta = truth.pdg, truth.pt, truth.phi, truth.eta
    return MCParticles(
        pdg=pdg,
        charge=np.sign(pdg).astype(np.int8) * np.where(np.abs(pdg) == 11, -1, 1).astype(np.int8),
        collision=truth.coll,
        px_gev=(pt * np.cos(phi)).astype(np.float32),
        py_gev=(pt * np.sin(phi)).astype(np.float32),
        pz_gev=(pt * np.sinh(eta)).astype(np.float32),
        vx_cm=collisions.vx_cm[truth.coll],
        vy_cm=collisions.vy_cm[truth.coll],
        vz_cm=collisions.vz_cm[truth.coll],
        reached=truth.reached,
        n_tpc_clusters=n_cl,
    )


def _tof_hits(rng: np.random.Generator, truth: _Truth, col_time: np.ndarray) -> TOFHits:
    """One hit at r = 380 cm per particle that reached the TOF, straight-line length (cm) and
    time (ps) at the speed of light with 60 ps resolution."""
    tof_p = np.flatnonzero(truth.reached & REACHED_TOF).astype(np.int32)
    r_tof = 380.0
    phi, eta = truth.phi[tof_p], truth.eta[tof_p]
    length = (r_tof * np.cosh(eta)).astype(np.float32)
    return TOFHits(
        x_cm=(r_tof * np.cos(phi)).astype(np.float32),
        y_cm=(r_tof * np.sin(phi)).astype(np.float32),
        z_cm=(r_tof * np.sinh(eta)).astype(np.float32),
        time_ps=col_time[truth.coll[tof_p]] * 1e3
        + length / 0.0299792458
        + rng.normal(0, 60, tof_p.size),
        label=tof_p,
        mc_length_cm=length,
    )


def _trd_tracklets(rng: np.random.Generator, truth: _Truth) -> TRDTracklets:
    """Six tracklets (layers 0-5 at r = 290 + 15 * layer cm) per particle that reached the TRD,
    with Gamma-distributed charges (MIP units)."""
    trd_p = np.flatnonzero(truth.reached & REACHED_TRD).astype(np.int32)
    trd_label = np.repeat(trd_p, 6)
    trd_layer = np.tile(np.arange(6, dtype=np.uint8), trd_p.size)
    r_trd = (290.0 + 15.0 * trd_layer).astype(np.float32)
    phi, eta = truth.phi[trd_label], truth.eta[trd_label]
    return TRDTracklets(
        layer=trd_layer,
        x_cm=(r_trd * np.cos(phi)).astype(np.float32),
        y_cm=(r_trd * np.sin(phi)).astype(np.float32),
        z_cm=(r_trd * np.sinh(eta)).astype(np.float32),
        q=rng.gamma(4.0, 0.25, trd_label.size).astype(np.float32),
        label=trd_label,
    )


def empty_timeframe(tf_id: int = 0, system: str = "pp") -> Timeframe:
    """A valid timeframe with no clusters, collisions, particles or hits."""
    tf = synthetic_timeframe(0, tf_id=tf_id, n_collisions=0, system=system)
    assert len(tf.clusters) == 0
    return tf


def assert_timeframes_equal(a: Timeframe, b: Timeframe, *, check_dtype: bool = True) -> None:
    """Raise ``AssertionError`` naming the first field where ``a`` and ``b`` differ."""
    if a.meta != b.meta:
        raise AssertionError(f"meta differs: {a.meta} != {b.meta}")
    for part in ("clusters", "collisions", "particles", "tof", "trd"):
        ca, cb = getattr(a, part).columns(), getattr(b, part).columns()
        for name in ca:
            x, y = np.asarray(ca[name]), np.asarray(cb[name])
            if check_dtype and x.dtype != y.dtype:
                raise AssertionError(f"{part}.{name}: dtype {x.dtype} != {y.dtype}")
            if x.shape != y.shape or not np.array_equal(x, y):
                raise AssertionError(f"{part}.{name} differs: {x[:5]}... != {y[:5]}...")
