"""``track-net``: the dynamic track network on every classical track candidate (TPC/TRACKNET).

Layer: stages. Runs right after ``tpc-tracker``: reads ``TPC/TRACKS``, ``TPC/CLUSREFS``, the
clusters in global coordinates (``TPC/CLUSTERGLOBAL``) and the field (``GLO/TFMETA``), builds
the network inputs with the one feature function the training used
(:func:`alice_dyn.tracknet.features.track_inputs`) and runs batched dynamic inference with
per-track exits. Configuration group ``TrackNetParam``:

* ``model``: model directory (default: the shipped one);
* ``budget``: ``full`` (no early exit), ``25``/``50``/``75`` (confidence thresholds calibrated
  for that percentage of the full network's FLOPs), ``threshold`` (use ``threshold``), or a
  run-time controller: ``flops`` (keep each timeframe's average FLOPs per track near
  ``flops_fraction`` of the full network's) or ``latency`` (keep the inference of a timeframe
  under ``max_ms_per_tf``), calibrated on the first timeframe
  (:class:`alice_dyn.nn.BudgetController`);
* ``threshold``, ``flops_fraction``, ``max_ms_per_tf``: the values those modes use;
* ``reject_threshold``: tracks with P(fake) above it are flagged rejected; negative (default):
  the model's own value, which keeps 99% of the good tracks of its calibration data;
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
tracks leaving at each exit) and ``flops_fraction`` (average FLOPs over the full network's).

The network module is imported when the stage starts (it registers the model architectures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.stages import data_types as dt
from alice_dyn.stages.tpc_tracker import field_of

NAME = "track-net"
TARGET_COLUMNS = ("q2pt", "tgl", "snp", "y", "z")
CLASS_COLUMNS = ("prob_good", "prob_fake", "prob_clone")


@dataclass(frozen=True)
class TrackNetParam:
    """Settings of the track network stage (configuration group ``TrackNetParam``)."""

    model: str = ""
    budget: str = "50"
    threshold: float = 0.9
    flops_fraction: float = 0.5
    max_ms_per_tf: float = 50.0
    reject_threshold: float = -1.0
    threads: int = 1

    def __post_init__(self) -> None:
        modes = ("full", "25", "50", "75", "threshold", "flops", "latency")
        if self.budget not in modes:
            raise ValueError(f"TrackNetParam.budget {self.budget!r}: one of {modes}")


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


class TrackNetTask(Task):
    def init(self, ic: InitContext) -> None:
        prm = ic.config["TrackNetParam"]
        import torch

        torch.set_num_threads(prm.threads)  # before any torch operation (see the docstring)
        from alice_dyn.nn import ConfidencePolicy
        from alice_dyn.tracknet.network import load_track_net

        self.model, self.scaler, cfg = load_track_net(prm.model or None)
        self.prm = prm
        self.d = int(self.model.heads[0].norm.normalized_shape[0])
        self.reject = (
            prm.reject_threshold
            if prm.reject_threshold >= 0
            else float(cfg.get("reject_threshold", {}).get("99", 0.5))
        )
        self.controller = None
        self.policy = None
        if prm.budget == "threshold":
            self.policy = ConfidencePolicy(prm.threshold)
        elif prm.budget in ("25", "50", "75"):
            self.policy = ConfidencePolicy(cfg["thresholds"][prm.budget]["thresholds"])

    def run(self, pc: ProcessingContext) -> None:
        from alice_dyn.tracknet.features import track_inputs
        from alice_dyn.tracknet.network import predict

        tracks = TPCTracks(**pc.inputs.get("tracks"))
        n = len(tracks)
        out = pc.outputs.make_columns(dt.TRACKNET, empty_columns(n, self.d))
        if n == 0:
            return
        inputs = track_inputs(
            tracks, pc.inputs.get("refs"), pc.inputs.get("clusters"), field_of(pc, 0.5)
        )
        x = self.scaler.tensors(inputs)
        policy = self._policy(x)
        t0 = time.perf_counter()
        res = predict(self.model, x, inputs.reco, inputs.scale, policy, keep_embedding=True)
        ms = 1e3 * (time.perf_counter() - t0)
        if self.controller is not None:
            self.controller.update(float(res.flops.mean()) if self.controller.metric == "flops"
                                   else ms)  # fmt: skip
        for k, c in enumerate(CLASS_COLUMNS):
            out[c][:] = res.probs[:, k]
        out["decision"][:] = res.probs.argmax(1)
        out["rejected"][:] = res.probs[:, 1] > self.reject
        out["exit"][:] = res.exit_index
        out["flops"][:] = res.flops
        for j, c in enumerate(TARGET_COLUMNS):
            out[c][:] = res.refined[:, j]
            out[f"sigma_{c}"][:] = res.sigma[:, j]
        out["embedding"][:] = res.embedding
        report = getattr(pc, "report", None)
        if callable(report):
            counts = np.bincount(res.exit_index, minlength=self.model.num_exits)
            report("exit_fractions", (counts / n).tolist())
            report("flops_fraction", float(res.flops.mean() / res.full_flops))

    def _policy(self, x):
        """The exit policy for this timeframe (the controller is made on the first one)."""
        if self.prm.budget not in ("flops", "latency"):
            return self.policy  # None: full network
        from alice_dyn.nn import BudgetController, ConfidencePolicy, ThresholdCalibrator

        if self.controller is None:
            cal = ThresholdCalibrator(self.model, x, ConfidencePolicy(0.0))
            if self.prm.budget == "flops":
                budget, metric = self.prm.flops_fraction * cal.full_flops, "flops"
            else:
                budget, metric = self.prm.max_ms_per_tf, "ms"
            self.controller = BudgetController(cal, budget, metric=metric)
        return self.controller.policy


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
