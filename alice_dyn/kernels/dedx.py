"""dE/dx: truncated mean of the normalised cluster charges of every track.

Layer: kernels. For track ``i`` with clusters ``refs[start[i] : start[i] + n[i]]`` the values
``q[c] * norm[c]`` are sorted and averaged between the positions ``int(m * low)`` (included)
and ``int(m * high)`` (excluded), ``m`` the number of clusters — exactly
:func:`alice_dyn.qa.sim_qa.truncated_mean` per track, O2's fractions 2/128 .. 77/128 by default.
NaN where that range is empty. ``norm`` carries the per-cluster normalisation (pad height of
the row, track angle, gain calibration: whatever the caller folds in), so the kernel is used
for qTot and qMax alike. Output float64 ``(n_tracks,)``.

CPU twin: one track per prange iteration, ``np.sort`` of a small copy. GPU twin: one thread per
track, insertion sort in a per-thread local array of :data:`GPU_MAX_CLUSTERS` (512) values;
tracks with more clusters (loopers followed over several turns) use only their first 512
clusters, i.e. the reference with ``max_clusters=512``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numba import njit, prange

from alice_dyn.kernels import _cuda
from alice_dyn.kernels._common import check_tracks
from alice_dyn.kernels.backends import Backend, get_backend

cuda: Any = None  # numba.cuda, bound by the first GPU call (see _cuda.bind_cuda)
TRUNCATION_LOW = 2.0 / 128.0
TRUNCATION_HIGH = 77.0 / 128.0
#: clusters per track the GPU twin can hold (the first ones are used beyond that)
GPU_MAX_CLUSTERS = 512


def truncated_mean_tracks_ref(
    q: Any,
    norm: Any,
    refs: Any,
    start: Any,
    n: Any,
    low: float = TRUNCATION_LOW,
    high: float = TRUNCATION_HIGH,
    max_clusters: int | None = None,
) -> np.ndarray:
    """NumPy reference of :func:`truncated_mean_tracks` (vectorised over tracks).

    ``max_clusters`` (default: no limit) keeps only each track's first clusters, as the GPU
    twin does beyond :data:`GPU_MAX_CLUSTERS`.
    """
    refs, start, n = np.asarray(refs), np.asarray(start, np.int64), np.asarray(n, np.int64)
    check_tracks(refs, start, n)
    if max_clusters is not None:
        n = np.minimum(n, max_clusters)
    n_tr = len(n)
    trk = np.repeat(np.arange(n_tr), n)
    pos = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # position inside the track
    idx = refs[np.repeat(start, n) + pos]
    v = np.asarray(q, np.float64)[idx] * np.asarray(norm, np.float64)[idx]
    order = np.lexsort((v, trk))  # by track, then value
    lo = (n * low).astype(np.int64)  # int() truncation of the float product, as truncated_mean
    hi = (n * high).astype(np.int64)
    keep = (pos >= lo[trk]) & (pos < hi[trk])  # pos of the sorted value in its track
    sums = np.bincount(trk, weights=np.where(keep, v[order], 0.0), minlength=n_tr)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi > lo, sums / (hi - lo), np.nan)


@njit(parallel=True, cache=True)
def _truncated_mean_cpu(q, norm, refs, start, n, low, high, out):
    for t in prange(start.shape[0]):
        m = np.int64(n[t])
        lo = int(m * low)
        hi = int(m * high)
        if hi <= lo:
            out[t] = np.nan
            continue
        v = np.empty(m, np.float64)
        s0 = np.int64(start[t])
        for k in range(m):
            c = refs[s0 + k]
            v[k] = np.float64(q[c]) * np.float64(norm[c])
        v.sort()
        acc = 0.0
        for k in range(lo, hi):
            acc += v[k]
        out[t] = acc / (hi - lo)


def truncated_mean_tracks_cpu(
    q: Any,
    norm: Any,
    refs: Any,
    start: Any,
    n: Any,
    low: float = TRUNCATION_LOW,
    high: float = TRUNCATION_HIGH,
) -> np.ndarray:
    """Numba CPU twin of :func:`truncated_mean_tracks_ref` (inputs passed on as float64 values
    and int64 indices, as the kernel reads them: one compiled specialisation)."""
    refs, start, n = np.asarray(refs), np.asarray(start), np.asarray(n)
    check_tracks(refs, start, n)
    out = np.empty(len(n), np.float64)
    q, norm = (np.ascontiguousarray(a, np.float64) for a in (q, norm))
    refs, start, n = (np.ascontiguousarray(a, np.int64) for a in (refs, start, n))
    _truncated_mean_cpu(q, norm, refs, start, n, low, high, out)
    return out


@functools.cache
def _cuda_kernels():
    _cuda.bind_cuda(globals())
    cap = GPU_MAX_CLUSTERS

    @cuda.jit
    def truncated_mean(q, norm, refs, start, n, low, high, out):
        t = cuda.grid(1)
        if t < start.shape[0]:
            m = np.int64(n[t])
            if m > cap:  # no min(): see binning._cell_of
                m = cap
            lo = int(m * low)
            hi = int(m * high)
            if hi <= lo:
                out[t] = np.nan
                return
            v = cuda.local.array(cap, np.float64)
            s0 = np.int64(start[t])
            for k in range(m):  # insertion sort while loading
                c = refs[s0 + k]
                x = np.float64(q[c]) * np.float64(norm[c])
                j = k - 1
                while j >= 0 and v[j] > x:
                    v[j + 1] = v[j]
                    j -= 1
                v[j + 1] = x
            acc = 0.0
            for k in range(lo, hi):
                acc += v[k]
            out[t] = acc / (hi - lo)

    return truncated_mean


def truncated_mean_tracks_gpu(
    q: Any,
    norm: Any,
    refs: Any,
    start: Any,
    n: Any,
    low: float = TRUNCATION_LOW,
    high: float = TRUNCATION_HIGH,
    *,
    xp: Any = None,
) -> Any:
    """numba.cuda twin: one thread per track, first :data:`GPU_MAX_CLUSTERS` clusters."""
    xp = _cuda.default_xp(xp)
    q, norm, refs, start, n = (xp.asarray(a) for a in (q, norm, refs, start, n))
    check_tracks(refs, start, n)
    out = xp.empty(n.shape[0], np.float64)
    if n.shape[0]:
        _cuda_kernels()[_cuda.blocks(n.shape[0]), _cuda.THREADS_PER_BLOCK](
            q, norm, refs, start, n, float(low), float(high), out
        )
    return out


def truncated_mean_tracks(
    q: Any,
    norm: Any,
    refs: Any,
    start: Any,
    n: Any,
    low: float = TRUNCATION_LOW,
    high: float = TRUNCATION_HIGH,
    *,
    backend: str | Backend = "cpu",
) -> Any:
    """Truncated mean of ``q * norm`` over each track's clusters on ``backend``.

    ``q``, ``norm`` ``(n_clusters,)`` (charge in ADC, normalisation per cluster); ``refs`` int
    cluster indices, ``start``, ``n`` ``(n_tracks,)``. Returns float64 ``(n_tracks,)``.
    """
    be = get_backend(backend)
    if be.is_gpu:
        return truncated_mean_tracks_gpu(q, norm, refs, start, n, low, high, xp=be.xp)
    return truncated_mean_tracks_cpu(q, norm, refs, start, n, low, high)


__all__ = [
    "GPU_MAX_CLUSTERS",
    "TRUNCATION_HIGH",
    "TRUNCATION_LOW",
    "truncated_mean_tracks",
    "truncated_mean_tracks_cpu",
    "truncated_mean_tracks_gpu",
    "truncated_mean_tracks_ref",
]
