"""The data addresses (origin/description) that alice_dyn stages exchange, in one place.

Names follow O2 where O2 has them (``TPC/CLUSTERNATIVE``, ``TPC/CLNATIVEMCLBL``,
``TRD/TRACKLETS``, ``FT0/RECPOINTS``, ``MC/MCTRACKS``). Payloads:

* ``TPC/CLUSTERNATIVE``: ndarray uint8, O2's buffer: ``ClusterCountIndex [36][152]`` then the
  ClusterNative records in (sector, row) order (all sectors in one message, subspec 0);
* ``TPC/CLNATIVEMCLBL``: ndarray int32, MC particle index per cluster, same order (-1 = noise);
* ``TPC/CLUSTERGLOBAL``: columns x, y, z (cm, global; z for t0 = 0), sector, row, pad, time,
  q_tot, q_max;
* ``FT0/RECPOINTS``: columns time_ps (measured collision time since the TF start),
  resolution_ps;
* ``MC/COLLISIONS``, ``MC/MCTRACKS``, ``TOF/CLUSTERS``, ``TRD/TRACKLETS``: columns of
  :class:`alice_dyn.event.Collisions`, ``MCParticles``, ``TOFHits``, ``TRDTracklets``;
* ``GLO/TFMETA``: object, dict of the timeframe metadata (tf_id, first_orbit, run, field, ...).
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
