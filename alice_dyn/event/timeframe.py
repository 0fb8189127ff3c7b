"""Columnar containers for one timeframe (TF): every field is a NumPy array of one length.

Layer: data model, shared by the simulation (which fills it), the ROOT I/O (which writes and
reads it) and the reconstruction. Nothing here computes physics.

Indices: ``TPCClusters.mc_label`` and the ``label`` of TOF/TRD hits are row indices into the
timeframe's :class:`MCParticles` (``-1`` = noise, no particle). ``MCParticles.collision`` is a
row index into :class:`Collisions` (always valid: every particle comes from a collision).
Containers compare by identity (``eq=False``): use ``alice_dyn.io.testing`` to compare values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from alice_dyn.tpc.cluster_native import CLUSTER_NATIVE_DTYPE

# Bits of MCParticles.reached
REACHED_TPC = 0x1  # left at least one TPC cluster
REACHED_TRD = 0x2  # crossed at least one TRD layer
REACHED_TOF = 0x4  # produced a TOF hit
IS_LOOPER = 0x8  # curled back inside the TPC (2R < outer TPC radius)


class _Columns:
    """Mixin: length, equality of columns, and a check that all columns have one length."""

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))  # type: ignore[arg-type]

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def check_lengths(self) -> None:
        lengths = {k: len(v) for k, v in self.columns().items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{type(self).__name__}: columns differ in length: {lengths}")

    def take(self, index: np.ndarray):
        """A new container with the rows selected by ``index`` (mask or integer indices)."""
        return type(self)(**{k: v[index] for k, v in self.columns().items()})


@dataclass(eq=False)
class TPCClusters(_Columns):
    """TPC clusters ``(n_clusters,)`` in (sector, row) order, as O2 stores them."""

    records: np.ndarray  # CLUSTER_NATIVE_DTYPE
    sector: np.ndarray  # uint8, 0-35
    row: np.ndarray  # uint8, 0-151
    mc_label: np.ndarray  # int32, MC particle index or -1 for noise

    @classmethod
    def empty(cls) -> TPCClusters:
        return cls(
            np.empty(0, CLUSTER_NATIVE_DTYPE),
            np.empty(0, np.uint8),
            np.empty(0, np.uint8),
            np.empty(0, np.int32),
        )


@dataclass(eq=False)
class Collisions(_Columns):
    """Collisions in the timeframe ``(n_collisions,)``."""

    time_ns: np.ndarray  # float64, collision time since the start of the timeframe
    vx_cm: np.ndarray  # float32, primary vertex
    vy_cm: np.ndarray
    vz_cm: np.ndarray
    multiplicity: np.ndarray  # int32, charged primaries generated
    t0_meas_ps: np.ndarray  # float64, measured event time (FT0-like) since the TF start
    t0_resolution_ps: np.ndarray  # float32, resolution of that measurement


@dataclass(eq=False)
class MCParticles(_Columns):
    """MC truth of the generated charged particles ``(n_particles,)``."""

    pdg: np.ndarray  # int32
    charge: np.ndarray  # int8, units of e
    collision: np.ndarray  # int32, index into Collisions
    px_gev: np.ndarray  # float32, momentum at the vertex
    py_gev: np.ndarray
    pz_gev: np.ndarray
    vx_cm: np.ndarray  # float32, production vertex
    vy_cm: np.ndarray
    vz_cm: np.ndarray
    reached: np.ndarray  # uint8, REACHED_* bits
    n_tpc_clusters: np.ndarray  # int16, clusters left in the TPC


@dataclass(eq=False)
class TOFHits(_Columns):
    """TOF hits ``(n_hits,)``; at most one per particle."""

    x_cm: np.ndarray  # float32, global position of the pad hit
    y_cm: np.ndarray
    z_cm: np.ndarray
    time_ps: np.ndarray  # float64, measured hit time since the start of the timeframe
    label: np.ndarray  # int32, MC particle index, -1 = noise hit
    mc_length_cm: np.ndarray  # float32, true path length from the vertex (MC only)


@dataclass(eq=False)
class TRDTracklets(_Columns):
    """TRD tracklets ``(n_tracklets,)``, one per particle and crossed layer (0-5)."""

    layer: np.ndarray  # uint8
    x_cm: np.ndarray  # float32, global position
    y_cm: np.ndarray
    z_cm: np.ndarray
    q: np.ndarray  # float32, summed charge of the tracklet (arbitrary units, MIP ~ 1)
    label: np.ndarray  # int32, MC particle index, -1 = noise


@dataclass
class TimeframeMeta:
    """Per-timeframe metadata."""

    tf_id: int
    first_orbit: int
    run_number: int
    run_period: str
    bfield_t: float
    system: str  # "pp" or "pbpb"


@dataclass(eq=False)
class Timeframe:
    """Everything known about one timeframe."""

    meta: TimeframeMeta
    clusters: TPCClusters
    collisions: Collisions
    particles: MCParticles
    tof: TOFHits
    trd: TRDTracklets

    def check(self) -> None:
        """Raise ``ValueError`` if any container's columns differ in length."""
        for part in (self.clusters, self.collisions, self.particles, self.tof, self.trd):
            part.check_lengths()
