"""TPC tracks in O2's parametrisation, with covariance and cluster references.

Layer: data model. Parameters as O2's ``TrackParCov``: at the sector-local ``x`` (cm) of the
frame rotated by ``alpha`` (rad): ``y``, ``z`` (cm), ``snp`` (sine of the local azimuthal
angle), ``tgl`` (dip tangent, pz/pT) and ``q2pt`` (signed 1/pT, c/GeV). ``cov`` holds the 15
elements of the lower triangle in O2's order::

    sigY2, sigZY, sigZ2, sigSnpY, sigSnpZ, sigSnp2, sigTglY, sigTglZ, sigTglSnp, sigTgl2,
    sigQ2PtY, sigQ2PtZ, sigQ2PtSnp, sigQ2PtTgl, sigQ2Pt2

The parameters are given at the innermost cluster (O2's ``tpcInnerParam``). z is measured for
a collision at the start of the timeframe (t0 = 0, see :mod:`alice_dyn.tpc.transform`);
``time0_bins`` is the track's time offset estimate in time bins.
Cluster references (``TrackClusterRefs``) are indices into the timeframe's cluster array,
inner to outer, ``cluster_start[i] : cluster_start[i] + n_clusters[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alice_dyn.event.timeframe import _Columns

N_COV = 15
# bits of TPCTracks.flags
CROSSED_SECTOR = 0x1  # followed across a sector boundary
LOOPER_LEG = 0x2  # a later leg of a looper (merged into the first leg's particle)
REJECTED = 0x4  # flagged as fake by a later stage (kept, not deleted)
HAS_A_SIDE = 0x8  # has clusters on the A side (z > 0)
HAS_C_SIDE = 0x10  # has clusters on the C side (z < 0)


@dataclass(eq=False)
class TPCTracks(_Columns):
    """Tracks of one timeframe, ``(n_tracks,)`` per column (``cov`` is ``(n_tracks, 15)``)."""

    x_cm: np.ndarray  # float32
    alpha_rad: np.ndarray  # float32
    y_cm: np.ndarray  # float32
    z_cm: np.ndarray  # float32
    snp: np.ndarray  # float32
    tgl: np.ndarray  # float32
    q2pt: np.ndarray  # float32, signed 1/pT (c/GeV)
    cov: np.ndarray  # float32 (n, 15)
    time0_bins: np.ndarray  # float32
    chi2: np.ndarray  # float32, sum over clusters
    n_clusters: np.ndarray  # int16
    cluster_start: np.ndarray  # int32, into cluster_refs
    flags: np.ndarray  # uint8

    @classmethod
    def empty(cls) -> TPCTracks:
        f = np.empty(0, np.float32)
        return cls(f, f, f, f, f, f, f, np.empty((0, N_COV), np.float32), f, f,
                   np.empty(0, np.int16), np.empty(0, np.int32), np.empty(0, np.uint8))  # fmt: skip

    def pt_gev(self) -> np.ndarray:
        return 1.0 / np.maximum(np.abs(self.q2pt), 1e-6)

    def p_gev(self) -> np.ndarray:
        return self.pt_gev() * np.sqrt(1.0 + self.tgl.astype(np.float64) ** 2)

    def sign(self) -> np.ndarray:
        return np.sign(self.q2pt).astype(np.int8)

    def side(self) -> np.ndarray:
        """+1 for A-side tracks, -1 for C-side ones (by their clusters; +1 if both)."""
        return np.where(self.flags & HAS_A_SIDE, 1.0, np.where(self.flags & HAS_C_SIDE, -1.0, 1.0))
