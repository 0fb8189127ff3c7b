"""Moved to :mod:`alice_dyn.plotting.tracking` and :mod:`alice_dyn.plotting.pid`.

Kept only because ``alice_dyn/cli/evaluate.py`` (``evaluate tracking|pid --plots``) still
imports ``alice_dyn.qa.plots``; delete this file once it imports the plotting modules (qa ->
plotting breaks the layering: only cli and online draw).
"""

from alice_dyn.plotting.pid import make_pid_plots
from alice_dyn.plotting.tracking import make_tracking_plots

__all__ = ["make_pid_plots", "make_tracking_plots"]
