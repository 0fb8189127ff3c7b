"""What every module of ``nn`` shares: the input type, batch helpers, the exit-model interface.

Layer: nn (the bottom of it, with :mod:`~alice_dyn.nn.objectives`). Inputs are a tensor or a
mapping of named tensors, batch first (or an object that compacts itself, ``take_rows``);
:func:`take`, :func:`first_tensor` and :func:`batch_size` work on any of them.
:class:`ExitModel` is the part of :class:`~alice_dyn.nn.early_exit.EarlyExitNet` that the
policies, FLOPs counting and inference rely on, so that those modules need not import the
network: imports in ``nn`` flow one way, ``objectives, base -> policies, flops -> inference ->
early_exit -> mlp, budget, training``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import torch
import torch.nn as nn
from torch import Tensor

from alice_dyn.nn.objectives import Objective

#: what a stem accepts: a tensor or a mapping of named tensors (batch first)
Inputs = Tensor | Mapping[str, Tensor]


def take(x: Any, idx: Tensor) -> Any:
    """Rows ``idx`` (a 1-D long tensor) of every tensor in ``x`` (tensor, tuple/list, dict);
    an input built on demand compacts itself through its ``take_rows(idx)`` method."""
    if isinstance(x, Tensor):
        return x.index_select(0, idx)
    if hasattr(x, "take_rows"):
        return x.take_rows(idx)
    if isinstance(x, Mapping):
        return {k: take(v, idx) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(take(v, idx) for v in x)
    if x is None:
        return None
    raise TypeError(f"cannot index a {type(x).__name__} along the batch")


def first_tensor(x: Any) -> Tensor:
    """The first tensor found in ``x`` (tensor, tuple/list, dict)."""
    if isinstance(x, Tensor):
        return x
    for v in x.values() if isinstance(x, Mapping) else x:
        if isinstance(v, Tensor | Mapping | tuple | list):
            return first_tensor(v)
    raise TypeError("no tensor in the inputs")


def batch_size(x: Any) -> int:
    """Length of the batch dimension of the first tensor found in ``x``."""
    return int(first_tensor(x).shape[0])


def log_softmax(z: Tensor) -> Tensor:
    """``log_softmax`` over the last dimension. On the CPU, PyTorch's kernel is slow for a short
    last dimension (~290 µs for (4096, 5) against ~50 µs along the first dimension of the
    transpose, same values): small class counts take the transposed route.

    A module whose ``forward`` calls it and is traced by ``torch.fx`` declares it a leaf with
    ``torch.fx.wrap("log_softmax")`` after importing it (fx patches the caller's globals)."""
    if z.dim() == 2 and z.shape[1] <= 16 and z.device.type == "cpu":
        return torch.log_softmax(z.t().contiguous(), dim=0).t()
    return torch.log_softmax(z, dim=-1)


class ExitModel(Protocol):
    """An early-exit network as inference and FLOPs counting see it (implemented by
    :class:`~alice_dyn.nn.early_exit.EarlyExitNet`; see there for the meaning of each part)."""

    stem: nn.Module
    blocks: Sequence[nn.Module]
    heads: Sequence[nn.Module]
    ensemble: nn.Module | None
    exit_after: tuple[int, ...]
    objective: Objective

    @property
    def num_exits(self) -> int: ...

    @property
    def num_blocks(self) -> int: ...

    def forward_stem(self, inputs: Inputs) -> Any: ...

    def exit_step(
        self, i: int, h: Any, prev: Tensor | None, log_probs: list[Tensor]
    ) -> tuple[Tensor, Tensor, list[Tensor]]: ...

    def forward_all(self, inputs: Inputs, *, raw: bool = False) -> list[Tensor]: ...

    def forward_intermediates(self, inputs: Inputs) -> Iterable[Any]: ...
