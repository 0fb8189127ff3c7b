"""The dynamic-depth track network: one early-exit model classifying and refining candidates.

Layer: tracknet (on the physics-free :mod:`alice_dyn.nn`). Inputs: the dict of
:meth:`alice_dyn.tracknet.features.FeatureScaler.tensors` — ``track`` ``(n, 17)``,
``clusters`` ``(n, 152, 11)`` in pad-row slots and ``mask`` ``(n, 152)``. Every exit head
(:class:`TrackHead`, a :class:`~alice_dyn.nn.ClassGaussianHead`) gives the logits of
good / fake / clone and, for q/pT, tgl, snp, y, z, a Gaussian mean and log-variance of the
correction ``(true - classical) / scale`` (:class:`~alice_dyn.nn.ClassGaussianObjective`).

Two variants, same per-cluster encoder (:class:`ClusterEncoder`: ``Linear(11, dc) -> GELU ->
Linear(dc, dc)`` on every slot, then masked mean and max pooling):

* ``depth`` (:func:`tracknet_depth`): the stem encodes all 152 slots and the track scalars
  into ``h`` ``(n, d)``; residual MLP blocks follow with an exit after each. An early exit
  saves only the blocks after it; the encoder is always paid.
* ``progressive`` (:func:`tracknet_progressive`): the stem embeds the track scalars only;
  block ``k`` (:class:`ChunkBlock`) encodes the next chunk of pad rows, outer rows first
  (:data:`CHUNKS`: rows 114-151, 76-113, 38-75, 0-37), accumulates the pooling statistics
  (sum, count, max) of all rows read so far, adds their projection to ``h`` and applies a
  residual MLP block; an exit follows every chunk. A track that leaves after chunk ``k`` never
  has its inner rows encoded. Its ``h`` is a dict ``{"h", "clusters", "mask", "sum", "count",
  "max"}`` (the raw inputs and running statistics ride along for the later blocks; compaction
  takes their rows). ``clusters`` may also be a
  :class:`~alice_dyn.tracknet.features.ClusterChunks` (``mask`` None), which builds a chunk's
  features only for the tracks that reach its block.

:class:`TrackNet` adds ``embedding(h)`` (the ``(n, d)`` part of ``h``), so
``run_dynamic(..., keep_embedding=True)`` returns the embedding at each track's exit.
FLOPs are counted from the layers (:mod:`alice_dyn.nn.flops`): the encoders run on every slot
of their rows, padding included, exactly as computed.

The ``track-net`` stage and the CLI see a saved network through :class:`TrackNetPredictor`
(:func:`load_track_predictor`; tracks in, physics quantities out) and read its embedding width
with :func:`track_embedding_dim` (from ``config.json``, no weights loaded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.io import BadInputError
from alice_dyn.nn import (
    ClassGaussianHead,
    ClassGaussianObjective,
    ConfidencePolicy,
    EarlyExitNet,
    ModelFileError,
    batch_size,
    create_model,
    load_model,
    read_config,
    register_model,
    run_dynamic,
    take,
)
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.nn.mlp import ResidualMLPBlock
from alice_dyn.tracknet.features import (
    N_CLUSTER_FEATURES,
    N_SLOTS,
    N_TRACK_FEATURES,
    TARGETS,
    ClusterChunks,
    FeatureScaler,
    TrackInputs,
    track_inputs,
)

DEFAULT_MODEL_DIR = Path(__file__).parent / "data" / "default_model"
N_CLASSES = 3
N_TARGETS = len(TARGETS)
#: pad-row ranges read by the progressive variant's blocks, outer first
CHUNKS = ((114, 152), (76, 114), (38, 76), (0, 38))
VARIANTS = ("progressive", "depth")
#: width ``d`` of the track embedding when a model's kwargs do not set it (the builders' default)
DEFAULT_D = 64


class ClusterEncoder(nn.Module):
    """Per-slot MLP and masked pooling statistics: ``(n, L, F)`` + mask ``(n, L)`` ->
    ``(sum (n, dc), count (n, 1), max (n, dc))`` over the real clusters (max ``-1e4`` where
    there is none); :func:`pooled` turns them into mean and max."""

    def __init__(self, n_features: int, dc: int):
        super().__init__()
        self.dc = int(dc)
        self.fc1 = nn.Linear(n_features, dc)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dc, dc)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        e = self.fc2(self.act(self.fc1(x)))
        m = mask.unsqueeze(-1)
        return (e * m).sum(1), m.sum(1), (e + (m - 1.0) * 1e4).amax(1)

    def flops(self, args: tuple, output: tuple) -> int:
        """Own operations: masked sum (multiply, add), count, mask bias (2), add, max."""
        n, length = args[1].shape
        return n * length * (self.dc * 4 + 3)


def slot_rows(clusters: Any, mask: Tensor | None, lo: int, hi: int) -> tuple[Tensor, Tensor]:
    """Pad rows ``[lo, hi)`` of the cluster input: a slice of the ``(n, 152, 11)`` tensor and
    its mask, or built on demand by a :class:`~alice_dyn.tracknet.features.ClusterChunks`."""
    if isinstance(clusters, ClusterChunks):
        return clusters.rows(lo, hi)
    return clusters[:, lo:hi], mask[:, lo:hi]  # type: ignore[index]


def pooled(total: Tensor, count: Tensor, mx: Tensor) -> Tensor:
    """``(n, 2 dc)``: mean and max of the encoded clusters (zeros for a track without any)."""
    return torch.cat([total / count.clamp_min(1.0), mx * (count > 0)], dim=-1)


def pooled_flops(n: int, dc: int) -> int:
    """FLOPs of :func:`pooled` for ``n`` tracks: clamp, divide, compare, multiply."""
    return n * (2 + 2 * dc)


class TrackStem(nn.Module):
    """Depth-only stem: ``LayerNorm(W_p pool(encoder(clusters)) + W_t track)`` ``(n, d)``."""

    def __init__(self, n_track: int, n_cluster: int, d: int, dc: int):
        super().__init__()
        self.dc = int(dc)
        self.encoder = ClusterEncoder(n_cluster, dc)
        self.pool_proj = nn.Linear(2 * dc, d)
        self.track_proj = nn.Linear(n_track, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        p = pooled(*self.encoder(*slot_rows(inputs["clusters"], inputs.get("mask"), 0, N_SLOTS)))
        return self.norm(self.pool_proj(p) + self.track_proj(inputs["track"]))

    def flops(self, args: tuple, output: Tensor) -> int:
        return pooled_flops(output.shape[0], self.dc) + output.numel()  # pooling, the sum

    def example_inputs(self, batch: int = 2, generator: torch.Generator | None = None) -> dict:
        return example_inputs(batch, generator)


class ProgressiveStem(nn.Module):
    """Progressive stem: ``h = LayerNorm(W_t track)``; passes the clusters on unread, with
    empty pooling statistics (sum, count, max) for the blocks to accumulate."""

    def __init__(self, n_track: int, d: int, dc: int):
        super().__init__()
        self.dc = int(dc)
        self.track_proj = nn.Linear(n_track, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        h = self.norm(self.track_proj(inputs["track"]))
        n = h.shape[0]
        return {
            "h": h,
            "clusters": inputs["clusters"],
            "mask": inputs.get("mask"),
            "sum": h.new_zeros(n, self.dc),
            "count": h.new_zeros(n, 1),
            "max": h.new_full((n, self.dc), -1e4),
        }

    def example_inputs(self, batch: int = 2, generator: torch.Generator | None = None) -> dict:
        return example_inputs(batch, generator)


class ChunkBlock(nn.Module):
    """Reads pad rows ``[lo, hi)``: encodes them, adds their statistics to the running ones
    (all rows read so far) and updates ``h <- MLPBlock(h + W pool(running statistics))``."""

    def __init__(self, lo: int, hi: int, n_cluster: int, d: int, dc: int, expansion: float):
        super().__init__()
        self.lo, self.hi, self.dc = int(lo), int(hi), int(dc)
        self.encoder = ClusterEncoder(n_cluster, dc)
        self.fuse = nn.Linear(2 * dc, d)
        self.block = ResidualMLPBlock(d, expansion=expansion)

    def forward(self, h: Mapping[str, Tensor]) -> dict[str, Tensor]:
        total, count, mx = self.encoder(*slot_rows(h["clusters"], h["mask"], self.lo, self.hi))
        total, count, mx = h["sum"] + total, h["count"] + count, torch.maximum(h["max"], mx)
        e = self.block(h["h"] + self.fuse(pooled(total, count, mx)))
        return {**h, "h": e, "sum": total, "count": count, "max": mx}

    def flops(self, args: tuple, output: dict) -> int:
        """Own operations: running statistics (add, add, max), pooling, adding to ``h``."""
        n = output["h"].shape[0]
        return n * (2 * self.dc + 1) + pooled_flops(n, self.dc) + output["h"].numel()


class MLPBlock(ResidualMLPBlock):
    """Residual MLP block of the depth-only variant."""


class TrackHead(ClassGaussianHead):
    """Multi-task exit head on ``h`` (a tensor, or the ``"h"`` entry of the progressive dict)."""

    def forward(self, h: Any, prev: Tensor | None = None) -> Tensor:
        return super().forward(h["h"] if isinstance(h, Mapping) else h, prev)


class TrackNet(EarlyExitNet):
    """:class:`~alice_dyn.nn.EarlyExitNet` whose ``embedding(h)`` is the ``(n, d)`` track
    embedding (``run_dynamic(..., keep_embedding=True)``)."""

    variant: str = ""
    #: width ``d`` of the track embedding ``(n, d)`` (set by the builders)
    embedding_dim: int = 0

    def embedding(self, h: Any) -> Tensor:
        return h["h"] if isinstance(h, Mapping) else h


def example_inputs(batch: int = 2, generator: torch.Generator | None = None) -> dict:
    """Random inputs of the network's form (about 60% of the slots filled)."""
    return {
        "track": torch.randn(batch, N_TRACK_FEATURES, generator=generator),
        "clusters": torch.randn(batch, N_SLOTS, N_CLUSTER_FEATURES, generator=generator),
        "mask": (torch.rand(batch, N_SLOTS, generator=generator) < 0.6).float(),
    }


def _objective(
    class_weights: Sequence[float] | None, regression_weight: float
) -> ClassGaussianObjective:
    return ClassGaussianObjective(
        N_CLASSES,
        N_TARGETS,
        class_weights=class_weights,
        regression_weight=regression_weight,
        exit_targets=(0,),  # the uncertainty policy looks at sigma(q/pT)
    )


@register_model("tracknet_depth")
def tracknet_depth(
    d: int = DEFAULT_D,
    dc: int = 32,
    depth: int = 4,
    expansion: float = 2.0,
    class_weights: Sequence[float] | None = None,
    regression_weight: float = 1.0,
) -> TrackNet:
    """Depth-only variant: all clusters encoded in the stem, exits after residual blocks."""
    stem = TrackStem(N_TRACK_FEATURES, N_CLUSTER_FEATURES, d, dc)
    blocks = [MLPBlock(d, expansion=expansion) for _ in range(depth)]
    heads = [TrackHead(d, N_CLASSES, N_TARGETS) for _ in range(depth)]
    net = TrackNet(
        stem,
        blocks,
        heads,
        exit_after=range(depth),
        objective=_objective(class_weights, regression_weight),
    )
    net.variant, net.embedding_dim = "depth", int(d)
    return net


@register_model("tracknet_progressive")
def tracknet_progressive(
    d: int = DEFAULT_D,
    dc: int = 32,
    expansion: float = 2.0,
    chunks: Sequence[Sequence[int]] = CHUNKS,
    class_weights: Sequence[float] | None = None,
    regression_weight: float = 1.0,
) -> TrackNet:
    """Progressive variant: one block per chunk of pad rows (outer first), an exit after each."""
    stem = ProgressiveStem(N_TRACK_FEATURES, d, dc)
    blocks = [ChunkBlock(lo, hi, N_CLUSTER_FEATURES, d, dc, expansion) for lo, hi in chunks]
    heads = [TrackHead(d, N_CLASSES, N_TARGETS) for _ in chunks]
    net = TrackNet(
        stem,
        blocks,
        heads,
        exit_after=range(len(chunks)),
        objective=_objective(class_weights, regression_weight),
    )
    net.variant, net.embedding_dim = "progressive", int(d)
    return net


def build(variant: str, **kw: Any) -> TrackNet:
    """A fresh network of ``variant`` (``progressive`` or ``depth``) with the recorded config."""
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r}: one of {VARIANTS}")
    return create_model(f"tracknet_{variant}", **kw)


# ------------------------------------------------------------------------------ inference
@dataclass
class TrackNetOutput:
    """Network results for ``n`` tracks.

    ``probs`` ``(n, 3)`` float32 (good, fake, clone); ``exit_index`` ``(n,)``; ``flops``
    ``(n,)`` FLOPs spent per track; ``refined`` / ``sigma`` ``(n, 5)`` float64 refined q/pT
    (c/GeV), tgl, snp, y, z (cm) and their predicted uncertainties; ``embedding`` ``(n, d)``
    float32 at each track's exit (with ``keep_embedding``); ``full_flops`` per track of the
    network without exits.
    """

    probs: np.ndarray
    exit_index: np.ndarray
    flops: np.ndarray
    refined: np.ndarray
    sigma: np.ndarray
    full_flops: float
    embedding: np.ndarray | None = None


def outputs_to_physics(
    objective: ClassGaussianObjective, out: Tensor, reco: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(probs (n, 3), refined (n, 5), sigma (n, 5))`` from exit outputs ``(n, 13)``."""
    probs = objective.probabilities(out).numpy()
    mean = objective.regression(out).double().numpy()
    sig = objective.sigma(out).double().numpy()
    return probs, reco + scale * mean, scale * sig


@torch.no_grad()
def predict(
    model: TrackNet,
    x: dict[str, Tensor],
    reco: np.ndarray,
    scale: np.ndarray,
    policy: Any = None,
    *,
    keep_embedding: bool = False,
    chunk: int = 8192,
) -> TrackNetOutput:
    """Batched dynamic inference (``policy`` None: the full network, last exit) on the scaled
    inputs ``x``, in chunks of ``chunk`` tracks."""
    policy = ConfidencePolicy(2.0) if policy is None else policy  # 2.0: nobody leaves early
    n = len(reco)
    outs, idx, flops, embs = [], [], [], []
    for s in range(0, n, chunk):
        part = take(x, torch.arange(s, min(n, s + chunk)))
        res = run_dynamic(model, part, policy, keep_embedding=keep_embedding)
        outs.append(res.outputs)
        idx.append(res.exit_index.numpy())
        flops.append(res.flops.numpy())
        if keep_embedding:
            embs.append(res.embedding.float().numpy())
    if not outs:
        e = np.zeros((0, model.embedding_dim), np.float32) if keep_embedding else None
        full = exit_flops_for(model, example_inputs(1)).full_flops
        return TrackNetOutput(
            np.zeros((0, N_CLASSES), np.float32), np.zeros(0, np.int64), np.zeros(0),
            np.zeros((0, N_TARGETS)), np.zeros((0, N_TARGETS)), full, e,
        )  # fmt: skip
    probs, refined, sigma = outputs_to_physics(model.objective, torch.cat(outs), reco, scale)
    return TrackNetOutput(
        probs.astype(np.float32), np.concatenate(idx), np.concatenate(flops), refined, sigma,
        exit_flops_for(model, x).full_flops, np.concatenate(embs) if keep_embedding else None,
    )  # fmt: skip


@torch.no_grad()
def all_exit_outputs(model: TrackNet, x: dict[str, Tensor], chunk: int = 8192) -> Tensor:
    """``(num_exits, n, 13)`` every exit's outputs for every track (to study many policies
    without re-running the network; the choice of exit is then :func:`select_exits`)."""
    n = batch_size(x)
    parts = [
        torch.stack(model.forward_all(take(x, torch.arange(s, min(n, s + chunk)))))
        for s in range(0, n, chunk)
    ]
    if not parts:
        return torch.zeros(model.num_exits, 0, model.objective.out_dim)
    return torch.cat(parts, dim=1)


def _load_saved(directory: str | Path) -> tuple[TrackNet, dict]:
    """:func:`alice_dyn.nn.load_model`; an unusable directory is the user's to fix
    (:class:`~alice_dyn.io.BadInputError`, one line naming the file)."""
    try:
        return load_model(directory)
    except ModelFileError as exc:
        raise BadInputError(exc.path, None, exc.problem) from None


def load_track_net(directory: str | Path | None = None) -> tuple[TrackNet, FeatureScaler, dict]:
    """``(model, scaler, config)`` of a saved track network (default: the shipped one)."""
    model, cfg = _load_saved(directory or DEFAULT_MODEL_DIR)
    return model, FeatureScaler.from_json(cfg["feature_scaling"]), cfg


def track_embedding_dim(model_dir: str | Path | None = None) -> int:
    """Width ``d`` of the track embedding ``(n, d)`` of a saved track network (default: the
    shipped one), from its ``config.json`` without loading the weights."""
    try:
        config = read_config(model_dir or DEFAULT_MODEL_DIR)
    except ModelFileError as exc:
        raise BadInputError(exc.path, None, exc.problem) from None
    kwargs = config["model"].get("kwargs", {})
    return int(kwargs.get("d", DEFAULT_D))


@dataclass
class TrackNetPredictor:
    """A saved track network as the ``track-net`` stage and the CLI use it.

    ``model``: the early-exit network; ``config``: its ``config.json`` (thresholds, level
    curve, reject thresholds). The feature scaling is internal: callers hand in the classical
    tracks and get the network's inputs, then turn its exit outputs into physics quantities.
    """

    model: TrackNet
    scaler: FeatureScaler
    config: dict

    @property
    def embedding_dim(self) -> int:
        """Width ``d`` of the track embedding ``(n, d)``."""
        return self.model.embedding_dim

    def inputs_from_tracks(
        self,
        tracks: TPCTracks,
        refs: np.ndarray,
        clusters: Mapping[str, np.ndarray],
        bfield_t: float,
    ) -> tuple[TrackInputs, dict[str, Any]]:
        """``(unscaled inputs, network input dict)`` of ``tracks`` (:func:`track_inputs`); the
        cluster features are built chunk by chunk, only for the tracks still in the batch."""
        x = track_inputs(tracks, refs, clusters, bfield_t, lazy_clusters=True)
        return x, self.scaler.tensors(x)

    def physics(self, outputs: Tensor, x: TrackInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probs (n, 3), refined (n, 5), sigma (n, 5))`` from the exit outputs of the
        tracks of ``x`` (:func:`outputs_to_physics`)."""
        return outputs_to_physics(self.model.objective, outputs, x.reco, x.scale)


def load_track_predictor(model_dir: str | Path | None = None) -> TrackNetPredictor:
    """The track network in ``model_dir`` (default: the shipped one)."""
    return TrackNetPredictor(*load_track_net(model_dir))
