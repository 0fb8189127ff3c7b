"""Reconstruction: clusters, tracks, dE/dx, TOF/TRD matching, n-sigma PID, PID network, AO2D.

Run: ``alice-dyn run tpc-reco -i data_samples/pp_sample.root -o out/reco.root``; evaluate with
``alice-dyn evaluate tracking out/reco.root --truth data_samples/pp_sample.root``.
"""

from alice_dyn.stages import aod_writer_spec, tpc_cluster_reader_spec, tpc_cluster_transform_spec
from alice_dyn.stages.aod_producer import WRITER_INPUTS, aod_producer_spec
from alice_dyn.stages.nsigma_pid import nsigma_pid_spec
from alice_dyn.stages.pid_net import pid_net_spec
from alice_dyn.stages.tof_matcher import tof_matcher_spec
from alice_dyn.stages.tpc_dedx import tpc_dedx_spec
from alice_dyn.stages.tpc_track_labels import tpc_track_labels_spec
from alice_dyn.stages.tpc_tracker import tpc_tracker_spec
from alice_dyn.stages.trd_matcher import trd_matcher_spec


def define_workflow(inputs: list[str], output: str) -> list:
    return [
        tpc_cluster_reader_spec(inputs),
        tpc_cluster_transform_spec(),
        tpc_tracker_spec(),
        tpc_track_labels_spec(),
        tpc_dedx_spec(),
        tof_matcher_spec(),
        trd_matcher_spec(),
        nsigma_pid_spec(),
        aod_producer_spec(),
        pid_net_spec(),
        aod_writer_spec(output, inputs=WRITER_INPUTS + ";pidnet:AOD/PIDNET;tfmeta:GLO/TFMETA"),
    ]
