"""The data addresses (origin/description) that alice_dyn stages exchange, in one place.

Names follow O2 where O2 has them (``TPC/CLUSTERNATIVE``, ``TPC/CLNATIVEMCLBL``,
``TRD/TRACKLETS``, ``FT0/RECPOINTS``, ``MC/MCTRACKS``). Payloads:

* ``TPC/CLUSTERNATIVE``: ndarray uint8, O2's buffer: ``ClusterCountIndex [36][152]`` then the
  ClusterNative records in (sector, row) order (all sectors in one message, subspec 0);
* ``TPC/CLNATIVEMCLBL``: ndarray int32, MC particle index per cluster, same order (-1 = noise);
* ``TPC/CLUSTERGLOBAL``: columns x, y, z (cm, global; z for t0 = 0), sector, row, pad, time,
  q_tot, q_max (:data:`alice_dyn.reco.tpc_chain.CLUSTER_GLOBAL_COLUMNS`);
* ``FT0/RECPOINTS``: columns time_ps (measured collision time since the TF start),
  resolution_ps;
* ``MC/COLLISIONS``, ``MC/MCTRACKS``, ``TOF/CLUSTERS``, ``TRD/TRACKLETS``: columns of
  :class:`alice_dyn.event.Collisions`, ``MCParticles``, ``TOFHits``, ``TRDTracklets``;
* ``GLO/TFMETA``: object, dict of the timeframe metadata (tf_id, first_orbit, run, field, ...);
* ``TPC/TRACKS``: columns of :class:`alice_dyn.event.tracks.TPCTracks` (``cov`` is (n, 15));
* ``TPC/CLUSREFS``: ndarray int32, cluster indices of the tracks (inner to outer);
* ``TPC/TRACKSMCLBL``: columns mc_id, purity, mask (0x8000 = fake);
* ``TPC/DEDX``: columns signal_tot, signal_max (MIP = 50), n_clusters;
* ``TOF/MATCHINFO``: columns of :class:`alice_dyn.reco.tof_matching.TOFMatches`;
* ``TRD/MATCHINFO``: columns n_tracklets, pattern, signal;
* ``PID/NSIGMA``: columns tpc (n, 5), tof (n, 5), decision (n,);
* ``TPC/TRACKNET``: the track network's columns per track (see :mod:`alice_dyn.stages.track_net`:
  class probabilities, decision, rejected, exit, FLOPs, refined parameters and sigmas,
  embedding (n, d)); ``AOD/TRACKNET``: its AO2D table (``docs/aod_schema.md``);
* ``AOD/*``: the AO2D tables of ``docs/aod_schema.md`` as columns with O2 names.
"""

from __future__ import annotations

from alice_dyn.framework.spec import DataType

CLUSTER_NATIVE = DataType("TPC", "CLUSTERNATIVE")
CLUSTER_NATIVE_MC = DataType("TPC", "CLNATIVEMCLBL")
CLUSTER_GLOBAL = DataType("TPC", "CLUSTERGLOBAL")
FT0_RECPOINTS = DataType("FT0", "RECPOINTS")
MC_COLLISIONS = DataType("MC", "COLLISIONS")
MC_TRACKS = DataType("MC", "MCTRACKS")
TOF_CLUSTERS = DataType("TOF", "CLUSTERS")
TRD_TRACKLETS = DataType("TRD", "TRACKLETS")
TF_META = DataType("GLO", "TFMETA")

TRACKS = DataType("TPC", "TRACKS")
CLUSTER_REFS = DataType("TPC", "CLUSREFS")
TRACKS_MC = DataType("TPC", "TRACKSMCLBL")
DEDX = DataType("TPC", "DEDX")
TOF_MATCH = DataType("TOF", "MATCHINFO")
TRD_MATCH = DataType("TRD", "MATCHINFO")
PID_NSIGMA = DataType("PID", "NSIGMA")
TRACKNET = DataType("TPC", "TRACKNET")
AOD_TRACKNET = DataType("AOD", "TRACKNET")
AOD_TRACKNET_EMB = DataType("AOD", "TRACKNETEMB")
AOD_TABLES = {
    "track_iu": DataType("AOD", "TRACK_IU"),
    "trackcov_iu": DataType("AOD", "TRACKCOV_IU"),
    "trackextra": DataType("AOD", "TRACKEXTRA"),
    "mctracklabel": DataType("AOD", "MCTRACKLABEL"),
    "pidtpc": DataType("AOD", "PIDTPC"),
    "pidtof": DataType("AOD", "PIDTOF"),
    "pid": DataType("AOD", "PID"),
}


def input_spec(binding: str, data: DataType, lifetime=None):
    """An InputSpec for ``data`` (any subspec) bound to ``binding``."""
    from alice_dyn.framework.spec import InputSpec, Lifetime

    return InputSpec(binding, data.origin, data.description, None, lifetime or Lifetime.Timeframe)


def output_spec(data: DataType):
    """An OutputSpec for ``data``."""
    from alice_dyn.framework.spec import OutputSpec

    return OutputSpec(data.origin, data.description, data.subspec)
