"""Quality assurance: physics summaries of timeframes and performance against MC truth.

``plots`` (matplotlib, mplhep, hist) is imported only when plots are asked for.
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
