"""``tpc-track-mc-labels``: MC label of each track from its clusters' labels (TPC/TRACKSMCLBL).

Layer: stages. The label is the particle that left most of the track's clusters; the purity is
its share; tracks with purity below 90% (or no labelled cluster) carry the fake bit 0x8000, as
O2's MC mask. Data without MC truth (labels all -1) give -1 labels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alice_dyn.framework.context import ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.stages import data_types as dt

NAME = "tpc-track-mc-labels"
FAKE_BIT = 0x8000
MIN_PURITY = 0.9


@njit(cache=True)
def majority_labels(labels, refs, start, n):
    """Per track: most frequent label (>= 0) among its clusters and its share."""
    n_tr = start.shape[0]
    out = np.full(n_tr, -1, np.int32)
    purity = np.zeros(n_tr, np.float32)
    for t in range(n_tr):
        lab = np.sort(labels[refs[start[t] : start[t] + n[t]]])
        best, best_n, cur, cur_n = -1, 0, -1, 0
        for v in lab:
            if v < 0:
                continue
            if v == cur:
                cur_n += 1
            else:
                cur, cur_n = v, 1
            if cur_n > best_n:
                best, best_n = cur, cur_n
        out[t] = best
        purity[t] = best_n / max(n[t], 1)
    return out, purity


def run(pc: ProcessingContext) -> None:
    tracks = pc.inputs.get("tracks")
    refs = pc.inputs.get("refs")
    labels = pc.inputs.get("labels")
    mc_id, purity = majority_labels(
        np.ascontiguousarray(labels, dtype=np.int32),
        refs,
        tracks["cluster_start"].astype(np.int64),
        tracks["n_clusters"].astype(np.int64),
    )
    mask = np.where((purity < MIN_PURITY) | (mc_id < 0), FAKE_BIT, 0).astype(np.uint16)
    pc.outputs.adopt(dt.TRACKS_MC, {"mc_id": mc_id, "purity": purity, "mask": mask})


def tpc_track_labels_spec() -> DataProcessorSpec:
    return DataProcessorSpec(
        name=NAME,
        inputs=[
            dt.input_spec("tracks", dt.TRACKS),
            dt.input_spec("refs", dt.CLUSTER_REFS),
            dt.input_spec("labels", dt.CLUSTER_NATIVE_MC),
        ],
        outputs=[dt.output_spec(dt.TRACKS_MC)],
        algorithm=run,
        factory=f"{__name__}:tpc_track_labels_spec",
    )
