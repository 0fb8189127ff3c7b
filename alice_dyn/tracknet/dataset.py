"""Track-network datasets: the classical chain on simulated timeframes, labels and truth.

Layer: tracknet (uses the simulation's MC truth). :func:`classical_chain` runs, in memory,
exactly what the ``tpc-cluster-transform`` and ``tpc-tracker`` stages run (the transform
kernel for ``TPC/CLUSTERGLOBAL``; pad -> y, time -> z at t0 = 0 and
:func:`alice_dyn.reco.tpc_tracker.find_tracks` for the tracks), and the MC labels of
``tpc-track-mc-labels`` (:func:`~alice_dyn.reco.mc_labels.track_mc_labels`).

Classes (:data:`CLASSES`), as ``alice-dyn evaluate tracking`` defines them:

* ``fake`` (1): no label or purity < 0.9 (the 0x8000 MC-mask bit);
* ``good`` (0): not fake, not a looper leg (flag 0x2), and the primary track of its particle
  (most clusters, :func:`~alice_dyn.reco.mc_labels.primary_and_clones`);
* ``clone`` (2): not fake and not primary: a further main track of a particle that already
  has a better one, or a looper leg (0x2: by the tracker's own definition a later leg of a
  particle that has its own main track). Looper legs are reported apart by the evaluation
  and never counted as main tracks; labelling them ``clone`` keeps them out of ``good`` and
  ``fake`` without a fourth class (the network sees the 0x2 flag among its inputs).

Regression truth (:func:`truth_parameters`), for ``good`` tracks only (NaN otherwise):
q/pT and tgl of the MC particle at its production vertex; snp, y and z at the track's
reference x (sector frame ``alpha``) from the true helix propagated from the production vertex
without material (the exact circle of :func:`alice_dyn.reco.track_model.propagate`); z is
then shifted to the tracker's t0 = 0 convention by the drift of the collision time
(``z - side * t_coll * v_drift``). Targets of the network: ``(true - classical) / scale``
(scale: the classical sqrt(covariance), see :mod:`alice_dyn.tracknet.features`); targets
beyond :data:`MAX_ABS_TARGET` scales (a truth match on another leg) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.event.tracks import LOOPER_LEG, TPCTracks
from alice_dyn.physics.particles import B_TO_PT_GEV_PER_T_CM
from alice_dyn.reco.mc_labels import MIN_PURITY, primary_and_clones, track_mc_labels
from alice_dyn.reco.tpc_chain import global_clusters
from alice_dyn.reco.tpc_tracker import TPCTrackerParam, track_clusters
from alice_dyn.tpc.geometry import DEFAULT_GAS, TPCGasParam
from alice_dyn.tracknet.features import TARGETS, TrackInputs, track_inputs

CLASSES = ("good", "fake", "clone")
GOOD, FAKE, CLONE = 0, 1, 2
MAX_ABS_TARGET = 50.0


@dataclass
class ClassicalTF:
    """The classical chain's output for one timeframe (what the stages exchange)."""

    tracks: TPCTracks
    refs: np.ndarray  # TPC/CLUSREFS
    clusters: dict[str, np.ndarray]  # TPC/CLUSTERGLOBAL columns
    bfield_t: float


def classical_chain(
    tf: Timeframe, prm: TPCTrackerParam | None = None, gas: TPCGasParam = DEFAULT_GAS
) -> ClassicalTF:
    """Cluster transform + classical tracking of ``tf``: the steps the ``tpc-cluster-transform``
    and ``tpc-tracker`` stages run (:func:`~alice_dyn.reco.tpc_chain.global_clusters`,
    :func:`~alice_dyn.reco.tpc_tracker.track_clusters`), on the CPU."""
    cl = tf.clusters
    bfield_t = float(tf.meta.bfield_t)
    clusters = global_clusters(cl.records, cl.sector, cl.row, gas, backend="cpu")
    tracks, refs = track_clusters(
        cl.sector, cl.row, cl.records, gas, prm or TPCTrackerParam(), bfield_t
    )
    return ClassicalTF(tracks, refs, clusters, bfield_t)


def mc_labels(tf: Timeframe, c: ClassicalTF) -> tuple[np.ndarray, np.ndarray]:
    """``(mc_id (n,) int32, purity (n,) float32)`` as ``tpc-track-mc-labels``."""
    lab = track_mc_labels(tf.clusters.mc_label, c.refs, c.tracks.cluster_start, c.tracks.n_clusters)
    return lab["mc_id"], lab["purity"]


def track_labels(
    mc_id: np.ndarray, purity: np.ndarray, flags: np.ndarray, n_clusters: np.ndarray
) -> np.ndarray:
    """Class per track (:data:`CLASSES`, see the module docstring), ``(n,)`` int64."""
    fake = (np.asarray(mc_id) < 0) | (np.asarray(purity) < MIN_PURITY)
    looper = (np.asarray(flags).astype(np.int64) & LOOPER_LEG) != 0
    primary, _ = primary_and_clones(np.asarray(mc_id), ~looper & ~fake, n_clusters)
    return np.where(fake, FAKE, np.where(primary, GOOD, CLONE)).astype(np.int64)


def truth_parameters(
    tracks: TPCTracks, mc_id: np.ndarray, tf: Timeframe, gas: TPCGasParam = DEFAULT_GAS
) -> np.ndarray:
    """``(n, 5)`` true q/pT, tgl, snp, y, z of each track's particle (module docstring);
    NaN without a label or where the true helix does not reach the reference x."""
    n = len(tracks)
    out = np.full((n, len(TARGETS)), np.nan)
    ok = np.asarray(mc_id) >= 0
    if not ok.any():
        return out
    mc = tf.particles
    i = np.asarray(mc_id)[ok].astype(np.int64)
    f8 = np.float64
    px, py, pz = (np.asarray(a, f8)[i] for a in (mc.px_gev, mc.py_gev, mc.pz_gev))
    vx, vy, vz = (np.asarray(a, f8)[i] for a in (mc.vx_cm, mc.vy_cm, mc.vz_cm))
    q = np.asarray(mc.charge, f8)[i]
    t_coll = np.asarray(tf.collisions.time_ns, f8)[np.asarray(mc.collision, np.int64)[i]]
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        q2pt = q / pt
        tgl = pz / pt
        alpha = np.asarray(tracks.alpha_rad, f8)[ok]
        x_ref = np.asarray(tracks.x_cm, f8)[ok]
        ca, sa = np.cos(alpha), np.sin(alpha)
        xv, yv = vx * ca + vy * sa, -vx * sa + vy * ca
        phi = np.arctan2(py, px) - alpha
        f1, c1 = np.sin(phi), np.cos(phi)
        crv = -B_TO_PT_GEV_PER_T_CM * float(tf.meta.bfield_t) * q2pt
        dx = x_ref - xv
        f2 = f1 + crv * dx
        c2 = np.sqrt(np.clip(1.0 - f2 * f2, 0.0, None))
        reach = (c1 > 0) & (np.abs(f2) < 1.0) & (q != 0) & (pt > 0)
        y2 = yv + dx * (f1 + f2) / (c1 + c2)
        small = np.abs(crv * dx) < 1e-6
        ds = np.where(
            small,
            dx * (1.0 + 0.5 * ((f1 + f2) / (c1 + c2)) ** 2),
            (np.arcsin(np.clip(f2, -1, 1)) - np.arcsin(f1)) / np.where(crv == 0, 1.0, crv),
        )
        side = tracks.side()[ok]
        shift = side * t_coll / (gas.time_bin_us * 1e3) * gas.drift_cm_per_time_bin
        z2 = vz + tgl * ds - shift
    vals = np.column_stack([q2pt, tgl, f2, y2, z2])
    vals[~reach, 2:] = np.nan
    vals[~((q != 0) & (pt > 0))] = np.nan
    out[ok] = vals
    return out


@dataclass
class TrackDataset:
    """Tracks with network inputs, class labels and regression truth.

    ``labels`` ``(n,)`` (:data:`CLASSES`); ``truth`` ``(n, 5)`` (NaN where not defined);
    ``main`` ``(n,)`` not a looper leg; ``pt_true`` (GeV/c, NaN without label); ``source``
    index of the simulation setting in the mix; ``weight`` the inverse of the probability with
    which the track was kept when ``good`` tracks and looper legs were subsampled.
    """

    inputs: TrackInputs
    labels: np.ndarray
    truth: np.ndarray
    main: np.ndarray
    pt_true: np.ndarray
    source: np.ndarray
    weight: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    ARRAYS = ("labels", "truth", "main", "pt_true", "source", "weight")

    def take(self, index: np.ndarray) -> TrackDataset:
        return TrackDataset(
            self.inputs.take(index), *(getattr(self, a)[index] for a in self.ARRAYS), self.meta
        )

    @staticmethod
    def concatenate(parts: list[TrackDataset]) -> TrackDataset:
        return TrackDataset(
            TrackInputs.concatenate([p.inputs for p in parts]),
            *(np.concatenate([getattr(p, a) for p in parts]) for a in TrackDataset.ARRAYS),
            dict(parts[0].meta) if parts else {},
        )

    def regression_targets(self) -> np.ndarray:
        """``(n, 5)`` float64 ``(truth - classical) / scale``, NaN where not defined."""
        with np.errstate(invalid="ignore"):
            t = (self.truth - self.inputs.reco) / self.inputs.scale
        t[~(np.abs(t) <= MAX_ABS_TARGET)] = np.nan
        return t

    def targets(self) -> torch.Tensor:
        """``(n, 6)`` float32 training targets: class, then the regression targets."""
        t = np.column_stack([self.labels.astype(np.float64), self.regression_targets()])
        return torch.from_numpy(t.astype(np.float32))

    def save(self, path: str | Path) -> None:
        """``.npz`` (no pickled objects)."""
        arrays = {f"in_{k}": getattr(self.inputs, k) for k in TrackInputs.FIELDS}
        arrays.update({k: getattr(self, k) for k in self.ARRAYS})
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> TrackDataset:
        with np.load(path, allow_pickle=False) as z:
            inputs = TrackInputs(*(z[f"in_{k}"] for k in TrackInputs.FIELDS))
            return cls(inputs, *(z[k] for k in cls.ARRAYS))


def dataset_from_timeframe(
    tf: Timeframe,
    *,
    source: int = 0,
    keep_common: int | None = None,
    rng: np.random.Generator | None = None,
    chain: ClassicalTF | None = None,
) -> TrackDataset:
    """All tracks of ``tf`` (classical chain, labels, inputs, truth).

    ``keep_common``: keep at most about this many of the common tracks (``good`` and looper
    legs), chosen at random with ``rng``; fakes and main-track clones are always kept. The
    kept common tracks get ``weight = 1 / keep probability``.
    """
    c = chain or classical_chain(tf)
    mc_id, purity = mc_labels(tf, c)
    labels = track_labels(mc_id, purity, c.tracks.flags, c.tracks.n_clusters)
    main = (c.tracks.flags.astype(np.int64) & LOOPER_LEG) == 0
    n = len(labels)
    weight = np.ones(n)
    keep = np.ones(n, bool)
    common = (labels == GOOD) | ~main
    if keep_common is not None and common.sum() > keep_common:
        p = keep_common / common.sum()
        rng = rng or np.random.default_rng(0)
        keep = ~common | (rng.random(n) < p)
        weight[common] = 1.0 / p
    idx = np.flatnonzero(keep)
    # take() keeps cluster_start, which indexes the full reference array
    tracks = c.tracks.take(idx) if len(idx) < n else c.tracks
    inputs = track_inputs(tracks, c.refs, c.clusters, c.bfield_t)
    truth = truth_parameters(tracks, mc_id[idx], tf)
    truth[labels[idx] != GOOD] = np.nan
    pt_true = np.full(len(idx), np.nan)
    lab = mc_id[idx]
    ok = lab >= 0
    mc = tf.particles
    pt_true[ok] = np.hypot(
        np.asarray(mc.px_gev, np.float64)[lab[ok]], np.asarray(mc.py_gev, np.float64)[lab[ok]]
    )
    return TrackDataset(
        inputs, labels[idx], truth, main[idx], pt_true, np.full(len(idx), source, np.int16),
        weight[idx],
    )  # fmt: skip
