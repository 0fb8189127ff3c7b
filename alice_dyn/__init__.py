"""alice_dyn: dynamic neural networks for ALICE O2-style TPC reconstruction and PID.

Layers, data flowing one way: ``tpc`` (geometry, ClusterNative, transforms) and ``event``
(timeframe containers) are the data model; ``sim`` makes timeframes; ``io`` writes and reads
them as ROOT files; ``kernels`` pre-process; ``reco``, ``pid`` and ``nn`` reconstruct and
identify; ``stages`` wrap them as workflow processors that ``framework`` (the DPL mirror) runs.
"""

import os as _os

# The multi-process runner forks one worker per processor. Numba's default threading layer
# here is GNU OpenMP, which aborts a forked child of a process that already ran a parallel
# kernel ("fork() called from a process already using GNU OpenMP"); numba's own workqueue
# layer survives fork. A user's explicit NUMBA_THREADING_LAYER is respected.
if "NUMBA_THREADING_LAYER" not in _os.environ:
    _os.environ["NUMBA_THREADING_LAYER"] = "workqueue"
    import sys as _sys

    if "numba" in _sys.modules:  # numba imported first: its config was already read
        _sys.modules["numba"].config.THREADING_LAYER = "workqueue"

__version__ = "0.1.0"
