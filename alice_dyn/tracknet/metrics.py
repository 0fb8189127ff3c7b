"""Performance measures of the track network against the classical chain (NumPy).

Layer: tracknet. Shared by training (validation numbers in ``report.json``) and
``alice-dyn evaluate track-net``. All on *main* tracks (not looper legs, as the tracking
evaluation counts them): ``good`` / ``fake`` / ``clone`` of :mod:`alice_dyn.tracknet.dataset`.

* :func:`rejection_at_efficiency`: a score (larger = more likely bad) is cut where it keeps the
  fraction ``eff`` of good tracks; the fraction of fakes (clones) above the cut is rejected.
* :func:`classical_best_cut`: the best rectangular cut ``chi2/ndf <= a`` and ``n_clusters >= b``
  (grids of quantiles) keeping at least ``eff`` of good tracks, chosen separately for fakes
  and clones *on the evaluated data itself* (optimistic for the classical chain).
* :func:`core_sigma`: half the 16-84% interval (the sigma of a Gaussian core).
* :func:`resolution`: core sigma of ``(q/pT_x - q/pT_true) / |q/pT_true|`` over good tracks,
  overall and in true-pT bins.
* :func:`pulls`: core sigma and RMS of ``(x - true) / sigma`` per refined parameter.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from alice_dyn.tracknet.dataset import CLONE, FAKE, GOOD
from alice_dyn.tracknet.features import TARGETS

EFFICIENCIES = (0.99, 0.98)
PT_EDGES = (0.1, 0.3, 0.5, 1.0, 2.0, 5.0, 20.0)


def core_sigma(x: np.ndarray) -> float | None:
    """Half the 16-84% interval of the finite values (None for fewer than 10)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    if len(x) < 10:
        return None
    q16, q84 = np.percentile(x, [15.8655, 84.1345])
    return float(0.5 * (q84 - q16))


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def cut_at_efficiency(score: np.ndarray, good: np.ndarray, eff: float) -> float:
    """Threshold ``t`` such that the fraction ``eff`` of good tracks has ``score <= t``."""
    s = np.asarray(score, np.float64)[good]
    return float(np.quantile(s, eff, method="higher")) if len(s) else math.inf


def rejection_at_efficiency(
    score: np.ndarray, labels: np.ndarray, main: np.ndarray, effs=EFFICIENCIES
) -> dict:
    """``{"99": {"threshold", "efficiency", "fake_rejection", "clone_rejection"}, ...}``:
    reject ``score > t`` with ``t`` keeping ``eff`` of the good main tracks."""
    good = main & (labels == GOOD)
    fake = main & (labels == FAKE)
    clone = main & (labels == CLONE)
    out = {}
    for eff in effs:
        t = cut_at_efficiency(score, good, eff)
        rej = score > t
        out[f"{round(eff * 100)}"] = {
            "threshold": _num(t),
            "efficiency": _num(float(np.mean(~rej[good]))) if good.any() else None,
            "fake_rejection": _num(float(np.mean(rej[fake]))) if fake.any() else None,
            "clone_rejection": _num(float(np.mean(rej[clone]))) if clone.any() else None,
        }
    return out


def classical_best_cut(
    chi2_ndf: np.ndarray,
    n_clusters: np.ndarray,
    labels: np.ndarray,
    main: np.ndarray,
    effs=EFFICIENCIES,
    n_grid: int = 40,
) -> dict:
    """Best ``chi2/ndf <= a`` and ``n_clusters >= b`` cut per efficiency and bad class (the
    module docstring); also the best 1-D cuts."""
    good = main & (labels == GOOD)
    bad = {"fake": main & (labels == FAKE), "clone": main & (labels == CLONE)}
    c = np.asarray(chi2_ndf, np.float64)
    n = np.asarray(n_clusters, np.float64)
    qs = np.linspace(0.9, 1.0, n_grid)
    a_grid = np.unique(np.r_[np.quantile(c[good], qs), np.inf]) if good.any() else [np.inf]
    b_grid = np.unique(np.r_[np.quantile(n[good], 1.0 - qs), 0.0]) if good.any() else [0.0]
    cuts = [(a, b) for a, b in itertools.product(a_grid, b_grid)]
    out: dict = {}
    for eff in effs:
        key = f"{round(eff * 100)}"
        out[key] = {}
        for name, sel in bad.items():
            best = None
            for kind, cand in (
                ("chi2_ndf", [(a, 0.0) for a in a_grid]),
                ("n_clusters", [(np.inf, b) for b in b_grid]),
                ("both", cuts),
            ):
                top = None
                for a, b in cand:
                    keep = (c <= a) & (n >= b)
                    e = float(np.mean(keep[good])) if good.any() else 0.0
                    if e < eff:
                        continue
                    r = float(np.mean(~keep[sel])) if sel.any() else 0.0
                    if (
                        top is None
                        or r > top["rejection"]
                        or (r == top["rejection"] and e > top["efficiency"])
                    ):
                        top = {"max_chi2_ndf": _num(a), "min_clusters": float(b),
                               "efficiency": e, "rejection": r}  # fmt: skip
                out[key][f"{name}_{kind}"] = top
                if kind == "both":
                    best = top
            out[key][f"{name}_rejection"] = (
                None if best is None or not sel.any() else best["rejection"]
            )
    return out


def resolution(
    q2pt: np.ndarray, q2pt_true: np.ndarray, pt_true: np.ndarray, good: np.ndarray
) -> dict:
    """Relative q/pT resolution (core sigma) of good tracks, overall and per true-pT bin."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = (q2pt - q2pt_true) / np.abs(q2pt_true)
    ok = good & np.isfinite(rel)
    bins = []
    for lo, hi in itertools.pairwise(PT_EDGES):
        sel = ok & (pt_true >= lo) & (pt_true < hi)
        bins.append({"pt_lo": lo, "pt_hi": hi, "n": int(sel.sum()),
                     "sigma_core": core_sigma(rel[sel])})  # fmt: skip
    return {"n": int(ok.sum()), "sigma_core": core_sigma(rel[ok]), "vs_pt": bins}


def pulls(values: np.ndarray, sigma: np.ndarray, truth: np.ndarray, good: np.ndarray) -> dict:
    """Per refined parameter: core sigma and RMS (|pull| < 10) of ``(x - true) / sigma``."""
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (values - truth) / sigma
    for j, name in enumerate(TARGETS):
        v = p[good, j]
        v = v[np.isfinite(v)]
        inner = v[np.abs(v) < 10]
        out[name] = {
            "n": len(v),
            "core": core_sigma(v),
            "rms_within_10": _num(float(inner.std())) if len(inner) > 1 else None,
            "mean_within_10": _num(float(inner.mean())) if len(inner) else None,
        }
    return out
