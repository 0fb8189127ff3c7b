"""Training of early-exit networks: joint, and ZTW's staged recipe.

Layer: nn. Data is either a pair ``(inputs, targets)`` of tensors (``inputs`` a tensor or a dict
of tensors, batch first; shuffled into mini-batches with a seeded generator) or any iterable of
``(inputs, targets)`` batches (e.g. a ``DataLoader``; give ``val_data`` too, otherwise early
stopping watches the training loss). With a tensor pair and no ``val_data``, a seeded
``val_fraction`` of it is held out.

* :func:`train_joint` — all heads and the backbone together: ``sum_i w_i loss_i`` (+ optional
  self-distillation of the earlier heads from the last one);
* :func:`train_backbone` -> :func:`train_heads` -> :func:`train_ensemble` — ZTW: the backbone
  with its own (last) head, then the internal heads on the frozen backbone, then only the
  ensemble weights (on cached head outputs).

Every stage: ``torch.manual_seed(seed)``, AdamW, early stopping on the validation loss (the best
epoch's weights are restored), and a history dict ``{"stage", "loss", "val_loss",
"val_exit_loss", "best_epoch", "best_val_loss", "epochs", "seconds", "seed"}``. On the CPU the
result is bit-for-bit reproducible for a given seed (same thread count).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from alice_dyn.nn.base import Inputs, batch_size, first_tensor, log_softmax, take
from alice_dyn.nn.early_exit import EarlyExitNet

Data = tuple[Inputs, Tensor] | Iterable[tuple[Inputs, Tensor]]
LossFn = Callable[[Inputs, Tensor], tuple[Tensor, list[Tensor]]]


def _is_pair(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], Tensor)


def split_validation(
    data: tuple[Inputs, Tensor], val_fraction: float, seed: int = 0
) -> tuple[tuple[Inputs, Tensor], tuple[Inputs, Tensor]]:
    """Seeded random split of a tensor pair into ``(train, val)``."""
    x, y = data
    n = y.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(y.device)
    n_val = max(1, round(n * val_fraction))
    va, tr = perm[:n_val], perm[n_val:]
    return (take(x, tr), y[tr]), (take(x, va), y[va])


def _batches(data: Data, batch: int, gen: torch.Generator) -> Iterator[tuple[Inputs, Tensor]]:
    if _is_pair(data):
        x, y = data
        n = y.shape[0]
        perm = torch.randperm(n, generator=gen).to(y.device)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            yield take(x, idx), y[idx]
    else:
        yield from data


def _ordered(data: Data, batch: int) -> Iterator[tuple[Inputs, Tensor]]:
    if _is_pair(data):
        x, y = data
        n = y.shape[0]
        for s in range(0, n, batch):
            idx = torch.arange(s, min(n, s + batch), device=y.device)
            yield take(x, idx), y[idx]
    else:
        yield from data


@contextmanager
def _only_trainable(model: torch.nn.Module, params: Sequence[torch.nn.Parameter]):
    """Freeze every parameter of ``model`` but ``params`` for the duration."""
    keep = {id(p) for p in params}
    saved = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in saved:
            p.requires_grad_(id(p) in keep)
        yield
    finally:
        for p, rg in saved:
            p.requires_grad_(rg)


@contextmanager
def _num_threads(n: int | None):
    """Run with ``torch.set_num_threads(n)`` (``None``: unchanged)."""
    saved = torch.get_num_threads()
    try:
        if n is not None:
            torch.set_num_threads(n)
        yield
    finally:
        torch.set_num_threads(saved)


@torch.no_grad()
def _evaluate(loss_fn: LossFn, data: Data, batch: int) -> tuple[float, list[float]]:
    total, parts, n = 0.0, None, 0
    for xb, yb in _ordered(data, batch):
        loss, p = loss_fn(xb, yb)
        b = yb.shape[0]
        total += float(loss) * b
        pv = [float(t) * b for t in p]
        parts = pv if parts is None else [a + c for a, c in zip(parts, pv, strict=True)]
        n += b
    return total / max(n, 1), [v / max(n, 1) for v in parts or []]


def _fit(
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    loss_fn: LossFn,
    data: Data,
    *,
    stage: str,
    val_data: Data | None,
    val_fraction: float,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    patience: int | None,
    seed: int,
    grad_clip: float | None,
    verbose: bool,
    threads: int | None,
) -> dict:
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    if val_data is None and _is_pair(data) and val_fraction > 0:
        data, val_data = split_validation(data, val_fraction, seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    hist: dict[str, Any] = {"stage": stage, "loss": [], "val_loss": [], "val_exit_loss": []}
    best, best_epoch, best_state, bad = math.inf, -1, None, 0
    with _num_threads(threads), _only_trainable(model, params):
        for epoch in range(epochs):
            model.train()
            total, n = 0.0, 0
            for xb, yb in _batches(data, batch_size, gen):
                loss, _ = loss_fn(xb, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                opt.step()
                total += float(loss.detach()) * yb.shape[0]
                n += yb.shape[0]
            hist["loss"].append(total / max(n, 1))
            model.eval()
            if val_data is not None:
                vl, parts = _evaluate(loss_fn, val_data, max(batch_size, 1024))
            else:
                vl, parts = hist["loss"][-1], []
            hist["val_loss"].append(vl)
            hist["val_exit_loss"].append(parts)
            if verbose:
                print(f"[{stage}] epoch {epoch}: loss {hist['loss'][-1]:.4f} val {vl:.4f}")
            if vl < best:
                best, best_epoch, bad = vl, epoch, 0
                best_state = [p.detach().clone() for p in params]
            else:
                bad += 1
                if patience is not None and bad >= patience:
                    break
    if best_state is not None:
        with torch.no_grad():
            for p, v in zip(params, best_state, strict=True):
                p.copy_(v)
    model.eval()
    hist.update(
        best_epoch=best_epoch,
        best_val_loss=best,
        epochs=len(hist["loss"]),
        seconds=time.perf_counter() - t0,
        seed=seed,
    )
    return hist


def _unique(params: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    seen, out = set(), []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def _distill(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T² KL(softmax(teacher / T) || softmax(student / T))``, batch mean; teacher detached."""
    t = F.log_softmax(teacher.detach() / temperature, dim=-1)
    s = F.log_softmax(student / temperature, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * temperature**2


def _head_loss(
    model: EarlyExitNet,
    heads: Sequence[int],
    weights: Sequence[float] | None,
    distill_temperature: float | None,
    distill_weight: float,
) -> LossFn:
    if weights is not None and len(weights) != len(heads):
        raise ValueError(f"{len(weights)} head weights for {len(heads)} heads")
    w = [1.0] * len(heads) if weights is None else [float(v) for v in weights]
    if distill_temperature is not None and model.objective.kind != "classification":
        raise ValueError("self-distillation is defined for classification heads")
    teacher_id = model.num_exits - 1

    def loss_fn(x: Inputs, y: Tensor) -> tuple[Tensor, list[Tensor]]:
        outs = model.forward_all(x, raw=True)
        parts = [model.objective.loss(outs[i], y) for i in heads]
        total = sum(wi * p for wi, p in zip(w, parts, strict=True))
        if distill_temperature is not None:
            for wi, i in zip(w, heads, strict=True):
                if i != teacher_id:
                    kl = _distill(outs[i], outs[teacher_id], distill_temperature)
                    total = total + wi * distill_weight * kl
        return total, parts

    return loss_fn


_FIT_DEFAULTS = dict(
    val_data=None,
    val_fraction=0.1,
    epochs=20,
    batch_size=256,
    lr=1e-3,
    weight_decay=1e-2,
    patience=5,
    seed=0,
    grad_clip=None,
    verbose=False,
    threads=None,
)


def _fit_kw(kw: dict) -> dict:
    unknown = set(kw) - set(_FIT_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown training options: {sorted(unknown)}")
    return {**_FIT_DEFAULTS, **kw}


def train_joint(
    model: EarlyExitNet,
    data: Data,
    *,
    head_weights: Sequence[float] | None = None,
    distill_temperature: float | None = None,
    distill_weight: float = 1.0,
    **kw: Any,
) -> dict:
    """Train stem, blocks and every head on ``sum_i w_i loss_i`` (ensemble weights excluded).

    Args:
        head_weights: ``w_i`` per exit (default all 1).
        distill_temperature: if given, earlier heads also learn the last head's softened
            distribution: ``+ w_i * distill_weight * T² KL(p_last^T || p_i^T)``.
        **kw: ``val_data``, ``val_fraction`` (0.1), ``epochs`` (20), ``batch_size`` (256),
            ``lr`` (1e-3), ``weight_decay`` (1e-2), ``patience`` (5; None: no early stop),
            ``seed`` (0), ``grad_clip`` (None), ``verbose`` (False), ``threads``
            (None: torch's setting; small models often train faster with 1).
    """
    heads = list(range(model.num_exits))
    params = _unique(
        [*model.stem.parameters(), *model.blocks.parameters(), *model.heads.parameters()]
    )
    loss_fn = _head_loss(model, heads, head_weights, distill_temperature, distill_weight)
    return _fit(model, params, loss_fn, data, stage="joint", **_fit_kw(kw))


def train_backbone(model: EarlyExitNet, data: Data, **kw: Any) -> dict:
    """ZTW stage 1: stem, blocks and the backbone's own head(s) (``model.backbone_heads``,
    default the last) on their loss only. Options as :func:`train_joint`."""
    heads = list(model.backbone_heads)
    params = _unique(
        [
            *model.stem.parameters(),
            *model.blocks.parameters(),
            *(p for i in heads for p in model.heads[i].parameters()),
        ]
    )
    loss_fn = _head_loss(model, heads, None, None, 0.0)
    return _fit(model, params, loss_fn, data, stage="backbone", **_fit_kw(kw))


def train_heads(
    model: EarlyExitNet,
    data: Data,
    *,
    head_weights: Sequence[float] | None = None,
    distill_temperature: float | None = None,
    distill_weight: float = 1.0,
    **kw: Any,
) -> dict:
    """ZTW stage 2: the internal heads (all but ``model.backbone_heads``) on the frozen
    backbone; optional self-distillation from the last head. Options as :func:`train_joint`."""
    heads = [i for i in range(model.num_exits) if i not in model.backbone_heads]
    if not heads:
        raise ValueError("the model has no internal heads")
    params = _unique(p for i in heads for p in model.heads[i].parameters())
    loss_fn = _head_loss(model, heads, head_weights, distill_temperature, distill_weight)
    return _fit(model, params, loss_fn, data, stage="heads", **_fit_kw(kw))


@torch.no_grad()
def head_log_probs(model: EarlyExitNet, inputs: Inputs, *, chunk: int = 8192) -> Tensor:
    """``(n, E, C)`` log-softmax of every head's raw logits (the ensemble's inputs)."""
    n = batch_size(inputs)
    device = first_tensor(inputs).device
    out = []
    for s in range(0, n, chunk):
        part = take(inputs, torch.arange(s, min(n, s + chunk), device=device))
        raws = model.forward_all(part, raw=True)
        out.append(torch.stack([log_softmax(z) for z in raws], 1))
    return torch.cat(out)


def train_ensemble(model: EarlyExitNet, data: Data, *, lr: float = 1e-2, **kw: Any) -> dict:
    """ZTW stage 3: only the geometric-ensemble weights and biases, on ``sum_i NLL(exit i)``.

    The heads' log-probabilities are computed once (frozen network) and the ensemble is fitted
    on them; ``data`` must be a tensor pair (or give ``val_data`` as one). ``weight_decay``
    defaults to 0 here. Options as :func:`train_joint`.
    """
    if model.ensemble is None:
        raise ValueError("the model has no ensemble")
    kw = _fit_kw({"weight_decay": 0.0, **kw, "lr": lr})
    if not _is_pair(data):
        raise TypeError("train_ensemble needs (inputs, targets) tensors")
    if kw["val_data"] is None and kw["val_fraction"] > 0:
        data, kw["val_data"] = split_validation(data, kw["val_fraction"], kw["seed"])
    model.eval()
    data = (head_log_probs(model, data[0]), data[1])
    if kw["val_data"] is not None:
        kw["val_data"] = (head_log_probs(model, kw["val_data"][0]), kw["val_data"][1])
    ens = model.ensemble

    def loss_fn(lp: Tensor, y: Tensor) -> tuple[Tensor, list[Tensor]]:
        parts = [F.nll_loss(ens.forward_log_probs(i, lp), y) for i in range(model.num_exits)]
        return sum(parts), parts

    return _fit(model, list(ens.parameters()), loss_fn, data, stage="ensemble", **kw)


@torch.no_grad()
def exit_metrics(model: EarlyExitNet, inputs: Inputs, targets: Tensor) -> list[dict]:
    """Per exit: ``loss`` and ``accuracy`` (classification) or ``rmse`` and mean ``sigma``
    (regression; multi-task: all three, the RMSE over the finite regression targets)."""
    model.eval()
    out = []
    for o in model.forward_all(inputs):
        m = {"loss": float(model.objective.loss(o, targets))}
        if model.objective.kind == "classification":
            m["accuracy"] = float((o.argmax(-1) == targets).double().mean())
        elif model.objective.kind == "multitask":
            hit = model.objective.predict(o) == targets[:, 0].long()
            m["accuracy"] = float(hit.double().mean())
            y = targets[:, 1:]
            ok = torch.isfinite(y)
            diff = torch.where(ok, model.objective.regression(o) - y, torch.zeros_like(y))
            m["rmse"] = float((diff.square().sum() / ok.sum().clamp_min(1)).sqrt())
            m["sigma"] = float(model.objective.sigma(o).mean())
        else:
            mean = model.objective.predict(o)
            m["rmse"] = float((mean - targets.reshape(mean.shape)).square().mean().sqrt())
            m["sigma"] = float(model.objective.sigma(o).mean())
        out.append(m)
    return out
