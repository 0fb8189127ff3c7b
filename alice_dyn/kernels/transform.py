"""Cluster transform: ClusterNative records -> pad, time, local y, z, global x, y, charges.

Layer: kernels. One NumPy reference (:func:`transform_clusters_ref`, built from
:func:`alice_dyn.tpc.cluster_native.unpack_clusters` and :mod:`alice_dyn.tpc.transform`), its
Numba CPU twin and its numba.cuda twin; :func:`transform_clusters` dispatches by backend.
The ``*_o2_buffer`` variants read O2's raw per-timeframe buffer (``ClusterCountIndex`` then
records) and expand sector and row from the count index inside the kernel.

Outputs (:class:`TransformedClusters`), float32, ``(n_clusters,)`` each: ``pad`` (pads),
``time`` (time bins), ``y`` (sector-local, cm), ``z`` (cm, for a collision at ``t0_time_bins``),
``gx``, ``gy`` (global, cm), ``q_tot``, ``q_max`` (ADC). The arithmetic is done in float64 and
rounded once, so all twins agree with the reference to the last float32 bit (or one ulp).

Records may be given as a ``CLUSTER_NATIVE_DTYPE`` array, as raw bytes (``uint8``, 12 per
cluster) or as ``(n, 3)`` ``uint32`` words — the latter two are what the GPU twin works on (CuPy
has no structured dtypes). Little-endian hosts only, like O2.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from alice_dyn.kernels import _cuda
from alice_dyn.kernels.backends import Backend, get_backend
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc import transform as tr
from alice_dyn.tpc.cluster_native import (
    CLUSTER_COUNT_INDEX_BYTES,
    CLUSTER_NATIVE_DTYPE,
    ClusterNativeFormatError,
    decode_o2_buffer,
    sector_row_from_index,
    unpack_clusters,
)
from alice_dyn.tpc.geometry import DEFAULT_GAS, TPCGasParam

cuda: Any = None  # numba.cuda, bound by the first GPU call (see _cuda.bind_cuda)
N_BINS = geo.N_SECTORS * geo.N_ROWS  # (sector, row) bins of the ClusterCountIndex


class TransformedClusters(NamedTuple):
    """Per-cluster float32 outputs of the transform, each ``(n_clusters,)``."""

    pad: Any
    time: Any
    y: Any
    z: Any
    gx: Any
    gy: Any
    q_tot: Any
    q_max: Any


FIELDS = TransformedClusters._fields

# geometry tables the kernels read (float64)
_ROW_X = geo.ROW_X_CM.astype(np.float64)
_ROW_HALF_PADS = 0.5 * geo.ROW_N_PADS.astype(np.float64)
_ROW_PAD_W = geo.ROW_PAD_WIDTH_CM.astype(np.float64)
_SEC_COS = geo.SECTOR_COS_ALPHA.astype(np.float64)
_SEC_SIN = geo.SECTOR_SIN_ALPHA.astype(np.float64)
_SEC_SIDE = 1.0 - 2.0 * geo.SECTOR_SIDE.astype(np.float64)


def _drift_constants(t0_time_bins: float, gas: TPCGasParam) -> tuple[float, float, float]:
    """(time offset, drift cm per time bin, drift length) as plain floats."""
    return (
        float(t0_time_bins) + float(gas.t0_time_bins),
        float(gas.drift_cm_per_time_bin),
        float(gas.drift_length_cm),
    )


def record_words(records: Any, xp: Any = np) -> Any:
    """Records as ``(n, 3)`` uint32 words (a view where possible).

    Accepts ``CLUSTER_NATIVE_DTYPE`` arrays (host only), ``uint8`` bytes (12 per record) and
    ``(n, 3)`` / ``(3n,)`` ``uint32`` words, on the host or (CuPy) on the device.
    """
    if isinstance(records, np.ndarray) and records.dtype == CLUSTER_NATIVE_DTYPE:
        records = np.ascontiguousarray(records).view(np.uint8)
        if xp is not np:
            records = xp.asarray(records)
    elif not hasattr(records, "dtype") or records.dtype.fields is not None:
        raise ClusterNativeFormatError(
            f"expected ClusterNative records, bytes or uint32 words, got {type(records)}"
        )
    a = xp.asarray(records)
    if a.dtype == np.uint8:
        if a.size % CLUSTER_NATIVE_DTYPE.itemsize:
            raise ClusterNativeFormatError(
                f"{a.size} bytes are not a whole number of 12-byte ClusterNative records"
            )
        a = xp.ascontiguousarray(a.ravel()).view(xp.uint32)
    elif a.dtype != np.uint32:
        raise ClusterNativeFormatError(f"expected uint8 bytes or uint32 words, got {a.dtype}")
    if a.size % 3:
        raise ClusterNativeFormatError(f"{a.size} uint32 words are not a whole number of records")
    return xp.ascontiguousarray(a.reshape(-1, 3))


def _allocate(xp: Any, n: int, out: Mapping[str, Any] | None) -> TransformedClusters:
    """Output arrays: those given in ``out`` (checked), the rest allocated with ``xp``."""
    out = dict(out or {})
    unknown = set(out) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown transform output(s) {sorted(unknown)}; known: {FIELDS}")
    arrays = []
    for name in FIELDS:
        a = out.get(name)
        if a is None:
            a = xp.empty(n, dtype=np.float32)
        elif a.shape != (n,) or a.dtype != np.float32:
            raise ValueError(f"output {name!r} must be ({n},) float32, got {a.shape} {a.dtype}")
        arrays.append(a)
    return TransformedClusters(*arrays)


# ------------------------------------------------------------------------------------------
# NumPy reference
# ------------------------------------------------------------------------------------------


def transform_clusters_ref(
    records: np.ndarray,
    sector: np.ndarray,
    row: np.ndarray,
    t0_time_bins: float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> TransformedClusters:
    """NumPy reference: ``unpack_clusters`` + ``tpc.transform``, rounded to float32."""
    words = record_words(records)
    u = unpack_clusters(words.reshape(-1).view(CLUSTER_NATIVE_DTYPE))
    sector = np.asarray(sector)
    _, y, z = tr.pad_time_to_local(sector, row, u.pad, u.time, t0_time_bins, gas)
    x = geo.ROW_X_CM[np.asarray(row, dtype=np.int64)]
    gx, gy = tr.local_to_global(sector, x, y)
    f = np.float32
    return TransformedClusters(
        u.pad, u.time, y.astype(f), z.astype(f), gx.astype(f), gy.astype(f), u.q_tot, u.q_max
    )


def transform_o2_buffer_ref(
    buffer: np.ndarray | bytes, t0_time_bins: float = 0.0, gas: TPCGasParam = DEFAULT_GAS
) -> tuple[TransformedClusters, np.ndarray, np.ndarray]:
    """NumPy reference of the raw-buffer variant: ``(outputs, sector uint8, row uint8)``."""
    index, records = decode_o2_buffer(buffer)
    sector, row = sector_row_from_index(index)
    return transform_clusters_ref(records, sector, row, t0_time_bins, gas), sector, row


# ------------------------------------------------------------------------------------------
# Numba CPU twin
# ------------------------------------------------------------------------------------------


# NB: the outputs are separate arguments, not a tuple: with parallel=True, Numba 0.68 drops
# writes into arrays that reach a prange loop inside a tuple (seen here; reads are fine).
@njit(inline="always")
def _one(w, i, s, r, t_off, drift, length, tabs, pad_o, time_o, y_o, z_o, gx_o, gy_o, qt_o, qm_o):
    """Transform record ``i`` of ``w`` in (sector ``s``, row ``r``) into the 8 outputs."""
    row_x, half_pads, pad_w, sc, ss, side = tabs
    w0 = w[i, 0]
    w1 = w[i, 1]
    w2 = w[i, 2]
    time = np.float32(w0 & np.uint32(0xFFFFFF)) / np.float32(64.0)
    pad = np.float32(w1 & np.uint32(0xFFFF)) / np.float32(64.0)
    sg = side[s]
    y = sg * ((np.float64(pad) - half_pads[r]) * pad_w[r])
    z = sg * (length - (np.float64(time) - t_off) * drift)
    x = row_x[r]
    pad_o[i] = pad
    time_o[i] = time
    y_o[i] = y
    z_o[i] = z
    gx_o[i] = x * sc[s] - y * ss[s]
    gy_o[i] = x * ss[s] + y * sc[s]
    qt_o[i] = np.float32(w2 >> np.uint32(16))
    qm_o[i] = np.float32(w2 & np.uint32(0xFFFF))


@njit(parallel=True, cache=True)
def _transform_cpu(w, sector, row, t_off, drift, length, tabs, o0, o1, o2, o3, o4, o5, o6, o7):
    for i in prange(w.shape[0]):
        _one(w, i, sector[i], row[i], t_off, drift, length, tabs, o0, o1, o2, o3, o4, o5, o6, o7)


@njit(parallel=True, cache=True)
def _transform_buffer_cpu(
    w, offsets, t_off, drift, length, tabs, sec_o, row_o, o0, o1, o2, o3, o4, o5, o6, o7
):
    n_rows = tabs[0].shape[0]
    for b in prange(offsets.shape[0] - 1):  # one (sector, row) bin per iteration
        s = b // n_rows
        r = b - s * n_rows
        for i in range(offsets[b], offsets[b + 1]):
            sec_o[i] = s
            row_o[i] = r
            _one(w, i, s, r, t_off, drift, length, tabs, o0, o1, o2, o3, o4, o5, o6, o7)


_TABS = (_ROW_X, _ROW_HALF_PADS, _ROW_PAD_W, _SEC_COS, _SEC_SIN, _SEC_SIDE)


def _check_sector_row(n: int, sector: np.ndarray, row: np.ndarray) -> None:
    if sector.shape != (n,) or row.shape != (n,):
        raise ValueError(f"sector {sector.shape} and row {row.shape} must be ({n},)")


def transform_clusters_cpu(
    records: Any,
    sector: np.ndarray,
    row: np.ndarray,
    t0_time_bins: float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
    *,
    out: Mapping[str, np.ndarray] | None = None,
) -> TransformedClusters:
    """Numba CPU twin of :func:`transform_clusters_ref` (outputs into ``out`` where given)."""
    w = record_words(records)
    n = w.shape[0]
    sector, row = np.asarray(sector), np.asarray(row)
    _check_sector_row(n, sector, row)
    o = _allocate(np, n, out)
    _transform_cpu(w, sector, row, *_drift_constants(t0_time_bins, gas), _TABS, *o)
    return o


def _split_buffer(buffer: Any, xp: Any) -> tuple[Any, Any]:
    """O2 buffer -> (index as (5472,) uint32, records as (n, 3) uint32 words), checked."""
    raw = xp.asarray(np.frombuffer(buffer, np.uint8) if isinstance(buffer, bytes) else buffer)
    if raw.dtype != np.uint8:
        raise ClusterNativeFormatError(f"O2 cluster buffer must be uint8 bytes, got {raw.dtype}")
    raw = raw.ravel()
    if raw.size < CLUSTER_COUNT_INDEX_BYTES:
        raise ClusterNativeFormatError(
            f"buffer of {raw.size} bytes is shorter than the {CLUSTER_COUNT_INDEX_BYTES}-byte "
            "ClusterCountIndex"
        )
    index = xp.ascontiguousarray(raw[:CLUSTER_COUNT_INDEX_BYTES]).view(xp.uint32)
    return index, record_words(raw[CLUSTER_COUNT_INDEX_BYTES:], xp)


def _offsets(index: Any, n: int, xp: Any) -> Any:
    offsets = xp.zeros(N_BINS + 1, dtype=np.int64)
    xp.cumsum(index.astype(np.int64), out=offsets[1:])
    total = int(offsets[-1])
    if total != n:
        raise ClusterNativeFormatError(
            f"ClusterCountIndex counts {total} clusters but the buffer holds {n}"
        )
    return offsets


def transform_o2_buffer_cpu(
    buffer: np.ndarray | bytes,
    t0_time_bins: float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
    *,
    out: Mapping[str, np.ndarray] | None = None,
) -> tuple[TransformedClusters, np.ndarray, np.ndarray]:
    """Numba CPU twin of :func:`transform_o2_buffer_ref`: one (sector, row) bin per thread."""
    index, w = _split_buffer(buffer, np)
    n = w.shape[0]
    offsets = _offsets(index, n, np)
    o = _allocate(np, n, out)
    sec, row = np.empty(n, np.uint8), np.empty(n, np.uint8)
    _transform_buffer_cpu(w, offsets, *_drift_constants(t0_time_bins, gas), _TABS, sec, row, *o)
    return o, sec, row


# ------------------------------------------------------------------------------------------
# numba.cuda twin: one thread per cluster
# ------------------------------------------------------------------------------------------


@functools.cache
def _cuda_kernels():
    """Compile-on-first-use numba.cuda kernels ``(transform, transform_buffer)``."""
    _cuda.bind_cuda(globals())

    one = cuda.jit(device=True)(_one.py_func)  # the CPU twin's scalar body

    # the look-up tables travel as separate arguments: numba.cuda types a CuPy array only at
    # the top level of a kernel's arguments, not inside a tuple
    @cuda.jit
    def transform(
        w, sector, row, t_off, drift, length, t0, t1, t2, t3, t4, t5,
        o0, o1, o2, o3, o4, o5, o6, o7,
    ):  # fmt: skip
        i = cuda.grid(1)
        if i < w.shape[0]:
            tabs = (t0, t1, t2, t3, t4, t5)
            one(w, i, sector[i], row[i], t_off, drift, length, tabs, o0, o1, o2, o3, o4, o5, o6, o7)

    @cuda.jit
    def transform_buffer(
        w, offsets, t_off, drift, length, t0, t1, t2, t3, t4, t5, sec_o, row_o,
        o0, o1, o2, o3, o4, o5, o6, o7,
    ):  # fmt: skip
        i = cuda.grid(1)
        if i < w.shape[0]:
            # last bin b with offsets[b] <= i (empty bins repeat an offset)
            lo = 0
            hi = offsets.shape[0] - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offsets[mid] <= i:
                    lo = mid
                else:
                    hi = mid
            n_rows = t0.shape[0]
            s = lo // n_rows
            r = lo - s * n_rows
            sec_o[i] = s
            row_o[i] = r
            tabs = (t0, t1, t2, t3, t4, t5)
            one(w, i, s, r, t_off, drift, length, tabs, o0, o1, o2, o3, o4, o5, o6, o7)

    return transform, transform_buffer


def _device_tabs(xp: Any) -> tuple:
    names = ("row_x", "half_pads", "pad_w", "sec_cos", "sec_sin", "sec_side")
    return tuple(
        _cuda.device_table(xp, f"transform.{k}", t) for k, t in zip(names, _TABS, strict=True)
    )


def transform_clusters_gpu(
    records: Any,
    sector: Any,
    row: Any,
    t0_time_bins: float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
    *,
    out: Mapping[str, Any] | None = None,
    xp: Any = None,
) -> TransformedClusters:
    """numba.cuda twin of :func:`transform_clusters_ref`; outputs are ``xp`` (CuPy) arrays."""
    xp = _cuda.default_xp(xp)
    w = record_words(records, xp)
    n = w.shape[0]
    sector, row = xp.asarray(sector), xp.asarray(row)
    _check_sector_row(n, sector, row)
    o = _allocate(xp, n, out)
    if n:
        k, _ = _cuda_kernels()
        k[_cuda.blocks(n), _cuda.THREADS_PER_BLOCK](
            w, sector, row, *_drift_constants(t0_time_bins, gas), *_device_tabs(xp), *o
        )
    return o


def transform_o2_buffer_gpu(
    buffer: Any,
    t0_time_bins: float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
    *,
    out: Mapping[str, Any] | None = None,
    xp: Any = None,
) -> tuple[TransformedClusters, Any, Any]:
    """numba.cuda twin of :func:`transform_o2_buffer_ref`; (sector, row) found by binary
    search of each cluster's position in the prefix sum of the count index."""
    xp = _cuda.default_xp(xp)
    index, w = _split_buffer(buffer, xp)
    n = w.shape[0]
    offsets = _offsets(index, n, xp)
    o = _allocate(xp, n, out)
    sec, row = xp.empty(n, np.uint8), xp.empty(n, np.uint8)
    if n:
        _, k = _cuda_kernels()
        k[_cuda.blocks(n), _cuda.THREADS_PER_BLOCK](
            w, offsets, *_drift_constants(t0_time_bins, gas), *_device_tabs(xp), sec, row, *o
        )
    return o, sec, row


# ------------------------------------------------------------------------------------------
# dispatch
# ------------------------------------------------------------------------------------------


def transform_clusters(
    records: Any,
    sector: Any,
    row: Any,
    t0_time_bins: float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
    *,
    backend: str | Backend = "cpu",
    out: Mapping[str, Any] | None = None,
) -> TransformedClusters:
    """Transform ClusterNative records of known (sector, row) on ``backend``.

    ``records`` ``(n,)`` (see the module docstring for accepted forms), ``sector``/``row``
    ``(n,)`` integer arrays, ``t0_time_bins`` the collision time (time bins; 0 before the track
    time is known), ``gas`` the drift parameters. ``out`` may hold preallocated float32
    ``(n,)`` outputs by field name (e.g. a framework-owned message).
    """
    be = get_backend(backend)
    if be.is_gpu:
        return transform_clusters_gpu(records, sector, row, t0_time_bins, gas, out=out, xp=be.xp)
    return transform_clusters_cpu(records, sector, row, t0_time_bins, gas, out=out)


def transform_o2_buffer(
    buffer: Any,
    t0_time_bins: float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
    *,
    backend: str | Backend = "cpu",
    out: Mapping[str, Any] | None = None,
) -> tuple[TransformedClusters, Any, Any]:
    """Transform O2's raw per-timeframe cluster buffer (``uint8``) on ``backend``.

    Returns ``(outputs, sector, row)``, sector and row ``uint8`` expanded from the count index.
    Raises :class:`~alice_dyn.tpc.cluster_native.ClusterNativeFormatError` for a bad layout.
    """
    be = get_backend(backend)
    if be.is_gpu:
        return transform_o2_buffer_gpu(buffer, t0_time_bins, gas, out=out, xp=be.xp)
    return transform_o2_buffer_cpu(buffer, t0_time_bins, gas, out=out)


__all__ = [
    "FIELDS",
    "TransformedClusters",
    "record_words",
    "transform_clusters",
    "transform_clusters_cpu",
    "transform_clusters_gpu",
    "transform_clusters_ref",
    "transform_o2_buffer",
    "transform_o2_buffer_cpu",
    "transform_o2_buffer_gpu",
    "transform_o2_buffer_ref",
]
