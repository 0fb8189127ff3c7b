"""Residual-MLP early-exit family: stems, blocks, builder and the registered variants.

Layer: nn (one model family). The backbone works on a per-sample embedding ``(batch, d)``:

* :class:`LinearStem` — ``(batch, F)`` features -> ``Linear(F, d)``;
* :class:`GroupStem` — a dict of feature groups, each with an optional presence mask
  ``inputs[name + "_mask"]`` ``(batch,)``: present groups are embedded by their own
  ``Linear``, absent ones replaced by a learned "missing" embedding, the group embeddings
  summed and layer-normalised. This is the pattern for inputs from sub-systems that are not
  always there;
* :class:`ResidualMLPBlock` — pre-norm ``h + W2 GELU(W1 LN(h))``.

:func:`build_early_exit_mlp` assembles SDN (plain heads) or ZTW (cascading heads + geometric
ensemble) classifiers and Gaussian regressors; the ``@register_model`` variants below only set
hyper-parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from alice_dyn.nn._registry import register_model
from alice_dyn.nn.base import Inputs
from alice_dyn.nn.early_exit import EarlyExitNet, ExitHead, GaussianHead, GeometricEnsemble
from alice_dyn.nn.objectives import make_objective


class LinearStem(nn.Module):
    """``(batch, in_features)`` (or a dict with key ``key``) -> ``(batch, d)``."""

    def __init__(self, in_features: int, d: int, *, key: str = "x"):
        super().__init__()
        self.in_features = int(in_features)
        self.key = key
        self.proj = nn.Linear(in_features, d)

    def forward(self, inputs: Inputs) -> Tensor:
        x = inputs[self.key] if isinstance(inputs, Mapping) else inputs
        return self.proj(x)

    def example_inputs(self, batch: int = 2, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(batch, self.in_features, generator=generator)


class GroupStem(nn.Module):
    """Dict of feature groups with presence masks -> ``(batch, d)``.

    ``inputs[name]``: ``(batch, n_features)`` float; ``inputs[name + "_mask"]`` (optional):
    ``(batch,)`` bool/float, 1 where the group is present. Missing values inside an absent
    group may be anything finite (they are multiplied by 0). Output:
    ``LayerNorm(sum_g m_g * Linear_g(x_g) + (1 - m_g) * missing_g)``.
    """

    def __init__(self, groups: Mapping[str, int], d: int, *, mask_suffix: str = "_mask"):
        super().__init__()
        self.groups = {str(k): int(v) for k, v in groups.items()}
        self.mask_suffix = mask_suffix
        self.embed = nn.ModuleDict({k: nn.Linear(n, d) for k, n in self.groups.items()})
        self.missing = nn.ParameterDict({k: nn.Parameter(torch.zeros(d)) for k in self.groups})
        self.norm = nn.LayerNorm(d)

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        h = None
        for name in self.groups:
            e = self.embed[name](inputs[name])
            mask = inputs.get(name + self.mask_suffix)
            if mask is not None:
                m = mask.to(e.dtype).unsqueeze(-1)
                e = m * e + (1.0 - m) * self.missing[name]
            h = e if h is None else h + e
        return self.norm(h)

    def flops(self, args: tuple, output: Tensor) -> int:
        """Own operations: mask blend (4 per element and group) and the sum of the groups."""
        b, d = output.shape
        n_masked = sum(1 for k in self.groups if k + self.mask_suffix in args[0])
        return b * d * (4 * n_masked + len(self.groups) - 1)

    def example_inputs(
        self, batch: int = 2, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name, n in self.groups.items():
            out[name] = torch.randn(batch, n, generator=generator)
            out[name + self.mask_suffix] = torch.rand(batch, generator=generator) < 0.7
        return out


class ResidualMLPBlock(nn.Module):
    """Pre-norm residual MLP block: ``h + Linear(GELU(Linear(LayerNorm(h))))``."""

    def __init__(self, d: int, *, expansion: float = 2.0, dropout: float = 0.0):
        super().__init__()
        hidden = max(1, round(d * expansion))
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.drop(self.fc2(self.act(self.fc1(self.norm(h)))))

    def flops(self, args: tuple, output: Tensor) -> int:
        """Own operations: the residual addition."""
        return output.numel()


def build_early_exit_mlp(
    *,
    in_features: int | None = None,
    groups: Mapping[str, int] | None = None,
    stem: nn.Module | None = None,
    out: int = 2,
    objective: str = "classification",
    method: str = "sdn",
    d: int = 64,
    depth: int = 6,
    expansion: float = 2.0,
    exits: Sequence[int] | None = None,
    head_hidden: int = 0,
    dropout: float = 0.0,
) -> EarlyExitNet:
    """Residual-MLP early-exit network.

    Args:
        in_features: width of a plain feature tensor (:class:`LinearStem`), or
        groups: ``{name: n_features}`` for a :class:`GroupStem` (dict inputs with masks), or
        stem: any module mapping the inputs to ``(batch, d)``.
        out: number of classes (classification) or of regression targets.
        objective: ``"classification"`` or ``"regression"`` (Gaussian heads: mean,
            log-variance); see :func:`~alice_dyn.nn.objectives.make_objective`.
        method: ``"sdn"`` (independent heads) or ``"ztw"`` (cascading heads; for
            classification also the geometric ensemble). The last head is the backbone's own
            classifier and is never cascading, so the backbone can be trained first.
        d, depth, expansion: embedding width, number of blocks, MLP expansion factor.
        exits: block indices followed by an exit (default every block); the last block always
            has one.
        head_hidden: hidden width of the heads (0: a single Linear after LayerNorm).
    """
    if sum(a is not None for a in (in_features, groups, stem)) != 1:
        raise ValueError("give exactly one of in_features, groups and stem")
    if method not in ("sdn", "ztw"):
        raise ValueError(f"method {method!r} (sdn|ztw)")
    t = make_objective(objective, out)
    if stem is None:
        stem = LinearStem(in_features, d) if groups is None else GroupStem(groups, d)
    blocks = [ResidualMLPBlock(d, expansion=expansion, dropout=dropout) for _ in range(depth)]
    exit_after = sorted(set(range(depth) if exits is None else exits) | {depth - 1})
    n_exits = len(exit_after)
    heads = []
    for i in range(n_exits):
        cascade = method == "ztw" and 0 < i < n_exits - 1
        prev_dim = t.out_dim if cascade else 0
        if t.kind == "classification":
            heads.append(ExitHead(d, t.out_dim, prev_dim=prev_dim, hidden=head_hidden))
        else:
            heads.append(GaussianHead(d, t.num_targets, prev_dim=prev_dim, hidden=head_hidden))
    ensemble = (
        GeometricEnsemble(n_exits, t.out_dim)
        if method == "ztw" and t.kind == "classification"
        else None
    )
    return EarlyExitNet(stem, blocks, heads, exit_after=exit_after, objective=t, ensemble=ensemble)


# ---------------------------------------------------------------------- registered variants
@register_model("sdn_mlp")
def sdn_mlp(
    in_features: int = 20, num_classes: int = 5, d: int = 64, depth: int = 6, **kw
) -> EarlyExitNet:
    """SDN classifier: residual MLP, a plain exit head after every block."""
    return build_early_exit_mlp(
        in_features=in_features, out=num_classes, method="sdn", d=d, depth=depth, **kw
    )


@register_model("ztw_mlp")
def ztw_mlp(
    in_features: int = 20, num_classes: int = 5, d: int = 64, depth: int = 6, **kw
) -> EarlyExitNet:
    """ZTW classifier: residual MLP, cascading heads and the geometric ensemble."""
    return build_early_exit_mlp(
        in_features=in_features, out=num_classes, method="ztw", d=d, depth=depth, **kw
    )


@register_model("gauss_mlp")
def gauss_mlp(
    in_features: int = 20, num_targets: int = 1, d: int = 64, depth: int = 6, **kw
) -> EarlyExitNet:
    """Regressor with Gaussian (mean, log-variance) heads after every block."""
    return build_early_exit_mlp(
        in_features=in_features,
        out=num_targets,
        objective="regression",
        method="sdn",
        d=d,
        depth=depth,
        **kw,
    )


@register_model("ztw_groups_mlp")
def ztw_groups_mlp(
    groups: Mapping[str, int] | None = None,
    num_classes: int = 5,
    d: int = 64,
    depth: int = 6,
    **kw,
) -> EarlyExitNet:
    """ZTW classifier on a dict of feature groups with presence masks (:class:`GroupStem`)."""
    groups = {"a": 8, "b": 4, "c": 3} if groups is None else groups
    return build_early_exit_mlp(
        groups=groups, out=num_classes, method="ztw", d=d, depth=depth, **kw
    )
