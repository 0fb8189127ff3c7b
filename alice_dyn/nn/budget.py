"""Compute budgets: thresholds calibrated to a FLOPs fraction, and a run-time controller.

Layer: nn. Both work with one shared *level* ``q`` for all exits, in the policy's confidence
units (``exit at i iff confidence_i >= q``; for :class:`~alice_dyn.nn.policies.ConfidencePolicy`
``q`` is the max-softmax threshold, for entropy/uncertainty policies ``q = -t``), as SDN and
ZTW do. Raising ``q`` can only move a sample's exit later, so the average FLOPs is a
non-decreasing function of ``q`` and bisection finds the level for a target.

* :class:`ThresholdCalibrator` evaluates every exit once on a validation set and then answers
  ``fraction(q)`` and ``level_for(fraction)`` cheaply (no further forward passes).
* :func:`calibrate_thresholds` returns a policy whose average FLOPs on the validation set is the
  requested fraction of the full backbone's (ZTW reads results at 25/50/75/100%).
* :class:`DeadlineGovernor` chooses each batch's thresholds *before* it runs, from the time it
  is allowed and a cost model learnt from the previous batches (online processing with a
  latency budget per timeframe).
* :class:`BudgetController` keeps the per-batch FLOPs per sample (or the latency per batch) under
  a budget at run time: after each batch it updates an exponential moving average of the
  measurement and, outside a hysteresis band, rescales the fraction it asks the calibrator for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from alice_dyn.nn.base import Inputs, batch_size, first_tensor, take
from alice_dyn.nn.early_exit import EarlyExitNet
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.nn.inference import ExitResult, run_dynamic
from alice_dyn.nn.policies import ThresholdPolicy, make_policy


def _as_policy(policy: ThresholdPolicy | str) -> ThresholdPolicy:
    p = make_policy(policy, thresholds=0.0) if isinstance(policy, str) else policy
    if not isinstance(p, ThresholdPolicy):
        raise TypeError(f"budgets need a threshold policy, not {type(p).__name__}")
    return p


class ThresholdCalibrator:
    """Exit confidences of a validation set and the FLOPs table; maps levels <-> fractions.

    Args:
        model: the network (its mode is left as it is; use ``eval()``).
        inputs: validation inputs (evaluated in chunks of ``chunk`` samples).
        policy: a threshold policy or its name (``confidence|entropy|uncertainty``).
    """

    def __init__(
        self,
        model: EarlyExitNet,
        inputs: Inputs,
        policy: ThresholdPolicy | str = "confidence",
        *,
        chunk: int = 8192,
    ):
        self.policy = _as_policy(policy)
        n = batch_size(inputs)
        device = first_tensor(inputs).device
        conf = []
        with torch.no_grad():
            for s in range(0, n, chunk):
                part = take(inputs, torch.arange(s, min(n, s + chunk), device=device))
                outs = model.forward_all(part)
                c = [self.policy.confidence(o, model.objective) for o in outs]
                conf.append(torch.stack(c, 1))
        c = torch.cat(conf).double().cpu().numpy()
        c[:, -1] = np.inf  # the last exit always takes the sample
        # NumPy for the many small look-ups of the bisection: no thread-pool start-up per call
        self.conf: np.ndarray = c
        rep = exit_flops_for(model, inputs)
        self.exit_flops = np.asarray(rep.exit_flops, dtype=np.float64)
        self.full_flops = rep.full_flops
        finite = c[:, :-1]
        self._lo = float(finite.min()) - 1.0 if finite.size else -1.0
        self._hi = float(finite.max()) + 1.0 if finite.size else 1.0

    def exit_index(self, level: float) -> np.ndarray:
        """Exit of each validation sample at ``level``."""
        return np.argmax(self.conf >= level, axis=1)

    def fraction(self, level: float) -> float:
        """Average FLOPs per sample at ``level`` over the full backbone's."""
        return float(self.exit_flops[self.exit_index(level)].mean()) / self.full_flops

    @property
    def reachable(self) -> tuple[float, float]:
        """Smallest and largest fraction (everyone at the first / at the last exit)."""
        return self.fraction(self._lo), self.fraction(self._hi)

    def level_for(self, fraction: float, *, iters: int = 60) -> float:
        """Level whose validation FLOPs fraction is closest to ``fraction`` (clipped to
        :attr:`reachable`)."""
        lo, hi = self._lo, self._hi
        if fraction <= self.fraction(lo):
            return lo
        if fraction >= self.fraction(hi):
            return hi
        for _ in range(iters):  # invariant: fraction(lo) < target <= fraction(hi)
            mid = 0.5 * (lo + hi)
            if self.fraction(mid) < fraction:
                lo = mid
            else:
                hi = mid
        return lo if fraction - self.fraction(lo) < self.fraction(hi) - fraction else hi

    def policy_at(self, level: float) -> ThresholdPolicy:
        """The policy with every threshold at ``level`` (in the policy's own units)."""
        return self.policy.with_thresholds(self.policy.sign * level)

    def calibration(self, target_fraction: float, level: float) -> dict:
        """What a calibrated policy records: target, fraction reached on the validation data,
        level, reachable range, number of validation samples (JSON)."""
        return {
            "target_fraction": float(target_fraction),
            "val_fraction": self.fraction(level),
            "level": level,
            "reachable": list(self.reachable),
            "n_val": int(self.conf.shape[0]),
        }

    def curve(self, fractions: np.ndarray | None = None) -> dict:
        """The level for a grid of FLOPs fractions (JSON), for :class:`TabulatedCalibrator`."""
        lo, hi = self.reachable
        if fractions is None:
            fractions = np.linspace(lo, min(hi, 1.0), 41)
        levels = [self.level_for(float(f)) for f in fractions]
        return {
            "policy": self.policy.to_json(),
            "fractions": [self.fraction(q) for q in levels],
            "levels": levels,
            "reachable": [lo, hi],
            "full_flops": self.full_flops,
            "n": int(self.conf.shape[0]),
        }


class TabulatedCalibrator:
    """A :class:`ThresholdCalibrator`'s answers stored as a table (``ThresholdCalibrator.curve``,
    kept in a model's config): ``level_for`` interpolates, no validation data needed at run
    time. Same interface as far as :class:`DeadlineGovernor` and :class:`BudgetController` use
    it (``reachable``, ``level_for``, ``policy_at``, ``full_flops``)."""

    def __init__(self, curve: dict):
        from alice_dyn.nn.policies import policy_from_json

        self.policy = _as_policy(policy_from_json(curve["policy"]))
        f = np.asarray(curve["fractions"], np.float64)
        q = np.asarray(curve["levels"], np.float64)
        order = np.argsort(f, kind="stable")
        self._f, self._q = f[order], q[order]
        self.reachable = (float(curve["reachable"][0]), float(curve["reachable"][1]))
        self.full_flops = float(curve["full_flops"])

    def level_for(self, fraction: float) -> float:
        """Level of the largest tabulated fraction not above ``fraction`` (never over-spends
        on the calibration data; the lowest level below the table)."""
        k = int(np.searchsorted(self._f, fraction, side="right")) - 1
        return float(self._q[max(k, 0)])

    def policy_at(self, level: float) -> ThresholdPolicy:
        return self.policy.with_thresholds(self.policy.sign * level)


def calibrate_thresholds(
    model: EarlyExitNet,
    val_inputs: Inputs,
    target_fraction: float,
    policy: ThresholdPolicy | str = "confidence",
) -> ThresholdPolicy:
    """Policy with one shared threshold such that the average FLOPs per sample on
    ``val_inputs`` is ``target_fraction`` of the full backbone's (e.g. 0.25, 0.5, 0.75).

    The returned policy has a ``calibration`` dict: target, achieved validation fraction,
    level, reachable range (a target outside it is clipped to the nearest end).
    """
    cal = ThresholdCalibrator(model, val_inputs, policy)
    level = cal.level_for(target_fraction)
    p = cal.policy_at(level)
    p.calibration = cal.calibration(target_fraction, level)
    return p


@dataclass
class BudgetController:
    """Run-time controller of the thresholds under a compute budget.

    Args:
        calibrator: maps a requested FLOPs fraction to thresholds.
        budget: FLOPs per sample (``metric="flops"``) or milliseconds per batch (``"ms"``).
        metric: ``"flops"`` or ``"ms"``.
        ema: weight of the newest batch in the moving average (0 < ema <= 1).
        lower_above / raise_below: hysteresis band, as ratios of average to budget: thresholds
            are lowered when the average exceeds ``lower_above * budget``, raised when it falls
            below ``raise_below * budget``, unchanged in between.
        gain: exponent of the correction ``fraction *= (aim / ratio) ** gain``, aiming at the
            middle of the band.
        bounds: allowed range of the requested fraction (default: the calibrator's reachable
            range).
        initial_fraction: first requested fraction (default: the FLOPs budget over the full
            FLOPs, or the middle of the bounds for a latency budget).
    """

    calibrator: ThresholdCalibrator = field(repr=False)
    budget: float
    metric: str = "flops"
    ema: float = 0.5
    lower_above: float = 1.0
    raise_below: float = 0.9
    gain: float = 0.8
    bounds: tuple[float, float] | None = None
    initial_fraction: float | None = None
    average: float | None = field(default=None, init=False)
    fraction: float = field(default=0.0, init=False)
    level: float = field(default=0.0, init=False)
    history: list[dict] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.metric not in ("flops", "ms"):
            raise ValueError(f"metric {self.metric!r} (flops|ms)")
        if not 0.0 < self.raise_below <= self.lower_above:
            raise ValueError("need 0 < raise_below <= lower_above")
        if self.bounds is None:
            self.bounds = self.calibrator.reachable
        f0 = self.initial_fraction
        if f0 is None:
            f0 = (
                self.budget / self.calibrator.full_flops
                if self.metric == "flops"
                else 0.5 * sum(self.bounds)
            )
        self._set_fraction(f0)

    def _set_fraction(self, f: float) -> None:
        lo, hi = self.bounds
        self.fraction = min(hi, max(lo, f))
        self.level = self.calibrator.level_for(self.fraction)

    @property
    def policy(self) -> ThresholdPolicy:
        """The policy with the current thresholds."""
        return self.calibrator.policy_at(self.level)

    def update(self, measured: float) -> None:
        """Feed one batch's measurement (FLOPs per sample or ms per batch)."""
        a = self.ema
        self.average = measured if self.average is None else a * measured + (1 - a) * self.average
        ratio = self.average / self.budget
        changed = False
        if ratio > self.lower_above or ratio < self.raise_below:
            aim = 0.5 * (self.lower_above + self.raise_below)
            before = self.level
            self._set_fraction(self.fraction * (aim / ratio) ** self.gain)
            changed = self.level != before
        self.history.append(
            {
                "measured": measured,
                "average": self.average,
                "fraction": self.fraction,
                "level": self.level,
                "changed": changed,
            }
        )

    def run(
        self,
        model: EarlyExitNet,
        inputs: Inputs,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> ExitResult:
        """Dynamic inference on one batch with the current thresholds, then :meth:`update`."""
        t0 = clock()
        res = run_dynamic(model, inputs, self.policy)
        ms = 1e3 * (clock() - t0)
        self.update(res.mean_flops if self.metric == "flops" else ms)
        return res


@dataclass
class DeadlineGovernor:
    """Per-batch thresholds for the time a batch is allowed (feed-forward, from a cost model).

    Before each batch the caller says how many samples it has and how many milliseconds the
    inference may take (e.g. a stage's own budget, or what is left before the timeframe's
    deadline); the governor asks the calibrator for the FLOPs fraction that fits,
    ``fraction = allowed_ms / (ms_per_full_sample * n)``, clipped to the reachable range, so
    the exits move *before* a late batch instead of after it. With enough time it runs the full
    network (every sample to the last exit), so accuracy only drops while time is short.
    After each batch, :meth:`observe` updates the cost model (an exponential moving average of
    the measured milliseconds per sample per unit FLOPs fraction, which absorbs per-batch
    overheads on small batches, erring on the safe side).

    Args:
        calibrator: maps a FLOPs fraction to thresholds.
        ema: weight of the newest measurement in the cost model.
        min_fraction: lowest fraction it may ask for (default: the reachable minimum).
        ms_per_full_sample: initial cost estimate (default: measured on the first batch,
            which runs the full network).
    """

    calibrator: ThresholdCalibrator = field(repr=False)
    ema: float = 0.3
    min_fraction: float | None = None
    ms_per_full_sample: float | None = None
    fraction: float = field(default=1.0, init=False)
    level: float = field(default=float("inf"), init=False)
    history: list[dict] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        lo, hi = self.calibrator.reachable
        self._lo = lo if self.min_fraction is None else max(lo, self.min_fraction)
        self._hi = hi

    def choose(self, n: int, allowed_ms: float) -> ThresholdPolicy:
        """The policy for a batch of ``n`` samples allowed ``allowed_ms`` ms."""
        if self.ms_per_full_sample is None or n <= 0 or not np.isfinite(allowed_ms):
            f = self._hi
        else:
            f = max(allowed_ms, 0.0) / (self.ms_per_full_sample * n)
        self.fraction = min(self._hi, max(self._lo, f))
        # at the top of the range: no early exit at all (the full network)
        self.level = (
            float("inf") if self.fraction >= self._hi else self.calibrator.level_for(self.fraction)
        )
        return self.calibrator.policy_at(self.level)

    def observe(self, n: int, flops_fraction: float, ms: float) -> None:
        """Feed the measured milliseconds of a batch of ``n`` samples that spent
        ``flops_fraction`` of the full network's FLOPs on average."""
        if n > 0 and flops_fraction > 0:
            per = ms / (n * flops_fraction)
            old = self.ms_per_full_sample
            self.ms_per_full_sample = per if old is None else self.ema * per + (1 - self.ema) * old
        self.history.append(
            {"n": n, "fraction": self.fraction, "flops_fraction": flops_fraction, "ms": ms}
        )

    def run(
        self,
        model: EarlyExitNet,
        inputs: Inputs,
        allowed_ms: float,
        *,
        clock: Callable[[], float] = time.perf_counter,
        **kw,
    ) -> ExitResult:
        """:meth:`choose`, dynamic inference, :meth:`observe`; ``kw`` go to ``run_dynamic``."""
        n = batch_size(inputs)
        policy = self.choose(n, allowed_ms)
        t0 = clock()
        res = run_dynamic(model, inputs, policy, **kw)
        self.observe(n, res.flops_fraction if n else 0.0, 1e3 * (clock() - t0))
        return res
