"""Configuration groups of the physics stages, registered with the framework.

``TPCGasParam`` is the data model's :class:`~alice_dyn.tpc.geometry.TPCGasParam`; O2's key names
are accepted as aliases (``--configKeyValues 'TPCGasParam.DriftV=2.6'``).
"""

from __future__ import annotations

from alice_dyn.framework.config import register_config_group
from alice_dyn.tpc.geometry import TPCGasParam

register_config_group(
    "TPCGasParam",
    TPCGasParam,
    aliases={
        "DriftV": "drift_velocity_cm_us",
        "DiffT": "diffusion_t_cm_sqrtcm",
        "DiffL": "diffusion_l_cm_sqrtcm",
        "Wion": "w_ion_ev",
    },
)
