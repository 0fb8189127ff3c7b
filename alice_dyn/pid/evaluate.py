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

import itertools
from pathlib import Path

import numpy as np

from alice_dyn.nn import ConfidencePolicy
from alice_dyn.pid.dataset import SUBSETS, PIDDataset
from alice_dyn.pid.mismatch import TOFMismatchPosterior, gated
from alice_dyn.pid.network import DEFAULT_MODEL_DIR, PRIMARY, load_pid_net, predict
from alice_dyn.pid.train import load_gbdt, load_subset_mlps

SPECIES = ("e", "mu", "pi", "K", "p")
P_BINS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)
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


def _eff_pur(pred: np.ndarray, true: np.ndarray, s: int) -> tuple[float | None, float | None]:
    n_true, n_pred = np.sum(true == s), np.sum(pred == s)
    hit = np.sum((pred == s) & (true == s))
    return (float(hit / n_true) if n_true else None, float(hit / n_pred) if n_pred else None)


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


def evaluate_pid_net(data: PIDDataset, model_dir: str | Path | None = None) -> dict:
    """All numbers of the module docstring for ``data`` (held-out tracks)."""
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
    curve = [
        {
            "method": "full",
            "threshold": None,
            "flops_fraction": 1.0,
            "accuracy": result["accuracy_full"],
            "macro_f1": result["macro_f1_full"],
        }
    ]
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
    result["curve"] = curve
    prim_pts = sorted(
        (c for c in curve if c["method"] == PRIMARY), key=lambda c: c["flops_fraction"]
    )

    def best_at(f: float) -> float | None:
        ok = [c["accuracy"] for c in prim_pts if c["flops_fraction"] <= f + 1e-9]
        return max(ok) if ok else None

    result["at_flops"] = {f"{int(f * 100)}": best_at(f) for f in (0.25, 0.5, 0.75)}
    result["at_flops"]["100"] = result["accuracy_primary_full"]
    a35 = best_at(0.35)
    result["accuracy_at_35pct_flops"] = a35
    result["delta_pp_at_35pct_flops"] = (
        None if a35 is None else 100 * (a35 - result["accuracy_full"])
    )
    budgets = {}
    for key, pol in cfg.get("thresholds", {}).items():
        p, _, fl = predict(prim, scaler, data, ConfidencePolicy(pol["thresholds"]), post[PRIMARY])
        frac = float(fl.mean() / full_flops)
        target = pol["calibration"]["target_fraction"]
        budgets[key] = {
            "requested_fraction": target,
            "held_out_fraction": frac,
            "relative_error": frac / target - 1.0,
            "accuracy": float(np.mean(p.argmax(1) == y)),
        }
    result["budgets"] = budgets
    # baselines
    base = model_dir / "baselines"
    mlps = load_subset_mlps(base)
    pred_mlp = mlps.predict_proba(data).argmax(1)
    gbdt = load_gbdt(base)
    result["nsigma_accuracy"] = float(np.mean(data.nsigma == y))
    result["subset_mlp_accuracy"] = float(np.mean(pred_mlp == y))
    result["gbdt_accuracy"] = (
        None if gbdt is None else float(np.mean(gbdt.predict_proba(data).argmax(1) == y))
    )
    pol50 = cfg.get("thresholds", {}).get("50")
    if pol50:
        policy50 = ConfidencePolicy(pol50["thresholds"])
        pred_dyn = predict(prim, scaler, data, policy50, post[PRIMARY])[0].argmax(1)
    else:
        pred_dyn = pred_full
    names = data.subset_name()
    result["per_subset"] = {
        s: {
            "n": int(np.sum(names == s)),
            "accuracy": float(np.mean(pred_full[names == s] == y[names == s]))
            if np.any(names == s)
            else None,
            "accuracy_dynamic_50": float(np.mean(pred_dyn[names == s] == y[names == s]))
            if np.any(names == s)
            else None,
            "accuracy_subset_mlp": float(np.mean(pred_mlp[names == s] == y[names == s]))
            if np.any(names == s)
            else None,
        }
        for s in SUBSETS
    }
    per_species = {}
    for k, name in enumerate(SPECIES):
        rows = []
        for lo, hi in itertools.pairwise(P_BINS):
            sel = (data.p >= lo) & (data.p < hi)
            e, p = _eff_pur(pred_full[sel], y[sel], k)
            en, pn = _eff_pur(data.nsigma[sel], y[sel], k)
            rows.append(
                {
                    "p_lo": lo,
                    "p_hi": hi,
                    "n_true": int(np.sum(y[sel] == k)),
                    "efficiency": e,
                    "purity": p,
                    "efficiency_nsigma": en,
                    "purity_nsigma": pn,
                }
            )
        per_species[name] = rows
    result["per_species_vs_p"] = per_species
    result["per_species_at_nsigma_efficiency"] = _at_equal_efficiency(probs, data)
    if (model_dir / "incremental").is_dir():
        pol = ConfidencePolicy(pol50["thresholds"]) if pol50 else None
        result["incremental"] = evaluate_incremental(
            prim, scaler, model_dir, data, pol, post[PRIMARY]
        )
    return result


def evaluate_incremental(
    model, scaler, model_dir: Path, data: PIDDataset, policy=None, posterior=None
) -> dict:
    """The ``incremental`` keys of the module docstring (``posterior``: the network's
    TOF-mismatch hypothesis, for the ``*_mismatch`` keys)."""
    import torch

    from alice_dyn.nn import measure_wall_time
    from alice_dyn.pid import incremental as inc

    upd = inc.load_incremental(model_dir / "incremental")
    late = data.masks["tof"] | data.masks["trd"]
    sub = data.take(np.flatnonzero(late))
    y = sub.labels
    x = scaler.tensors(sub)
    first = inc.first_pass(model, x)
    with torch.no_grad():
        full = model(x, mode="one", exit=model.num_exits - 1)
    out = {
        "n_tracks": len(sub),
        "accuracy_first_pass": float(np.mean(first.outputs.argmax(1).numpy() == y)),
        "accuracy_updated": float(np.mean(inc.update(upd, first, x).argmax(1).numpy() == y)),
        "accuracy_full_recompute": float(np.mean(full.argmax(1).numpy() == y)),
    }
    if posterior is not None:
        p_upd, second = inc.update_with_mismatch(upd, first, x, sub, posterior)
        p_full = predict(model, scaler, sub, mismatch=posterior)[0]
        out.update(
            accuracy_updated_mismatch=float(np.mean(p_upd.argmax(1) == y)),
            accuracy_full_recompute_mismatch=float(np.mean(p_full.argmax(1) == y)),
            fraction_second_update=float(np.mean(second)),
        )
    if policy is not None:
        dyn = inc.first_pass(model, x, policy)
        acc = np.mean(inc.update(upd, dyn, x).argmax(1).numpy() == y)
        out["accuracy_updated_dynamic_50"] = float(acc)
    cost = inc.update_cost(model, upd, x)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            t_upd = measure_wall_time(lambda: inc.update(upd, first, x), repeats=7)
            t_full = measure_wall_time(
                lambda: model(x, mode="one", exit=model.num_exits - 1), repeats=7
            )
    finally:
        torch.set_num_threads(n_threads)
    out.update(
        update_flops=cost["update_flops"],
        full_pass_flops=cost["full_pass_flops"],
        flops_ratio=cost["ratio"],
        wall_ratio=t_upd["median_s"] / t_full["median_s"],
    )
    return out


#: a (species, p) bin is compared only with at least this many true tracks of the species
MIN_TRUE_COMPARED = 30
#: resamples of the bootstrap error of the purity difference
N_BOOTSTRAP = 200


def _binomial_err(p: float | None, n: int) -> float | None:
    return None if p is None or n <= 0 else float(np.sqrt(p * (1.0 - p) / n))


def _matched_purity(
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


def _at_equal_efficiency(probs: np.ndarray, data: PIDDataset, seed: int = 0) -> dict:
    """Per species and p bin: the network's purity when its selection ``P(s) >= t`` keeps as
    many true tracks as n-sigma does in that bin (a ROC comparison at equal efficiency; ties
    can only add tracks), against the n-sigma purity. Bins with fewer than
    :data:`MIN_TRUE_COMPARED` true tracks, or where n-sigma keeps none of them, are listed but
    not compared (``compared: false``, ``reason``). Errors: binomial per purity, their
    quadrature sum for the difference (``diff_err``) and a bootstrap of the difference over the
    bin's tracks (``diff_err_bootstrap``: resampling moves the n-sigma efficiency, hence the
    network's threshold, too)."""
    y = data.labels
    rng = np.random.default_rng(seed)
    out: dict = {}
    for k, name in enumerate(SPECIES):
        rows = []
        n_bins = n_better = n_within = n_within_boot = 0
        for lo, hi in itertools.pairwise(P_BINS):
            idx = np.flatnonzero((data.p >= lo) & (data.p < hi))
            true, score, ns_pick = y[idx] == k, probs[idx, k], data.nsigma[idx] == k
            n_true = int(true.sum())
            row: dict = {"p_lo": lo, "p_hi": hi, "n_true": n_true}
            en, pn = _eff_pur(data.nsigma[idx], y[idx], k)
            row.update(
                efficiency=en,
                n_selected_nsigma=int(ns_pick.sum()),
                purity_nsigma=pn,
                purity_nsigma_err=_binomial_err(pn, int(ns_pick.sum())),
                purity=None,
            )
            match = _matched_purity(score, true, ns_pick) if n_true else None
            if n_true < MIN_TRUE_COMPARED or match is None:
                row["compared"] = False
                row["reason"] = (
                    f"fewer than {MIN_TRUE_COMPARED} true tracks"
                    if n_true < MIN_TRUE_COMPARED
                    else "n-sigma selects none of the true tracks"
                )
                rows.append(row)
                continue
            _m, _n_sel_ns, n_sel, n_hit = match
            pur = n_hit / n_sel
            diff = pur - pn
            err = float(np.hypot(_binomial_err(pur, n_sel), row["purity_nsigma_err"]))
            boot = []
            for _ in range(N_BOOTSTRAP):
                r = rng.integers(0, len(idx), len(idx))
                b = _matched_purity(score[r], true[r], ns_pick[r])
                if b is not None:
                    boot.append(b[3] / b[2] - b[0] / b[1])
            err_boot = float(np.std(boot)) if len(boot) > 1 else None
            n_bins += 1
            n_better += int(diff >= 0)
            n_within += int(diff >= -err)
            n_within_boot += int(err_boot is not None and diff >= -err_boot)
            row.update(
                compared=True,
                efficiency_network=n_hit / n_true,
                n_selected=n_sel,
                purity=pur,
                purity_err=_binomial_err(pur, n_sel),
                diff=diff,
                diff_err=err,
                diff_err_bootstrap=err_boot,
            )
            rows.append(row)
        out[name] = {
            "bins": rows,
            "n_bins_compared": n_bins,
            "n_bins_not_compared": len(rows) - n_bins,
            "n_bins_network_as_pure": n_better,
            "n_bins_within_stat_error": n_within,
            "n_bins_within_bootstrap_error": n_within_boot,
        }
    return out


def worse_bins(eq: dict) -> list[str]:
    """The compared bins where the network is less pure than n-sigma, one line each."""
    lines = []
    for name, v in eq.items():
        for b in v["bins"]:
            if b.get("compared") and b["diff"] < 0:
                lines.append(
                    f"{name} {b['p_lo']:g}-{b['p_hi']:g} GeV/c: n_true {b['n_true']}, "
                    f"efficiency {b['efficiency']:.3f}, purity {b['purity']:.4f} +- "
                    f"{b['purity_err']:.4f} vs n-sigma {b['purity_nsigma']:.4f} +- "
                    f"{b['purity_nsigma_err']:.4f} (diff {b['diff']:+.4f}, sigma "
                    f"{b['diff_err']:.4f} binomial, {b['diff_err_bootstrap']:.4f} bootstrap)"
                )
    return lines


def format_pid_net(r: dict) -> str:
    lines = [
        f"PID network on {r['n_tracks']} held-out tracks ({r['model']})",
        f"  accuracy, network without exits   {100 * r['accuracy_full']:.2f}%  "
        f"(macro-F1 {r['macro_f1_full']:.3f})",
        f"  dynamic network ({r['primary_method'].upper()}), full depth "
        f"{100 * r['accuracy_primary_full']:.2f}%",
        f"  accuracy at <= 35% of the FLOPs   {100 * (r['accuracy_at_35pct_flops'] or 0):.2f}%  "
        f"({r['delta_pp_at_35pct_flops']:+.2f} pp)",
        f"  n-sigma / subset MLPs / LightGBM  {100 * r['nsigma_accuracy']:.2f}% / "
        f"{100 * r['subset_mlp_accuracy']:.2f}% / "
        + (f"{100 * r['gbdt_accuracy']:.2f}%" if r["gbdt_accuracy"] is not None else "-"),
        f"  {r['primary_method'].upper()} accuracy at 25/50/75/100% FLOPs: "
        + " / ".join(f"{100 * v:.2f}%" if v is not None else "-" for v in r["at_flops"].values()),
        "  budgets (requested -> held-out FLOPs fraction, accuracy):",
    ]
    for b in r["budgets"].values():
        lines.append(
            f"    {b['requested_fraction']:.2f} -> {b['held_out_fraction']:.3f} "
            f"({100 * b['relative_error']:+.1f}%), {100 * b['accuracy']:.2f}%"
        )
    eq = r.get("per_species_at_nsigma_efficiency", {})
    if eq:
        lines.append("  p bins where the network is at least as pure as n-sigma at its efficiency:")
        lines.append(
            "    "
            + ", ".join(
                f"{s} {v['n_bins_network_as_pure']}/{v['n_bins_compared']} "
                f"({v.get('n_bins_within_stat_error', '-')}/"
                f"{v.get('n_bins_within_bootstrap_error', '-')} within 1 sigma binomial/"
                f"bootstrap, {v.get('n_bins_not_compared', '-')} not compared)"
                for s, v in eq.items()
            )
        )
        lines.extend("    less pure: " + w for w in worse_bins(eq))
    inc = r.get("incremental")
    if inc:
        lines.append(
            f"  TOF/TRD arriving later ({inc['n_tracks']} tracks): TPC-only "
            f"{100 * inc['accuracy_first_pass']:.2f}% -> updated from the cache "
            f"{100 * inc['accuracy_updated']:.2f}% (full recompute "
            f"{100 * inc['accuracy_full_recompute']:.2f}%) at {100 * inc['flops_ratio']:.0f}% "
            f"of the FLOPs, {100 * inc['wall_ratio']:.0f}% of the wall time"
        )
        if "accuracy_updated_mismatch" in inc:
            lines.append(
                f"    with the TOF-mismatch hypothesis: updated "
                f"{100 * inc['accuracy_updated_mismatch']:.2f}% (second update for "
                f"{100 * inc['fraction_second_update']:.1f}% of the tracks), full recompute "
                f"{100 * inc['accuracy_full_recompute_mismatch']:.2f}%"
            )
    lines.append("  per detector subset: n, network, dynamic(50%), subset MLP")
    for s, v in r["per_subset"].items():
        if v["n"]:
            lines.append(
                f"    {s:<12} {v['n']:>6}  {100 * v['accuracy']:.2f}%  "
                f"{100 * v['accuracy_dynamic_50']:.2f}%  {100 * v['accuracy_subset_mlp']:.2f}%"
            )
    return "\n".join(lines)


def make_pid_net_plots(r: dict, outdir: str | Path) -> list[Path]:
    """Accuracy vs FLOPs (SDN, ZTW, full, n-sigma) and efficiency/purity vs p (net vs n-sigma)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.ALICE)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(8, 6))
    for method, color in (("sdn", "tab:blue"), ("ztw", "tab:red")):
        pts = sorted(
            (c for c in r["curve"] if c["method"] == method), key=lambda c: c["flops_fraction"]
        )
        ax.plot(
            [c["flops_fraction"] for c in pts],
            [100 * c["accuracy"] for c in pts],
            "o-",
            color=color,
            label=f"{method.upper()} exits",
        )
    ax.axhline(100 * r["accuracy_full"], color="k", ls="--", label="network without exits")
    ax.axhline(100 * r["nsigma_accuracy"], color="gray", ls=":", label="n-sigma")
    ax.set_xlabel("average FLOPs / full network")
    ax.set_ylabel("accuracy (%)")
    ax.legend(loc="lower right")
    p = out / "pid_net_accuracy_vs_flops.png"
    fig.savefig(p, dpi=90, bbox_inches="tight")
    plt.close(fig)
    paths.append(p)
    fig, axes = plt.subplots(2, 5, figsize=(20, 7), sharex=True)
    for k, (name, rows) in enumerate(r["per_species_vs_p"].items()):
        centres = [0.5 * (b["p_lo"] + b["p_hi"]) for b in rows]
        for row_i, (key, label) in enumerate((("efficiency", "efficiency"), ("purity", "purity"))):
            a = axes[row_i, k]
            a.plot(
                centres,
                [b[key] if b[key] is not None else np.nan for b in rows],
                "o-",
                label="network",
            )
            a.plot(
                centres,
                [b[key + "_nsigma"] if b[key + "_nsigma"] is not None else np.nan for b in rows],
                "s--",
                label="n-sigma",
            )
            a.set_xscale("log")
            a.set_ylim(0, 1.05)
            a.set_title(f"{name} {label}", fontsize=12)
        axes[1, k].set_xlabel("p (GeV/c)")
    axes[0, 0].legend()
    p = out / "pid_net_efficiency_purity_vs_p.png"
    fig.savefig(p, dpi=70, bbox_inches="tight")
    plt.close(fig)
    paths.append(p)
    return paths
