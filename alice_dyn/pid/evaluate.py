"""``alice-dyn evaluate pid-net``: the dynamic PID network against its baselines.

Layer: PID. On held-out reconstructed tracks (an AO2D-like file and its simulation) it reports
(JSON keys, fractions not percent):

* ``accuracy_full``, ``macro_f1_full``: the network without exits (ZTW's backbone, trained
  alone before any exit head exists); ``accuracy_primary_full``: the dynamic network the
  ``pid-net`` stage runs (``primary_method``, SDN: joint training) at full depth;
* ``tof_mismatch_posterior``: the TOF-mismatch hypothesis every network evaluation here
  includes (:mod:`alice_dyn.pid.mismatch`; from the model's ``config.json``): ``density``,
  ``gate_nsigma``, ``n_gated`` / ``n_tof`` (tracks with the without-TOF pass / with TOF), and
  the primary network's full-depth ``accuracy`` / ``accuracy_without_term`` over all tracks
  and ``accuracy_gated`` / ``accuracy_gated_without_term`` over the gated ones;
* ``curve``: list of ``{"method": "sdn"|"ztw", "threshold", "flops_fraction", "accuracy",
  "macro_f1"}`` over confidence thresholds (FLOPs as a fraction of the full network's);
* ``at_flops``: accuracy read off the primary network's curve at 25/50/75/100% of the FLOPs,
  and ``accuracy_at_35pct_flops`` with ``delta_pp_at_35pct_flops`` (vs ``accuracy_full``,
  percentage points);
* ``budgets``: the thresholds calibrated on the validation split for 25/50/75% — the
  requested fraction, the fraction reached on these held-out tracks, its relative error and
  the accuracy;
* ``per_subset``: detector subset -> ``{"n", "accuracy", "accuracy_dynamic_50",
  "accuracy_subset_mlp"}`` (the primary network at full depth and at the 50% budget);
* ``nsigma_accuracy``, ``subset_mlp_accuracy``, ``gbdt_accuracy`` (null without LightGBM);
* ``per_species_vs_p``: species -> list of ``{"p_lo", "p_hi", "n_true", "efficiency",
  "purity", "efficiency_nsigma", "purity_nsigma"}`` (primary network, argmax decision, vs
  n-sigma);
* ``per_species_at_nsigma_efficiency``: species -> ``{"bins": [...], "n_bins_compared",
  "n_bins_not_compared", "n_bins_network_as_pure", "n_bins_within_stat_error",
  "n_bins_within_bootstrap_error"}``: the network's purity when it keeps as many true tracks
  of the bin as n-sigma does (bins with at least :data:`MIN_TRUE_COMPARED` true tracks of
  which n-sigma keeps at least one; the others are listed with ``compared: false`` and a
  ``reason``), how many bins it is at least as pure, and how many it is at least as pure
  within one standard deviation of the difference (binomial errors of both purities in
  quadrature; and a bootstrap of the difference over the bin's tracks);
* ``incremental`` (when the model directory has one): for the tracks with TOF or TRD,
  ``{"n_tracks", "accuracy_first_pass"`` (TPC only), ``"accuracy_updated"`` (cached first pass
  + update), ``"accuracy_full_recompute"`` (the network with every detector, full depth),
  ``"accuracy_updated_dynamic_50"`` (first pass at the 50% budget), ``"update_flops"``,
  ``"full_pass_flops"``, ``"flops_ratio"``, ``"wall_ratio"`` (update vs full recompute of those
  tracks, median of repeated batched runs, one thread); with the network's TOF-mismatch
  hypothesis also ``"accuracy_updated_mismatch"`` (the update combined with a second update
  without TOF for the gated tracks), ``"accuracy_full_recompute_mismatch"`` (the full network
  with the hypothesis) and ``"fraction_second_update"`` (share of the tracks that took the
  second update)}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alice_dyn.nn import ConfidencePolicy
from alice_dyn.pid.dataset import SUBSETS, PIDDataset
from alice_dyn.pid.evaluate_incremental import evaluate_incremental
from alice_dyn.pid.mismatch import TOFMismatchPosterior, gated
from alice_dyn.pid.network import DEFAULT_MODEL_DIR, PRIMARY, load_pid_net, predict
from alice_dyn.pid.train import load_gbdt, load_subset_mlps
from alice_dyn.pid.vs_nsigma import (
    at_equal_efficiency,
    per_species_vs_p,
)

#: confidence thresholds of the accuracy-vs-FLOPs curve
LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999)


def macro_f1(pred: np.ndarray, true: np.ndarray, n_classes: int = 5) -> float:
    """Mean over classes present in ``true`` of the F1 score."""
    f1 = []
    for c in range(n_classes):
        tp = np.sum((pred == c) & (true == c))
        fp = np.sum((pred == c) & (true != c))
        fn = np.sum((pred != c) & (true == c))
        if tp + fn == 0:
            continue
        f1.append(2 * tp / max(2 * tp + fp + fn, 1))
    return float(np.mean(f1)) if f1 else float("nan")


def _mismatch_summary(
    model, scaler, data: PIDDataset, post: TOFMismatchPosterior | None, pred: np.ndarray
) -> dict:
    """The primary network at full depth with (its decisions ``pred``) and without the
    TOF-mismatch hypothesis."""
    if post is None:
        return {"density": None}
    rows = gated(data, post.gate_nsigma)
    plain = predict(model, scaler, data)[0].argmax(1) == data.labels
    mixed = pred == data.labels
    return {
        **post.to_json(),
        "n_gated": int(rows.sum()),
        "n_tof": int(data.masks["tof"].sum()),
        "accuracy_without_term": float(plain.mean()),
        "accuracy": float(mixed.mean()),
        "accuracy_gated_without_term": float(plain[rows].mean()) if rows.any() else None,
        "accuracy_gated": float(mixed[rows].mean()) if rows.any() else None,
    }


def _curve(nets: dict, post: dict, data: PIDDataset, full_flops: float, full: dict) -> list:
    """``curve``: the network without exits (``full``: its accuracy and macro-F1), then each
    method of ``nets`` at every confidence threshold of :data:`LEVELS`."""
    y = data.labels
    curve = [{"method": "full", "threshold": None, "flops_fraction": 1.0, **full}]
    for method, (net, sc, _) in nets.items():
        for q in LEVELS:
            p, _, fl = predict(net, sc, data, ConfidencePolicy(q), post[method])
            pr = p.argmax(1)
            curve.append(
                {
                    "method": method,
                    "threshold": q,
                    "flops_fraction": float(fl.mean() / full_flops),
                    "accuracy": float(np.mean(pr == y)),
                    "macro_f1": macro_f1(pr, y),
                }
            )
    return curve


def _at_flops(curve: list[dict], accuracy_primary_full: float, accuracy_full: float) -> dict:
    """``at_flops``, ``accuracy_at_35pct_flops`` and ``delta_pp_at_35pct_flops``: the best
    accuracy of the primary method within a FLOPs fraction."""
    prim_pts = sorted(
        (c for c in curve if c["method"] == PRIMARY), key=lambda c: c["flops_fraction"]
    )

    def best_at(f: float) -> float | None:
        ok = [c["accuracy"] for c in prim_pts if c["flops_fraction"] <= f + 1e-9]
        return max(ok) if ok else None

    at_flops = {f"{int(f * 100)}": best_at(f) for f in (0.25, 0.5, 0.75)}
    at_flops["100"] = accuracy_primary_full
    a35 = best_at(0.35)
    return {
        "at_flops": at_flops,
        "accuracy_at_35pct_flops": a35,
        "delta_pp_at_35pct_flops": None if a35 is None else 100 * (a35 - accuracy_full),
    }


def _budgets(prim, scaler, cfg: dict, post, data: PIDDataset, full_flops: float) -> dict:
    """``budgets``: the calibrated thresholds of ``cfg`` on these held-out tracks."""
    budgets = {}
    for key, pol in cfg.get("thresholds", {}).items():
        p, _, fl = predict(prim, scaler, data, ConfidencePolicy(pol["thresholds"]), post)
        frac = float(fl.mean() / full_flops)
        target = pol["calibration"]["target_fraction"]
        budgets[key] = {
            "requested_fraction": target,
            "held_out_fraction": frac,
            "relative_error": frac / target - 1.0,
            "accuracy": float(np.mean(p.argmax(1) == data.labels)),
        }
    return budgets


def _per_subset(data: PIDDataset, preds: dict[str, np.ndarray]) -> dict:
    """``per_subset``: per detector subset ``n`` and the accuracy of each decision of
    ``preds`` (key -> ``(n,)`` decisions; None for an empty subset)."""
    y = data.labels
    names = data.subset_name()
    out = {}
    for s in SUBSETS:
        sel = names == s
        out[s] = {"n": int(np.sum(sel))}
        for key, pred in preds.items():
            out[s][key] = float(np.mean(pred[sel] == y[sel])) if np.any(sel) else None
    return out


def evaluate_pid_net(data: PIDDataset, model_dir: str | Path | None = None) -> dict:
    """All numbers of the module docstring for ``data`` (held-out tracks) and the networks of
    ``model_dir`` (default: the shipped model)."""
    model_dir = Path(model_dir or DEFAULT_MODEL_DIR)
    y = data.labels
    result: dict = {"model": str(model_dir), "n_tracks": len(data)}
    nets = {m: load_pid_net(model_dir / m) for m in ("ztw", "sdn")}
    post = {m: TOFMismatchPosterior.from_config(cfg) for m, (_, _, cfg) in nets.items()}
    # the network without exits: ZTW's backbone, trained alone before any exit head exists
    ztw, ztw_scaler, _ = nets["ztw"]
    probs0, _, flops_full = predict(ztw, ztw_scaler, data, mismatch=post["ztw"])
    full_flops = float(flops_full.mean())
    pred0 = probs0.argmax(1)
    result["accuracy_full"] = float(np.mean(pred0 == y))
    result["macro_f1_full"] = macro_f1(pred0, y)
    # the dynamic network the stage runs (PRIMARY), at full depth
    prim, scaler, cfg = nets[PRIMARY]
    result["primary_method"] = PRIMARY
    probs, _, _ = predict(prim, scaler, data, mismatch=post[PRIMARY])
    pred_full = probs.argmax(1)
    result["accuracy_primary_full"] = float(np.mean(pred_full == y))
    result["tof_mismatch_posterior"] = _mismatch_summary(
        prim, scaler, data, post[PRIMARY], pred_full
    )
    full = {"accuracy": result["accuracy_full"], "macro_f1": result["macro_f1_full"]}
    result["curve"] = _curve(nets, post, data, full_flops, full)
    result.update(_at_flops(result["curve"], result["accuracy_primary_full"], full["accuracy"]))
    result["budgets"] = _budgets(prim, scaler, cfg, post[PRIMARY], data, full_flops)
    # baselines
    base = model_dir / "baselines"
    pred_mlp = load_subset_mlps(base).predict_proba(data).argmax(1)
    gbdt = load_gbdt(base)
    result["nsigma_accuracy"] = float(np.mean(data.nsigma == y))
    result["subset_mlp_accuracy"] = float(np.mean(pred_mlp == y))
    result["gbdt_accuracy"] = (
        None if gbdt is None else float(np.mean(gbdt.predict_proba(data).argmax(1) == y))
    )
    pol50 = cfg.get("thresholds", {}).get("50")
    policy50 = ConfidencePolicy(pol50["thresholds"]) if pol50 else None
    pred_dyn = (
        predict(prim, scaler, data, policy50, post[PRIMARY])[0].argmax(1) if pol50 else pred_full
    )
    result["per_subset"] = _per_subset(
        data,
        {"accuracy": pred_full, "accuracy_dynamic_50": pred_dyn, "accuracy_subset_mlp": pred_mlp},
    )
    result["per_species_vs_p"] = per_species_vs_p(pred_full, data)
    result["per_species_at_nsigma_efficiency"] = at_equal_efficiency(probs, data)
    if (model_dir / "incremental").is_dir():
        result["incremental"] = evaluate_incremental(
            prim, scaler, model_dir, data, policy50, post[PRIMARY]
        )
    return result


__all__ = ["LEVELS", "evaluate_pid_net", "macro_f1"]
