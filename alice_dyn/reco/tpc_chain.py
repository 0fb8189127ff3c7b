"""The cluster-transform and dE/dx steps of the classical TPC chain, each written once.

Layer: reconstruction. The ``tpc-cluster-transform`` and ``tpc-dedx`` stages are thin wrappers
around these functions, and every other user (the track network's dataset, the dE/dx
calibration, the benchmark) calls the same ones:

* :func:`global_clusters` (records of known sector/row) and :func:`global_clusters_o2_buffer`
  (O2's buffer): ClusterNative -> the ``TPC/CLUSTERGLOBAL`` columns
  (:data:`CLUSTER_GLOBAL_COLUMNS`) with the transform kernel, z for a collision at t0 = 0;
* :func:`cluster_dedx`: the truncated-mean dE/dx of tracks
  (:func:`alice_dyn.reco.dedx.track_dedx`) from such columns.

The tracking step in between is :func:`alice_dyn.reco.tpc_tracker.track_clusters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.kernels import get_backend, transform_clusters, transform_o2_buffer
from alice_dyn.kernels.backends import Backend
from alice_dyn.kernels.transform import TransformedClusters
from alice_dyn.reco.dedx import track_dedx
from alice_dyn.tpc.cluster_native import CLUSTER_COUNT_INDEX_BYTES, CLUSTER_NATIVE_DTYPE
from alice_dyn.tpc.geometry import TPCGasParam

#: ``TPC/CLUSTERGLOBAL`` column -> dtype: x, y, z (cm, global; z for t0 = 0), sector, row,
#: pad, time (time bins), q_tot, q_max
CLUSTER_GLOBAL_COLUMNS: dict[str, type] = {
    "x": np.float32,
    "y": np.float32,
    "z": np.float32,
    "sector": np.uint8,
    "row": np.uint8,
    "pad": np.float32,
    "time": np.float32,
    "q_tot": np.float32,
    "q_max": np.float32,
}
#: ``TPC/CLUSTERGLOBAL`` column -> field of the kernel's ``TransformedClusters``
KERNEL_FIELDS = {
    "x": "gx", "y": "gy", "z": "z", "pad": "pad", "time": "time", "q_tot": "q_tot",
    "q_max": "q_max",
}  # fmt: skip

Columns = dict[str, np.ndarray]


def buffer_cluster_count(buffer: np.ndarray | bytes) -> int:
    """Number of clusters in O2's ClusterNative buffer (the length of its global columns)."""
    return (len(buffer) - CLUSTER_COUNT_INDEX_BYTES) // CLUSTER_NATIVE_DTYPE.itemsize


def _columns(n: int, out: Mapping[str, np.ndarray] | None) -> Columns:
    """``out`` (host ``(n,)`` columns, e.g. framework-owned) or newly allocated columns."""
    if out is not None:
        return dict(out)
    return {k: np.empty(n, dtype=v) for k, v in CLUSTER_GLOBAL_COLUMNS.items()}


def _kernel_out(be: Backend, cols: Columns) -> dict[str, np.ndarray] | None:
    """On the CPU the kernel writes straight into the columns; a GPU result is copied."""
    return None if be.is_gpu else {field: cols[name] for name, field in KERNEL_FIELDS.items()}


def _fill(be: Backend, res: TransformedClusters, sector: Any, row: Any, cols: Columns) -> Columns:
    if be.is_gpu:
        for name, field in KERNEL_FIELDS.items():
            cols[name][:] = be.to_numpy(getattr(res, field))
        sector, row = be.to_numpy(sector), be.to_numpy(row)
    cols["sector"][:] = sector
    cols["row"][:] = row
    return cols


def global_clusters(
    records: np.ndarray,
    sector: np.ndarray,
    row: np.ndarray,
    gas: TPCGasParam,
    *,
    backend: str | Backend = "cpu",
    out: Mapping[str, np.ndarray] | None = None,
) -> Columns:
    """``TPC/CLUSTERGLOBAL`` columns (:data:`CLUSTER_GLOBAL_COLUMNS`, each ``(n,)``) of ``(n,)``
    ClusterNative records of known ``sector``/``row``, at t0 = 0 with the drift parameters
    ``gas``, on the kernel ``backend``; written into ``out`` where given."""
    be = get_backend(backend)
    cols = _columns(len(records), out)
    res = transform_clusters(records, sector, row, 0.0, gas, backend=be, out=_kernel_out(be, cols))
    return _fill(be, res, sector, row, cols)


def global_clusters_o2_buffer(
    buffer: np.ndarray,
    gas: TPCGasParam,
    *,
    backend: str | Backend = "cpu",
    out: Mapping[str, np.ndarray] | None = None,
) -> Columns:
    """:func:`global_clusters` of O2's ClusterNative buffer (``TPC/CLUSTERNATIVE``, uint8,
    :func:`buffer_cluster_count` clusters; copied to the device for a GPU backend), sector and
    row from its count index."""
    be = get_backend(backend)
    cols = _columns(buffer_cluster_count(buffer), out)
    src = be.asarray(buffer) if be.is_gpu else buffer
    res, sector, row = transform_o2_buffer(src, 0.0, gas, backend=be, out=_kernel_out(be, cols))
    return _fill(be, res, sector, row, cols)


def cluster_dedx(
    tracks: TPCTracks,
    refs: np.ndarray,
    clusters: Mapping[str, np.ndarray],
    bfield_t: float,
    mip_scale: float,
    tgl_coefficient: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(qTot, qMax)`` dE/dx per track ``(n_tracks,)`` float64 (O2 units with the calibrated
    ``mip_scale``; :func:`~alice_dyn.reco.dedx.track_dedx`) from cluster columns as
    ``TPC/CLUSTERGLOBAL`` (x, y in cm, global; sector, row, q_tot, q_max); x and y are used
    in float64, ``bfield_t`` in T."""
    return track_dedx(
        tracks, refs, clusters["q_tot"], clusters["q_max"],
        np.asarray(clusters["x"], np.float64), np.asarray(clusters["y"], np.float64),
        clusters["sector"], clusters["row"], bfield_t, mip_scale, tgl_coefficient,
    )  # fmt: skip
