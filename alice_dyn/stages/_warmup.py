"""Warm-up of the stages' JIT kernels in the multi-process runner's workers.

Layer: stages. Registered with :func:`~alice_dyn.framework.runtime.register_worker_warmup` on
import of :mod:`alice_dyn.stages` (so also in ``spawn``/``forkserver`` workers, which import the
processor's module): the framework itself knows no numba.
"""

from __future__ import annotations

import sys

from alice_dyn.framework.runtime import register_worker_warmup


@register_worker_warmup
def warm_numba() -> None:
    """Pay numba's one-off start-up (its LLVM back-end, ~0.4 s) before the worker says it is
    ready, when the task imported numba: its first timeframe would carry it otherwise (cached
    kernels then load in milliseconds). Nothing when numba is not imported."""
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.njit(lambda: 0)()
