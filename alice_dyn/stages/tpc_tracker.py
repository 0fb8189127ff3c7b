"""``tpc-tracker``: TPC/CLUSTERNATIVE -> TPC/TRACKS + TPC/CLUSREFS (classical tracking).

Layer: stages. A thin wrapper around :func:`alice_dyn.reco.tpc_tracker.track_o2_buffer` (the
tracking step: O2's cluster buffer -> sector-local y, z for t0 = 0 -> ``find_tracks``) with the
``TPCTrackerParam`` and ``TPCGasParam`` configuration; the magnetic field comes from the
timeframe metadata.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from alice_dyn.framework.config import register_config_group
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.executable import run_executable
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.framework.task import Task
from alice_dyn.reco.tpc_tracker import TPCTrackerParam, track_o2_buffer
from alice_dyn.stages import config_groups  # noqa: F401  (registers TPCGasParam)
from alice_dyn.stages import data_types as dt

NAME = "tpc-tracker"
register_config_group("TPCTrackerParam", TPCTrackerParam)


def field_of(pc: ProcessingContext, default: float) -> float:
    """The solenoid field of this timeframe (T) from GLO/TFMETA, or ``default``."""
    if pc.inputs.is_valid("meta"):
        b = pc.inputs.get("meta").get("bfield_t")
        if b:
            return float(b)
    return default


class TPCTrackerTask(Task):
    def init(self, ic: InitContext) -> None:
        self.prm = ic.config["TPCTrackerParam"]
        self.gas = ic.config["TPCGasParam"]

    def run(self, pc: ProcessingContext) -> None:
        tracks, refs = track_o2_buffer(
            pc.inputs.get("clusters"), self.gas, self.prm, field_of(pc, self.prm.bfield_t)
        )
        pc.outputs.adopt(
            dt.TRACKS, {k: np.ascontiguousarray(v) for k, v in tracks.columns().items()}
        )
        pc.outputs.adopt(dt.CLUSTER_REFS, refs)


def tpc_tracker_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[dt.input_spec("clusters", dt.CLUSTER_NATIVE), dt.input_spec("meta", dt.TF_META)],
        outputs=[dt.output_spec(dt.TRACKS), dt.output_spec(dt.CLUSTER_REFS)],
        algorithm=TPCTrackerTask,
        config_groups=("TPCTrackerParam", "TPCGasParam"),
        factory=f"{__name__}:tpc_tracker_spec",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``alice-dyn-tpc-tracker``."""
    return run_executable("alice-dyn-tpc-tracker", lambda a: [tpc_tracker_spec()], None, argv)


if __name__ == "__main__":
    sys.exit(main())
