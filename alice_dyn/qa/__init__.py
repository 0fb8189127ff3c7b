"""Quality assurance: physics summaries of timeframes and performance against MC truth.

Evaluations are sets of mergeable accumulators (:mod:`alice_dyn.qa.accumulate`) filled from an
AO2D-like file and its simulation (:mod:`alice_dyn.io.aod`); their plots are in
:mod:`alice_dyn.plotting` (matplotlib, mplhep, hist: imported only when plots are asked for).
"""

from alice_dyn.qa.evaluate_pid import evaluate_pid, format_pid
from alice_dyn.qa.evaluate_tracking import evaluate_tracking, format_tracking
from alice_dyn.qa.sim_qa import SimSummary, truncated_mean

__all__ = [
    "SimSummary",
    "evaluate_pid",
    "evaluate_tracking",
    "format_pid",
    "format_tracking",
    "truncated_mean",
]
