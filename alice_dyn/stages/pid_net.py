"""``pid-net``: the dynamic PID network on every track (AOD/PIDNET), beside ``nsigma-pid``.

Layer: stages. Reads the AO2D track tables made by ``aod-producer`` (so it sees exactly what
an analysis would), builds the detector feature groups with presence masks
(:func:`alice_dyn.pid.dataset.features_from_columns`) and runs batched dynamic inference with
per-track exits. Configuration group ``PIDNetParam``:

* ``model``: model directory (default: the shipped one);
* ``budget``: ``full`` (no early exit), ``25``/``50``/``75`` (thresholds calibrated for that
  percentage of the full network's FLOPs), ``threshold`` (use ``threshold``), or a run-time
  controller: ``flops`` (keep each timeframe's average FLOPs per track under
  ``flops_fraction`` of the full network's) or ``latency`` (keep each timeframe's inference
  under ``max_ms_per_tf``); the controller adapts the thresholds from recent timeframes
  (:class:`alice_dyn.nn.BudgetController`), calibrated on the first timeframe;
* ``threshold``, ``flops_fraction``, ``max_ms_per_tf``: the values those modes use;
* ``threads``: PyTorch intra-op threads (default 1: fastest for this small network, and
  required in forked multi-process workers: PyTorch's OpenMP pool hangs in a child forked after
  the parent used it, unless the child sets one thread before its first operation).

Output columns: ``fPidNetEl/Mu/Pi/Ka/Pr`` (probabilities), ``fPidNet`` (argmax),
``fPidNetExit`` (exit index), ``fPidNetFlops`` (FLOPs spent on the track).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.nn import BudgetController, ConfidencePolicy, ThresholdCalibrator
from alice_dyn.pid.dataset import PIDDataset, features_from_columns
from alice_dyn.pid.network import DEFAULT_MODEL_DIR, PRIMARY, load_pid_net, predict
from alice_dyn.stages import data_types as dt

NAME = "pid-net"
PIDNET = dt.DataType("AOD", "PIDNET")
SPECIES_SUFFIX = ("El", "Mu", "Pi", "Ka", "Pr")


@dataclass(frozen=True)
class PIDNetParam:
    """Settings of the PID network stage (configuration group ``PIDNetParam``)."""

    model: str = ""
    budget: str = "50"
    threshold: float = 0.9
    flops_fraction: float = 0.35
    max_ms_per_tf: float = 5.0
    threads: int = 1

    def __post_init__(self) -> None:
        modes = ("full", "25", "50", "75", "threshold", "flops", "latency")
        if self.budget not in modes:
            raise ValueError(f"PIDNetParam.budget {self.budget!r}: one of {modes}")


register_config_group("PIDNetParam", PIDNetParam)


class PIDNetTask(Task):
    def init(self, ic: InitContext) -> None:
        prm = ic.config["PIDNetParam"]
        import torch

        torch.set_num_threads(prm.threads)  # before any torch operation (see the docstring)
        self.model, self.scaler, cfg = load_pid_net(f"{prm.model or DEFAULT_MODEL_DIR}/{PRIMARY}")
        self.prm = prm
        self.controller = None
        self.policy = None
        if prm.budget in ("flops", "latency"):
            return  # the controller is made on the first timeframe
        if prm.budget == "full":
            self.policy = None
        elif prm.budget == "threshold":
            self.policy = ConfidencePolicy(prm.threshold)
        else:
            self.policy = ConfidencePolicy(cfg["thresholds"][prm.budget]["thresholds"])

    def run(self, pc: ProcessingContext) -> None:
        cols = {**pc.inputs.get("track"), **pc.inputs.get("extra")}
        n = len(cols["fSigned1Pt"])
        out = pc.outputs.make_columns(
            PIDNET,
            {**{f"fPidNet{s}": (n, np.float32) for s in SPECIES_SUFFIX},
             "fPidNet": (n, np.int8), "fPidNetExit": (n, np.int8), "fPidNetFlops": (n, np.float32)},
        )  # fmt: skip
        if n == 0:
            return
        feats, masks = features_from_columns(cols)
        ds = PIDDataset(
            feats, masks, np.zeros(n, np.int64), cols["fTPCInnerParam"], np.zeros(n, np.int8)
        )
        if self.prm.budget in ("flops", "latency"):
            probs, exits, flops = self._controlled(ds)
        else:
            probs, exits, flops = predict(self.model, self.scaler, ds, self.policy)
        for k, s in enumerate(SPECIES_SUFFIX):
            out[f"fPidNet{s}"][:] = probs[:, k]
        out["fPidNet"][:] = probs.argmax(1)
        out["fPidNetExit"][:] = exits
        out["fPidNetFlops"][:] = flops

    def _controlled(self, ds: PIDDataset):
        """Dynamic inference under the run-time controller (made on the first timeframe)."""
        import torch

        x = self.scaler.tensors(ds)
        if self.controller is None:
            cal = ThresholdCalibrator(self.model, x, ConfidencePolicy(0.0))
            if self.prm.budget == "flops":
                budget, metric = self.prm.flops_fraction * cal.full_flops, "flops"
            else:
                budget, metric = self.prm.max_ms_per_tf, "ms"
            self.controller = BudgetController(cal, budget, metric=metric)
        with torch.no_grad():
            res = self.controller.run(self.model, x)
        probs = torch.softmax(res.outputs, dim=1).numpy()
        return probs, res.exit_index.numpy(), res.flops.numpy()


def pid_net_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[
            dt.input_spec("track", dt.AOD_TABLES["track_iu"]),
            dt.input_spec("extra", dt.AOD_TABLES["trackextra"]),
        ],
        outputs=[dt.output_spec(PIDNET)],
        algorithm=PIDNetTask,
        config_groups=("PIDNetParam",),
        factory=f"{__name__}:pid_net_spec",
    )
