"""Configuration groups of the physics stages, registered with the framework.

* ``TPCGasParam`` is the data model's :class:`~alice_dyn.tpc.geometry.TPCGasParam`; O2's key
  names are accepted as aliases (``--configKeyValues 'TPCGasParam.DriftV=2.6'``);
* ``KernelParam`` chooses where the pre-processing kernels run (``cpu``, ``gpu``, or ``auto`` =
  the GPU when CUDA works, else the CPU), like O2's ``GPU_proc.deviceType``.
"""

from __future__ import annotations

from dataclasses import dataclass

from alice_dyn.framework.config import register_config_group
from alice_dyn.kernels import BACKEND_NAMES, DEFAULT_KERNEL_BACKEND
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


@dataclass(frozen=True)
class KernelParam:
    """Where the kernels run: ``cpu``, ``gpu`` or ``auto``."""

    backend: str = DEFAULT_KERNEL_BACKEND

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"KernelParam.backend {self.backend!r}: use one of {BACKEND_NAMES}")


register_config_group("KernelParam", KernelParam, aliases={"deviceType": "backend"})
