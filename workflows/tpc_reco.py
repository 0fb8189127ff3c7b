"""Reconstruction: clusters, tracks, track network, dE/dx, TOF/TRD matching, n-sigma PID, PID
network, AO2D.

Run: ``alice-dyn run tpc-reco -i data_samples/pp_sample.root -o out/reco.root``; evaluate with
``alice-dyn evaluate tracking out/reco.root --truth data_samples/pp_sample.root``.
"""

from collections.abc import Sequence

from alice_dyn.framework.spec import DataProcessorSpec, SpecError
from alice_dyn.stages import aod_writer_spec, tpc_cluster_reader_spec, tpc_cluster_transform_spec
from alice_dyn.stages import data_types as dt
from alice_dyn.stages.aod_producer import aod_producer_spec
from alice_dyn.stages.aod_writer import aod_inputs
from alice_dyn.stages.nsigma_pid import nsigma_pid_spec
from alice_dyn.stages.pid_net import NAME as PID_NET
from alice_dyn.stages.pid_net import pid_net_spec
from alice_dyn.stages.tof_matcher import tof_matcher_spec
from alice_dyn.stages.tpc_dedx import tpc_dedx_spec
from alice_dyn.stages.tpc_track_labels import tpc_track_labels_spec
from alice_dyn.stages.tpc_tracker import tpc_tracker_spec
from alice_dyn.stages.track_net import track_net_spec
from alice_dyn.stages.trd_matcher import trd_matcher_spec

#: processors that ``disable`` may leave out
OPTIONAL = (PID_NET,)


def define_workflow(
    inputs: list[str],
    output: str,
    *,
    disable: Sequence[str] = (),
    tracknet_embedding: bool = False,
) -> list[DataProcessorSpec]:
    """The reconstruction chain reading ``inputs`` (simulation files) into the AO2D ``output``.

    Options (type; default), as O2 workflows' ``--disable-*`` and table switches:

    * ``disable`` (sequence of processor names; ``()``): leave these out of :data:`OPTIONAL`:
      ``"pid-net"`` (the PID network and its ``O2pidnet`` table: its training data must not
      depend on a previous model);
    * ``tracknet_embedding`` (bool; ``False``): the AOD producer also makes the track network's
      embedding table and the writer writes it (``O2tracknetemb``).

    The writer writes every ``AOD/*`` table of the processors before it, then ``O2tfmeta``.
    """
    unknown = sorted(set(disable) - set(OPTIONAL))
    if unknown:
        raise SpecError(f"tpc-reco: cannot disable {unknown}; optional processors: {OPTIONAL}")
    specs = [
        tpc_cluster_reader_spec(inputs),
        tpc_cluster_transform_spec(),
        tpc_tracker_spec(),
        track_net_spec(),
        tpc_track_labels_spec(),
        tpc_dedx_spec(),
        tof_matcher_spec(),
        trd_matcher_spec(),
        nsigma_pid_spec(),
        aod_producer_spec(tracknet=True, embedding=tracknet_embedding),
    ]
    if PID_NET not in disable:
        specs.append(pid_net_spec(tracknet=True))
    return [*specs, aod_writer_spec(output, inputs=aod_inputs(specs, dt.TF_META))]


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
