"""Feature assembly: per-track padded sequences of cluster features for the networks.

Layer: kernels. :func:`padded_track_features` gathers ``cluster_features[refs[start[i] + k]]``
for ``k < min(n[i], max_len)`` into a float32 ``(n_tracks, max_len, F)`` tensor with a bool
``(n_tracks, max_len)`` mask (True = a real cluster), zeros in the padding. Clusters keep the
reference order (inner to outer); a track with more than ``max_len`` clusters keeps its first
``max_len``, the innermost — the part measured before any looper turn, where the track is
cleanest and the PID-relevant ``tpcInnerParam`` sits. Both outputs are contiguous arrays of
the backend, handed to PyTorch without a copy by ``Backend.to_torch``.

NumPy reference, Numba CPU twin (one track per prange iteration), numba.cuda twin (one thread
per (track, slot)).
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


def _check_features(cluster_features: Any, max_len: int) -> None:
    if cluster_features.ndim != 2:
        raise ValueError(f"cluster_features must be (n_clusters, F), got {cluster_features.shape}")
    if int(max_len) < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")


def padded_track_features_ref(
    refs: Any, start: Any, n: Any, cluster_features: Any, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy reference of :func:`padded_track_features`."""
    refs, start, n = np.asarray(refs), np.asarray(start, np.int64), np.asarray(n, np.int64)
    feats = np.asarray(cluster_features)
    check_tracks(refs, start, n)
    _check_features(feats, max_len)
    slot = np.arange(max_len)
    mask = slot[None, :] < n[:, None]
    pos = np.where(mask, start[:, None] + slot[None, :], 0)
    out = np.zeros((len(n), max_len, feats.shape[1]), np.float32)
    if refs.size:
        out[mask] = feats[refs[pos[mask]]]
    return out, mask


@njit(parallel=True, cache=True)
def _padded_cpu(refs, start, n, feats, out, mask):
    max_len = out.shape[1]
    n_f = out.shape[2]
    for t in prange(start.shape[0]):
        m = min(np.int64(n[t]), max_len)
        s0 = np.int64(start[t])
        for k in range(max_len):
            if k < m:
                c = refs[s0 + k]
                for f in range(n_f):
                    out[t, k, f] = feats[c, f]
                mask[t, k] = True
            else:
                for f in range(n_f):
                    out[t, k, f] = 0.0
                mask[t, k] = False


def padded_track_features_cpu(
    refs: Any, start: Any, n: Any, cluster_features: Any, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Numba CPU twin of :func:`padded_track_features_ref`."""
    refs, start, n = np.asarray(refs), np.asarray(start), np.asarray(n)
    feats = np.asarray(cluster_features)
    check_tracks(refs, start, n)
    _check_features(feats, max_len)
    out = np.empty((len(n), int(max_len), feats.shape[1]), np.float32)
    mask = np.empty((len(n), int(max_len)), np.bool_)
    _padded_cpu(refs, start, n, feats, out, mask)
    return out, mask


@functools.cache
def _cuda_kernels():
    _cuda.bind_cuda(globals())

    @cuda.jit
    def padded(refs, start, n, feats, out, mask):
        i = cuda.grid(1)  # one thread per (track, slot)
        max_len = out.shape[1]
        if i < out.shape[0] * max_len:
            t = i // max_len
            k = i - t * max_len
            if k < n[t]:
                c = refs[np.int64(start[t]) + k]
                for f in range(out.shape[2]):
                    out[t, k, f] = feats[c, f]
                mask[t, k] = True
            else:
                for f in range(out.shape[2]):
                    out[t, k, f] = 0.0
                mask[t, k] = False

    return padded


def padded_track_features_gpu(
    refs: Any, start: Any, n: Any, cluster_features: Any, max_len: int, *, xp: Any = None
) -> tuple[Any, Any]:
    """numba.cuda twin of :func:`padded_track_features_ref`."""
    xp = _cuda.default_xp(xp)
    refs, start, n, feats = (xp.asarray(a) for a in (refs, start, n, cluster_features))
    check_tracks(refs, start, n)
    _check_features(feats, max_len)
    out = xp.empty((n.shape[0], int(max_len), feats.shape[1]), np.float32)
    mask = xp.empty((n.shape[0], int(max_len)), np.bool_)
    total = n.shape[0] * int(max_len)
    if total:
        _cuda_kernels()[_cuda.blocks(total), _cuda.THREADS_PER_BLOCK](
            refs, start, n, feats, out, mask
        )
    return out, mask


def padded_track_features(
    refs: Any,
    start: Any,
    n: Any,
    cluster_features: Any,
    max_len: int,
    *,
    backend: str | Backend = "cpu",
) -> tuple[Any, Any]:
    """``(features float32 (n_tracks, max_len, F), mask bool (n_tracks, max_len))``.

    ``cluster_features`` ``(n_clusters, F)`` any real dtype (cast to float32); ``refs``,
    ``start``, ``n`` the tracks' cluster references. See the module docstring for ordering
    and truncation.
    """
    be = get_backend(backend)
    if be.is_gpu:
        return padded_track_features_gpu(refs, start, n, cluster_features, max_len, xp=be.xp)
    return padded_track_features_cpu(refs, start, n, cluster_features, max_len)


__all__ = [
    "padded_track_features",
    "padded_track_features_cpu",
    "padded_track_features_gpu",
    "padded_track_features_ref",
]
