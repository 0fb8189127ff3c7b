"""Batched dynamic inference: per-sample exits inside a batch, with compaction.

Layer: nn, below :mod:`~alice_dyn.nn.early_exit` (whose ``forward(mode="dynamic")`` calls it):
it sees the network through :class:`~alice_dyn.nn.base.ExitModel`. :func:`run_dynamic` runs
the stem on the whole batch, then block by block; at each exit the policy picks the samples
that leave, their outputs are written to the result and the rest of the batch — embedding,
previous head output, ensemble inputs, policy state — is compacted with ``index_select`` so
that the next block only sees the samples still in flight. Compute therefore really drops with
early exits (unlike masking, which keeps every row).

:func:`select_exits` is the reference: all exits evaluated for all samples, then each sample's
first exit under the same policy. The two agree to float tolerance (tested for every policy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from alice_dyn.nn.base import ExitModel, Inputs, batch_size, first_tensor, take
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.nn.objectives import Objective
from alice_dyn.nn.policies import ExitPolicy


@dataclass
class ExitResult:
    """Result of dynamic inference on ``n`` samples.

    Attributes:
        outputs: ``(n, out_dim)`` exit output of each sample at its exit.
        exit_index: ``(n,)`` long, the exit each sample left at.
        flops: ``(n,)`` float64, FLOPs spent on each sample (``exit_flops[exit_index]``).
        full_flops: FLOPs per sample of the plain backbone (stem, blocks, last head).
        objective: the model's objective (interprets ``outputs``).
        seconds: wall time of the inference call (CUDA work not synchronised).
        embedding: with ``keep_embedding``, ``(n, d)`` the embedding each sample had at its
            exit (what its exit head read), for reuse by later computations; else ``None``.
    """

    outputs: Tensor
    exit_index: Tensor
    flops: Tensor
    full_flops: float
    objective: Objective
    seconds: float = 0.0
    embedding: Tensor | None = None

    @property
    def predictions(self) -> Tensor:
        """Class index ``(n,)`` or predicted means ``(n, T)``."""
        return self.objective.predict(self.outputs)

    @property
    def mean_flops(self) -> float:
        """Average FLOPs per sample."""
        return float(self.flops.mean()) if self.flops.numel() else 0.0

    @property
    def flops_fraction(self) -> float:
        """Average FLOPs per sample over the full backbone's."""
        return self.mean_flops / self.full_flops

    def exit_counts(self, num_exits: int) -> list[int]:
        """Number of samples that left at each exit."""
        return torch.bincount(self.exit_index, minlength=num_exits).tolist()


def _result(
    model: ExitModel,
    inputs: Inputs,
    outputs: Tensor,
    idx: Tensor,
    t0: float,
    embedding: Tensor | None = None,
) -> ExitResult:
    rep = exit_flops_for(model, inputs)
    table = torch.tensor(rep.exit_flops, dtype=torch.float64, device=idx.device)
    seconds = time.perf_counter() - t0
    return ExitResult(outputs, idx, table[idx], rep.full_flops, model.objective, seconds, embedding)


def embedding_of(model: ExitModel, h: Any) -> Tensor:
    """The ``(batch, d)`` embedding in the block output ``h``: ``h`` itself when it is a tensor,
    else what the model's ``embedding(h)`` method returns."""
    if isinstance(h, Tensor):
        return h
    fn = getattr(model, "embedding", None)
    if fn is None:
        raise TypeError("the blocks' output is not a tensor: the model needs an embedding(h)")
    return fn(h)


def select_exits(
    exit_outputs: list[Tensor], policy: ExitPolicy, objective: Objective
) -> tuple[Tensor, Tensor]:
    """Reference exit selection from every exit's outputs (no compaction).

    Returns ``(outputs (n, out_dim), exit_index (n,))``.
    """
    n_exits = len(exit_outputs)
    policy.check(n_exits)
    n = exit_outputs[0].shape[0]
    device = exit_outputs[0].device
    state = policy.start(n, device)
    idx = torch.full((n,), n_exits - 1, dtype=torch.long, device=device)
    decided = torch.zeros(n, dtype=torch.bool, device=device)
    for i, out in enumerate(exit_outputs[:-1]):
        mask, state = policy.decide(i, out, objective, state)
        idx[mask & ~decided] = i
        decided |= mask
    stacked = torch.stack(exit_outputs)
    return stacked[idx, torch.arange(n, device=device)], idx


@torch.no_grad()
def run_dynamic(
    model: ExitModel,
    inputs: Inputs,
    policy: ExitPolicy,
    *,
    compact: bool = True,
    keep_embedding: bool = False,
) -> ExitResult:
    """Per-sample early exits on a batch (put the model in ``eval()`` mode first).

    ``compact=False`` evaluates every exit on every sample and selects afterwards
    (:func:`select_exits`); the FLOPs reported are still those of the chosen exits.
    ``keep_embedding`` also returns each sample's embedding at its exit (compacted mode only).
    """
    t0 = time.perf_counter()
    policy.check(model.num_exits)
    if keep_embedding and not compact:
        raise ValueError("keep_embedding needs compact=True")
    if not compact:
        outputs, idx = select_exits(model.forward_all(inputs), policy, model.objective)
        return _result(model, inputs, outputs, idx, t0)

    h = model.forward_stem(inputs)
    n = batch_size(h)
    device = first_tensor(h).device
    active = torch.arange(n, device=device)
    idx = torch.empty(n, dtype=torch.long, device=device)
    outputs: Tensor | None = None
    emb: Tensor | None = None
    state = policy.start(n, device)
    last = model.num_exits - 1
    prev, log_probs, i = None, [], 0
    for k, block in enumerate(model.blocks):
        h = block(h)
        if model.exit_after[i] != k:
            continue
        prev, out, log_probs = model.exit_step(i, h, prev, log_probs)
        if outputs is None:
            outputs = out.new_empty((n, *out.shape[1:]))
        e = embedding_of(model, h) if keep_embedding else None
        if e is not None and emb is None:
            emb = e.new_empty((n, *e.shape[1:]))
        if i == last:
            outputs[active] = out
            idx[active] = i
            if e is not None:
                emb[active] = e
            break
        done, state = policy.decide(i, out, model.objective, state)
        if bool(done.any()):
            leaving = done.nonzero().squeeze(1)
            outputs[active[leaving]] = out.index_select(0, leaving)
            idx[active[leaving]] = i
            if e is not None:
                emb[active[leaving]] = e.index_select(0, leaving)
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            active = active.index_select(0, keep)
            h = take(h, keep)
            prev = prev.index_select(0, keep)
            log_probs = [lp.index_select(0, keep) for lp in log_probs]
            state = policy.take_state(state, keep)
        i += 1
    return _result(model, inputs, outputs, idx, t0, emb)
