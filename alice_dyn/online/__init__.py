"""Online comparison: a workflow replayed in its static and its adaptive configuration.

Layer: online, above ``framework`` and physics-free (``framework`` does not import it). The
replay mechanics — clock, schedule, pacer, ``pc.timing``, the idle collector — are the
framework's (:mod:`alice_dyn.framework.online`); this package runs a workflow twice on them and
compares the runs:

* :mod:`~alice_dyn.online.harness`: the two runs (sequential, ``--side-by-side`` in two pinned
  processes, ``--interleaved`` in one process on one core), warm-up, accuracy counts,
  :func:`run_online_comparison`;
* :mod:`~alice_dyn.online.report`: one run's report, the comparison, the burst load, the text
  table, :func:`json_safe`;
* :mod:`~alice_dyn.online.cores`: CPU cores and pinning.

The plots are :mod:`alice_dyn.plotting.online` (matplotlib is imported only there). Report keys:
``docs/online_report.md``.
"""

from alice_dyn.online.harness import RunSettings, run_online_comparison, static_output
from alice_dyn.online.report import MODES, PERCENTILE_METHOD, format_online_report, json_safe

__all__ = [
    "MODES",
    "PERCENTILE_METHOD",
    "RunSettings",
    "format_online_report",
    "json_safe",
    "run_online_comparison",
    "static_output",
]
