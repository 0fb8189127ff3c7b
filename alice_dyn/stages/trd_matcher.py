"""``trd-matcher``: TPC tracks to TRD tracklets (TRD/MATCHINFO); uses the TOF collision time.

Layer: stages, around :func:`alice_dyn.reco.trd_matching.match_trd` (group ``TRDMatchParam``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.reco.trd_matching import TRDMatchParam, match_trd
from alice_dyn.stages import data_types as dt
from alice_dyn.stages.tpc_tracker import field_of

NAME = "trd-matcher"
register_config_group("TRDMatchParam", TRDMatchParam)


class TRDMatcherTask(Task):
    def init(self, ic: InitContext) -> None:
        self.prm = ic.config["TRDMatchParam"]
        self.gas = ic.config["TPCGasParam"]

    def run(self, pc: ProcessingContext) -> None:
        tracks = TPCTracks(**pc.inputs.get("tracks"))
        trd = pc.inputs.get("trd")
        tofm = pc.inputs.get("tofmatch")
        ft0 = pc.inputs.get("ft0")
        coll, ft0_ps = tofm["collision"], np.asarray(ft0["time_ps"], np.float64)
        t0 = np.full(len(tracks), np.nan)  # each track's collision time, where TOF gave one
        if len(ft0_ps):  # none without FT0 (e.g. O2-layout input: TPC clusters only)
            t0 = np.where(coll >= 0, ft0_ps[np.maximum(coll, 0)], np.nan)
        m = match_trd(
            tracks, trd["layer"], trd["x_cm"], trd["y_cm"], trd["z_cm"], trd["q"],
            field_of(pc, 0.5), t0, self.gas.drift_velocity_cm_us * 1e-3, self.prm,
        )  # fmt: skip
        pc.outputs.adopt(dt.TRD_MATCH, {k: np.asarray(v) for k, v in dataclasses.asdict(m).items()})


def trd_matcher_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[
            dt.input_spec("tracks", dt.TRACKS),
            dt.input_spec("trd", dt.TRD_TRACKLETS),
            dt.input_spec("tofmatch", dt.TOF_MATCH),
            dt.input_spec("ft0", dt.FT0_RECPOINTS),
            dt.input_spec("meta", dt.TF_META),
        ],
        outputs=[dt.output_spec(dt.TRD_MATCH)],
        algorithm=TRDMatcherTask,
        config_groups=("TRDMatchParam", "TPCGasParam"),
        factory=f"{__name__}:trd_matcher_spec",
    )
