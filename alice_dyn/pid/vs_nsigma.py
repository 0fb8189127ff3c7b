"""The PID network against the n-sigma decision, per species and momentum bin.

Layer: PID (evaluation). Efficiency and purity of a decision per species and p bin
(:func:`per_species_vs_p`), and the comparison at equal efficiency
(:func:`at_equal_efficiency`): the network's purity when its selection ``P(s) >= t`` keeps as
many true tracks of the bin as n-sigma does, with binomial and bootstrap errors of the
difference. Keys in the docstring of :mod:`alice_dyn.pid.evaluate`.
"""

from __future__ import annotations

import itertools

import numpy as np

from alice_dyn.pid.dataset import PIDDataset

SPECIES = ("e", "mu", "pi", "K", "p")
#: momentum bins (GeV/c) of every per-bin number
P_BINS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)
#: a (species, p) bin is compared only with at least this many true tracks of the species
MIN_TRUE_COMPARED = 30
#: resamples of the bootstrap error of the purity difference
N_BOOTSTRAP = 200


def eff_pur(pred: np.ndarray, true: np.ndarray, s: int) -> tuple[float | None, float | None]:
    """Efficiency and purity of the decisions ``pred`` for species ``s`` (None: no true / no
    selected track)."""
    n_true, n_pred = np.sum(true == s), np.sum(pred == s)
    hit = np.sum((pred == s) & (true == s))
    return (float(hit / n_true) if n_true else None, float(hit / n_pred) if n_pred else None)


def per_species_vs_p(pred: np.ndarray, data: PIDDataset) -> dict[str, list[dict]]:
    """Species -> per p bin ``n_true``, ``efficiency``, ``purity`` of ``pred`` ``(n,)`` and
    ``efficiency_nsigma``, ``purity_nsigma`` of ``data.nsigma``."""
    y = data.labels
    out = {}
    for k, name in enumerate(SPECIES):
        rows = []
        for lo, hi in itertools.pairwise(P_BINS):
            sel = (data.p >= lo) & (data.p < hi)
            e, p = eff_pur(pred[sel], y[sel], k)
            en, pn = eff_pur(data.nsigma[sel], y[sel], k)
            rows.append(
                {"p_lo": lo, "p_hi": hi, "n_true": int(np.sum(y[sel] == k)), "efficiency": e,
                 "purity": p, "efficiency_nsigma": en, "purity_nsigma": pn}
            )  # fmt: skip
        out[name] = rows
    return out


def binomial_err(p: float | None, n: int) -> float | None:
    """``sqrt(p(1-p)/n)`` (None without ``p`` or ``n``)."""
    return None if p is None or n <= 0 else float(np.sqrt(p * (1.0 - p) / n))


def matched_purity(
    score: np.ndarray, true: np.ndarray, ns_pick: np.ndarray
) -> tuple[int, int, int, int] | None:
    """At equal efficiency inside one bin: ``(m, n-sigma selected, network selected, network
    hits)``, with ``m`` the true tracks n-sigma keeps; the network keeps the ``m``
    highest-scored true tracks and every track scored at least as high. None when n-sigma
    keeps no true track."""
    m = int(np.sum(ns_pick & true))
    if m == 0:
        return None
    t = np.partition(score[true], -m)[-m]  # the m-th highest score of a true track
    chosen = score >= t
    return m, int(ns_pick.sum()), int(chosen.sum()), int(np.sum(chosen & true))


def _compare_bin(
    score: np.ndarray, true: np.ndarray, ns_pick: np.ndarray, row: dict, rng: np.random.Generator
) -> None:
    """Fill ``row`` (one bin, with ``n_true`` and the n-sigma numbers) with the comparison at
    equal efficiency, or ``compared: false`` and the ``reason``."""
    n_true = row["n_true"]
    match = matched_purity(score, true, ns_pick) if n_true else None
    if n_true < MIN_TRUE_COMPARED or match is None:
        row["compared"] = False
        row["reason"] = (
            f"fewer than {MIN_TRUE_COMPARED} true tracks"
            if n_true < MIN_TRUE_COMPARED
            else "n-sigma selects none of the true tracks"
        )
        return
    _m, _n_sel_ns, n_sel, n_hit = match
    pur = n_hit / n_sel
    diff = pur - row["purity_nsigma"]
    err = float(np.hypot(binomial_err(pur, n_sel), row["purity_nsigma_err"]))
    boot = []
    for _ in range(N_BOOTSTRAP):
        r = rng.integers(0, len(score), len(score))
        b = matched_purity(score[r], true[r], ns_pick[r])
        if b is not None:
            boot.append(b[3] / b[2] - b[0] / b[1])
    row.update(
        compared=True,
        efficiency_network=n_hit / n_true,
        n_selected=n_sel,
        purity=pur,
        purity_err=binomial_err(pur, n_sel),
        diff=diff,
        diff_err=err,
        diff_err_bootstrap=float(np.std(boot)) if len(boot) > 1 else None,
    )


def at_equal_efficiency(probs: np.ndarray, data: PIDDataset, seed: int = 0) -> dict:
    """Per species and p bin: the network's purity when its selection ``P(s) >= t`` (``probs``
    ``(n, 5)``) keeps as many true tracks as n-sigma does in that bin (a ROC comparison at
    equal efficiency; ties can only add tracks), against the n-sigma purity. Bins with fewer
    than :data:`MIN_TRUE_COMPARED` true tracks, or where n-sigma keeps none of them, are listed
    but not compared (``compared: false``, ``reason``). Errors: binomial per purity, their
    quadrature sum for the difference (``diff_err``) and a bootstrap of the difference over the
    bin's tracks (``diff_err_bootstrap``: resampling moves the n-sigma efficiency, hence the
    network's threshold, too)."""
    y = data.labels
    rng = np.random.default_rng(seed)
    out: dict = {}
    for k, name in enumerate(SPECIES):
        rows = []
        for lo, hi in itertools.pairwise(P_BINS):
            idx = np.flatnonzero((data.p >= lo) & (data.p < hi))
            true, score, ns_pick = y[idx] == k, probs[idx, k], data.nsigma[idx] == k
            en, pn = eff_pur(data.nsigma[idx], y[idx], k)
            row: dict = {"p_lo": lo, "p_hi": hi, "n_true": int(true.sum())}
            row.update(
                efficiency=en,
                n_selected_nsigma=int(ns_pick.sum()),
                purity_nsigma=pn,
                purity_nsigma_err=binomial_err(pn, int(ns_pick.sum())),
                purity=None,
            )
            _compare_bin(score, true, ns_pick, row, rng)
            rows.append(row)
        compared = [r for r in rows if r["compared"]]
        out[name] = {
            "bins": rows,
            "n_bins_compared": len(compared),
            "n_bins_not_compared": len(rows) - len(compared),
            "n_bins_network_as_pure": sum(int(r["diff"] >= 0) for r in compared),
            "n_bins_within_stat_error": sum(int(r["diff"] >= -r["diff_err"]) for r in compared),
            "n_bins_within_bootstrap_error": sum(
                int(r["diff_err_bootstrap"] is not None and r["diff"] >= -r["diff_err_bootstrap"])
                for r in compared
            ),
        }
    return out


__all__ = [
    "MIN_TRUE_COMPARED",
    "N_BOOTSTRAP",
    "P_BINS",
    "SPECIES",
    "at_equal_efficiency",
    "binomial_err",
    "eff_pur",
    "matched_purity",
    "per_species_vs_p",
]
