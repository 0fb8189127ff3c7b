"""Exit policies: when a sample leaves the network.

Layer: nn. A policy sees, at each exit ``i`` but the last, the exit outputs of the samples still
in flight and returns a boolean mask of those that exit there; every sample exits at the last
exit. Decisions are per sample (a sample's exit never depends on the other samples in the
batch), which is what makes batch compaction exact.

* :class:`ConfidencePolicy` — max softmax probability ``>= t_i`` (SDN);
* :class:`EntropyPolicy` — entropy of the softmax (nats) ``<= t_i``;
  (both read the class part of multi-task exits, :func:`class_logits`);
* :class:`UncertaintyPolicy` — predicted σ of Gaussian heads (max over targets) ``<= t_i``;
* :class:`PatiencePolicy` — PABEE: the prediction has not changed for ``patience`` consecutive
  exits (argmax for classification; all means within ``tol`` for regression).

Thresholds are per exit (a vector, or one number for all). The threshold policies also expose a
*confidence* ``c = sign * score`` (larger = readier to exit, ``exit iff c >= sign * t_i``) that
:mod:`alice_dyn.nn.budget` uses to choose thresholds for a compute budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from alice_dyn.nn.base import log_softmax, take
from alice_dyn.nn.objectives import Objective


class ExitPolicy:
    """Base class. Subclasses implement :meth:`decide` (and :meth:`start` if stateful)."""

    name: ClassVar[str] = "policy"

    def start(self, n: int, device: torch.device) -> Any:
        """Initial per-sample state for ``n`` samples (``None`` if stateless)."""
        return None

    def decide(self, i: int, out: Tensor, objective: Objective, state: Any) -> tuple[Tensor, Any]:
        """``(exit_mask (n,), new_state)`` at exit ``i`` for the exit outputs ``out``."""
        raise NotImplementedError

    @staticmethod
    def take_state(state: Any, idx: Tensor) -> Any:
        """State rows ``idx`` (compaction)."""
        return take(state, idx)

    def check(self, num_exits: int) -> None:
        """Raise ``ValueError`` if the policy does not fit a model with ``num_exits`` exits."""

    def to_json(self) -> dict:
        raise NotImplementedError


class ThresholdPolicy(ExitPolicy):
    """Exit at ``i`` when ``sign * score(out) >= sign * thresholds[i]``."""

    sign: ClassVar[float] = 1.0

    def __init__(self, thresholds: float | Sequence[float]):
        if isinstance(thresholds, int | float):
            self.thresholds: float | tuple[float, ...] = float(thresholds)
        else:
            self.thresholds = tuple(float(t) for t in thresholds)

    def threshold(self, i: int) -> float:
        return self.thresholds if isinstance(self.thresholds, float) else self.thresholds[i]

    def score(self, out: Tensor, objective: Objective) -> Tensor:
        """Per-sample score in the policy's units, ``(n,)``."""
        raise NotImplementedError

    def confidence(self, out: Tensor, objective: Objective) -> Tensor:
        """``sign * score``: larger means readier to exit."""
        s = self.score(out, objective)
        return s if self.sign > 0 else -s

    def decide(self, i: int, out: Tensor, objective: Objective, state: Any) -> tuple[Tensor, Any]:
        return self.confidence(out, objective) >= self.sign * self.threshold(i), state

    def with_thresholds(self, thresholds: float | Sequence[float]) -> ThresholdPolicy:
        """Same policy with other thresholds."""
        return type(self)(thresholds)

    def check(self, num_exits: int) -> None:
        if isinstance(self.thresholds, tuple) and len(self.thresholds) < num_exits - 1:
            raise ValueError(
                f"{self.name}: {len(self.thresholds)} thresholds for {num_exits} exits "
                f"(need one per exit but the last)"
            )

    def to_json(self) -> dict:
        t = self.thresholds
        return {"policy": self.name, "thresholds": list(t) if isinstance(t, tuple) else t}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.thresholds!r})"


def class_logits(out: Tensor, objective: Objective) -> Tensor:
    """The class part of exit outputs: ``objective.logits(out)`` for multi-task exits
    (:class:`~alice_dyn.nn.objectives.ClassGaussianObjective`), else ``out`` itself."""
    fn = getattr(objective, "logits", None)
    return out if fn is None else fn(out)


class ConfidencePolicy(ThresholdPolicy):
    """SDN: exit when the maximum softmax probability (of the class part) is ``>= t_i``."""

    name = "confidence"

    def score(self, out: Tensor, objective: Objective) -> Tensor:
        z = class_logits(out, objective)
        # max_j softmax(z)_j = 1 / sum_j exp(z_j - max z): ~2x faster than softmax().amax() on
        # (4096, 5) on the CPU
        return 1.0 / torch.exp(z - z.amax(-1, keepdim=True)).sum(-1)


class EntropyPolicy(ThresholdPolicy):
    """Exit when the entropy of the softmax (of the class part, nats) is ``<= t_i``."""

    name = "entropy"
    sign = -1.0

    def score(self, out: Tensor, objective: Objective) -> Tensor:
        logp = log_softmax(class_logits(out, objective))
        return -(logp.exp() * logp).sum(-1)


class UncertaintyPolicy(ThresholdPolicy):
    """Regression: exit when the predicted σ (largest over the targets, or over the
    objective's ``exit_targets`` when it names some) is ``<= t_i``."""

    name = "uncertainty"
    sign = -1.0

    def score(self, out: Tensor, objective: Objective) -> Tensor:
        s = objective.sigma(out)
        idx = getattr(objective, "exit_targets", None)
        if idx:
            s = s[:, list(idx)]
        return s.amax(-1)


class PatiencePolicy(ExitPolicy):
    """PABEE: exit at ``i`` once the prediction equals the previous exit's for ``patience``
    consecutive exits (earliest exit: ``patience``). Regression: "equal" means every predicted
    mean moved by at most ``tol``."""

    name = "patience"

    def __init__(self, patience: int = 2, tol: float = 0.0):
        if patience < 1:
            raise ValueError("patience must be >= 1")
        self.patience = int(patience)
        self.tol = float(tol)

    def start(self, n: int, device: torch.device) -> tuple[Tensor | None, Tensor]:
        return None, torch.zeros(n, dtype=torch.long, device=device)

    def decide(self, i: int, out: Tensor, objective: Objective, state: Any) -> tuple[Tensor, Any]:
        prev, count = state
        pred = objective.predict(out)
        if prev is not None:
            if objective.kind != "regression":  # classification or multi-task: the class
                same = pred == prev
            else:
                same = ((pred - prev).abs() <= self.tol).all(-1)
            count = torch.where(same, count + 1, torch.zeros_like(count))
        return count >= self.patience, (pred, count)

    def to_json(self) -> dict:
        return {"policy": self.name, "patience": self.patience, "tol": self.tol}

    def __repr__(self) -> str:
        return f"PatiencePolicy(patience={self.patience}, tol={self.tol})"


POLICIES: dict[str, type[ExitPolicy]] = {
    p.name: p for p in (ConfidencePolicy, EntropyPolicy, UncertaintyPolicy, PatiencePolicy)
}


def make_policy(name: str, **kw: Any) -> ExitPolicy:
    """Policy by name: ``confidence|entropy|uncertainty`` (``thresholds=``) or ``patience``."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r} ({'|'.join(POLICIES)})")
    return POLICIES[name](**kw)


def policy_from_json(d: dict) -> ExitPolicy:
    """Inverse of ``policy.to_json()``."""
    d = dict(d)
    return make_policy(d.pop("policy"), **d)
