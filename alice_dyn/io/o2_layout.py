"""O2's cluster file layout (``tpc-native-clusters.root``): TTree ``tpcrec``, one entry per TF.

Layer: I/O. Branch ``TPCClusterNative`` holds each timeframe's O2 buffer as a jagged ``uint8``
array — the ``ClusterCountIndex`` (``uint32 [36][152]``) followed by the 12-byte ClusterNative
records in (sector, row) order, exactly what
:func:`~alice_dyn.tpc.cluster_native.encode_o2_buffer` produces. Branch
``TPCClusterNativeMCLabels`` (jagged ``int32``) holds one MC particle index per record, in the
same order; it is optional on reading (missing = all ``-1``).

Only clusters live in this layout: a timeframe read from it has empty collisions, particles,
TOF and TRD, ``tf_id`` equal to the entry index and the other meta values from
:data:`~alice_dyn.io.schema.O2_DEFAULT_META`.
"""

from __future__ import annotations

import numpy as np

from alice_dyn.event.timeframe import (
    Collisions,
    MCParticles,
    Timeframe,
    TimeframeMeta,
    TOFHits,
    TPCClusters,
    TRDTracklets,
)
from alice_dyn.io.schema import (
    COLLISIONS,
    O2_CLUSTERS_BRANCH,
    O2_DEFAULT_META,
    O2_LABELS_BRANCH,
    PARTICLES,
    TOF,
    TRD,
    Group,
)
from alice_dyn.tpc.cluster_native import (
    ClusterNativeFormatError,
    decode_o2_buffer,
    encode_o2_buffer,
    sector_row_from_index,
    sector_row_order,
)


class TimeframeProblem(Exception):
    """Internal: one timeframe is bad; the reader adds the file and the entry."""


def o2_entry(tf: Timeframe) -> tuple[np.ndarray, np.ndarray]:
    """One TF as the O2 layout stores it: ``(buffer uint8 (21888 + 12 n,), labels int32 (n,))``.

    Clusters are stably reordered by (sector, row) if needed, labels alongside.
    """
    c = tf.clusters
    buffer = encode_o2_buffer(c.records, c.sector, c.row)
    labels = np.asarray(c.mc_label, dtype=np.int32)[sector_row_order(c.sector, c.row)]
    return buffer, labels


def _empty_group(group: Group):
    containers = {
        "collisions": Collisions,
        "particles": MCParticles,
        "tof": TOFHits,
        "trd": TRDTracklets,
    }
    cls = containers[group.container]
    return cls(**{col.attr: np.empty(0, col.dtype) for col in group.columns})


def o2_timeframe(buffer: np.ndarray, labels: np.ndarray | None, entry: int) -> Timeframe:
    """Build the :class:`Timeframe` of one O2 entry (``buffer`` uint8, ``labels`` int32 or None).

    Raises :class:`TimeframeProblem` if the buffer's layout is wrong or the labels do not match
    the clusters one to one. Arrays are views into ``buffer`` where possible.
    """
    raw = np.asarray(buffer)
    if raw.dtype != np.uint8:
        raw = raw.view(np.uint8)
    try:
        index, records = decode_o2_buffer(raw)
    except ClusterNativeFormatError as exc:
        raise TimeframeProblem(f"bad {O2_CLUSTERS_BRANCH} buffer: {exc}") from None
    sector, row = sector_row_from_index(index)
    if labels is None:
        mc_label = np.full(records.size, -1, dtype=np.int32)
    else:
        mc_label = np.asarray(labels, dtype=np.int32)
        if mc_label.size != records.size:
            raise TimeframeProblem(
                f"{O2_LABELS_BRANCH} has {mc_label.size} labels but {O2_CLUSTERS_BRANCH} holds "
                f"{records.size} clusters"
            )
    meta = TimeframeMeta(tf_id=entry, **O2_DEFAULT_META)
    return Timeframe(
        meta=meta,
        clusters=TPCClusters(records=records, sector=sector, row=row, mc_label=mc_label),
        collisions=_empty_group(COLLISIONS),
        particles=_empty_group(PARTICLES),
        tof=_empty_group(TOF),
        trd=_empty_group(TRD),
    )
