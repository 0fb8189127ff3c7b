"""Quality assurance: physics summaries of simulated or read-back timeframes."""

from alice_dyn.qa.sim_qa import SimSummary, truncated_mean

__all__ = ["SimSummary", "truncated_mean"]
