"""Inputs of the track network: one implementation for the training data and the stage.

Layer: tracknet. :func:`track_inputs` turns the classical tracker's output (``TPC/TRACKS``,
``TPC/CLUSREFS``) and the clusters in global coordinates (``TPC/CLUSTERGLOBAL`` columns x, y,
z, sector, row, q_tot, q_max) into

* per-cluster features in pad-row slots, ``(n_tracks, 152, 11)`` float32, and the mask
  ``(n_tracks, 152)`` (:func:`alice_dyn.kernels.track_features.track_cluster_features`: row,
  position across the sector, z relative to the reference, log qTot, log qMax, residuals to
  the fitted helix in the bending plane and in z, sector crossing, path along the helix, missing
  rows before the cluster, local direction);
* per-track scalars ``(n_tracks, 17)`` float32 (:data:`TRACK_FEATURES`): the classical fit's
  q/pT (c/GeV), tgl, snp, reference radius / 250 cm, log(1 + chi2/ndf), clusters / 152, the
  log square roots of the covariance diagonal (y, z, snp, tgl; q/pT relative to max(|q/pT|,
  0.05)), the crossed / looper-leg / both-sides flags, first and last pad row / 152 and the
  fraction of rows in between that have a cluster;
* the classical parameters the network refines, ``reco`` ``(n, 5)`` float64 in the order of
  :data:`TARGETS` (q/pT, tgl, snp, y, z), and their scales ``(n, 5)``: the square roots of the
  covariance diagonal, floored at :data:`SCALE_FLOOR`. The network predicts
  ``(true - reco) / scale``.

:class:`FeatureScaler` standardises both (cluster features over real clusters only) and makes
the network's input dict ``{"track", "clusters", "mask"}``.

With ``lazy_clusters=True`` (the stage) the cluster features are not built up front:
``TrackInputs.clusters`` is a :class:`ClusterSource` and the input dict's ``clusters`` a
:class:`ClusterChunks`, which builds the scaled features of pad rows ``[lo, hi)`` for the tracks
still in the batch when a block of the network asks for them. With the progressive network an
early exit then also saves the input building of the rows it did not read. The values are
those of the eager path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alice_dyn.event.tracks import CROSSED_SECTOR, HAS_A_SIDE, HAS_C_SIDE, LOOPER_LEG, TPCTracks
from alice_dyn.kernels.backends import Backend
from alice_dyn.kernels.track_features import (
    CLUSTER_FEATURES,
    N_CLUSTER_FEATURES,
    N_SLOTS,
    track_cluster_features,
)

TRACK_FEATURES = (
    "q2pt", "tgl", "snp", "x_ref", "log_chi2_ndf", "ncl", "log_sig_y", "log_sig_z",
    "log_sig_snp", "log_sig_tgl", "log_rel_sig_q2pt", "crossed", "looper_leg", "both_sides",
    "first_row", "last_row", "fill",
)  # fmt: skip
N_TRACK_FEATURES = len(TRACK_FEATURES)
#: refined parameters, in this order
TARGETS = ("q2pt", "tgl", "snp", "y", "z")
#: packed covariance index (O2 order) of each target's variance
COV_DIAG = (14, 9, 5, 0, 2)
#: smallest scale per target (c/GeV, -, -, cm, cm)
SCALE_FLOOR = (1e-4, 1e-4, 1e-4, 1e-3, 1e-3)
__all__ = [
    "CLUSTER_FEATURES",
    "N_CLUSTER_FEATURES",
    "N_SLOTS",
    "N_TRACK_FEATURES",
    "TARGETS",
    "TRACK_FEATURES",
    "ClusterChunks",
    "ClusterSource",
    "FeatureScaler",
    "TrackInputs",
    "track_inputs",
]


@dataclass
class ClusterSource:
    """What :func:`~alice_dyn.kernels.track_features.track_cluster_features` needs to build
    the cluster features of ``n`` tracks later, pad rows ``[lo, hi)`` and tracks at a time.

    ``built`` counts the (track, pad-row) slots built so far (input work actually done).
    """

    refs: np.ndarray
    start: np.ndarray  # (n,)
    n_clusters: np.ndarray  # (n,)
    track_par: np.ndarray  # (n, 7) float64: x, alpha, y, z, snp, tgl, q2pt
    xyzq: np.ndarray  # (n_clusters, 5) float64
    sector: np.ndarray
    row: np.ndarray
    bfield_t: float
    backend: str | Backend = "cpu"
    built: int = 0

    def __len__(self) -> int:
        return len(self.start)

    def features(
        self, rows: tuple[int, int] = (0, N_SLOTS), tracks: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(features (m, hi - lo, 11) float32, mask (m, hi - lo) bool)`` on the host for
        ``tracks`` (indices; default all) and pad rows ``rows``."""
        start, ncl, par = self.start, self.n_clusters, self.track_par
        if tracks is not None:
            start, ncl, par = start[tracks], ncl[tracks], par[tracks]
        feats, mask = track_cluster_features(
            self.refs, start, ncl, par, self.xyzq, self.sector, self.row, self.bfield_t, rows,
            backend=self.backend,
        )  # fmt: skip
        if hasattr(feats, "get"):  # CuPy -> host
            feats, mask = feats.get(), mask.get()
        self.built += len(start) * (rows[1] - rows[0])
        return feats, mask


@dataclass
class TrackInputs:
    """Unscaled network inputs and the classical parameters of ``n`` tracks."""

    clusters: np.ndarray | ClusterSource  # (n, 152, 11) float32, or built on demand
    mask: np.ndarray | None  # (n, 152) bool (None with a ClusterSource)
    track: np.ndarray  # (n, 17) float32
    reco: np.ndarray  # (n, 5) float64: q2pt, tgl, snp, y, z of the classical fit
    scale: np.ndarray  # (n, 5) float64: their sqrt(covariance) (floored)

    FIELDS = ("clusters", "mask", "track", "reco", "scale")

    def __len__(self) -> int:
        return len(self.track)

    def take(self, index: np.ndarray) -> TrackInputs:
        return TrackInputs(
            self.clusters[index], self.mask[index], self.track[index], self.reco[index],
            self.scale[index],
        )  # fmt: skip

    @staticmethod
    def concatenate(parts: list[TrackInputs]) -> TrackInputs:
        return TrackInputs(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in TrackInputs.FIELDS)
        )


def cluster_arrays(clusters: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """``(xyzq (n, 5) float64, sector, row)`` from ``TPC/CLUSTERGLOBAL``-like columns."""
    xyzq = np.column_stack(
        [np.asarray(clusters[k], np.float64) for k in ("x", "y", "z", "q_tot", "q_max")]
    )
    return xyzq, np.asarray(clusters["sector"]), np.asarray(clusters["row"])


def track_inputs(
    tracks: TPCTracks,
    refs: np.ndarray,
    clusters: Mapping[str, np.ndarray],
    bfield_t: float,
    *,
    backend: str | Backend = "cpu",
    lazy_clusters: bool = False,
) -> TrackInputs:
    """The network inputs of ``tracks`` (see the module docstring); ``lazy_clusters``: a
    :class:`ClusterSource` instead of the cluster features (built when the network reads them)."""
    n = len(tracks)
    xyzq, sector, row = cluster_arrays(clusters)
    f8 = np.float64
    par = np.column_stack(
        [np.asarray(getattr(tracks, k), f8)
         for k in ("x_cm", "alpha_rad", "y_cm", "z_cm", "snp", "tgl", "q2pt")]
    ).reshape(n, 7)  # fmt: skip
    refs = np.asarray(refs)
    start = np.asarray(tracks.cluster_start)
    ncl = np.asarray(tracks.n_clusters)
    source = ClusterSource(refs, start, ncl, par, xyzq, sector, row, float(bfield_t), backend)
    feats, mask = (source, None) if lazy_clusters else source.features()
    cov = np.asarray(tracks.cov, f8).reshape(n, 15)
    sig = np.sqrt(np.maximum(cov, 0.0))
    q2pt = par[:, 6]
    ncl_f = ncl.astype(f8)
    ndf = np.maximum(2.0 * ncl_f - 5.0, 1.0)
    chi2 = np.asarray(tracks.chi2, f8)
    has = ncl > 0
    first_row, last_row = np.zeros(n), np.zeros(n)
    if has.any():
        first_row[has] = row[refs[start[has]]]
        last_row[has] = row[refs[start[has] + ncl[has] - 1]]
    flags = np.asarray(tracks.flags).astype(np.int64)
    tiny = 1e-12
    track = np.column_stack(
        [
            np.clip(q2pt, -20.0, 20.0),
            par[:, 5],
            par[:, 4],
            par[:, 0] / 250.0,
            np.log1p(np.clip(chi2 / ndf, 0.0, 1e3)),
            ncl_f / N_SLOTS,
            np.log(sig[:, 0] + tiny),
            np.log(sig[:, 2] + tiny),
            np.log(sig[:, 5] + tiny),
            np.log(sig[:, 9] + tiny),
            np.log(sig[:, 14] / np.maximum(np.abs(q2pt), 0.05) + tiny),
            (flags & CROSSED_SECTOR) != 0,
            (flags & LOOPER_LEG) != 0,
            ((flags & HAS_A_SIDE) != 0) & ((flags & HAS_C_SIDE) != 0),
            first_row / N_SLOTS,
            last_row / N_SLOTS,
            ncl_f / np.maximum(last_row - first_row + 1.0, 1.0),
        ]
    ).reshape(n, N_TRACK_FEATURES)
    reco = np.column_stack([q2pt, par[:, 5], par[:, 4], par[:, 2], par[:, 3]]).reshape(n, 5)
    scale = np.maximum(sig[:, list(COV_DIAG)], np.asarray(SCALE_FLOOR)).reshape(n, 5)
    return TrackInputs(feats, mask, track.astype(np.float32), reco, scale)


@dataclass
class FeatureScaler:
    """Standardisation of the track scalars and of the cluster features (real clusters)."""

    track_mean: list[float]
    track_std: list[float]
    cluster_mean: list[float]
    cluster_std: list[float]

    @classmethod
    def fit(cls, x: TrackInputs, max_tracks: int = 50000, seed: int = 0) -> FeatureScaler:
        idx = np.arange(len(x))
        if len(idx) > max_tracks:
            idx = np.sort(np.random.default_rng(seed).choice(idx, max_tracks, replace=False))
        t = x.track[idx].astype(np.float64)
        c = x.clusters[idx][x.mask[idx]].astype(np.float64)
        if len(c) < 2:
            c = np.zeros((2, N_CLUSTER_FEATURES))
        return cls(
            t.mean(0).tolist(),
            np.maximum(t.std(0), 1e-3).tolist(),
            c.mean(0).tolist(),
            np.maximum(c.std(0), 1e-3).tolist(),
        )

    def tensors(self, x: TrackInputs) -> dict[str, Any]:
        """``{"track": (n, 17), "clusters": (n, 152, 11) (zero in empty slots), "mask":
        (n, 152)}``, float32 tensors; with a :class:`ClusterSource`, ``{"track", "clusters":
        ClusterChunks}``."""
        f4 = np.float32
        t = (x.track - np.asarray(self.track_mean, f4)) / np.asarray(self.track_std, f4)
        out: dict[str, Any] = {"track": torch.from_numpy(np.ascontiguousarray(t, f4))}
        if isinstance(x.clusters, ClusterSource):
            out["clusters"] = ClusterChunks(x.clusters, self)
            return out
        assert x.mask is not None
        out["clusters"], out["mask"] = self.cluster_tensors(x.clusters, x.mask)
        return out

    def cluster_tensors(
        self, clusters: np.ndarray, mask: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled cluster features (zero in empty slots) and the float mask, as tensors."""
        f4 = np.float32
        c = (clusters - np.asarray(self.cluster_mean, f4)) / np.asarray(self.cluster_std, f4)
        c *= mask[..., None]
        return torch.from_numpy(np.ascontiguousarray(c, f4)), torch.from_numpy(mask.astype(f4))

    def to_json(self) -> dict:
        return {
            "kind": "standard",
            "track_features": list(TRACK_FEATURES),
            "cluster_features": list(CLUSTER_FEATURES),
            "track_mean": self.track_mean,
            "track_std": self.track_std,
            "cluster_mean": self.cluster_mean,
            "cluster_std": self.cluster_std,
        }

    @classmethod
    def from_json(cls, d: dict) -> FeatureScaler:
        if list(d.get("track_features", TRACK_FEATURES)) != list(TRACK_FEATURES) or list(
            d.get("cluster_features", CLUSTER_FEATURES)
        ) != list(CLUSTER_FEATURES):
            raise ValueError("the model was trained on other features than this code makes")
        return cls(d["track_mean"], d["track_std"], d["cluster_mean"], d["cluster_std"])


class ClusterChunks:
    """The ``clusters`` network input built on demand: :meth:`rows` gives the scaled features
    and mask of pad rows ``[lo, hi)`` for the tracks still in the batch (``index`` into the
    source's tracks); compaction (:meth:`take_rows`, used by :func:`alice_dyn.nn.take`) keeps
    the rows of the remaining tracks without building anything."""

    def __init__(
        self, source: ClusterSource, scaler: FeatureScaler, index: np.ndarray | None = None
    ):
        self.source = source
        self.scaler = scaler
        self.all_tracks = index is None
        self.index = np.arange(len(source)) if index is None else index

    def __len__(self) -> int:
        return len(self.index)

    def take_rows(self, idx: torch.Tensor) -> ClusterChunks:
        return ClusterChunks(self.source, self.scaler, self.index[idx.cpu().numpy()])

    def rows(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (m, hi - lo, 11), mask (m, hi - lo))`` float32 tensors."""
        feats, mask = self.source.features((lo, hi), None if self.all_tracks else self.index)
        return self.scaler.cluster_tensors(feats, mask)
