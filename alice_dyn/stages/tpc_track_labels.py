"""``tpc-track-mc-labels``: MC label of each track from its clusters' labels (TPC/TRACKSMCLBL).

Layer: stages, around :func:`alice_dyn.reco.mc_labels.track_mc_labels`: the label is the
particle that left most of the track's clusters, the purity its share; tracks with purity below
90% (or no labelled cluster) carry the fake bit 0x8000, as O2's MC mask. Data without MC truth
(labels all -1) give -1 labels.
"""

from __future__ import annotations

from alice_dyn.framework.context import ProcessingContext
from alice_dyn.framework.spec import DataProcessorSpec
from alice_dyn.reco.mc_labels import track_mc_labels
from alice_dyn.stages import data_types as dt

NAME = "tpc-track-mc-labels"


def run(pc: ProcessingContext) -> None:
    tracks = pc.inputs.get("tracks")
    labels = track_mc_labels(
        pc.inputs.get("labels"),
        pc.inputs.get("refs"),
        tracks["cluster_start"],
        tracks["n_clusters"],
    )
    pc.outputs.adopt(dt.TRACKS_MC, labels)


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
