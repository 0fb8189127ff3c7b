"""Simulate whole timeframes: generator -> transport -> cluster merging and noise -> Timeframe.

Layer: simulation. :func:`simulate_timeframe` is deterministic in ``(cfg.seed, tf_id)``, so
timeframes can be made in any order or in parallel and still be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numba import njit

from alice_dyn.event.timeframe import (
    IS_LOOPER,
    Collisions,
    MCParticles,
    Timeframe,
    TimeframeMeta,
    TOFHits,
    TPCClusters,
    TRDTracklets,
)
from alice_dyn.physics.particles import B_TO_PT_GEV_PER_T_CM, MASSES_GEV
from alice_dyn.sim.config import SimConfig
from alice_dyn.sim.generator import GeneratedCollisions, generate_collisions, gun_collision
from alice_dyn.sim.transport import CTAU_CM, kernel_params, transport_particles
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc.cluster_native import FLAG_SPLIT_PAD, FLAG_SPLIT_TIME, pack_clusters
from alice_dyn.tpc.geometry import DEFAULT_GAS, TPCGasParam

FIRST_ORBIT_OFFSET = 256  # orbit of the first timeframe of a simulated run


@njit(cache=True)
def sector_row_time_order(sector: np.ndarray, row: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Permutation ordering clusters by (sector, row), then time: a counting sort over the
    36 x 152 pad rows followed by a sort of each row's times. ``(n,)`` -> ``(n,)`` int64."""
    n = sector.shape[0]
    n_bins = geo.N_SECTORS * geo.N_ROWS
    start = np.zeros(n_bins + 1, dtype=np.int64)
    for i in range(n):
        start[sector[i] * geo.N_ROWS + row[i] + 1] += 1
    for b in range(n_bins):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        b = sector[i] * geo.N_ROWS + row[i]
        order[fill[b]] = i
        fill[b] += 1
    for b in range(n_bins):
        lo, hi = start[b], start[b + 1]
        if hi - lo > 1:
            idx = order[lo:hi].copy()
            order[lo:hi] = idx[np.argsort(time[idx])]
    return order


@njit(cache=True)
def merge_close_clusters(sector, row, pad, time, spad, stime, qmax, qtot, flags, label):
    """Merge clusters the cluster finder could not resolve; flag resolved close neighbours.

    Inputs ``(n,)`` sorted by (sector, row, time). Two clusters of one row closer than one pad
    and one time bin become one (charge-weighted centroid, summed qTot, label of the larger);
    neighbours within 2.5 pads and 2.5 time bins stay separate but get the SplitPad/SplitTime
    flag, as after peak splitting in O2's cluster finder. Returns the keep mask; the arrays
    are updated in place.
    """
    n = sector.shape[0]
    keep = np.ones(n, dtype=np.bool_)
    for i in range(n):
        if not keep[i]:
            continue
        j = i + 1
        while j < n and sector[j] == sector[i] and row[j] == row[i] and time[j] - time[i] < 2.5:
            if keep[j]:
                dp = abs(pad[j] - pad[i])
                dt = abs(time[j] - time[i])
                if dp < 1.0 and dt < 1.0:
                    wi, wj = qtot[i], qtot[j]
                    wsum = wi + wj
                    pad[i] = (wi * pad[i] + wj * pad[j]) / wsum
                    time[i] = (wi * time[i] + wj * time[j]) / wsum
                    spad[i] = np.sqrt(max(spad[i], spad[j]) ** 2 + 0.25 * dp * dp)
                    stime[i] = np.sqrt(max(stime[i], stime[j]) ** 2 + 0.25 * dt * dt)
                    qmax[i] = max(qmax[i], qmax[j]) + 0.5 * min(qmax[i], qmax[j])
                    qtot[i] = wsum
                    if wj > wi:
                        label[i] = label[j]
                    flags[i] |= flags[j]
                    keep[j] = False
                elif dp < 2.5:
                    f = FLAG_SPLIT_PAD if dp >= dt else FLAG_SPLIT_TIME
                    flags[i] |= f
                    flags[j] |= f
            j += 1
    return keep


def _fill_noise_clusters(
    cl_f: np.ndarray,
    cl_i: np.ndarray,
    cl_label: np.ndarray,
    start: int,
    n: int,
    t_lo: float,
    t_hi: float,
    rng: np.random.Generator,
) -> None:
    """Write ``n`` uncorrelated noise clusters at column ``start`` of the cluster buffers:
    random position in ``[t_lo, t_hi)`` time bins, small charge, narrow, label -1."""
    sl = slice(start, start + n)
    row = rng.integers(0, geo.N_ROWS, n)
    qmax = 3.0 + rng.exponential(4.0, n)
    cl_i[0, sl] = rng.integers(0, geo.N_SECTORS, n)
    cl_i[1, sl] = row
    cl_i[2, sl] = 0x8  # Single
    cl_f[0, sl] = rng.random(n) * geo.ROW_N_PADS[row]
    cl_f[1, sl] = rng.uniform(t_lo, t_hi, n)
    cl_f[2, sl] = rng.uniform(0.1, 0.5, n)
    cl_f[3, sl] = rng.uniform(0.2, 0.6, n)
    cl_f[4, sl] = qmax
    cl_f[5, sl] = qmax * rng.uniform(1.0, 2.5, n)
    cl_label[sl] = -1


def simulate_timeframe(cfg: SimConfig, tf_id: int, gas: TPCGasParam = DEFAULT_GAS) -> Timeframe:
    """Simulate timeframe ``tf_id`` of the run described by ``cfg``."""
    cfg.validate()
    rng = np.random.default_rng([cfg.seed, tf_id])
    return detector_response(cfg, generate_collisions(cfg, rng), rng, tf_id, gas)


def simulate_particle_gun(
    cfg: SimConfig,
    species: np.ndarray,
    p_gev: np.ndarray,
    charge: np.ndarray,
    *,
    vertex_cm: tuple[float, float, float] = (0.0, 0.0, 0.0),
    time_ns: float = 1000.0,
    tf_id: int = 0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> Timeframe:
    """One collision at ``vertex_cm`` and ``time_ns`` made of the given particles only.

    ``species`` ``(n,)`` indices into :data:`alice_dyn.physics.particles.SPECIES`, ``p_gev``
    ``(n, 3)`` momenta, ``charge`` ``(n,)`` +-1. For physics checks and single-particle
    training samples; the detector response is the same as in :func:`simulate_timeframe`.
    """
    rng = np.random.default_rng([cfg.seed, tf_id])
    gen = gun_collision(species, p_gev, charge, vertex_cm, time_ns, cfg, rng)
    return detector_response(cfg, gen, rng, tf_id, gas)


def detector_response(
    cfg: SimConfig,
    gen: GeneratedCollisions,
    rng: np.random.Generator,
    tf_id: int,
    gas: TPCGasParam = DEFAULT_GAS,
) -> Timeframe:
    """Transport the generated particles through the detector and assemble the Timeframe."""
    n = len(gen.pdg)
    vtx = np.ascontiguousarray(gen.vertex_cm[gen.collision])
    hits = _transport(cfg, gen, vtx, rng, gas)
    clusters = _tpc_clusters(cfg, hits, rng)
    # recount clusters per particle after merging
    labels = clusters.mc_label[clusters.mc_label >= 0]
    n_tpc = np.bincount(labels, minlength=n).astype(np.int16)
    pt = np.hypot(gen.p_gev[:, 0], gen.p_gev[:, 1])
    radius = pt / (B_TO_PT_GEV_PER_T_CM * abs(cfg.bfield_t))
    looper = (2.0 * radius < geo.TPC_OUTER_RADIUS_CM) & (n_tpc > 0)
    reached = hits.reached | np.where(looper, IS_LOOPER, 0).astype(np.uint8)
    particles = MCParticles(
        pdg=gen.pdg.astype(np.int32),
        charge=gen.charge.astype(np.int8),
        collision=gen.collision.astype(np.int32),
        px_gev=gen.p_gev[:, 0].astype(np.float32),
        py_gev=gen.p_gev[:, 1].astype(np.float32),
        pz_gev=gen.p_gev[:, 2].astype(np.float32),
        vx_cm=vtx[:, 0].astype(np.float32),
        vy_cm=vtx[:, 1].astype(np.float32),
        vz_cm=vtx[:, 2].astype(np.float32),
        reached=reached.astype(np.uint8),
        n_tpc_clusters=n_tpc,
    )
    collisions = Collisions(
        time_ns=gen.time_ns.astype(np.float64),
        vx_cm=gen.vertex_cm[:, 0].astype(np.float32),
        vy_cm=gen.vertex_cm[:, 1].astype(np.float32),
        vz_cm=gen.vertex_cm[:, 2].astype(np.float32),
        multiplicity=gen.multiplicity,
        t0_meas_ps=gen.t0_meas_ps.astype(np.float64),
        t0_resolution_ps=gen.t0_resolution_ps,
    )
    meta = TimeframeMeta(
        tf_id=int(tf_id),
        first_orbit=FIRST_ORBIT_OFFSET + int(tf_id) * cfg.n_orbits_per_tf,
        run_number=cfg.run_number,
        run_period=cfg.run_period,
        bfield_t=cfg.bfield_t,
        system=cfg.system,
    )
    tof, trd = _tof_hits(hits.tof), _trd_tracklets(hits.trd, hits.trd_n)
    tf = Timeframe(meta, clusters, collisions, particles, tof, trd)
    tf.check()
    return tf


@dataclass
class _RawHits:
    """What the transport kernel filled: ``n_cl`` TPC clusters (``cl_f`` (6, cap): pad, time,
    sigma pad, sigma time, qMax, qTot; ``cl_i`` (3, cap): sector, row, flags; ``cl_label``),
    per particle ``reached`` bits, TOF ``(n, 6)`` and TRD ``(n, 6, 5)`` hits with counts."""

    cl_f: np.ndarray
    cl_i: np.ndarray
    cl_label: np.ndarray
    n_cl: int
    reached: np.ndarray
    tof: np.ndarray
    trd: np.ndarray
    trd_n: np.ndarray


def _transport(
    cfg: SimConfig, gen: GeneratedCollisions, vtx: np.ndarray, rng: np.random.Generator,
    gas: TPCGasParam,
) -> _RawHits:  # fmt: skip
    """Run the transport kernel over every particle, growing the cluster buffers when full."""
    n = len(gen.pdg)
    mass = MASSES_GEV[gen.species]
    seeds = rng.integers(0, 2**31 - 1, n).astype(np.uint32)
    prm = kernel_params(cfg, gas)
    t_coll = gen.time_ns[gen.collision]
    charge = gen.charge.astype(np.float64)
    ctau = CTAU_CM[gen.species]

    max_per = int(geo.N_ROWS * 2 * (cfg.max_turns + 1)) + 8
    cap = max(4 * max_per, 160 * n)
    cl_f = np.empty((6, cap))
    cl_i = np.empty((3, cap), dtype=np.int32)
    cl_label = np.empty(cap, dtype=np.int32)
    reached = np.zeros(n, dtype=np.uint8)
    n_tpc = np.zeros(n, dtype=np.int16)
    tof_f = np.zeros((n, 6))
    trd_f = np.zeros((n, 6, 5))
    trd_n = np.zeros(n, dtype=np.int32)
    first, n_cl = 0, 0
    while True:
        first, n_cl = transport_particles(
            first, gen.p_gev, vtx, charge, mass, ctau, t_coll, seeds, prm,
            cl_f, cl_i, cl_label, n_cl, reached, n_tpc, tof_f, trd_f, trd_n,
        )  # fmt: skip
        if first >= n:
            break
        cl_f = np.concatenate([cl_f, np.empty_like(cl_f)], axis=1)  # grow, resume where it stopped
        cl_i = np.concatenate([cl_i, np.empty_like(cl_i)], axis=1)
        cl_label = np.concatenate([cl_label, np.empty_like(cl_label)])
    return _RawHits(cl_f, cl_i, cl_label, n_cl, reached, tof_f, trd_f, trd_n)


def _tpc_clusters(cfg: SimConfig, hits: _RawHits, rng: np.random.Generator) -> TPCClusters:
    """The transported clusters plus noise clusters, sorted by (sector, row, time), close ones
    merged (``cfg.merge_clusters``) and packed as ClusterNative records."""
    cl_f, cl_i, cl_label, n_cl = hits.cl_f, hits.cl_i, hits.cl_label, hits.n_cl
    cap = cl_f.shape[1]
    n_noise = int(rng.poisson(cfg.noise_fraction * n_cl)) if n_cl else 0
    if n_cl + n_noise > cap:
        cl_f = np.concatenate([cl_f, np.empty((6, n_noise))], axis=1)
        cl_i = np.concatenate([cl_i, np.empty((3, n_noise), dtype=np.int32)], axis=1)
        cl_label = np.concatenate([cl_label, np.empty(n_noise, dtype=np.int32)])
    if n_noise:
        t_lo, t_hi = cl_f[1, :n_cl].min(), cl_f[1, :n_cl].max()
        _fill_noise_clusters(cl_f, cl_i, cl_label, n_cl, n_noise, t_lo, t_hi, rng)
    n_all = n_cl + n_noise
    order = sector_row_time_order(cl_i[0, :n_all], cl_i[1, :n_all], cl_f[1, :n_all])
    cl_f = cl_f[:, order]
    cl_i = cl_i[:, order]
    cl = dict(
        sector=cl_i[0], row=cl_i[1], pad=cl_f[0], time=cl_f[1], spad=cl_f[2], stime=cl_f[3],
        qmax=cl_f[4], qtot=cl_f[5], flags=cl_i[2].astype(np.uint8), label=cl_label[order],
    )  # fmt: skip
    if cfg.merge_clusters and len(order):
        keep = merge_close_clusters(
            cl["sector"], cl["row"], cl["pad"], cl["time"], cl["spad"], cl["stime"],
            cl["qmax"], cl["qtot"], cl["flags"], cl["label"],
        )  # fmt: skip
        cl = {k: v[keep] for k, v in cl.items()}
    records = pack_clusters(
        cl["time"], cl["pad"], cl["stime"], cl["spad"], cl["qmax"], cl["qtot"], cl["flags"]
    )
    return TPCClusters(
        records=records,
        sector=cl["sector"].astype(np.uint8),
        row=cl["row"].astype(np.uint8),
        mc_label=cl["label"].astype(np.int32),
    )


def _tof_hits(tof_f: np.ndarray) -> TOFHits:
    """TOF hits of the particles that reached TOF (``tof_f[:, 0] > 0``), labelled by particle."""
    has_tof = np.flatnonzero(tof_f[:, 0] > 0)
    return TOFHits(
        x_cm=tof_f[has_tof, 1].astype(np.float32),
        y_cm=tof_f[has_tof, 2].astype(np.float32),
        z_cm=tof_f[has_tof, 3].astype(np.float32),
        time_ps=tof_f[has_tof, 4].astype(np.float64),
        label=has_tof.astype(np.int32),
        mc_length_cm=tof_f[has_tof, 5].astype(np.float32),
    )


def _trd_tracklets(trd_f: np.ndarray, trd_n: np.ndarray) -> TRDTracklets:
    """TRD tracklets, ``trd_n[i]`` per particle ``i`` (rows x, y, z, q, layer)."""
    n = len(trd_n)
    trd_mask = np.arange(6)[None, :] < trd_n[:, None]
    trd_lab = np.broadcast_to(np.arange(n)[:, None], (n, 6))[trd_mask]
    trd_rows = trd_f[trd_mask]
    return TRDTracklets(
        layer=trd_rows[:, 4].astype(np.uint8),
        x_cm=trd_rows[:, 0].astype(np.float32),
        y_cm=trd_rows[:, 1].astype(np.float32),
        z_cm=trd_rows[:, 2].astype(np.float32),
        q=trd_rows[:, 3].astype(np.float32),
        label=trd_lab.astype(np.int32),
    )


def simulate(cfg: SimConfig, n_timeframes: int, first_tf: int = 0) -> Iterator[Timeframe]:
    """Yield ``n_timeframes`` simulated timeframes, ids ``first_tf, first_tf + 1, ...``."""
    for tf_id in range(first_tf, first_tf + n_timeframes):
        yield simulate_timeframe(cfg, tf_id)


__all__ = [
    "detector_response",
    "merge_close_clusters",
    "simulate",
    "simulate_particle_gun",
    "simulate_timeframe",
]
