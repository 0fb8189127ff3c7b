"""``tpc-cluster-transform``: TPC/CLUSTERNATIVE -> TPC/CLUSTERGLOBAL (global x, y, z).

Layer: stages. Runs the transform kernel (:func:`alice_dyn.kernels.transform_o2_buffer`: the
Numba CPU twin, or the GPU twin when ``KernelParam.backend`` selects it) on O2's ClusterNative
buffer with the ``TPCGasParam`` configuration (drift velocity, ...); on the CPU the kernel
writes straight into the framework-owned output columns. z is computed for a collision at the
start of the timeframe (t0 = 0); the tracker later fits each track's time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.executable import run_executable
from alice_dyn.framework.spec import DataProcessorSpec, InputSpec, OutputSpec
from alice_dyn.framework.task import Task
from alice_dyn.kernels import get_backend, transform_o2_buffer
from alice_dyn.stages import config_groups  # noqa: F401  (registers TPCGasParam)
from alice_dyn.stages import data_types as dt
from alice_dyn.tpc.cluster_native import CLUSTER_COUNT_INDEX_BYTES, CLUSTER_NATIVE_DTYPE

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
#: output column -> field of the kernel's TransformedClusters
KERNEL_COLUMNS = {
    "x": "gx", "y": "gy", "z": "z", "pad": "pad", "time": "time", "q_tot": "q_tot",
    "q_max": "q_max",
}  # fmt: skip


class TPCClusterTransformTask(Task):
    def init(self, ic: InitContext) -> None:
        self.gas = ic.config["TPCGasParam"]
        self.backend = get_backend(ic.config["KernelParam"].backend)

    def run(self, pc: ProcessingContext) -> None:
        buf = pc.inputs.get("clusters")
        n = (len(buf) - CLUSTER_COUNT_INDEX_BYTES) // CLUSTER_NATIVE_DTYPE.itemsize
        out = pc.outputs.make_columns(dt.CLUSTER_GLOBAL, {k: (n, v) for k, v in COLUMNS.items()})
        if self.backend.is_gpu:
            res, sector, row = transform_o2_buffer(
                self.backend.asarray(buf), 0.0, self.gas, backend=self.backend
            )
            for name, col in KERNEL_COLUMNS.items():
                out[name][:] = self.backend.to_numpy(getattr(res, col))
            out["sector"][:] = self.backend.to_numpy(sector)
            out["row"][:] = self.backend.to_numpy(row)
            return
        # CPU: the kernel writes straight into the framework-owned output columns
        res, sector, row = transform_o2_buffer(
            buf, 0.0, self.gas, backend=self.backend,
            out={col: out[name] for name, col in KERNEL_COLUMNS.items()},
        )  # fmt: skip
        out["sector"][:] = sector
        out["row"][:] = row


def tpc_cluster_transform_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[InputSpec("clusters", dt.CLUSTER_NATIVE.origin, dt.CLUSTER_NATIVE.description)],
        outputs=[OutputSpec(dt.CLUSTER_GLOBAL.origin, dt.CLUSTER_GLOBAL.description)],
        algorithm=TPCClusterTransformTask,
        config_groups=("TPCGasParam", "KernelParam"),
        factory=f"{__name__}:tpc_cluster_transform_spec",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``alice-dyn-tpc-transform``."""
    return run_executable(
        "alice-dyn-tpc-transform", lambda args: [tpc_cluster_transform_spec()], None, argv
    )


if __name__ == "__main__":
    sys.exit(main())
