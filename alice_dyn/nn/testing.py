"""Toy data for tests and benchmarks of early-exit networks (physics-free).

Layer: nn (test support). The problem's structure (class directions, projections) is fixed by
``world_seed``; ``seed`` draws the samples, so train/validation/test sets from different seeds
share one distribution.

:func:`toy_classification` mixes *easy* samples (a Gaussian blob per class, far apart: a shallow
head is confident and right) with *hard* ones (the class is the arm of a 2-D spiral in a
projection orthogonal to the blobs: it takes depth to unroll), so early exits pay off.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def _world(n_features: int, n_classes: int, world_seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(world_seed)
    q, _ = np.linalg.qr(rng.normal(size=(n_features, n_features)))
    proj = q[:, :2]  # spiral plane
    mu = rng.normal(size=(n_classes, n_features))
    mu -= (mu @ proj) @ proj.T  # blobs orthogonal to the spiral plane
    mu /= np.linalg.norm(mu, axis=1, keepdims=True)
    return mu, proj


def toy_classification(
    n: int,
    *,
    n_features: int = 20,
    n_classes: int = 5,
    hard_fraction: float = 0.5,
    separation: float = 4.0,
    twist: float = 1.0,
    seed: int = 0,
    world_seed: int = 1234,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(x (n, F) float32, y (n,) long, hard (n,) bool)``.

    Easy: ``x = N(0, 1) + separation * mu_y``. Hard: ``x = N(0, 1)``, class = spiral arm of the
    projection ``z = x P`` (angle ``+ twist |z|``, cut into ``n_classes`` sectors).
    """
    mu, proj = _world(n_features, n_classes, world_seed)
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < hard_fraction
    x = rng.normal(size=(n, n_features))
    y = rng.integers(0, n_classes, size=n)
    x[~hard] += separation * mu[y[~hard]]
    z = x[hard] @ proj
    phase = np.arctan2(z[:, 1], z[:, 0]) + twist * np.hypot(z[:, 0], z[:, 1])
    y[hard] = np.floor(np.mod(phase, 2 * math.pi) / (2 * math.pi) * n_classes).astype(np.int64)
    y[hard] = np.minimum(y[hard], n_classes - 1)
    return (
        torch.from_numpy(x.astype(np.float32)),
        torch.from_numpy(y.astype(np.int64)),
        torch.from_numpy(hard),
    )


def toy_regression(
    n: int, *, n_features: int = 8, seed: int = 0, world_seed: int = 1234
) -> tuple[Tensor, Tensor]:
    """``(x (n, F) float32, y (n, 1) float32)``: ``y = sin(a.x) + 0.3 (b.x)^2 + noise`` with a
    heteroscedastic noise σ between 0.05 and 0.55 depending on ``c.x``."""
    w = np.random.default_rng(world_seed).normal(size=(3, n_features)) / math.sqrt(n_features)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_features))
    a, b, c = (x @ w.T).T
    sigma = 0.05 + 0.5 / (1.0 + np.exp(-3.0 * c))
    y = np.sin(2.0 * a) + 0.3 * b**2 + sigma * rng.normal(size=n)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y[:, None].astype(np.float32))
