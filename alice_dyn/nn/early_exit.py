"""Early-exit (dynamic-depth) networks: the base class, exit heads, the ZTW ensemble.

Layer: nn. Physics-free: a model maps ``inputs`` (a tensor or a dict of tensors, batch first)
to one output per *exit*. The structure is the one Zero Time Waste and timm use:

``stem``
    any ``nn.Module`` mapping ``inputs`` to the embedding ``h`` (``(batch, d)`` for the heads
    shipped here; a tensor, tuple or dict of tensors with the batch first in general).
``blocks``
    a sequence of modules ``h -> h``; :meth:`EarlyExitNet.forward_intermediates` yields ``h``
    after each of them.
``heads``
    one exit head after each block listed in ``exit_after`` (the last one after the last
    block). A head is called ``head(h)``, or ``head(h, prev)`` when its ``cascading`` attribute
    is true, ``prev`` being the previous head's raw output (ZTW's cascade: the head detaches
    and normalises it itself).
``ensemble``
    optional :class:`GeometricEnsemble` (ZTW): the output of exit ``i`` is then the learned
    geometric ensemble of heads ``0..i`` (log-probabilities) instead of head ``i``'s logits.

*Exit outputs* are what the policies look at and what inference returns: class logits (SDN)
or log-probabilities (ZTW), shape ``(batch, num_classes)``, ``(batch, 2 * num_targets)``
for Gaussian regression heads (means, then log-variances), or
``(batch, num_classes + 2 * num_targets)`` for multi-task heads (class logits and Gaussian
regression): the network's *objective* (:mod:`alice_dyn.nn.objectives`) says which.

Modes (``model(inputs, mode=...)``): ``"all"`` (every exit's output, a list), ``"one"`` (exit
``exit``'s output only, computing nothing after it), ``"dynamic"`` (per-sample exits chosen by
a policy, with batch compaction, see :mod:`alice_dyn.nn.inference`).
:meth:`EarlyExitNet.exit_submodel` cuts a fixed-graph module per exit for export.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from alice_dyn.nn.base import Inputs, log_softmax
from alice_dyn.nn.inference import ExitResult, run_dynamic
from alice_dyn.nn.objectives import Objective
from alice_dyn.nn.policies import ExitPolicy

torch.fx.wrap("log_softmax")  # a leaf for torch.fx tracing (its branch is on static shapes)


# --------------------------------------------------------------------------------------- heads
class ExitHead(nn.Module):
    """Exit head: ``LayerNorm(d) -> [Linear -> GELU] -> Linear(out_dim)``.

    With ``prev_dim > 0`` it is a ZTW *cascading* head: ``forward(h, prev)`` concatenates the
    normalised embedding with the previous head's output, detached (no gradient flows into the
    previous head) and normalised with ``log_softmax`` (``prev_transform="log_softmax"``, for
    classification) or taken as is (``"identity"``, e.g. Gaussian means/log-variances).
    """

    def __init__(
        self,
        d: int,
        out_dim: int,
        *,
        prev_dim: int = 0,
        hidden: int = 0,
        prev_transform: str = "log_softmax",
    ):
        super().__init__()
        if prev_transform not in ("log_softmax", "identity"):
            raise ValueError(f"prev_transform {prev_transform!r} (log_softmax|identity)")
        self.cascading = prev_dim > 0
        self.prev_dim = int(prev_dim)
        self.prev_transform = prev_transform
        self.norm = nn.LayerNorm(d)
        n_in = d + self.prev_dim
        if hidden > 0:
            self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, out_dim))
        else:
            self.mlp = nn.Linear(n_in, out_dim)

    def forward(self, h: Tensor, prev: Tensor | None = None) -> Tensor:
        z = self.norm(h)
        if self.cascading:
            if prev is None:
                raise ValueError("a cascading head needs the previous head's output")
            p = prev.detach()
            if self.prev_transform == "log_softmax":
                p = log_softmax(p)
            z = torch.cat([z, p], dim=-1)
        return self.mlp(z)

    def flops(self, args: tuple, output: Tensor) -> int:
        """Own operations (children count themselves): the log-softmax of ``prev``."""
        if self.cascading and self.prev_transform == "log_softmax":
            return 4 * output.shape[0] * self.prev_dim  # max-subtract, exp, sum, log-subtract
        return 0


class GaussianHead(ExitHead):
    """Regression head: means and log-variances; ``log σ²`` is soft-clipped to ±``max_logvar``
    (``max_logvar * tanh(raw / max_logvar)``) so that the NLL stays finite early in training."""

    def __init__(self, d: int, num_targets: int = 1, *, max_logvar: float = 10.0, **kw: Any):
        super().__init__(d, 2 * num_targets, prev_transform="identity", **kw)
        self.num_targets = int(num_targets)
        self.max_logvar = float(max_logvar)

    def forward(self, h: Tensor, prev: Tensor | None = None) -> Tensor:
        raw = super().forward(h, prev)
        mean, logvar = raw[:, : self.num_targets], raw[:, self.num_targets :]
        logvar = self.max_logvar * torch.tanh(logvar / self.max_logvar)
        return torch.cat([mean, logvar], dim=-1)

    def flops(self, args: tuple, output: Tensor) -> int:
        return 3 * output.shape[0] * self.num_targets  # divide, tanh, multiply


class ClassGaussianHead(ExitHead):
    """Head of a :class:`~alice_dyn.nn.objectives.ClassGaussianObjective`:
    ``LayerNorm -> [Linear -> GELU] -> Linear(C + 2T)``; the log-variances are soft-clipped to
    ±``max_logvar`` as in :class:`GaussianHead`."""

    def __init__(
        self,
        d: int,
        num_classes: int,
        num_targets: int,
        *,
        max_logvar: float = 10.0,
        hidden: int = 0,
    ):
        super().__init__(d, num_classes + 2 * num_targets, hidden=hidden)
        self.num_classes = int(num_classes)
        self.num_targets = int(num_targets)
        self.max_logvar = float(max_logvar)

    def forward(self, h: Tensor, prev: Tensor | None = None) -> Tensor:
        raw = super().forward(h, prev)
        k = self.num_classes + self.num_targets
        logvar = self.max_logvar * torch.tanh(raw[:, k:] / self.max_logvar)
        return torch.cat([raw[:, :k], logvar], dim=-1)

    def flops(self, args: tuple, output: Tensor) -> int:
        return 3 * output.shape[0] * self.num_targets  # divide, tanh, multiply


# ------------------------------------------------------------------------------------ ensemble
_SOFTPLUS_INV_1 = math.log(math.expm1(1.0))


class GeometricEnsemble(nn.Module):
    """ZTW's learned geometric ensemble of heads ``0..i`` at each exit ``i``.

    ``log p_i = log_softmax(sum_{j<=i} w_ij log_softmax(z_j) + b_i)`` with ``w_ij >= 0``
    (``w = softplus(weight_raw)``; entries ``j > i`` are never used) and a per-class bias
    ``b_i``. Initialised to ``w_ii = 1``, ``w_ij ≈ 0.0025`` (``j < i``), ``b = 0``: exit ``i``
    starts as (almost exactly) head ``i``.
    """

    def __init__(self, num_exits: int, num_classes: int):
        super().__init__()
        raw = torch.full((num_exits, num_exits), -6.0)
        raw.fill_diagonal_(_SOFTPLUS_INV_1)
        self.weight_raw = nn.Parameter(raw)
        self.bias = nn.Parameter(torch.zeros(num_exits, num_classes))

    def weights(self) -> Tensor:
        """``(E, E)`` lower-triangular matrix of the ensemble weights ``w_ij``."""
        return torch.tril(F.softplus(self.weight_raw))

    def forward(
        self, i: int, logits: Tensor, prev_log_probs: Sequence[Tensor] = ()
    ) -> tuple[Tensor, Tensor]:
        """Exit ``i`` from head ``i``'s raw ``logits`` and the log-softmaxes of heads ``0..i-1``.

        Returns ``(log-probabilities of exit i, log_softmax(logits))``; the second is kept by
        the caller for the later exits, so every head is normalised once.
        """
        lp = log_softmax(logits)
        w = F.softplus(self.weight_raw[i, : i + 1])
        if i == 0:
            z = w[0] * lp + self.bias[0]
        else:  # one (batch * C, i+1) x (i+1) product instead of 2 (i+1) small element-wise ops
            z = torch.stack([*prev_log_probs[:i], lp], dim=-1) @ w + self.bias[i]
        return log_softmax(z), lp

    def forward_log_probs(self, i: int, log_probs: Tensor) -> Tensor:
        """Exit ``i`` from precomputed head log-probabilities ``(batch, >i, C)`` (training)."""
        w = F.softplus(self.weight_raw[i, : i + 1])
        z = (log_probs[:, : i + 1] * w[:, None]).sum(1) + self.bias[i]
        return log_softmax(z)

    def flops(self, args: tuple, output: tuple[Tensor, Tensor]) -> int:
        """Per call at exit ``i``: log-softmax of head ``i`` (4 per element), ``i+1`` weighted
        terms and their sum (2 per element and head), bias, final log-softmax."""
        i = int(args[0])
        b, c = output[0].shape
        return b * c * (4 + 2 * (i + 1) + 1 + 4)


# --------------------------------------------------------------------------------------- model
class EarlyExitNet(nn.Module):
    """Early-exit network: ``stem -> blocks`` with an exit head after chosen blocks.

    Args:
        stem: module ``inputs -> h``.
        blocks: modules ``h -> h``.
        heads: one per exit; head 0 must not be cascading.
        exit_after: block index after which each head sits (strictly increasing, the last one
            ``len(blocks) - 1``).
        objective: what the exit outputs mean (:mod:`alice_dyn.nn.objectives`).
        ensemble: optional :class:`GeometricEnsemble` (classification only).
        backbone_heads: indices of the heads that belong to the backbone (trained with it by
            :func:`~alice_dyn.nn.training.train_backbone`, frozen by ``train_heads``); default
            the last head.
    """

    def __init__(
        self,
        stem: nn.Module,
        blocks: Sequence[nn.Module],
        heads: Sequence[nn.Module],
        *,
        exit_after: Sequence[int],
        objective: Objective,
        ensemble: GeometricEnsemble | None = None,
        backbone_heads: Sequence[int] | None = None,
    ):
        super().__init__()
        exit_after = [int(k) for k in exit_after]
        if len(heads) != len(exit_after) or not heads:
            raise ValueError(f"{len(heads)} heads for {len(exit_after)} exit positions")
        if any(b <= a for a, b in itertools.pairwise(exit_after)):
            raise ValueError(f"exit_after must be strictly increasing: {exit_after}")
        if exit_after[0] < 0 or exit_after[-1] != len(blocks) - 1:
            raise ValueError(f"exit_after {exit_after}: the last exit must follow the last block")
        if getattr(heads[0], "cascading", False):
            raise ValueError("head 0 cannot be cascading (no previous head)")
        if ensemble is not None and objective.kind != "classification":
            raise ValueError("the geometric ensemble is defined for classification only")
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.heads = nn.ModuleList(heads)
        self.ensemble = ensemble
        self.exit_after: tuple[int, ...] = tuple(exit_after)
        self.objective = objective
        self.backbone_heads: tuple[int, ...] = (
            (len(heads) - 1,) if backbone_heads is None else tuple(int(i) for i in backbone_heads)
        )

    # -------------------------------------------------------------------------- structure
    @property
    def num_exits(self) -> int:
        return len(self.heads)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def _cascading(self, i: int) -> bool:
        return bool(getattr(self.heads[i], "cascading", False))

    def example_inputs(self, batch: int = 2, generator: torch.Generator | None = None) -> Inputs:
        """Random inputs of the stem's form (the stem must define ``example_inputs``)."""
        fn = getattr(self.stem, "example_inputs", None)
        if fn is None:
            raise NotImplementedError(f"{type(self.stem).__name__} has no example_inputs()")
        return fn(batch, generator)

    # -------------------------------------------------------------------------- forward
    def forward_stem(self, inputs: Inputs) -> Any:
        return self.stem(inputs)

    def forward_intermediates(self, inputs: Inputs) -> Iterator[Any]:
        """Yield the embedding after each block (timm's ``forward_intermediates``)."""
        h = self.stem(inputs)
        for block in self.blocks:
            h = block(h)
            yield h

    def exit_step(
        self, i: int, h: Any, prev: Tensor | None, log_probs: list[Tensor]
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Evaluate exit ``i`` on the embedding ``h`` after its block.

        ``prev``: head ``i-1``'s raw output (used by a cascading head); ``log_probs``: the
        log-softmaxes of heads ``0..i-1`` (kept only when there is an ensemble). Returns
        ``(raw_i, out_i, log_probs')`` where ``out_i`` is the exit output. Inference with
        compaction calls this with the rows of the samples still in flight.
        """
        head = self.heads[i]
        raw = head(h, prev) if self._cascading(i) else head(h)
        if self.ensemble is None:
            return raw, raw, log_probs
        out, lp = self.ensemble(i, raw, log_probs)
        return raw, out, [*log_probs, lp]

    def iter_exits(
        self, inputs: Inputs, last: int | None = None
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(raw_i, out_i)`` for exits ``0..last`` (default all) on the whole batch."""
        last = self.num_exits - 1 if last is None else last
        h = self.stem(inputs)
        prev, log_probs, i = None, [], 0
        for k, block in enumerate(self.blocks):
            h = block(h)
            if self.exit_after[i] != k:
                continue
            prev, out, log_probs = self.exit_step(i, h, prev, log_probs)
            yield prev, out
            if i == last:
                return
            i += 1

    def forward_all(self, inputs: Inputs, *, raw: bool = False) -> list[Tensor]:
        """Every exit's output (``raw=True``: the heads' own outputs, before any ensemble)."""
        return [r if raw else o for r, o in self.iter_exits(inputs)]

    def forward_exit(self, inputs: Inputs, i: int) -> Tensor:
        """Exit ``i``'s output; nothing after exit ``i`` is computed."""
        i = range(self.num_exits)[i]
        outs = [out for _raw, out in self.iter_exits(inputs, last=i)]
        return outs[-1]

    def forward(
        self,
        inputs: Inputs,
        mode: str = "all",
        *,
        exit: int = -1,
        policy: ExitPolicy | None = None,
    ) -> list[Tensor] | Tensor | ExitResult:
        """``mode="all"``: list of exit outputs; ``"one"``: exit ``exit``'s output;
        ``"dynamic"``: :class:`~alice_dyn.nn.inference.ExitResult` under ``policy``."""
        if mode == "all":
            return self.forward_all(inputs)
        if mode == "one":
            return self.forward_exit(inputs, exit)
        if mode == "dynamic":
            if policy is None:
                raise ValueError('mode="dynamic" needs a policy')
            return run_dynamic(self, inputs, policy)
        raise ValueError(f"unknown mode {mode!r} (all|one|dynamic)")

    # -------------------------------------------------------------------------- export
    def exit_submodel(self, i: int) -> ExitSubmodel:
        """A module computing exit ``i`` alone with a fixed graph (stem, blocks up to the exit,
        the heads it needs, the ensemble row ``i``), sharing this model's parameters."""
        i = range(self.num_exits)[i]
        k = self.exit_after[i]
        needs_chain = self.ensemble is not None or any(self._cascading(j) for j in range(1, i + 1))
        head_ids = list(range(i + 1)) if needs_chain else [i]
        net = EarlyExitNet(
            self.stem,
            list(self.blocks)[: k + 1],
            [self.heads[j] for j in head_ids],
            exit_after=[self.exit_after[j] for j in head_ids],
            objective=self.objective,
            ensemble=self.ensemble,
        )
        return ExitSubmodel(net, i)


class ExitSubmodel(nn.Module):
    """Fixed-graph module for one exit: ``forward(inputs) -> exit output`` (no data-dependent
    control flow; Python loops unroll when traced), for per-exit ONNX/``torch.export``."""

    def __init__(self, net: EarlyExitNet, exit_index: int):
        super().__init__()
        self.net = net
        self.exit_index = int(exit_index)

    def forward(self, inputs: Inputs) -> Tensor:
        return self.net.forward_exit(inputs, self.net.num_exits - 1)
