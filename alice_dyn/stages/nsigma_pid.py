"""``nsigma-pid``: TPC and TOF n-sigma and the classical PID decision (PID/NSIGMA).

Layer: stages, around :mod:`alice_dyn.reco.pid_nsigma` (group ``PIDNSigmaParam``).
"""

from __future__ import annotations

from alice_dyn.event.tracks import TPCTracks
from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.spec import ConfigParamSpec, DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.reco.dedx_calibration import DEFAULT_CALIBRATION, DedxCalibration
from alice_dyn.reco.pid_nsigma import PIDNSigmaParam, nsigma_decision, nsigma_tof, nsigma_tpc
from alice_dyn.stages import data_types as dt

NAME = "nsigma-pid"
register_config_group("PIDNSigmaParam", PIDNSigmaParam)


class NSigmaPIDTask(Task):
    def init(self, ic: InitContext) -> None:
        self.prm = ic.config["PIDNSigmaParam"]
        self.calib = DedxCalibration.load(ic.option("calibration") or DEFAULT_CALIBRATION)

    def run(self, pc: ProcessingContext) -> None:
        tracks = TPCTracks(**pc.inputs.get("tracks"))
        dedx = pc.inputs.get("dedx")
        tof = pc.inputs.get("tofmatch")
        p = tracks.p_gev()
        ns_tpc = nsigma_tpc(dedx["signal_tot"], p, dedx["n_clusters"], self.calib)
        ns_tof = nsigma_tof(
            tof["signal_ps"], tof["length_cm"], p, tof["t0_resolution_ps"], self.prm
        )
        decision = nsigma_decision(ns_tpc, ns_tof, p, self.prm)
        pc.outputs.adopt(dt.PID_NSIGMA, {"tpc": ns_tpc, "tof": ns_tof, "decision": decision})


def nsigma_pid_spec(calibration: str = "") -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[
            dt.input_spec("tracks", dt.TRACKS),
            dt.input_spec("dedx", dt.DEDX),
            dt.input_spec("tofmatch", dt.TOF_MATCH),
        ],
        outputs=[dt.output_spec(dt.PID_NSIGMA)],
        algorithm=NSigmaPIDTask,
        options=(
            ConfigParamSpec("calibration", str, "", "dE/dx calibration JSON (default: shipped)"),
        ),
        option_values={"calibration": calibration},
        config_groups=("PIDNSigmaParam",),
        factory=f"{__name__}:nsigma_pid_spec",
        factory_kwargs={"calibration": calibration},
    )
