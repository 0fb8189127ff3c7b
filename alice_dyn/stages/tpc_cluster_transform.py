"""``tpc-cluster-transform``: TPC/CLUSTERNATIVE -> TPC/CLUSTERGLOBAL (global x, y, z).

Layer: stages. A thin wrapper around :func:`alice_dyn.reco.tpc_chain.global_clusters_o2_buffer`
(the transform kernel: the Numba CPU twin, or the GPU twin when ``KernelParam.backend`` selects
it) on O2's ClusterNative buffer with the ``TPCGasParam`` configuration (drift velocity, ...);
on the CPU the kernel writes straight into the framework-owned output columns. z is computed
for a collision at the start of the timeframe (t0 = 0); the tracker later fits each track's
time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.executable import run_executable
from alice_dyn.framework.spec import DataProcessorSpec, InputSpec, OutputSpec
from alice_dyn.framework.task import Task
from alice_dyn.kernels import get_backend
from alice_dyn.reco.tpc_chain import (
    CLUSTER_GLOBAL_COLUMNS,
    buffer_cluster_count,
    global_clusters_o2_buffer,
)
from alice_dyn.stages import config_groups  # noqa: F401  (registers TPCGasParam)
from alice_dyn.stages import data_types as dt

NAME = "tpc-cluster-transform"


class TPCClusterTransformTask(Task):
    def init(self, ic: InitContext) -> None:
        self.gas = ic.config["TPCGasParam"]
        self.backend = get_backend(ic.config["KernelParam"].backend)

    def run(self, pc: ProcessingContext) -> None:
        buf = pc.inputs.get("clusters")
        n = buffer_cluster_count(buf)
        out = pc.outputs.make_columns(
            dt.CLUSTER_GLOBAL, {k: (n, v) for k, v in CLUSTER_GLOBAL_COLUMNS.items()}
        )
        global_clusters_o2_buffer(buf, self.gas, backend=self.backend, out=out)


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
