"""O2's ``ClusterNative`` record and the per-timeframe cluster buffer, byte for byte.

Layer: data model. A ``ClusterNative`` is 12 bytes (little endian, no padding)::

    uint32 timeFlagsPacked   time (time bins) x 64 in the low 24 bits, flags in the high 8
    uint16 padPacked         pad x 64 (continuous pad coordinate, see tpc.transform)
    uint8  sigmaTimePacked   cluster width in time bins x 32, clamped at 0xFF
    uint8  sigmaPadPacked    cluster width in pads x 32, clamped at 0xFF
    uint16 qMax              maximum ADC of the cluster
    uint16 qTot              ADC sum of the cluster

The per-timeframe buffer that O2 writes (``tpcrec/TPCClusterNative``) is a
``ClusterCountIndex`` — ``uint32 nClusters[36][152]`` (21,888 bytes) — followed by all records
ordered by (sector, row). :func:`encode_o2_buffer` and :func:`decode_o2_buffer` produce and
check exactly that layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alice_dyn.tpc.geometry import N_ROWS, N_SECTORS

CLUSTER_NATIVE_DTYPE = np.dtype(
    [
        ("timeFlagsPacked", "<u4"),
        ("padPacked", "<u2"),
        ("sigmaTimePacked", "u1"),
        ("sigmaPadPacked", "u1"),
        ("qMax", "<u2"),
        ("qTot", "<u2"),
    ]
)
assert CLUSTER_NATIVE_DTYPE.itemsize == 12

SCALE_TIME_PACKED = 64.0
SCALE_PAD_PACKED = 64.0
SCALE_SIGMA_TIME_PACKED = 32.0
SCALE_SIGMA_PAD_PACKED = 32.0
TIME_MASK = 0x00FFFFFF
FLAGS_SHIFT = 24
#: largest pad coordinate that fits in 16 bits at the x64 scale
MAX_PAD = 0xFFFF / SCALE_PAD_PACKED

FLAG_SPLIT_PAD = 0x1
FLAG_SPLIT_TIME = 0x2
FLAG_EDGE = 0x4
FLAG_SINGLE = 0x8

CLUSTER_COUNT_INDEX_SHAPE = (N_SECTORS, N_ROWS)
CLUSTER_COUNT_INDEX_BYTES = N_SECTORS * N_ROWS * 4  # 21,888


class ClusterNativeFormatError(ValueError):
    """A ClusterNative buffer or record set does not have O2's layout."""


@dataclass(frozen=True)
class UnpackedClusters:
    """Decoded ClusterNative fields, each ``(n_clusters,)``.

    ``time`` in time bins, ``pad`` in pads (continuous coordinate), sigmas in time bins / pads,
    charges in ADC counts, ``flags`` as the 8-bit mask.
    """

    time: np.ndarray
    pad: np.ndarray
    sigma_time: np.ndarray
    sigma_pad: np.ndarray
    q_max: np.ndarray
    q_tot: np.ndarray
    flags: np.ndarray

    def __len__(self) -> int:
        return len(self.time)


def _fixed_point(values: np.ndarray, scale: float, max_packed: int) -> np.ndarray:
    """Round ``values * scale`` to the nearest integer, clamped to ``[0, max_packed]``."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=max_packed, neginf=0.0)
    v = np.clip(v, -1.0, (max_packed + 1.0) / scale) * scale + 0.5  # clip first: no overflow
    return np.clip(np.floor(v), 0, max_packed).astype(np.uint64)


def pack_clusters(
    time: np.ndarray,
    pad: np.ndarray,
    sigma_time: np.ndarray,
    sigma_pad: np.ndarray,
    q_max: np.ndarray,
    q_tot: np.ndarray,
    flags: np.ndarray | int = 0,
) -> np.ndarray:
    """Pack cluster properties into ``(n,)`` records of :data:`CLUSTER_NATIVE_DTYPE`.

    Values are rounded to O2's fixed-point grid and clamped into the representable range
    (time < 262144 time bins, pad < 1024, sigmas < 7.97, charges < 65536), as O2's setters do.
    """
    time = np.asarray(time)
    n = time.shape[0]
    out = np.empty(n, dtype=CLUSTER_NATIVE_DTYPE)
    flags_u = np.broadcast_to(np.asarray(flags, dtype=np.uint64) & 0xFF, (n,))
    t = _fixed_point(time, SCALE_TIME_PACKED, TIME_MASK)
    out["timeFlagsPacked"] = (t | (flags_u << FLAGS_SHIFT)).astype(np.uint32)
    out["padPacked"] = _fixed_point(pad, SCALE_PAD_PACKED, 0xFFFF)
    out["sigmaTimePacked"] = _fixed_point(sigma_time, SCALE_SIGMA_TIME_PACKED, 0xFF)
    out["sigmaPadPacked"] = _fixed_point(sigma_pad, SCALE_SIGMA_PAD_PACKED, 0xFF)
    out["qMax"] = _fixed_point(q_max, 1.0, 0xFFFF)
    out["qTot"] = _fixed_point(q_tot, 1.0, 0xFFFF)
    return out


def unpack_clusters(records: np.ndarray) -> UnpackedClusters:
    """Decode ``(n,)`` ClusterNative records into float32 physical values."""
    if records.dtype != CLUSTER_NATIVE_DTYPE:
        raise ClusterNativeFormatError(
            f"expected ClusterNative records {CLUSTER_NATIVE_DTYPE}, got {records.dtype}"
        )
    tf = records["timeFlagsPacked"]
    return UnpackedClusters(
        time=(tf & TIME_MASK).astype(np.float32) / np.float32(SCALE_TIME_PACKED),
        pad=records["padPacked"].astype(np.float32) / np.float32(SCALE_PAD_PACKED),
        sigma_time=records["sigmaTimePacked"].astype(np.float32)
        / np.float32(SCALE_SIGMA_TIME_PACKED),
        sigma_pad=records["sigmaPadPacked"].astype(np.float32) / np.float32(SCALE_SIGMA_PAD_PACKED),
        q_max=records["qMax"].astype(np.float32),
        q_tot=records["qTot"].astype(np.float32),
        flags=(tf >> FLAGS_SHIFT).astype(np.uint8),
    )


def cluster_count_index(sector: np.ndarray, row: np.ndarray) -> np.ndarray:
    """``ClusterCountIndex``: number of clusters per (sector, row), ``(36, 152)`` uint32."""
    sector = np.asarray(sector, dtype=np.int64)
    row = np.asarray(row, dtype=np.int64)
    if sector.size and (sector.min() < 0 or sector.max() >= N_SECTORS):
        raise ClusterNativeFormatError(f"sector out of range 0-{N_SECTORS - 1}")
    if row.size and (row.min() < 0 or row.max() >= N_ROWS):
        raise ClusterNativeFormatError(f"pad row out of range 0-{N_ROWS - 1}")
    flat = np.bincount(sector * N_ROWS + row, minlength=N_SECTORS * N_ROWS)
    return flat.astype(np.uint32).reshape(CLUSTER_COUNT_INDEX_SHAPE)


def sector_row_order(sector: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Stable permutation that sorts clusters by (sector, row), as O2 stores them."""
    key = np.asarray(sector, dtype=np.int64) * N_ROWS + np.asarray(row, dtype=np.int64)
    return np.argsort(key, kind="stable")


def sector_row_from_index(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand a ``(36, 152)`` count index into per-cluster (sector, row), both uint8."""
    counts = np.asarray(index, dtype=np.int64).ravel()
    flat = np.repeat(np.arange(N_SECTORS * N_ROWS, dtype=np.int64), counts)
    return (flat // N_ROWS).astype(np.uint8), (flat % N_ROWS).astype(np.uint8)


def o2_buffer_size(n_clusters: int) -> int:
    """Bytes of O2's per-timeframe buffer holding ``n_clusters`` clusters."""
    return CLUSTER_COUNT_INDEX_BYTES + CLUSTER_NATIVE_DTYPE.itemsize * int(n_clusters)


def encode_o2_buffer(
    records: np.ndarray, sector: np.ndarray, row: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """O2's per-timeframe buffer: count index then records in (sector, row) order, ``uint8``.

    Records need not be sorted; they are stably reordered. Returns the raw bytes as a
    ``(21888 + 12 * n,)`` uint8 array, written into ``out`` if given (e.g. a framework-owned
    output buffer of :func:`o2_buffer_size` bytes).
    """
    if records.dtype != CLUSTER_NATIVE_DTYPE:
        raise ClusterNativeFormatError(f"expected ClusterNative records, got {records.dtype}")
    if not (len(records) == len(sector) == len(row)):
        raise ClusterNativeFormatError("records, sector and row differ in length")
    index = cluster_count_index(sector, row)
    size = o2_buffer_size(len(records))
    if out is None:
        buf = np.empty(size, dtype=np.uint8)
    elif out.dtype != np.uint8 or out.shape != (size,):
        raise ClusterNativeFormatError(
            f"output buffer must be ({size},) uint8, got {out.shape} {out.dtype}"
        )
    else:
        buf = out
    buf[:CLUSTER_COUNT_INDEX_BYTES] = index.astype("<u4").view(np.uint8).ravel()
    key = np.asarray(sector, dtype=np.int64) * N_ROWS + np.asarray(row, dtype=np.int64)
    payload = buf[CLUSTER_COUNT_INDEX_BYTES:].view(CLUSTER_NATIVE_DTYPE)
    if len(key) < 2 or np.all(key[1:] >= key[:-1]):
        payload[:] = records  # already in O2 order: one copy, no sort
    else:
        payload[:] = records[sector_row_order(sector, row)]
    return buf


def decode_o2_buffer(buffer: np.ndarray | bytes) -> tuple[np.ndarray, np.ndarray]:
    """Split O2's per-timeframe buffer into ``(index (36, 152) uint32, records (n,))``.

    The index is checked against the records (sum of counts equals the number of records);
    :func:`sector_row_from_index` expands it to per-cluster sector and row. Raises
    :class:`ClusterNativeFormatError` with the sizes involved if the layout is wrong.
    Views into ``buffer`` are returned (no copy).
    """
    raw = np.frombuffer(buffer, dtype=np.uint8) if isinstance(buffer, bytes) else buffer
    raw = np.ascontiguousarray(raw, dtype=np.uint8).ravel()
    if raw.size < CLUSTER_COUNT_INDEX_BYTES:
        raise ClusterNativeFormatError(
            f"buffer of {raw.size} bytes is shorter than the {CLUSTER_COUNT_INDEX_BYTES}-byte "
            "ClusterCountIndex"
        )
    payload = raw.size - CLUSTER_COUNT_INDEX_BYTES
    if payload % CLUSTER_NATIVE_DTYPE.itemsize:
        raise ClusterNativeFormatError(
            f"{payload} bytes after the ClusterCountIndex are not a whole number of 12-byte "
            "ClusterNative records"
        )
    index = raw[:CLUSTER_COUNT_INDEX_BYTES].view("<u4").reshape(CLUSTER_COUNT_INDEX_SHAPE)
    records = raw[CLUSTER_COUNT_INDEX_BYTES:].view(CLUSTER_NATIVE_DTYPE)
    n_index = int(index.sum(dtype=np.uint64))
    if n_index != records.size:
        raise ClusterNativeFormatError(
            f"ClusterCountIndex counts {n_index} clusters but the buffer holds {records.size}"
        )
    return index, records
