"""Compute accounting: FLOPs per sample up to each exit, from the layers themselves; wall time.

Layer: nn. :func:`count_flops` runs one forward pass of every exit on a (small) batch with
forward hooks on every sub-module and applies a formula per layer (a FLOP is one
floating-point multiply or add):

=====================  ============================================================
``nn.Linear``          ``2 * in * out`` per row (multiply-accumulate) ``+ out`` (bias)
``nn.LayerNorm``       5 per element (mean, centre, square-accumulate, normalise) + 2 if affine
activations            1 per element (ReLU, GELU, SiLU, Tanh, Sigmoid, ...)
softmax / log-softmax  3 / 4 per element
``MultiheadAttention``  in/out projections as Linear, ``2 L S E`` scores, ``2 L S E`` weighted
                       sum, 3 per score for the softmax
=====================  ============================================================

Modules may define ``flops(self, args, output) -> int`` for their *own* operations beyond
their children (residual additions, masking, the ZTW ensemble); leaves without a formula are
listed in :attr:`FlopsReport.uncounted`. A "row" is every leading index of the input, so
token-level layers (``(batch, tokens, d)``) are counted per token.

``torch.utils.flop_counter.FlopCounterMode`` counts only matrix products (``mm``, ``addmm``,
``bmm``, ``baddbmm``, convolutions, scaled-dot-product attention) as ``2 M N K`` — no bias
additions, normalisations or activations; :attr:`FlopsReport.matmul` is the part of our count
that corresponds to it (tests check the two agree).

Per-exit cost (:attr:`FlopsReport.exit_flops`) is what dynamic inference spends on a sample
that leaves at exit ``i``: stem, blocks up to the exit, heads ``0..i`` (each was evaluated to
decide) and the ensemble at exits ``0..i``. The exit decision itself (a softmax and a max) is
not counted. :attr:`FlopsReport.full_flops` is the plain backbone: stem, all blocks and the
last head only — the reference for budget fractions (ZTW's "% of the full model").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from alice_dyn.nn.base import ExitModel, Inputs, batch_size, first_tensor, take

_ELEMENTWISE_1 = (
    nn.ReLU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.LeakyReLU,
    nn.ELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardtanh,
)
_ZERO = (nn.Dropout, nn.Identity, nn.Flatten, nn.Unflatten)


def _leaf_flops(m: nn.Module, args: tuple, kwargs: dict, output: Any) -> tuple[int, int] | None:
    """``(total, matmul)`` FLOPs of one call of a known layer, ``None`` if unknown."""
    if isinstance(m, nn.Linear):
        x = args[0]
        rows = x.numel() // m.in_features
        mm = 2 * rows * m.in_features * m.out_features
        return mm + (rows * m.out_features if m.bias is not None else 0), mm
    if isinstance(m, nn.LayerNorm):
        n = args[0].numel()
        return n * (5 + (2 if m.elementwise_affine else 0)), 0
    if isinstance(m, _ELEMENTWISE_1):
        return args[0].numel(), 0
    if isinstance(m, nn.Softmax):
        return 3 * args[0].numel(), 0
    if isinstance(m, nn.LogSoftmax):
        return 4 * args[0].numel(), 0
    if isinstance(m, _ZERO):
        return 0, 0
    if isinstance(m, nn.MultiheadAttention):
        return _mha_flops(m, args, kwargs)
    return None


def _mha_flops(m: nn.MultiheadAttention, args: tuple, kwargs: dict) -> tuple[int, int]:
    names = ("query", "key", "value")
    q, k, v = (args[j] if j < len(args) else kwargs[names[j]] for j in range(3))
    if q.dim() == 2:  # unbatched (L, E)
        q, k, v = q[None], k[None], v[None]
    elif not m.batch_first:
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    b, length, e = q.shape
    s = k.shape[1]
    proj = 2 * b * e * (length * e + s * k.shape[-1] + s * v.shape[-1])
    attn = 2 * b * length * s * e * 2  # scores and weighted sum
    out = 2 * b * length * e * e
    bias = b * e * (3 * length + 2 * s) if m.in_proj_bias is not None else 0
    softmax = 3 * b * m.num_heads * length * s
    mm = proj + attn + out
    return mm + bias + softmax, mm


@dataclass
class FlopsReport:
    """Per-sample FLOPs of an early-exit network (see the module docstring)."""

    components: dict[str, float]
    matmul: dict[str, float]
    exit_flops: tuple[float, ...]
    full_flops: float
    uncounted: tuple[str, ...] = ()
    batch: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        """FLOPs per sample of evaluating every exit (``forward_all``)."""
        return sum(self.components.values())

    @property
    def total_matmul(self) -> float:
        """Matrix-product FLOPs per sample of ``forward_all`` (what ``FlopCounterMode`` counts)."""
        return sum(self.matmul.values())

    def exit_fractions(self) -> tuple[float, ...]:
        """``exit_flops / full_flops``."""
        return tuple(f / self.full_flops for f in self.exit_flops)

    def to_json(self) -> dict:
        return {
            "exit_flops": list(self.exit_flops),
            "full_flops": self.full_flops,
            "components": dict(self.components),
        }


@torch.no_grad()
def count_flops(model: ExitModel, inputs: Inputs) -> FlopsReport:
    """Analytic FLOPs per sample of ``model`` on inputs shaped like ``inputs`` (any batch).

    Runs ``model.forward_all(inputs)`` once with hooks; FLOPs are linear in the batch, so a batch
    of one or two samples is enough.
    """
    comps: dict[str, float] = {}
    mms: dict[str, float] = {}
    uncounted: set[str] = set()
    handles = []

    def add(key: str, total: int, mm: int) -> None:
        comps[key] = comps.get(key, 0) + total
        mms[key] = mms.get(key, 0) + mm

    def hook_for(key: str, root: nn.Module, skip: set[nn.Module]) -> Callable:
        def hook(m: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if m in skip:
                return
            k = f"{key}.{int(args[0])}" if key == "ensemble" and m is root else key
            own = getattr(m, "flops", None)
            if callable(own):
                r = own(args, output)
                total, mm = r if isinstance(r, tuple) else (int(r), 0)
                add(k, total, mm)
                return
            res = _leaf_flops(m, args, kwargs, output)
            if res is not None:
                add(k, *res)
            elif next(m.children(), None) is None:
                uncounted.add(type(m).__name__)

        return hook

    parts: list[tuple[str, nn.Module]] = [("stem", model.stem)]
    parts += [(f"blocks.{k}", b) for k, b in enumerate(model.blocks)]
    parts += [(f"heads.{i}", h) for i, h in enumerate(model.heads)]
    if model.ensemble is not None:
        parts.append(("ensemble", model.ensemble))
    for key, root in parts:
        # children of a module with its own formula (e.g. MultiheadAttention's out_proj) are
        # covered by that formula
        skip: set[nn.Module] = set()
        for m in root.modules():
            if isinstance(m, nn.MultiheadAttention):
                skip.update(c for c in m.modules() if c is not m)
        for m in root.modules():
            handles.append(m.register_forward_hook(hook_for(key, root, skip), with_kwargs=True))
    try:
        model.forward_all(inputs)
    finally:
        for h in handles:
            h.remove()

    n = batch_size(inputs)
    per = {k: v / n for k, v in comps.items()}
    per_mm = {k: v / n for k, v in mms.items()}
    exit_flops = []
    for i, k in enumerate(model.exit_after):
        f = per.get("stem", 0.0)
        f += sum(per.get(f"blocks.{j}", 0.0) for j in range(k + 1))
        f += sum(per.get(f"heads.{j}", 0.0) for j in range(i + 1))
        f += sum(per.get(f"ensemble.{j}", 0.0) for j in range(i + 1))
        exit_flops.append(f)
    full = per.get("stem", 0.0) + sum(per.get(f"blocks.{j}", 0.0) for j in range(model.num_blocks))
    full += per.get(f"heads.{model.num_exits - 1}", 0.0)
    return FlopsReport(
        components=per,
        matmul=per_mm,
        exit_flops=tuple(exit_flops),
        full_flops=full,
        uncounted=tuple(sorted(uncounted)),
        batch=n,
    )


def flop_counter_total(fn: Callable[[], Any]) -> int:
    """Total FLOPs that ``torch.utils.flop_counter.FlopCounterMode`` counts for ``fn()``
    (matrix products only, see the module docstring).

    Runs with gradients enabled and the math attention backend: with ``no_grad`` in eval mode
    ``nn.MultiheadAttention`` takes a fused fast path, and on the CPU the fused
    scaled-dot-product kernel, neither of which the counter sees.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as c:
        fn()
    return int(c.get_total_flops())


def module_flops(root: nn.Module, fn: Callable[[], Any], batch: int) -> float:
    """Analytic FLOPs per sample of the layers of ``root`` that ``fn()`` calls (the formulas of
    the module docstring), for any module, not only an early-exit network; ``batch`` is the
    number of samples ``fn`` processes."""
    total = [0.0]
    skip: set[nn.Module] = set()
    for m in root.modules():
        if isinstance(m, nn.MultiheadAttention):
            skip.update(c for c in m.modules() if c is not m)

    def hook(m: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if m in skip:
            return
        own = getattr(m, "flops", None)
        if callable(own):
            r = own(args, output)
            total[0] += r[0] if isinstance(r, tuple) else int(r)
            return
        res = _leaf_flops(m, args, kwargs, output)
        if res is not None:
            total[0] += res[0]

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in root.modules()]
    try:
        with torch.no_grad():
            fn()
    finally:
        for h in handles:
            h.remove()
    return total[0] / max(int(batch), 1)


def _shape_key(x: Any) -> Any:
    if isinstance(x, Tensor):
        return (tuple(x.shape[1:]), str(x.dtype))
    if isinstance(x, dict):
        return tuple((k, _shape_key(v)) for k, v in sorted(x.items()))
    if isinstance(x, tuple | list):
        return tuple(_shape_key(v) for v in x)
    return None


def exit_flops_for(model: ExitModel, inputs: Inputs) -> FlopsReport:
    """:func:`count_flops` on the first sample of ``inputs``, cached on the model per input
    shape (all but the batch dimension)."""
    cache = model.__dict__.setdefault("_flops_cache", {})
    key = _shape_key(inputs)
    if key not in cache:
        first = torch.zeros(1, dtype=torch.long, device=first_tensor(inputs).device)
        cache[key] = count_flops(model, take(inputs, first))
    return cache[key]


def measure_wall_time(
    fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Wall time of ``fn()`` in seconds: ``{"median_s", "min_s", "mean_s"}`` over ``repeats``
    runs after ``warmup`` (CUDA is synchronised around each run when available)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "median_s": times[len(times) // 2],
        "min_s": times[0],
        "mean_s": sum(times) / len(times),
    }
