"""Reconstruction: clusters, tracks, track network, dE/dx, TOF/TRD matching, n-sigma PID, PID
network, AO2D.

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
from alice_dyn.stages.track_net import track_net_spec
from alice_dyn.stages.trd_matcher import trd_matcher_spec


def define_workflow(inputs: list[str], output: str) -> list:
    return [
        tpc_cluster_reader_spec(inputs),
        tpc_cluster_transform_spec(),
        tpc_tracker_spec(),
        track_net_spec(),
        tpc_track_labels_spec(),
        tpc_dedx_spec(),
        tof_matcher_spec(),
        trd_matcher_spec(),
        nsigma_pid_spec(),
        aod_producer_spec(tracknet=True),
        pid_net_spec(tracknet=True),
        aod_writer_spec(
            output,
            inputs=WRITER_INPUTS + ";pidnet:AOD/PIDNET;tracknet:AOD/TRACKNET;tfmeta:GLO/TFMETA",
        ),
    ]


def online_modes() -> dict[str, str]:
    """``alice-dyn run tpc-reco --online``: the networks at full depth (static) against the
    deadline-following exits (adaptive, :mod:`alice_dyn.stages.exit_budget`)."""
    return {
        "static": "PIDNetParam.budget=full;TrackNetParam.budget=full",
        "adaptive": "PIDNetParam.budget=latency;PIDNetParam.max_ms_per_tf=1e9;"
        "TrackNetParam.budget=latency;TrackNetParam.max_ms_per_tf=1e9",
    }


def online_accuracy(output: str, inputs: list[str]) -> dict:
    """Per timeframe: the PID network's accuracy (headline), n-sigma's and the track network's
    good/fake/clone accuracy, against MC truth."""
    from alice_dyn.framework.online import NoTruthError
    from alice_dyn.qa.online_accuracy import NoTruth, network_accuracy_per_tf

    if len(inputs) != 1:
        raise NoTruthError(f"accuracy needs one simulation file as input, got {len(inputs)}")
    try:
        return network_accuracy_per_tf(output, inputs[0], track_net=True)
    except NoTruth as err:
        raise NoTruthError(str(err)) from err
