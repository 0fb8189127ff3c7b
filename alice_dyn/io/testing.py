"""Synthetic but valid timeframes and a field-by-field comparison, for I/O tests and benchmarks.

Layer: I/O (test support). The values are random within the schema's ranges — sectors 0-35,
rows 0-151, pads within the row, clusters in (sector, row) order, labels pointing at existing
particles — and shaped loosely like real data (tracks leave runs of clusters across rows, times
cluster around the collisions) so that compression ratios are meaningful. This is *not* the
physics simulation (:mod:`alice_dyn.sim`).
"""

from __future__ import annotations

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
    """A valid random timeframe; about ``60 * n_collisions * particles_per_collision`` clusters."""
    rng = np.random.default_rng(rng)
    tf_ns = ORBITS_PER_TF * LHC_ORBIT_NS
    n_col = n_collisions
    col_time = np.sort(rng.uniform(0, tf_ns, n_col))
    mult = np.full(n_col, particles_per_collision, dtype=np.int32)
    collisions = Collisions(
        time_ns=col_time,
        vx_cm=rng.normal(0, 0.01, n_col).astype(np.float32),
        vy_cm=rng.normal(0, 0.01, n_col).astype(np.float32),
        vz_cm=rng.normal(0, 5.0, n_col).astype(np.float32),
        multiplicity=mult,
        t0_meas_ps=col_time * 1e3 + rng.normal(0, 20, n_col),
        t0_resolution_ps=np.full(n_col, 20.0, dtype=np.float32),
    )
    n_p = int(mult.sum())
    coll = np.repeat(np.arange(n_col, dtype=np.int32), mult)
    pdg = rng.choice(_PDG, n_p)
    pt = rng.exponential(0.6, n_p) + 0.1
    phi = rng.uniform(0, 2 * np.pi, n_p)
    eta = rng.uniform(-0.9, 0.9, n_p)
    reached = np.full(n_p, REACHED_TPC, dtype=np.uint8)
    reached[pt > 0.5] |= REACHED_TRD
    reached[(pt > 0.6) & (rng.random(n_p) < 0.6)] |= REACHED_TOF
    # TPC clusters: each particle leaves a run of consecutive rows in one sector
    first_row = rng.integers(0, N_ROWS // 2, n_p)
    n_rows = rng.integers(10, N_ROWS, n_p)
    n_rows = np.minimum(n_rows, N_ROWS - first_row)
    sector_p = ((phi / (2 * np.pi / 18)).astype(np.int64) % 18) + 18 * (eta < 0)
    labels = np.repeat(np.arange(n_p, dtype=np.int32), n_rows)
    starts = np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    row = (np.repeat(first_row, n_rows) + np.arange(labels.size) - starts).astype(np.int64)
    sector = sector_p[labels]
    t0_bins = col_time[coll[labels]] / 200.0
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
    n_cl = np.bincount(labels[labels >= 0], minlength=n_p).astype(np.int16)
    vtx = lambda a: a[coll]  # noqa: E731
    particles = MCParticles(
        pdg=pdg,
        charge=np.sign(pdg).astype(np.int8) * np.where(np.abs(pdg) == 11, -1, 1).astype(np.int8),
        collision=coll,
        px_gev=(pt * np.cos(phi)).astype(np.float32),
        py_gev=(pt * np.sin(phi)).astype(np.float32),
        pz_gev=(pt * np.sinh(eta)).astype(np.float32),
        vx_cm=vtx(collisions.vx_cm),
        vy_cm=vtx(collisions.vy_cm),
        vz_cm=vtx(collisions.vz_cm),
        reached=reached,
        n_tpc_clusters=n_cl,
    )
    tof_p = np.flatnonzero(reached & REACHED_TOF).astype(np.int32)
    r_tof = 380.0
    length = (r_tof * np.cosh(eta[tof_p])).astype(np.float32)
    tof = TOFHits(
        x_cm=(r_tof * np.cos(phi[tof_p])).astype(np.float32),
        y_cm=(r_tof * np.sin(phi[tof_p])).astype(np.float32),
        z_cm=(r_tof * np.sinh(eta[tof_p])).astype(np.float32),
        time_ps=col_time[coll[tof_p]] * 1e3 + length / 0.0299792458 + rng.normal(0, 60, tof_p.size),
        label=tof_p,
        mc_length_cm=length,
    )
    trd_p = np.flatnonzero(reached & REACHED_TRD).astype(np.int32)
    trd_label = np.repeat(trd_p, 6)
    trd_layer = np.tile(np.arange(6, dtype=np.uint8), trd_p.size)
    r_trd = (290.0 + 15.0 * trd_layer).astype(np.float32)
    trd = TRDTracklets(
        layer=trd_layer,
        x_cm=(r_trd * np.cos(phi[trd_label])).astype(np.float32),
        y_cm=(r_trd * np.sin(phi[trd_label])).astype(np.float32),
        z_cm=(r_trd * np.sinh(eta[trd_label])).astype(np.float32),
        q=rng.gamma(4.0, 0.25, trd_label.size).astype(np.float32),
        label=trd_label,
    )
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
