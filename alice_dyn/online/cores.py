"""CPU cores for the paired replays: which cores this process may use, and pinning to one.

Layer: online (physics-free). ``--side-by-side`` puts each configuration on its own core
(:func:`side_by_side_cores`), ``--interleaved`` both on one; either way the process doing a
replay runs :func:`one_core_one_thread`, so that numba and PyTorch do not spread over cores the
other run needs. numba and PyTorch are imported only when pinning.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from alice_dyn.online.report import MODES


def usable_cores() -> list[int]:
    """The CPU cores this process may use, in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def side_by_side_cores() -> dict[str, int]:
    """``{mode: core}``: the first two CPU cores this process may use."""
    allowed = usable_cores()
    if len(allowed) < 2:
        raise ValueError(f"side by side runs need 2 CPU cores, this process has {len(allowed)}")
    return dict(zip(MODES, allowed[:2], strict=True))


@contextlib.contextmanager
def one_core_one_thread(core: int) -> Iterator[None]:
    """This process on CPU ``core``, numba and PyTorch on one thread; restored afterwards."""
    import numba
    import torch

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = (numba.get_num_threads(), torch.get_num_threads())
    try:
        if affinity is not None:
            os.sched_setaffinity(0, {core})
        numba.set_num_threads(1)
        torch.set_num_threads(1)
        yield
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        numba.set_num_threads(threads[0])
        torch.set_num_threads(threads[1])


__all__ = ["one_core_one_thread", "side_by_side_cores", "usable_cores"]
