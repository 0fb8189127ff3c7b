"""``pid-net``: the dynamic PID network on every track (AOD/PIDNET), beside ``nsigma-pid``.

Layer: stages. Reads the AO2D track and n-sigma tables made by ``aod-producer`` (so it sees
exactly what an analysis would) and runs the PID network on them through its façade
(:class:`alice_dyn.pid.network.PIDNetPredictor`: AO2D columns in, probabilities out), batched
dynamic inference with per-track exits. Configuration group ``PIDNetParam``
(an :class:`~alice_dyn.stages.exit_budget.ExitBudgetParam`):

* ``model``: model directory (default: the shipped one);
* ``budget``, ``threshold``, ``flops_fraction``, ``max_ms_per_tf``, ``reserve_ms``,
  ``target_load``: how the exits are chosen per timeframe — ``full``, ``25``/``50``/``75``
  (calibrated thresholds), ``threshold``, or the run-time modes ``flops`` and ``latency``
  (which follows the timeframe's deadline and the load in online processing); see
  :mod:`alice_dyn.stages.exit_budget`;
* ``reuse_track_embedding``: run the network that takes the track network's embedding as one
  more feature group (``DIR/reuse``, :mod:`alice_dyn.pid.reuse`; needs the ``track-net`` stage);
* ``tof_mismatch``: include the TOF-mismatch hypothesis (default true;
  :mod:`alice_dyn.pid.mismatch`: tracks whose TOF time fits no species within the model's
  gate are also run without TOF, in the same batch and under the same budget, and the two
  predictions are combined with the model's measured mismatch density; a model without one
  is run as it is);
* ``threads``: PyTorch intra-op threads (default 1: fastest for this small network, and
  required in forked multi-process workers: PyTorch's OpenMP pool hangs in a child forked after
  the parent used it, unless the child sets one thread before its first operation).

Output columns: ``fPidNetEl/Mu/Pi/Ka/Pr`` (probabilities), ``fPidNet`` (argmax),
``fPidNetExit`` (exit index), ``fPidNetFlops`` (FLOPs spent on the track, both passes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.pid.network import load_pid_predictor
from alice_dyn.stages import data_types as dt
from alice_dyn.stages.exit_budget import ExitBudget, ExitBudgetParam

NAME = "pid-net"
PIDNET = dt.DataType("AOD", "PIDNET")
SPECIES_SUFFIX = ("El", "Mu", "Pi", "Ka", "Pr")


@dataclass(frozen=True)
class PIDNetParam(ExitBudgetParam):
    """Settings of the PID network stage (configuration group ``PIDNetParam``): the shared
    exit-budget fields with this stage's defaults, and its own two."""

    GROUP: ClassVar[str] = "PIDNetParam"

    flops_fraction: float = 0.35
    max_ms_per_tf: float = 5.0
    reserve_ms: float = 15.0
    reuse_track_embedding: bool = False
    tof_mismatch: bool = True


register_config_group("PIDNetParam", PIDNetParam)


class PIDNetTask(Task):
    def init(self, ic: InitContext) -> None:
        prm = ic.config["PIDNetParam"]
        import torch

        torch.set_num_threads(prm.threads)  # before any torch operation (see the docstring)
        self.reuse = bool(prm.reuse_track_embedding)
        # with reuse: the network on the track network's embedding (alice_dyn.pid.reuse)
        self.net = load_pid_predictor(prm.model or None, reuse=self.reuse)
        self.budget = ExitBudget(prm, self.net.model, self.net.config)
        self.tof_mismatch = bool(prm.tof_mismatch)

    def run(self, pc: ProcessingContext) -> None:
        cols = {**pc.inputs.get("track"), **pc.inputs.get("extra")}
        cols.update(pc.inputs.get("pidtpc"))
        cols.update(pc.inputs.get("pidtof"))
        n = len(cols["fSigned1Pt"])
        out = pc.outputs.make_columns(
            PIDNET,
            {**{f"fPidNet{s}": (n, np.float32) for s in SPECIES_SUFFIX},
             "fPidNet": (n, np.int8), "fPidNetExit": (n, np.int8), "fPidNetFlops": (n, np.float32)},
        )  # fmt: skip
        if n == 0:
            return
        emb = None
        if self.reuse:
            if not pc.inputs.is_valid("tracknet"):
                raise ValueError(
                    "PIDNetParam.reuse_track_embedding needs the track-net stage's TPC/TRACKNET "
                    "(pid_net_spec(tracknet=True) in a workflow that runs track-net)"
                )
            emb = pc.inputs.get("tracknet")["embedding"]
        res = self.net.run_on_columns(
            cols,
            lambda x: self.budget.run(pc, x, n_tracks=n),
            embedding=emb,
            tof_mismatch=self.tof_mismatch,
        )
        probs, exits, flops = res.probs, res.exit_index, res.flops
        for k, s in enumerate(SPECIES_SUFFIX):
            out[f"fPidNet{s}"][:] = probs[:, k]
        out["fPidNet"][:] = probs.argmax(1)
        out["fPidNetExit"][:] = exits
        out["fPidNetFlops"][:] = flops


def pid_net_spec(tracknet: bool = False) -> DataProcessorSpec:
    """The stage; ``tracknet``: also receive ``TPC/TRACKNET`` (the track network's output, one
    row per track in the AO2D order) for ``PIDNetParam.reuse_track_embedding``."""
    inputs = [
        dt.input_spec("track", dt.AOD_TABLES["track_iu"]),
        dt.input_spec("extra", dt.AOD_TABLES["trackextra"]),
        dt.input_spec("pidtpc", dt.AOD_TABLES["pidtpc"]),
        dt.input_spec("pidtof", dt.AOD_TABLES["pidtof"]),
    ]
    if tracknet:
        inputs.append(dt.input_spec("tracknet", dt.TRACKNET))
    return DataProcessorSpec(
        name=NAME,
        inputs=inputs,
        outputs=[dt.output_spec(PIDNET)],
        algorithm=PIDNetTask,
        config_groups=("PIDNetParam",),
        factory=f"{__name__}:pid_net_spec",
        factory_kwargs={"tracknet": tracknet},
    )
