"""``tpc-dedx``: truncated-mean dE/dx of every track (TPC/DEDX), MIP = 50.

Layer: stages. A thin wrapper around :func:`alice_dyn.reco.tpc_chain.cluster_dedx`: the clusters
in global coordinates (TPC/CLUSTERGLOBAL) give the track angle at each cluster, the
calibration of :mod:`alice_dyn.reco.dedx_calibration` (shipped table, or
``--calibration FILE``) the MIP scale.
"""

from __future__ import annotations

import numpy as np

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import ConfigParamSpec, DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.reco.dedx_calibration import DEFAULT_CALIBRATION, DedxCalibration
from alice_dyn.reco.tpc_chain import cluster_dedx
from alice_dyn.stages import data_types as dt
from alice_dyn.stages.tpc_tracker import field_of

NAME = "tpc-dedx"


class TPCDedxTask(Task):
    def init(self, ic: InitContext) -> None:
        self.calib = DedxCalibration.load(ic.option("calibration") or DEFAULT_CALIBRATION)

    def run(self, pc: ProcessingContext) -> None:
        tracks = TPCTracks(**pc.inputs.get("tracks"))
        refs = pc.inputs.get("refs")
        cl = pc.inputs.get("clusters")
        tot, mx = cluster_dedx(
            tracks, refs, cl, field_of(pc, 0.5), self.calib.mip_scale, self.calib.tgl_coefficient
        )
        pc.outputs.adopt(
            dt.DEDX,
            {
                "signal_tot": tot.astype(np.float32),
                "signal_max": mx.astype(np.float32),
                "n_clusters": tracks.n_clusters.astype(np.int16),
            },
        )


def tpc_dedx_spec(calibration: str = "") -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[
            dt.input_spec("tracks", dt.TRACKS),
            dt.input_spec("refs", dt.CLUSTER_REFS),
            dt.input_spec("clusters", dt.CLUSTER_GLOBAL),
            dt.input_spec("meta", dt.TF_META),
        ],
        outputs=[dt.output_spec(dt.DEDX)],
        algorithm=TPCDedxTask,
        options=(
            ConfigParamSpec("calibration", str, "", "dE/dx calibration JSON (default: shipped)"),
        ),
        option_values={"calibration": calibration},
        factory=f"{__name__}:tpc_dedx_spec",
        factory_kwargs={"calibration": calibration},
    )
