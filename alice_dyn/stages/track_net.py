"""``track-net``: the dynamic track network on every classical track candidate (TPC/TRACKNET).

Layer: stages. Runs right after ``tpc-tracker``: reads ``TPC/TRACKS``, ``TPC/CLUSREFS``, the
clusters in global coordinates (``TPC/CLUSTERGLOBAL``) and the field (``GLO/TFMETA``) and runs
the network through its façade (:class:`alice_dyn.tracknet.network.TrackNetPredictor`), which
builds the inputs with the one feature function the training used
(:func:`alice_dyn.tracknet.features.track_inputs`); batched dynamic inference with per-track
exits. The cluster features are built on demand, one chunk of pad rows at a time
for the tracks still in the batch, so a track that exits early also skips the input building
of the rows it did not read (same values as building them all first). Configuration group
``TrackNetParam`` (an :class:`~alice_dyn.stages.exit_budget.ExitBudgetParam`):

* ``model``: model directory (default: the shipped one);
* ``budget``, ``threshold``, ``flops_fraction``, ``max_ms_per_tf``, ``reserve_ms``,
  ``target_load``: the exit
  budget, shared with ``pid-net`` (:mod:`alice_dyn.stages.exit_budget`): ``full`` (no early
  exit), ``25``/``50``/``75`` (confidence thresholds calibrated for that percentage of the full
  network's FLOPs), ``threshold``, or the run-time modes ``flops`` (average FLOPs per track
  near ``flops_fraction`` of the full network's) and ``latency`` (each timeframe within
  ``max_ms_per_tf`` and the time left before its deadline less ``reserve_ms`` in online runs),
  both from the threshold curve stored with the model;
* ``reject_threshold``: tracks with P(fake) above it are flagged rejected; negative (default):
  the model's own value for this budget, which keeps 99% of the good tracks of its
  calibration data (the full network's value in the run-time modes);
* ``threads``: PyTorch intra-op threads, set before the first operation (default 1; forked
  multi-process workers hang otherwise, see :mod:`alice_dyn.stages.pid_net`).

Output ``TPC/TRACKNET`` (columns, one row per track of ``TPC/TRACKS``): ``prob_good``,
``prob_fake``, ``prob_clone`` (float32), ``decision`` (int8 argmax: 0 good, 1 fake, 2 clone),
``rejected`` (uint8: P(fake) > reject threshold), ``exit`` (int8), ``flops`` (float32, FLOPs
spent on the track), the refined ``q2pt`` (c/GeV), ``tgl``, ``snp``, ``y``, ``z`` (cm) at the
track's reference point and ``sigma_*`` of each (float32), and ``embedding`` ``(n, d)``
float32, the network's track embedding at the track's exit (for later networks). Tracks are
never removed: ``aod-producer`` ORs ``0x4`` (REJECTED) into ``fFlags`` of rejected tracks.
Per timeframe, when the framework offers ``pc.report``: ``exit_fractions`` (fraction of the
tracks leaving at each exit) and ``flops_fraction`` (average FLOPs over the full network's),
plus ``allowed_ms`` in the run-time modes.

The network module is imported when the stage starts (it registers the model architectures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.stages import data_types as dt
from alice_dyn.stages.exit_budget import ExitBudget, ExitBudgetParam
from alice_dyn.stages.tpc_tracker import field_of

NAME = "track-net"
TARGET_COLUMNS = ("q2pt", "tgl", "snp", "y", "z")
CLASS_COLUMNS = ("prob_good", "prob_fake", "prob_clone")


@dataclass(frozen=True)
class TrackNetParam(ExitBudgetParam):
    """Settings of the track network stage (configuration group ``TrackNetParam``): the shared
    exit-budget fields and its own ``reject_threshold``."""

    GROUP: ClassVar[str] = "TrackNetParam"

    flops_fraction: float = 0.5
    max_ms_per_tf: float = 50.0
    reserve_ms: float = 30.0
    reject_threshold: float = -1.0


register_config_group("TrackNetParam", TrackNetParam)


def empty_columns(n: int, d: int) -> dict[str, tuple]:
    """``{name: (shape, dtype)}`` of TPC/TRACKNET for ``n`` tracks and embedding width ``d``."""
    cols: dict[str, tuple] = {c: (n, np.float32) for c in CLASS_COLUMNS}
    cols.update(decision=(n, np.int8), rejected=(n, np.uint8), exit=(n, np.int8))
    cols["flops"] = (n, np.float32)
    cols.update({c: (n, np.float32) for c in TARGET_COLUMNS})
    cols.update({f"sigma_{c}": (n, np.float32) for c in TARGET_COLUMNS})
    cols["embedding"] = ((n, d), np.float32)
    return cols


def reject_threshold(prm: TrackNetParam, config: dict) -> float:
    """The P(fake) cut: ``prm.reject_threshold`` if >= 0, else the model's value keeping 99% of
    the good calibration tracks under this budget (the full network's for the run-time modes)."""
    if prm.reject_threshold >= 0:
        return float(prm.reject_threshold)
    cuts = config.get("reject_threshold", {})
    per = cuts.get("by_budget", {}).get(prm.budget, cuts)
    return float(per.get("99", 0.5))


class TrackNetTask(Task):
    def init(self, ic: InitContext) -> None:
        prm = ic.config["TrackNetParam"]
        import torch

        torch.set_num_threads(prm.threads)  # before any torch operation (see the docstring)
        from alice_dyn.tracknet.network import load_track_predictor

        self.net = load_track_predictor(prm.model or None)
        self.reject = reject_threshold(prm, self.net.config)
        self.budget = ExitBudget(prm, self.net.model, self.net.config)

    def run(self, pc: ProcessingContext) -> None:
        tracks = TPCTracks(**pc.inputs.get("tracks"))
        n = len(tracks)
        out = pc.outputs.make_columns(dt.TRACKNET, empty_columns(n, self.net.embedding_dim))
        if n == 0:
            return
        inputs, x = self.net.inputs_from_tracks(
            tracks, pc.inputs.get("refs"), pc.inputs.get("clusters"), field_of(pc, 0.5)
        )
        res = self.budget.run(pc, x, keep_embedding=True)
        probs, refined, sigma = self.net.physics(res.outputs, inputs)
        for k, c in enumerate(CLASS_COLUMNS):
            out[c][:] = probs[:, k]
        out["decision"][:] = probs.argmax(1)
        out["rejected"][:] = probs[:, 1] > self.reject
        out["exit"][:] = res.exit_index.numpy()
        out["flops"][:] = res.flops.numpy()
        for j, c in enumerate(TARGET_COLUMNS):
            out[c][:] = refined[:, j]
            out[f"sigma_{c}"][:] = sigma[:, j]
        out["embedding"][:] = res.embedding.numpy()


def track_net_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[
            dt.input_spec("tracks", dt.TRACKS),
            dt.input_spec("refs", dt.CLUSTER_REFS),
            dt.input_spec("clusters", dt.CLUSTER_GLOBAL),
            dt.input_spec("meta", dt.TF_META),
        ],
        outputs=[dt.output_spec(dt.TRACKNET)],
        algorithm=TrackNetTask,
        config_groups=("TrackNetParam",),
        factory=f"{__name__}:track_net_spec",
    )
