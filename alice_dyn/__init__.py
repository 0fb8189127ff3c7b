"""alice_dyn: dynamic neural networks for ALICE O2-style TPC reconstruction and PID.

Layers, data flowing one way: ``tpc`` (geometry, ClusterNative, transforms) and ``event``
(timeframe containers) are the data model; ``sim`` makes timeframes; ``io`` writes and reads
them as ROOT files; ``kernels`` pre-process; ``reco`` and ``nn`` reconstruct; ``stages`` wrap
them as workflow processors that ``framework`` (the DPL mirror) runs.
"""

__version__ = "0.1.0"
