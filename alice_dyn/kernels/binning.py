"""Cluster binning: sort clusters by (sector, row, y) and a (y, z) grid per pad row.

Layer: kernels. Two kernels, each with a NumPy reference, a Numba CPU twin and a numba.cuda twin:

* :func:`bin_clusters` ``(sector, row, y) -> (order, bin_start)``: ``order`` (int32,
  ``(n,)``) lists the clusters sorted by (sector, row) and then ``y`` (ties in the order given;
  ``y`` must be finite); the clusters of bin ``b = sector * 152 + row`` are
  ``order[bin_start[b]:bin_start[b + 1]]`` (``bin_start`` int32, ``(36 * 152 + 1,)``).
* :func:`build_grid` buckets the clusters of every (sector, row) into ``n_y x n_z`` cells of
  (local y, z) for neighbour search; :func:`neighbours` (CPU only, reference
  :func:`neighbours_ref`) lists the clusters within ``|dy| <= wy``, ``|dz| <= wz`` of query
  points. Cells span the row's width ``[-w/2, w/2]`` (``geometry.ROW_HALF_WIDTH_CM``) in
  ``n_y`` steps and ``[-z_max, z_max]`` in ``n_z`` steps; points outside land in the edge cells,
  so no cluster is ever lost.

GPU twins: a counting sort — histogram (atomics), scan (``xp.cumsum``), scatter (atomics, so
the order inside a bin is arbitrary), then one thread per bin restores the reference order by
insertion sort on (y, cluster index). The result equals the reference exactly; the per-bin sort
is quadratic, which is fine for the O(100) clusters of a TPC pad row (a segmented radix sort
would be the next step for much fuller bins). The neighbour query has no GPU twin.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from alice_dyn.kernels import _cuda
from alice_dyn.kernels.backends import Backend, get_backend
from alice_dyn.tpc import geometry as geo

cuda: Any = None  # numba.cuda, bound by the first GPU call (see _cuda.bind_cuda)
N_BINS = geo.N_SECTORS * geo.N_ROWS
_ROW_HALF_WIDTH = geo.ROW_HALF_WIDTH_CM.astype(np.float64)
#: default cells per pad row along y and z, and the z half-range (cm) of the grid
GRID_N_Y = 16
GRID_N_Z = 32
GRID_Z_MAX_CM = 250.0


class ClusterGrid(NamedTuple):
    """Clusters bucketed by cell ``((sector * 152 + row) * n_y + iy) * n_z + iz``.

    ``order`` (int32 ``(n,)``) cluster indices by cell, then index; ``cell_start`` (int32
    ``(36 * 152 * n_y * n_z + 1,)``) offsets into ``order``; ``y``, ``z`` (float64 ``(n,)``)
    the cluster coordinates in ``order`` (copied for locality).
    """

    order: Any
    cell_start: Any
    y: Any
    z: Any
    n_y: int
    n_z: int
    z_max: float


def _check_bins(sector: Any, row: Any, n: int) -> None:
    if sector.shape != (n,) or row.shape != (n,):
        raise ValueError(f"sector {sector.shape} and row {row.shape} must be ({n},)")
    if n and (int(sector.max()) >= geo.N_SECTORS or int(row.max()) >= geo.N_ROWS):
        raise ValueError(f"sector must be < {geo.N_SECTORS} and row < {geo.N_ROWS}")
    if n and (int(sector.min()) < 0 or int(row.min()) < 0):
        raise ValueError("sector and row must be >= 0")


# ------------------------------------------------------------------------------------------
# NumPy references
# ------------------------------------------------------------------------------------------


def bin_clusters_ref(sector: Any, row: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`bin_clusters` (a stable lexicographic sort)."""
    key = np.asarray(sector, np.int64) * geo.N_ROWS + np.asarray(row, np.int64)
    _check_bins(np.asarray(sector), np.asarray(row), len(key))
    order = np.lexsort((np.asarray(y), key)).astype(np.int32)
    bin_start = np.zeros(N_BINS + 1, np.int32)
    np.cumsum(np.bincount(key, minlength=N_BINS), out=bin_start[1:])
    return order, bin_start


def _cell_ids_ref(sector, row, y, z, n_y, n_z, z_max):
    r = np.asarray(row, np.int64)
    hw = _ROW_HALF_WIDTH[r]
    fy = (np.asarray(y, np.float64) + hw) / (2.0 * hw) * n_y
    fz = (np.asarray(z, np.float64) + z_max) / (2.0 * z_max) * n_z
    iy = np.clip(np.floor(fy), 0, n_y - 1).astype(np.int64)
    iz = np.clip(np.floor(fz), 0, n_z - 1).astype(np.int64)
    return ((np.asarray(sector, np.int64) * geo.N_ROWS + r) * n_y + iy) * n_z + iz


def build_grid_ref(
    sector: Any,
    row: Any,
    y: Any,
    z: Any,
    n_y: int = GRID_N_Y,
    n_z: int = GRID_N_Z,
    z_max: float = GRID_Z_MAX_CM,
) -> ClusterGrid:
    """NumPy reference of :func:`build_grid`."""
    _check_bins(np.asarray(sector), np.asarray(row), len(np.asarray(y)))
    cell = _cell_ids_ref(sector, row, y, z, n_y, n_z, z_max)
    order = np.argsort(cell, kind="stable").astype(np.int32)
    start = np.zeros(N_BINS * n_y * n_z + 1, np.int32)
    np.cumsum(np.bincount(cell, minlength=N_BINS * n_y * n_z), out=start[1:])
    yy = np.asarray(y, np.float64)[order]
    zz = np.asarray(z, np.float64)[order]
    return ClusterGrid(order, start, yy, zz, int(n_y), int(n_z), float(z_max))


def neighbours_ref(
    sector_cl: Any,
    row_cl: Any,
    y_cl: Any,
    z_cl: Any,
    sector: Any,
    row: Any,
    y: Any,
    z: Any,
    wy: Any,
    wz: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`neighbours`, brute force within each query's (sector, row)."""
    key_cl = np.asarray(sector_cl, np.int64) * geo.N_ROWS + np.asarray(row_cl, np.int64)
    by_key = np.argsort(key_cl, kind="stable")
    bounds = np.searchsorted(key_cl[by_key], np.arange(N_BINS + 1))
    y_cl = np.asarray(y_cl, np.float64)
    z_cl = np.asarray(z_cl, np.float64)
    n_q = len(np.asarray(y))
    key = np.asarray(sector, np.int64) * geo.N_ROWS + np.asarray(row, np.int64)
    y = np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    wy = np.broadcast_to(np.asarray(wy, np.float64), (n_q,))
    wz = np.broadcast_to(np.asarray(wz, np.float64), (n_q,))
    found = []
    for q in range(n_q):
        cand = by_key[bounds[key[q]] : bounds[key[q] + 1]]
        ok = (np.abs(y_cl[cand] - y[q]) <= wy[q]) & (np.abs(z_cl[cand] - z[q]) <= wz[q])
        found.append(np.sort(cand[ok]))
    offsets = np.zeros(n_q + 1, np.int64)
    np.cumsum([len(f) for f in found], out=offsets[1:])
    idx = np.concatenate(found).astype(np.int32) if found else np.empty(0, np.int32)
    return offsets, idx


# ------------------------------------------------------------------------------------------
# Numba CPU twins
# ------------------------------------------------------------------------------------------


@njit(cache=True)
def _counting_sort(key, n_keys):
    """Stable counting sort: ``(order int32, start int32 (n_keys + 1,))``."""
    n = key.shape[0]
    start = np.zeros(n_keys + 1, np.int32)
    for i in range(n):
        start[key[i] + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    fill = start[:-1].copy()
    order = np.empty(n, np.int32)
    for i in range(n):
        k = key[i]
        order[fill[k]] = i
        fill[k] += 1
    return order, start


@njit(parallel=True, cache=True)
def _bin_keys(sector, row, n_rows):
    key = np.empty(sector.shape[0], np.int32)
    for i in prange(sector.shape[0]):
        key[i] = np.int32(sector[i]) * n_rows + np.int32(row[i])
    return key


@njit(parallel=True, cache=True)
def _sort_bins_by_value(order, start, val):
    """Inside every bin, sort ``order`` by ``val`` (stable: ties keep their order)."""
    for b in prange(start.shape[0] - 1):
        lo = start[b]
        hi = start[b + 1]
        m = hi - lo
        if m < 2:
            continue
        if m <= 32:  # insertion sort in place
            for j in range(lo + 1, hi):
                cur = order[j]
                v = val[cur]
                k = j - 1
                while k >= lo and val[order[k]] > v:
                    order[k + 1] = order[k]
                    k -= 1
                order[k + 1] = cur
        else:
            seg = order[lo:hi].copy()
            vals = np.empty(m, val.dtype)
            for j in range(m):
                vals[j] = val[seg[j]]
            p = np.argsort(vals, kind="mergesort")
            for j in range(m):
                order[lo + j] = seg[p[j]]


def bin_clusters_cpu(sector: Any, row: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Numba CPU twin of :func:`bin_clusters_ref`: counting sort, then y inside each bin."""
    sector, row, y = np.asarray(sector), np.asarray(row), np.asarray(y)
    _check_bins(sector, row, len(y))
    order, start = _counting_sort(_bin_keys(sector, row, geo.N_ROWS), N_BINS)
    # float64 keeps the order of float32 values exactly: one compiled specialisation
    _sort_bins_by_value(order, start, np.ascontiguousarray(y, np.float64))
    return order, start


@njit(inline="always")
def _cell_of(s, r, y, z, n_y, n_z, z_max, half_width, n_rows):
    r = np.int64(r)
    hw = half_width[r]
    fy = (np.float64(y) + hw) / (2.0 * hw) * n_y
    fz = (np.float64(z) + z_max) / (2.0 * z_max) * n_z
    # clamp with branches, not min/max: numba's CUDA target mistypes min(a, b) (seen with
    # numba 0.68's built-in numba.cuda when compiling to PTX)
    iy = math.floor(fy)  # y, z finite
    iy = 0 if iy < 0 else (n_y - 1 if iy > n_y - 1 else iy)
    iz = math.floor(fz)
    iz = 0 if iz < 0 else (n_z - 1 if iz > n_z - 1 else iz)
    return np.int32(((np.int64(s) * n_rows + r) * n_y + iy) * n_z + iz)


@njit(parallel=True, cache=True)
def _cell_ids(sector, row, y, z, n_y, n_z, z_max, half_width, n_rows):
    cell = np.empty(y.shape[0], np.int32)
    for i in prange(y.shape[0]):
        cell[i] = _cell_of(sector[i], row[i], y[i], z[i], n_y, n_z, z_max, half_width, n_rows)
    return cell


@njit(parallel=True, cache=True)
def _gather_f64(values, order):
    out = np.empty(order.shape[0], np.float64)
    for i in prange(order.shape[0]):
        out[i] = values[order[i]]
    return out


def build_grid_cpu(
    sector: Any,
    row: Any,
    y: Any,
    z: Any,
    n_y: int = GRID_N_Y,
    n_z: int = GRID_N_Z,
    z_max: float = GRID_Z_MAX_CM,
) -> ClusterGrid:
    """Numba CPU twin of :func:`build_grid_ref` (stable counting sort by cell)."""
    sector, row, y, z = (np.asarray(a) for a in (sector, row, y, z))
    _check_bins(sector, row, len(y))
    cell = _cell_ids(sector, row, y, z, n_y, n_z, float(z_max), _ROW_HALF_WIDTH, geo.N_ROWS)
    order, start = _counting_sort(cell, N_BINS * n_y * n_z)
    return ClusterGrid(
        order, start, _gather_f64(y, order), _gather_f64(z, order), int(n_y), int(n_z), float(z_max)
    )


@njit(parallel=True, cache=True)
def _neighbours(
    order, start, gy, gz, n_y, n_z, z_max, half_width, n_rows, sector, row, y, z, wy, wz, counts,
    out, fill
):  # fmt: skip
    """Two passes: ``fill=False`` counts into ``counts``; ``fill=True`` writes at ``counts``."""
    for q in prange(y.shape[0]):
        r = np.int64(row[q])
        hw = half_width[r]
        base = (np.int64(sector[q]) * n_rows + r) * n_y
        yq = np.float64(y[q])
        zq = np.float64(z[q])
        # same cell arithmetic as _cell_ids: (v + lo) / (2 lo) * n
        y0 = min(max(np.floor((yq - wy[q] + hw) / (2.0 * hw) * n_y), 0.0), n_y - 1.0)
        y1 = min(max(np.floor((yq + wy[q] + hw) / (2.0 * hw) * n_y), 0.0), n_y - 1.0)
        z0 = min(max(np.floor((zq - wz[q] + z_max) / (2.0 * z_max) * n_z), 0.0), n_z - 1.0)
        z1 = min(max(np.floor((zq + wz[q] + z_max) / (2.0 * z_max) * n_z), 0.0), n_z - 1.0)
        pos = counts[q]
        c = 0
        for iy in range(np.int64(y0), np.int64(y1) + 1):
            cell0 = (base + iy) * n_z
            for j in range(start[cell0 + np.int64(z0)], start[cell0 + np.int64(z1) + 1]):
                if abs(gy[j] - yq) <= wy[q] and abs(gz[j] - zq) <= wz[q]:
                    if fill:
                        out[pos + c] = order[j]
                    c += 1
        if fill:
            seg = out[pos : pos + c]
            seg.sort()
        else:
            counts[q] = c


def neighbours(
    grid: ClusterGrid, sector: Any, row: Any, y: Any, z: Any, wy: Any, wz: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of ``grid`` within ``|dy| <= wy`` and ``|dz| <= wz`` of each query (CPU).

    Queries ``(n_q,)``: ``sector``, ``row``, local ``y`` and ``z`` (cm); windows ``wy``, ``wz``
    (cm) scalars or ``(n_q,)``. Returns CSR ``(offsets int64 (n_q + 1,), indices int32)``: the
    neighbours of query ``q`` are the cluster indices ``indices[offsets[q]:offsets[q + 1]]``,
    ascending. Only the query's own (sector, row) is searched.
    """
    sector, row = np.asarray(sector), np.asarray(row)
    y = np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    n_q = len(y)
    _check_bins(sector, row, n_q)
    wy = np.ascontiguousarray(np.broadcast_to(np.asarray(wy, np.float64), (n_q,)))
    wz = np.ascontiguousarray(np.broadcast_to(np.asarray(wz, np.float64), (n_q,)))
    if n_q and (wy.min() < 0 or wz.min() < 0):
        raise ValueError("search windows wy, wz must be >= 0")
    g = grid
    args = (g.order, g.cell_start, g.y, g.z, g.n_y, g.n_z, g.z_max, _ROW_HALF_WIDTH, geo.N_ROWS)
    counts = np.zeros(n_q + 1, np.int64)
    _neighbours(*args, sector, row, y, z, wy, wz, counts, np.empty(0, np.int32), False)
    offsets = np.zeros(n_q + 1, np.int64)
    np.cumsum(counts[:n_q], out=offsets[1:])
    out = np.empty(int(offsets[-1]), np.int32)
    _neighbours(*args, sector, row, y, z, wy, wz, offsets, out, True)
    return offsets, out


# ------------------------------------------------------------------------------------------
# numba.cuda twins: counting sort (histogram + scan + scatter) and per-bin ordering
# ------------------------------------------------------------------------------------------


@functools.cache
def _cuda_kernels():
    """Compile-on-first-use kernels ``(keys, cells, histogram, scatter, sort_bins)``."""
    _cuda.bind_cuda(globals())

    @cuda.jit
    def keys(sector, row, n_rows, key):
        i = cuda.grid(1)
        if i < key.shape[0]:
            key[i] = np.int32(sector[i]) * n_rows + np.int32(row[i])

    cell_of = cuda.jit(device=True)(_cell_of.py_func)

    @cuda.jit
    def cells(sector, row, y, z, n_y, n_z, z_max, half_width, n_rows, key):
        i = cuda.grid(1)
        if i < key.shape[0]:
            key[i] = cell_of(sector[i], row[i], y[i], z[i], n_y, n_z, z_max, half_width, n_rows)

    @cuda.jit
    def histogram(key, counts):
        i = cuda.grid(1)
        if i < key.shape[0]:
            cuda.atomic.add(counts, key[i] + 1, np.int32(1))

    @cuda.jit
    def scatter(key, start, fill, order):
        i = cuda.grid(1)
        if i < key.shape[0]:
            k = key[i]
            order[start[k] + cuda.atomic.add(fill, k, np.int32(1))] = i

    @cuda.jit
    def sort_bins(order, start, bins, val, use_val):
        t = cuda.grid(1)
        if t < bins.shape[0]:
            b = bins[t]
            lo = start[b]
            hi = start[b + 1]
            for j in range(lo + 1, hi):
                cur = order[j]
                v = val[cur] if use_val else 0.0
                k = j - 1
                while k >= lo:
                    o = order[k]
                    vo = val[o] if use_val else 0.0
                    if vo > v or (vo == v and o > cur):
                        order[k + 1] = o
                        k -= 1
                    else:
                        break
                order[k + 1] = cur

    return keys, cells, histogram, scatter, sort_bins


def _counting_sort_gpu(key: Any, n_keys: int, val: Any, xp: Any) -> tuple[Any, Any]:
    """Histogram, scan, scatter, per-bin insertion sort by (val, index) (or index only)."""
    _, _, histogram, scatter, sort_bins = _cuda_kernels()
    n = key.shape[0]
    tpb = _cuda.THREADS_PER_BLOCK
    counts = xp.zeros(n_keys + 1, np.int32)
    order = xp.empty(n, np.int32)
    if n:
        histogram[_cuda.blocks(n), tpb](key, counts)
    start = xp.cumsum(counts).astype(np.int32)
    if n:
        fill = xp.zeros(n_keys, np.int32)
        scatter[_cuda.blocks(n), tpb](key, start, fill, order)
        use_val = val is not None
        vals = val if use_val else xp.zeros(1, np.float64)
        full = xp.flatnonzero(counts[1:] > 1).astype(np.int32)  # bins that need sorting
        if full.shape[0]:
            sort_bins[_cuda.blocks(full.shape[0]), tpb](order, start, full, vals, use_val)
    return order, start


def bin_clusters_gpu(sector: Any, row: Any, y: Any, *, xp: Any = None) -> tuple[Any, Any]:
    """numba.cuda twin of :func:`bin_clusters_ref` (see the module docstring)."""
    xp = _cuda.default_xp(xp)
    sector, row, y = xp.asarray(sector), xp.asarray(row), xp.asarray(y)
    n = y.shape[0]
    _check_bins(sector, row, n)
    keys = _cuda_kernels()[0]
    key = xp.empty(n, np.int32)
    if n:
        keys[_cuda.blocks(n), _cuda.THREADS_PER_BLOCK](sector, row, geo.N_ROWS, key)
    return _counting_sort_gpu(key, N_BINS, y, xp)


def build_grid_gpu(
    sector: Any,
    row: Any,
    y: Any,
    z: Any,
    n_y: int = GRID_N_Y,
    n_z: int = GRID_N_Z,
    z_max: float = GRID_Z_MAX_CM,
    *,
    xp: Any = None,
) -> ClusterGrid:
    """numba.cuda twin of :func:`build_grid_ref` (the grid lives on the device)."""
    xp = _cuda.default_xp(xp)
    sector, row, y, z = (xp.asarray(a) for a in (sector, row, y, z))
    n = y.shape[0]
    _check_bins(sector, row, n)
    cells = _cuda_kernels()[1]
    hw = _cuda.device_table(xp, "binning.half_width", _ROW_HALF_WIDTH)
    key = xp.empty(n, np.int32)
    if n:
        cells[_cuda.blocks(n), _cuda.THREADS_PER_BLOCK](
            sector, row, y, z, int(n_y), int(n_z), float(z_max), hw, geo.N_ROWS, key
        )
    order, start = _counting_sort_gpu(key, N_BINS * n_y * n_z, None, xp)
    yy = y.astype(np.float64)[order]
    zz = z.astype(np.float64)[order]
    return ClusterGrid(order, start, yy, zz, int(n_y), int(n_z), float(z_max))


# ------------------------------------------------------------------------------------------
# dispatch
# ------------------------------------------------------------------------------------------


def bin_clusters(sector: Any, row: Any, y: Any, *, backend: str | Backend = "cpu"):
    """``(order, bin_start)`` of clusters sorted by (sector, row, y) on ``backend``."""
    be = get_backend(backend)
    if be.is_gpu:
        return bin_clusters_gpu(sector, row, y, xp=be.xp)
    return bin_clusters_cpu(sector, row, y)


def build_grid(
    sector: Any,
    row: Any,
    y: Any,
    z: Any,
    n_y: int = GRID_N_Y,
    n_z: int = GRID_N_Z,
    z_max: float = GRID_Z_MAX_CM,
    *,
    backend: str | Backend = "cpu",
) -> ClusterGrid:
    """:class:`ClusterGrid` of the clusters (local ``y``, ``z`` in cm) on ``backend``."""
    be = get_backend(backend)
    if be.is_gpu:
        return build_grid_gpu(sector, row, y, z, n_y, n_z, z_max, xp=be.xp)
    return build_grid_cpu(sector, row, y, z, n_y, n_z, z_max)


__all__ = [
    "ClusterGrid",
    "bin_clusters",
    "bin_clusters_cpu",
    "bin_clusters_gpu",
    "bin_clusters_ref",
    "build_grid",
    "build_grid_cpu",
    "build_grid_gpu",
    "build_grid_ref",
    "neighbours",
    "neighbours_ref",
]
