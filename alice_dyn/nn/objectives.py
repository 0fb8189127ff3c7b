"""Objectives: what a network's exit outputs mean, and the loss they are trained with.

Layer: nn (the bottom of it: imports nothing else of ``alice_dyn``). An *objective* is the
output kind of an early-exit network, the same at every exit:

* :class:`ClassificationObjective` — class logits (or log-probabilities) ``(batch, C)``;
* :class:`GaussianObjective` — Gaussian regression, means and log-variances ``(batch, 2 T)``;
* :class:`ClassGaussianObjective` — both, ``(batch, C + 2 T)``.

Each has ``kind`` (``"classification"``, ``"regression"``, ``"multitask"``), ``out_dim``,
``loss(out, target)`` and ``predict(out)``; the policies of :mod:`alice_dyn.nn.policies` read
exit outputs through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


class ClassificationObjective:
    """Exit outputs are class logits (or log-probabilities); loss: cross-entropy."""

    kind = "classification"

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)
        self.out_dim = self.num_classes

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(out, target)

    def predict(self, out: Tensor) -> Tensor:
        """Class index per sample."""
        return out.argmax(-1)

    def probabilities(self, out: Tensor) -> Tensor:
        return out.softmax(-1)


class GaussianObjective:
    """Exit outputs ``(batch, 2 T)``: means ``[:, :T]`` and log-variances ``[:, T:]``.

    Loss: Gaussian negative log-likelihood per target, ``0.5 (log σ² + (y - μ)² / σ²)``,
    averaged (the constant ``0.5 log 2π`` is left out). Targets ``(batch, T)`` or ``(batch,)``.
    """

    kind = "regression"

    def __init__(self, num_targets: int = 1):
        self.num_targets = int(num_targets)
        self.out_dim = 2 * self.num_targets

    def split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_variance)``, each ``(batch, T)``."""
        return out[..., : self.num_targets], out[..., self.num_targets :]

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        mean, logvar = self.split(out)
        target = target.reshape(mean.shape)
        return 0.5 * (logvar + (target - mean).square() * torch.exp(-logvar)).mean()

    def predict(self, out: Tensor) -> Tensor:
        """Predicted mean, ``(batch, T)``."""
        return self.split(out)[0]

    def sigma(self, out: Tensor) -> Tensor:
        """Predicted standard deviation, ``(batch, T)``."""
        return torch.exp(0.5 * self.split(out)[1])


class ClassGaussianObjective:
    """Multi-task exits: class logits plus Gaussian regression, ``(batch, C + 2 T)``.

    Columns: logits ``[:, :C]``, means ``[:, C:C+T]``, log-variances ``[:, C+T:]``. Targets
    ``(batch, 1 + T)`` float: the class index in column 0, the regression targets after it
    (NaN = no target for that sample and quantity). Loss: cross-entropy (optional per-class
    ``class_weights``) plus ``regression_weight`` times the Gaussian NLL
    ``0.5 (log σ² + (y - μ)² / σ²)`` averaged over the finite targets. :meth:`predict` is the
    class, so the classification policies (which read :meth:`logits`), calibration and
    dynamic inference work unchanged; :meth:`sigma` feeds the uncertainty policy
    (``exit_targets``: the regression targets it looks at, default all).
    """

    kind = "multitask"

    def __init__(
        self,
        num_classes: int,
        num_targets: int,
        *,
        class_weights: Sequence[float] | None = None,
        regression_weight: float = 1.0,
        exit_targets: Sequence[int] | None = None,
    ):
        self.num_classes = int(num_classes)
        self.num_targets = int(num_targets)
        self.out_dim = self.num_classes + 2 * self.num_targets
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            raise ValueError(f"{len(self.class_weights)} class weights for {num_classes} classes")
        self.regression_weight = float(regression_weight)
        self.exit_targets = None if exit_targets is None else tuple(int(i) for i in exit_targets)

    def logits(self, out: Tensor) -> Tensor:
        """Class logits ``(batch, C)``."""
        return out[..., : self.num_classes]

    def split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_variance)`` of the regression part, each ``(batch, T)``."""
        c, t = self.num_classes, self.num_targets
        return out[..., c : c + t], out[..., c + t :]

    def loss(self, out: Tensor, target: Tensor) -> Tensor:
        logits = self.logits(out)
        w = None if self.class_weights is None else logits.new_tensor(self.class_weights)
        ce = F.cross_entropy(logits, target[:, 0].long(), weight=w)
        if self.regression_weight == 0.0:
            return ce
        mean, logvar = self.split(out)
        y = target[:, 1 : 1 + self.num_targets]
        ok = torch.isfinite(y)
        y = torch.where(ok, y, mean.detach())
        nll = 0.5 * (logvar + (y - mean).square() * torch.exp(-logvar))
        nll = (nll * ok).sum() / ok.sum().clamp_min(1)
        return ce + self.regression_weight * nll

    def predict(self, out: Tensor) -> Tensor:
        """Class index per sample."""
        return self.logits(out).argmax(-1)

    def probabilities(self, out: Tensor) -> Tensor:
        return self.logits(out).softmax(-1)

    def regression(self, out: Tensor) -> Tensor:
        """Predicted means ``(batch, T)``."""
        return self.split(out)[0]

    def sigma(self, out: Tensor) -> Tensor:
        """Predicted standard deviations ``(batch, T)`` (all targets)."""
        return torch.exp(0.5 * self.split(out)[1])


Objective = ClassificationObjective | GaussianObjective | ClassGaussianObjective


def make_objective(kind: str, out: int) -> Objective:
    """``"classification"`` with ``out`` classes or ``"regression"`` with ``out`` targets."""
    if kind == "classification":
        return ClassificationObjective(out)
    if kind == "regression":
        return GaussianObjective(out)
    raise ValueError(f"unknown objective {kind!r} (classification|regression)")
