"""Mergeable accumulators: the building blocks of every evaluation against MC truth.

Layer: QA (no files, no physics). An evaluation is a set of small accumulators, one per
observable, each filled timeframe by timeframe (``add``), summed with ``+`` (so partial results of
separate processes or Dask partitions combine, as coffea's accumulators do) and turned into
JSON-ready numbers by ``result()``. Distributions are kept as fine histograms with exact moments
(:class:`Dist`, :class:`Hist2D`): memory does not grow with the number of timeframes.

Typical use::

    parts = [evaluate_part(files) for files in partitions]  # each an Accumulator
    total = sum(parts)  # same counts as one pass over every timeframe
    total.result()
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

#: Gaussian core: sigma = half the 16-84% interval; its statistical error ~ this / sqrt(n)
CORE_SIGMA_ERR_FACTOR = 0.962


def num(x: float) -> float | None:
    """JSON-safe number: NaN/inf -> None."""
    x = float(x)
    return x if math.isfinite(x) else None


def ratio(k: float, n: float) -> tuple[float | None, float | None]:
    """``k/n`` and its binomial error ``sqrt(e(1-e)/n)`` (``None`` for ``n = 0``)."""
    k, n = float(k), float(n)
    if n <= 0:
        return None, None
    e = k / n
    return e, math.sqrt(max(e * (1.0 - e), 0.0) / n)


def bin_index(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bin of each value in ``[edges[i], edges[i+1])``; -1 outside."""
    e = np.asarray(edges, dtype=np.float64)
    i = np.searchsorted(e, np.asarray(values, dtype=np.float64), side="right") - 1
    return np.where((i >= 0) & (i < len(e) - 1), i, -1)


def bin_counts(values: np.ndarray, edges: Sequence[float], weights=None) -> np.ndarray:
    """Counts ``(len(edges) - 1,)`` of ``values`` per bin (values outside left out)."""
    i = bin_index(values, edges)
    ok = i >= 0
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    return np.bincount(i[ok], weights=w, minlength=len(edges) - 1)[: len(edges) - 1]


def merge(a: Any, b: Any) -> Any:
    """Sum of two accumulated values of the same shape: numbers and arrays add, lists add
    element by element, dicts key by key, accumulators with ``+``; tuples and strings are
    settings and must be equal."""
    if isinstance(a, (tuple, str)):
        if a != b:
            raise ValueError(f"cannot merge accumulators with different settings: {a} != {b}")
        return a
    if isinstance(a, list):
        if len(a) != len(b):
            raise ValueError(f"cannot merge lists of {len(a)} and {len(b)} accumulators")
        return [merge(x, y) for x, y in zip(a, b, strict=True)]
    if isinstance(a, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if k in out else v
        return out
    return a + b


class Accumulator:
    """A mergeable dataclass: ``a + b`` merges every field with :func:`merge`; ``sum()`` of a
    list works (``0 + a`` is ``a``). Subclasses define ``add(...)`` and ``result() -> dict``."""

    def __add__(self, other: Self) -> Self:
        if type(other) is not type(self):
            return NotImplemented
        out = copy.copy(self)
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            setattr(out, f.name, merge(getattr(self, f.name), getattr(other, f.name)))
        return out

    def __radd__(self, other: Any) -> Self:
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


@dataclasses.dataclass
class Dist(Accumulator):
    """A distribution kept as a fine histogram plus exact moments (bounded memory).

    ``quantile`` interpolates linearly inside the bin (resolution far below the bin width for
    smooth distributions) and is NaN when it falls in the under/overflow. ``mean``/``std`` use
    all finite values, inside the range or not.
    """

    lo: float
    hi: float
    nbins: int
    counts: np.ndarray = dataclasses.field(init=False)  # [underflow, bins..., overflow]
    n: int = dataclasses.field(init=False, default=0)
    n_finite: int = dataclasses.field(init=False, default=0)
    sum: float = dataclasses.field(init=False, default=0.0)
    sum2: float = dataclasses.field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.edges = np.linspace(self.lo, self.hi, self.nbins + 1)
        self.counts = np.zeros(self.nbins + 2, np.int64)

    def __add__(self, other: Dist) -> Dist:
        if (self.lo, self.hi, self.nbins) != (other.lo, other.hi, other.nbins):
            raise ValueError("cannot merge distributions with different binning")
        out = Dist(self.lo, self.hi, self.nbins)
        out.counts = self.counts + other.counts
        out.n, out.n_finite = self.n + other.n, self.n_finite + other.n_finite
        out.sum, out.sum2 = self.sum + other.sum, self.sum2 + other.sum2
        return out

    def fill(self, values: np.ndarray) -> None:
        """Add ``values`` (any shape; NaN left out, +-inf in the under/overflow)."""
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[~np.isnan(x)]
        if not len(x):
            return
        idx = np.searchsorted(self.edges, x, side="right")  # 0: below, nbins+1: at/above hi
        self.counts += np.bincount(idx, minlength=len(self.counts))
        self.n += len(x)
        finite = x[np.isfinite(x)]
        self.n_finite += len(finite)
        self.sum += float(finite.sum())
        self.sum2 += float(np.dot(finite, finite))

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (NaN when empty or in the under/overflow)."""
        if self.n == 0:
            return math.nan
        target = q * self.n
        cum = np.cumsum(self.counts)
        k = int(np.searchsorted(cum, target, side="left"))
        if k == 0 or k >= len(self.counts) - 1:
            return math.nan
        prev = cum[k - 1]
        frac = (target - prev) / self.counts[k]
        lo, hi = self.edges[k - 1], self.edges[k]
        return float(lo + frac * (hi - lo))

    def median(self) -> float:
        return self.quantile(0.5)

    def core_sigma(self) -> float:
        """Half the 16-84% interval (the sigma of a Gaussian core)."""
        return 0.5 * (self.quantile(0.841345) - self.quantile(0.158655))

    def core_sigma_err(self) -> float:
        """Statistical error of :meth:`core_sigma`: 0.962 sigma / sqrt(n)."""
        return CORE_SIGMA_ERR_FACTOR * self.core_sigma() / math.sqrt(self.n) if self.n else math.nan

    def mean(self) -> float:
        return self.sum / self.n_finite if self.n_finite else math.nan

    def std(self) -> float:
        if self.n_finite < 2:
            return math.nan
        m = self.mean()
        return math.sqrt(max(self.sum2 / self.n_finite - m * m, 0.0))

    def summary(self) -> dict:
        """``n``, ``sigma_core`` (+ ``_err``), ``rms``, ``mean``, ``median`` (None: undefined)."""
        return {
            "n": self.n,
            "sigma_core": num(self.core_sigma()),
            "sigma_core_err": num(self.core_sigma_err()),
            "rms": num(self.std()),
            "mean": num(self.mean()),
            "median": num(self.median()),
        }


@dataclasses.dataclass
class Hist2D(Accumulator):
    """Counts on a log-x, linear-y grid (bounded memory), JSON-ready via :meth:`to_dict`;
    ``x``/``y``: ``(lo, hi, nbins)``."""

    x: tuple[float, float, int]
    y: tuple[float, float, int]
    counts: np.ndarray = dataclasses.field(init=False)  # (nx, ny)

    def __post_init__(self) -> None:
        self.x_edges = np.geomspace(self.x[0], self.x[1], self.x[2] + 1)
        self.y_edges = np.linspace(self.y[0], self.y[1], self.y[2] + 1)
        self.counts = np.zeros((self.x[2], self.y[2]), np.int64)

    def fill(self, x: np.ndarray, y: np.ndarray) -> None:
        """Count the points ``(x[i], y[i])`` inside the grid."""
        ix, iy = bin_index(x, self.x_edges), bin_index(y, self.y_edges)
        ok = (ix >= 0) & (iy >= 0)
        np.add.at(self.counts, (ix[ok], iy[ok]), 1)

    def to_dict(self) -> dict:
        return {
            "x_edges": self.x_edges.tolist(),
            "y_edges": self.y_edges.tolist(),
            "counts": self.counts.tolist(),
        }


__all__ = [
    "CORE_SIGMA_ERR_FACTOR",
    "Accumulator",
    "Dist",
    "Hist2D",
    "bin_counts",
    "bin_index",
    "merge",
    "num",
    "ratio",
]
