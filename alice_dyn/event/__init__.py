"""In-memory event data model: one :class:`Timeframe` of TPC clusters, TOF/TRD hits and MC truth."""

from alice_dyn.event.timeframe import (
    Collisions,
    MCParticles,
    Timeframe,
    TimeframeMeta,
    TOFHits,
    TPCClusters,
    TRDTracklets,
)

__all__ = [
    "Collisions",
    "MCParticles",
    "TOFHits",
    "TPCClusters",
    "TRDTracklets",
    "Timeframe",
    "TimeframeMeta",
]
