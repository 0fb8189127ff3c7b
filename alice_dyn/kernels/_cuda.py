"""Shared plumbing of the numba.cuda twins (private).

numba.cuda is imported lazily (first GPU call), so importing :mod:`alice_dyn.kernels` does not
initialise CUDA. Every GPU twin takes ``xp``: the array module its outputs are allocated with —
``cupy`` on a real GPU (the default), ``numpy`` under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported), where kernels run on host arrays.
"""

from __future__ import annotations

import functools
import os
import types
from types import ModuleType

import numpy as np

#: threads per block of the 1-D launches
THREADS_PER_BLOCK = 128


def cuda_simulator() -> bool:
    """True when numba's CUDA simulator is enabled (set before numba was imported)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


@functools.cache
def numba_cuda_available() -> bool:
    """True when numba.cuda can launch kernels here (a real device or the simulator)."""
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


def bind_cuda(module_globals: dict) -> None:
    """Import ``numba.cuda`` and bind it to the global name ``cuda`` of a kernel module.

    The kernels are defined inside builder functions (compiled on first use), but refer to
    ``cuda`` as a module global: the CUDA simulator swaps module globals that are numba.cuda
    for its fake module while a kernel runs, and would not see a closure variable.
    """
    from numba import cuda

    module_globals["cuda"] = cuda


def default_xp(xp: ModuleType | None) -> ModuleType:
    """``xp`` if given, else the GPU backend's module (CuPy; raises with an install hint)."""
    if xp is not None:
        return xp
    from alice_dyn.kernels.backends import get_backend

    return get_backend("gpu").xp


def blocks(n: int, tpb: int = THREADS_PER_BLOCK) -> int:
    """Blocks needed for ``n`` threads (at least 1)."""
    return max(1, (int(n) + tpb - 1) // tpb)


_TABLES: dict[tuple, object] = {}


def device_table(xp: ModuleType, name: str, host: np.ndarray):
    """``host`` copied once per array module and device, then reused (small look-up tables)."""
    dev = 0
    if xp is not np:
        dev = xp.cuda.Device().id
    key = (xp.__name__, dev, name)
    if key not in _TABLES:
        _TABLES[key] = xp.asarray(np.ascontiguousarray(host))
    return _TABLES[key]


def device_function(cuda, py_func, **helpers):
    """``cuda.jit(device=True)`` of ``py_func`` with the global names in ``helpers`` rebound.

    The CPU twins' scalar bodies call other ``@njit`` helpers by global name; for the GPU the
    body is recompiled with those names bound to the helpers' CUDA device versions, so no CPU
    dispatcher is ever called from device code.
    """
    glb = dict(py_func.__globals__)
    glb.update(helpers)
    fn = types.FunctionType(
        py_func.__code__, glb, py_func.__name__, py_func.__defaults__, py_func.__closure__
    )
    return cuda.jit(device=True)(fn)
