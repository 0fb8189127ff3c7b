"""Workflow stages: one processor per file (a Task, a spec factory and a thin executable).

Layer: stages — the physics processors that the framework runs. Data addresses are listed in
:mod:`alice_dyn.stages.data_types`.
"""

import alice_dyn.stages._warmup  # noqa: F401  (registers the workers' numba warm-up)
from alice_dyn.stages import config_groups  # noqa: F401  (registers configuration groups)
from alice_dyn.stages.aod_writer import aod_writer_spec
from alice_dyn.stages.tpc_cluster_transform import tpc_cluster_transform_spec
from alice_dyn.stages.tpc_reader import tpc_cluster_reader_spec

__all__ = ["aod_writer_spec", "tpc_cluster_reader_spec", "tpc_cluster_transform_spec"]
