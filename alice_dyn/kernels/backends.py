"""Array backends of the kernels: ``"cpu"`` (NumPy + Numba) and ``"gpu"`` (CuPy + numba.cuda).

Layer: kernels. A :class:`Backend` names the array module the kernels allocate their outputs
with (``xp``: ``numpy`` or ``cupy``), moves arrays to it (:meth:`Backend.asarray`) and back to
the host (:meth:`Backend.to_numpy`), and hands arrays to PyTorch without a copy through DLPack
(:meth:`Backend.to_torch`). CuPy is imported only when the GPU backend is asked for, so the
package imports and runs on machines without CUDA.

Names accepted by :func:`get_backend` (the values of a stage's ``KERNEL_BACKEND`` option):

* ``"cpu"``: NumPy arrays, Numba-compiled CPU kernels;
* ``"gpu"``: CuPy arrays, numba.cuda kernels; raises :class:`BackendUnavailableError` with an
  install hint when CuPy is missing or no CUDA device works;
* ``"auto"``: ``"gpu"`` when :func:`gpu_available`, else ``"cpu"``.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np

#: names a ``KERNEL_BACKEND`` configuration value may take
BACKEND_NAMES = ("auto", "cpu", "gpu")
#: default of a stage's ``KERNEL_BACKEND`` option
DEFAULT_KERNEL_BACKEND = "auto"
GPU_INSTALL_HINT = "pip install alice-dyn[gpu]"


class BackendUnavailableError(RuntimeError):
    """The requested kernel backend cannot run on this machine."""


class Backend:
    """One array backend; see the module docstring. Compare backends by :attr:`name`."""

    name: str = ""
    is_gpu: bool = False

    @property
    def xp(self) -> ModuleType:
        """The array module: ``numpy`` or ``cupy``."""
        raise NotImplementedError

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        """``array`` on this backend (no copy if it is already there with that dtype)."""
        return self.xp.asarray(array, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """``array`` as a NumPy array on the host (no copy for host arrays)."""
        raise NotImplementedError

    def to_torch(self, array: Any) -> Any:
        """A ``torch.Tensor`` sharing ``array``'s memory (DLPack; CPU or CUDA tensor)."""
        import torch

        return torch.from_dlpack(array)

    def synchronize(self) -> None:
        """Wait for queued device work (no-op on the CPU)."""

    def __repr__(self) -> str:
        return f"<alice_dyn kernel backend {self.name!r}>"


class CPUBackend(Backend):
    """NumPy arrays; kernels compiled by Numba for the CPU."""

    name = "cpu"
    is_gpu = False

    @property
    def xp(self) -> ModuleType:
        return np

    def to_numpy(self, array: Any) -> np.ndarray:
        if hasattr(array, "__cuda_array_interface__") and not isinstance(array, np.ndarray):
            return _import_cupy().asnumpy(array)
        return np.asarray(array)


class GPUBackend(Backend):
    """CuPy arrays on the current CUDA device; kernels compiled by numba.cuda."""

    name = "gpu"
    is_gpu = True

    def __init__(self) -> None:
        self._cupy = _import_cupy()
        try:
            ok = bool(self._cupy.cuda.is_available())
        except Exception as exc:  # a broken driver raises instead of answering
            raise BackendUnavailableError(f"CUDA is not usable: {exc}") from exc
        if not ok:
            raise BackendUnavailableError(
                "the 'gpu' kernel backend needs a CUDA device, and none is available "
                "(use KERNEL_BACKEND=cpu or auto)"
            )

    @property
    def xp(self) -> ModuleType:
        return self._cupy

    def to_numpy(self, array: Any) -> np.ndarray:
        if isinstance(array, np.ndarray):
            return array
        return self._cupy.asnumpy(array)

    def synchronize(self) -> None:
        self._cupy.cuda.Device().synchronize()

    def device_name(self) -> str:
        """Name of the current CUDA device (e.g. ``NVIDIA H100 80GB HBM3``)."""
        props = self._cupy.cuda.runtime.getDeviceProperties(self._cupy.cuda.Device().id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)


def _import_cupy() -> ModuleType:
    """CuPy, or :class:`BackendUnavailableError` with the install hint."""
    try:
        import cupy
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the 'gpu' kernel backend needs CuPy, which is not installed: {GPU_INSTALL_HINT}"
        ) from exc
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and ``cupy.cuda.is_available()`` (a CUDA device really works)."""
    try:
        import cupy

        return bool(cupy.cuda.is_available())
    except Exception:
        return False


_REGISTRY: dict[str, type[Backend]] = {"cpu": CPUBackend, "gpu": GPUBackend}


@functools.cache
def _instance(name: str) -> Backend:
    return _REGISTRY[name]()


def get_backend(name: str | Backend = DEFAULT_KERNEL_BACKEND) -> Backend:
    """The backend called ``name`` (``"cpu"``, ``"gpu"``, ``"auto"``); a Backend is returned as is.

    Raises ``ValueError`` for an unknown name and :class:`BackendUnavailableError` (with the
    install hint) when ``"gpu"`` is asked for where it cannot run.
    """
    if isinstance(name, Backend):
        return name
    key = str(name).strip().lower()
    if key == "auto":
        key = "gpu" if gpu_available() else "cpu"
    if key not in _REGISTRY:
        raise ValueError(f"unknown kernel backend {name!r}; choose from {BACKEND_NAMES}")
    return _instance(key)
