"""Compute budgets of a network stage: how its early exits are chosen, timeframe by timeframe.

Layer: stages (shared by ``track-net`` and ``pid-net``). The stage's configuration group extends
:class:`ExitBudgetParam`: ``model`` (the model directory; empty: the shipped one), ``threads``
(PyTorch intra-op threads) and the fields ``budget``, ``threshold``, ``flops_fraction``,
``max_ms_per_tf``, ``reserve_ms`` and ``target_load`` of the exit budget, each checked when the
group is made (a :class:`~alice_dyn.framework.config.ConfigError` naming ``Group.key``):

* ``full``: no early exit (every track to the last exit);
* ``25`` / ``50`` / ``75``: the thresholds calibrated at training time for that percentage of
  the full network's FLOPs (stored in the model's ``config.json``);
* ``threshold``: one confidence threshold, ``threshold``, at every exit;
* ``flops``: a run-time controller keeps each timeframe's average FLOPs per track under
  ``flops_fraction`` of the full network's (:class:`alice_dyn.nn.BudgetController`);
* ``latency``: each timeframe's inference must fit ``max_ms_per_tf`` and, when the timeframe
  has a deadline (online processing, ``pc.timing``), the time left before it, less
  ``reserve_ms`` for the stages after this one; while timeframes wait in the queue behind it
  (``backlog > 0``) it takes the cheapest exits, so that the queue drains (the time of the
  queued timeframes is spent by the whole chain, not only by this stage). And it keeps the
  queue from forming: when the framework tells the load (``pc.timing.period_ms``, the recent
  interval between arrivals, and ``service_ms``, the workflow's recent time per timeframe),
  the stage may take at most what
  :meth:`~alice_dyn.framework.online.TimeframeTiming.load_allowance_ms` gives: inline
  ``target_load * period_ms`` minus what the rest of the chain takes (``service_ms`` less this
  stage's own recent time), so that the whole chain fits between two arrivals; in the
  multi-process runner the chain's CPU time shared over the cores (``parallelism``), and at
  most ``target_load * period_ms`` for the stage's own lane. The thresholds are
  chosen *before* the timeframe runs from a cost model learnt on the previous ones
  (:class:`alice_dyn.nn.DeadlineGovernor`): they drop when a timeframe risks exceeding its
  budget and go back up (to the full network) when load drops. Nothing is dropped: every track
  gets a prediction.

The fraction -> threshold mapping of the run-time modes is the calibration curve stored with
the model (``level_curve``), so no timeframe pays for a calibration. Every timeframe reports
(``pc.report``) ``exit_fractions`` (share of tracks per exit), ``flops_fraction`` and, in the
run-time modes, ``allowed_ms`` (and ``load_ms``, the part allowed by the load, when known).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from alice_dyn.framework.config import ConfigError
from alice_dyn.nn import (
    BudgetController,
    ConfidencePolicy,
    DeadlineGovernor,
    EarlyExitNet,
    ExitResult,
    Inputs,
    TabulatedCalibrator,
    ThresholdCalibrator,
    run_dynamic,
)

BUDGET_MODES = ("full", "25", "50", "75", "threshold", "flops", "latency")
#: a confidence no softmax reaches: every sample goes to the last exit
FULL_DEPTH = ConfidencePolicy(2.0)
#: weight of the newest timeframe in a stage's own recent inference time
OWN_EMA = 0.3


@dataclass(frozen=True)
class ExitBudgetParam:
    """The settings every network stage shares (its configuration group extends this class,
    naming itself in ``GROUP`` and re-declaring a field to change its default).

    ``model``: model directory (empty: the shipped one); ``budget``: one of
    :data:`BUDGET_MODES`; ``threshold``: confidence threshold of the ``threshold`` mode, in
    [0, 1]; ``flops_fraction``: target of the ``flops`` mode, in (0, 1]; ``max_ms_per_tf``
    (> 0) and ``reserve_ms`` (>= 0): the ``latency`` mode's limits, ms; ``target_load``: the
    share of the interval between arrivals the chain may fill, in (0, 1]; ``threads``: PyTorch
    intra-op threads, >= 1. An invalid value raises :class:`ConfigError` (a ``ValueError``)
    naming ``Group.key``, the value and the allowed range.
    """

    GROUP: ClassVar[str] = "ExitBudgetParam"

    model: str = ""
    budget: str = "50"
    threshold: float = 0.9
    flops_fraction: float = 0.5
    max_ms_per_tf: float = 50.0
    reserve_ms: float = 30.0
    target_load: float = 0.9
    threads: int = 1

    def __post_init__(self) -> None:
        if self.budget not in BUDGET_MODES:
            self._invalid("budget", f"one of {', '.join(BUDGET_MODES)}")
        checks = (
            ("threshold", 0.0 <= self.threshold <= 1.0, "in [0, 1]"),
            ("flops_fraction", 0.0 < self.flops_fraction <= 1.0, "in (0, 1]"),
            ("max_ms_per_tf", self.max_ms_per_tf > 0.0, "> 0"),
            ("reserve_ms", self.reserve_ms >= 0.0, ">= 0"),
            ("target_load", 0.0 < self.target_load <= 1.0, "in (0, 1]"),
            ("threads", self.threads >= 1, ">= 1"),
        )  # NaN fails every comparison
        for key, ok, allowed in checks:
            if not ok:
                self._invalid(key, allowed)

    def _invalid(self, key: str, allowed: str) -> None:
        raise ConfigError(f"{self.GROUP}.{key}={getattr(self, key)!r}: must be {allowed}")


class ExitBudget:
    """Chooses the exit policy of every timeframe for one stage (see the module docstring).

    Args:
        prm: the stage's configuration group.
        model: the early-exit network.
        config: the model's ``config.json`` (``thresholds``, ``level_curve``).
    """

    def __init__(self, prm: ExitBudgetParam, model: EarlyExitNet, config: dict):
        self.prm = prm
        self.model = model
        self.config = config
        self.controller: BudgetController | None = None
        self.governor: DeadlineGovernor | None = None
        self.own_ms: float | None = None  # this stage's recent inference time (EMA), ms
        self.load_ms: float | None = None  # the time the load allows (last timeframe), ms
        self.policy = None
        b = prm.budget
        if b == "full":
            self.policy = FULL_DEPTH
        elif b == "threshold":
            self.policy = ConfidencePolicy(prm.threshold)
        elif b in ("25", "50", "75"):
            self.policy = ConfidencePolicy(config["thresholds"][b]["thresholds"])

    def _calibrator(self, x: Inputs) -> TabulatedCalibrator | ThresholdCalibrator:
        curve = self.config.get("level_curve")
        if curve:
            return TabulatedCalibrator(curve)
        return ThresholdCalibrator(self.model, x, ConfidencePolicy(0.0))  # older model files

    def allowed_ms(self, pc: Any) -> float:
        """Milliseconds this timeframe's inference may take (``latency`` mode)."""
        allowed = float(self.prm.max_ms_per_tf)
        self.load_ms = None
        timing = getattr(pc, "timing", None)
        if timing is not None and timing.budget_ms is not None:
            if int(timing.backlog) > 0:
                return 0.0
            allowed = min(allowed, timing.time_left_ms() - float(self.prm.reserve_ms))
            self.load_ms = timing.load_allowance_ms(self.own_ms, self.prm.target_load)
            if self.load_ms is not None:
                allowed = min(allowed, self.load_ms)
        return allowed

    def _observe_own(self, ms: float) -> None:
        self.own_ms = ms if self.own_ms is None else OWN_EMA * ms + (1 - OWN_EMA) * self.own_ms

    def run(self, pc: Any, x: Inputs, *, n_tracks: int | None = None, **kw: Any) -> ExitResult:
        """Dynamic inference on this timeframe's inputs ``x``; reports to ``pc``.
        ``n_tracks``: the tracks ``x`` stands for when some have more than one row (e.g. a
        second pass without TOF, :mod:`alice_dyn.pid.mismatch`): the FLOPs budget and the
        reported fraction are then per track (all rows' FLOPs / ``n_tracks``)."""
        extra: dict[str, float] = {}
        if self.policy is not None:
            res = run_dynamic(self.model, x, self.policy, **kw)
        elif self.prm.budget == "flops":
            if self.controller is None:
                cal = self._calibrator(x)
                self.controller = BudgetController(cal, self.prm.flops_fraction * cal.full_flops)
            t_policy = self.controller.policy
            res = run_dynamic(self.model, x, t_policy, **kw)
            self.controller.update(_per_track(res, n_tracks) * res.full_flops)
        else:
            if self.governor is None:
                self.governor = DeadlineGovernor(self._calibrator(x))
            allowed = self.allowed_ms(pc)
            res = self.governor.run(self.model, x, allowed, **kw)
            self._observe_own(self.governor.history[-1]["ms"])
            extra["allowed_ms"] = allowed if math.isfinite(allowed) else -1.0
            extra["chosen_fraction"] = self.governor.fraction
            if self.load_ms is not None:
                extra["load_ms"] = self.load_ms
        report = getattr(pc, "report", None)
        if report is not None:
            n = max(int(res.exit_index.numel()), 1)
            counts = np.bincount(res.exit_index.cpu().numpy(), minlength=self.model.num_exits)
            report("exit_fractions", (counts / n).tolist())
            report("flops_fraction", _per_track(res, n_tracks))
            for k, v in extra.items():
                report(k, v)
        return res


def _per_track(res: ExitResult, n_tracks: int | None) -> float:
    """FLOPs of all rows / (``n_tracks`` or the rows) as a fraction of the full network's."""
    n = res.exit_index.numel() if n_tracks is None else n_tracks
    return float(res.flops.sum()) / (n * res.full_flops) if n else 0.0
