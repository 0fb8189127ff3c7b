"""MC labels of reconstructed tracks: the majority particle of their clusters, fakes, clones.

Layer: reco (MC truth association, as O2's TPC/TRACKSMCLBL). A track's label is the particle
that left most of its clusters and its purity that share; a purity below
:data:`MIN_PURITY` (or no labelled cluster) sets the fake bit :data:`MC_MASK_FAKE` of O2's MC
mask. Among the good tracks of one particle the one with most clusters is its primary track,
the others are clones. Used by the ``tpc-track-mc-labels`` stage, the evaluation and the
training datasets alike.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: O2's fMcMask bit of a fake track: fewer than MIN_PURITY of the clusters from the particle
MC_MASK_FAKE = 0x8000
MIN_PURITY = 0.9


@njit(cache=True)
def majority_labels(labels, refs, start, n):
    """Per track: most frequent label (>= 0) among its clusters and its share.

    ``labels`` ``(n_clusters,)`` int32 (-1: noise or no truth), ``refs`` the tracks' cluster
    indices, ``start``/``n`` ``(n_tracks,)`` int64 into ``refs``; returns ``(mc_id (n_tracks,)
    int32, purity (n_tracks,) float32)``."""
    n_tr = start.shape[0]
    out = np.full(n_tr, -1, np.int32)
    purity = np.zeros(n_tr, np.float32)
    for t in range(n_tr):
        lab = np.sort(labels[refs[start[t] : start[t] + n[t]]])
        best, best_n, cur, cur_n = -1, 0, -1, 0
        for v in lab:
            if v < 0:
                continue
            if v == cur:
                cur_n += 1
            else:
                cur, cur_n = v, 1
            if cur_n > best_n:
                best, best_n = cur, cur_n
        out[t] = best
        purity[t] = best_n / max(n[t], 1)
    return out, purity


def track_mc_labels(
    cluster_labels: np.ndarray, refs: np.ndarray, cluster_start: np.ndarray, n_clusters: np.ndarray
) -> dict[str, np.ndarray]:
    """TPC/TRACKSMCLBL of tracks: ``mc_id`` (int32, -1 none), ``purity`` (float32) and ``mask``
    (uint16, :data:`MC_MASK_FAKE` below :data:`MIN_PURITY` or without a label), one per track."""
    mc_id, purity = majority_labels(
        np.ascontiguousarray(cluster_labels, dtype=np.int32),
        np.ascontiguousarray(refs),
        np.asarray(cluster_start).astype(np.int64),
        np.asarray(n_clusters).astype(np.int64),
    )
    mask = np.where((purity < MIN_PURITY) | (mc_id < 0), MC_MASK_FAKE, 0).astype(np.uint16)
    return {"mc_id": mc_id, "purity": purity, "mask": mask}


def primary_and_clones(
    label: np.ndarray, good: np.ndarray, ncls: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Masks ``(n,)`` of the first good track per particle (most clusters; lowest index on
    ties) and of the other good tracks (clones)."""
    idx = np.flatnonzero(good)
    order = np.lexsort((idx, -np.asarray(ncls, np.int64)[idx], label[idx]))
    idx = idx[order]
    first = np.ones(len(idx), bool)
    first[1:] = label[idx][1:] != label[idx][:-1]
    primary = np.zeros(len(label), bool)
    clone = np.zeros(len(label), bool)
    primary[idx[first]] = True
    clone[idx[~first]] = True
    return primary, clone


__all__ = [
    "MC_MASK_FAKE",
    "MIN_PURITY",
    "majority_labels",
    "primary_and_clones",
    "track_mc_labels",
]
