"""``pid-net``: the dynamic PID network on every track (AOD/PIDNET), beside ``nsigma-pid``.

Layer: stages. Reads the AO2D track tables made by ``aod-producer`` (so it sees exactly what
an analysis would), builds the detector feature groups with presence masks
(:func:`alice_dyn.pid.dataset.features_from_columns`) and runs batched dynamic inference with
per-track exits. Configuration group ``PIDNetParam``:

* ``model``: model directory (default: the shipped one);
* ``budget``: ``full`` (no early exit), ``25``/``50``/``75`` (thresholds calibrated for that
  percentage of the full network's FLOPs) or ``threshold`` (use ``threshold``);
* ``threshold``: confidence threshold for ``budget=threshold``.

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
from alice_dyn.nn import ConfidencePolicy
from alice_dyn.pid.dataset import PIDDataset, features_from_columns
from alice_dyn.pid.network import DEFAULT_MODEL_DIR, load_pid_net, predict
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

    def __post_init__(self) -> None:
        if self.budget not in ("full", "25", "50", "75", "threshold"):
            raise ValueError(f"PIDNetParam.budget {self.budget!r}: full, 25, 50, 75 or threshold")


register_config_group("PIDNetParam", PIDNetParam)


class PIDNetTask(Task):
    def init(self, ic: InitContext) -> None:
        prm = ic.config["PIDNetParam"]
        self.model, self.scaler, cfg = load_pid_net(f"{prm.model or DEFAULT_MODEL_DIR}/ztw")
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
        probs, exits, flops = predict(self.model, self.scaler, ds, self.policy)
        for k, s in enumerate(SPECIES_SUFFIX):
            out[f"fPidNet{s}"][:] = probs[:, k]
        out["fPidNet"][:] = probs.argmax(1)
        out["fPidNetExit"][:] = exits
        out["fPidNetFlops"][:] = flops


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
