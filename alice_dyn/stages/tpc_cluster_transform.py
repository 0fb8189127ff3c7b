"""``tpc-cluster-transform``: TPC/CLUSTERNATIVE -> TPC/CLUSTERGLOBAL (global x, y, z).

Layer: stages. Decodes O2's ClusterNative buffer without copying (views into the message),
unpacks the fixed-point fields and applies the NumPy reference transform of
:mod:`alice_dyn.tpc.transform` with the ``TPCGasParam`` configuration (drift velocity, ...).
z is computed for a collision at the start of the timeframe (t0 = 0); the tracker later fits
each track's time. The Numba/GPU kernels of the kernels issue replace the reference here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.executable import run_executable
from alice_dyn.framework.spec import DataProcessorSpec, InputSpec, OutputSpec
from alice_dyn.framework.task import Task
from alice_dyn.stages import config_groups  # noqa: F401  (registers TPCGasParam)
from alice_dyn.stages import data_types as dt
from alice_dyn.tpc import transform
from alice_dyn.tpc.cluster_native import (
    decode_o2_buffer,
    sector_row_from_index,
    unpack_clusters,
)

NAME = "tpc-cluster-transform"
COLUMNS = {
    "x": np.float32,
    "y": np.float32,
    "z": np.float32,
    "sector": np.uint8,
    "row": np.uint8,
    "pad": np.float32,
    "time": np.float32,
    "q_tot": np.float32,
    "q_max": np.float32,
}


class TPCClusterTransformTask(Task):
    def init(self, ic: InitContext) -> None:
        self.gas = ic.config["TPCGasParam"]

    def run(self, pc: ProcessingContext) -> None:
        index, records = decode_o2_buffer(pc.inputs.get("clusters"))
        n = len(records)
        out = pc.outputs.make_columns(dt.CLUSTER_GLOBAL, {k: (n, v) for k, v in COLUMNS.items()})
        sector, row = sector_row_from_index(index)
        u = unpack_clusters(records)
        gx, gy, gz = transform.pad_time_to_global(sector, row, u.pad, u.time, 0.0, self.gas)
        out["x"][:] = gx
        out["y"][:] = gy
        out["z"][:] = gz
        out["sector"][:] = sector
        out["row"][:] = row
        out["pad"][:] = u.pad
        out["time"][:] = u.time
        out["q_tot"][:] = u.q_tot
        out["q_max"][:] = u.q_max


def tpc_cluster_transform_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[InputSpec("clusters", dt.CLUSTER_NATIVE.origin, dt.CLUSTER_NATIVE.description)],
        outputs=[OutputSpec(dt.CLUSTER_GLOBAL.origin, dt.CLUSTER_GLOBAL.description)],
        algorithm=TPCClusterTransformTask,
        config_groups=("TPCGasParam",),
        factory=f"{__name__}:tpc_cluster_transform_spec",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``alice-dyn-tpc-transform``."""
    return run_executable(
        "alice-dyn-tpc-transform", lambda args: [tpc_cluster_transform_spec()], None, argv
    )


if __name__ == "__main__":
    sys.exit(main())
