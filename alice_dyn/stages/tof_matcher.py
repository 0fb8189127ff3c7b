"""``tof-matcher``: TPC tracks to TOF hits with the FT0 event times (TOF/MATCHINFO).

Layer: stages, around :func:`alice_dyn.reco.tof_matching.match_tof` (configuration group
``TOFMatchParam``; the drift velocity from ``TPCGasParam``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.reco.tof_matching import TOFMatchParam, match_tof
from alice_dyn.stages import data_types as dt
from alice_dyn.stages.tpc_tracker import field_of

NAME = "tof-matcher"
register_config_group("TOFMatchParam", TOFMatchParam)


class TOFMatcherTask(Task):
    def init(self, ic: InitContext) -> None:
        self.prm = ic.config["TOFMatchParam"]
        self.gas = ic.config["TPCGasParam"]

    def run(self, pc: ProcessingContext) -> None:
        tracks = TPCTracks(**pc.inputs.get("tracks"))
        tof = pc.inputs.get("tof")
        ft0 = pc.inputs.get("ft0")
        m = match_tof(
            tracks, tof["x_cm"], tof["y_cm"], tof["z_cm"], tof["time_ps"], ft0["time_ps"],
            ft0["resolution_ps"], field_of(pc, 0.5), self.gas.drift_velocity_cm_us * 1e-3,
            self.prm,
        )  # fmt: skip
        pc.outputs.adopt(dt.TOF_MATCH, {k: np.asarray(v) for k, v in dataclasses.asdict(m).items()})


def tof_matcher_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[
            dt.input_spec("tracks", dt.TRACKS),
            dt.input_spec("tof", dt.TOF_CLUSTERS),
            dt.input_spec("ft0", dt.FT0_RECPOINTS),
            dt.input_spec("meta", dt.TF_META),
        ],
        outputs=[dt.output_spec(dt.TOF_MATCH)],
        algorithm=TOFMatcherTask,
        config_groups=("TOFMatchParam", "TPCGasParam"),
        factory=f"{__name__}:tof_matcher_spec",
    )
