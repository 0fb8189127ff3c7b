"""``alice-dyn evaluate track-net``: the track network against the classical chain.

Layer: tracknet. On a held-out simulation file it runs the classical chain in memory
(:func:`alice_dyn.tracknet.dataset.classical_chain`: cluster transform, ``find_tracks``, MC
labels) timeframe by timeframe, then every exit of every variant of the model directory on
every track. Dynamic settings (confidence thresholds) are read off these exit outputs with the
reference exit selection (:func:`alice_dyn.nn.inference.select_exits`, identical to the
compacted ``run_dynamic`` the stage runs), each track costing the FLOPs of its exit. JSON keys
(fractions, not percent; ``docs/tracknet.md``):

* ``n_timeframes``, ``n_tracks``, ``n_main``, ``main_class_counts`` (good, fake, clone);
* ``classical``: ``cuts`` (:func:`~alice_dyn.tracknet.metrics.classical_best_cut` per
  efficiency ``"99"``/``"98"``: ``fake_rejection``, ``clone_rejection`` and the cuts),
  ``q2pt_resolution`` (``sigma_core``, ``vs_pt``) and ``pulls`` (with the fit's covariance);
* ``variants``: per variant ``full_flops``, ``exit_flops``, ``params`` and ``points``: one per
  setting (``"full"``, ``"budget_25|50|75"`` = the calibrated thresholds of ``config.json``,
  ``"threshold_<q>"``) with ``threshold``, ``flops_mean``, ``flops_fraction`` (of the
  variant's full network), ``exit_fractions``, ``reject_fake`` (score P(fake)) and
  ``reject_bad`` (score 1 - P(good)) at 99% / 98% good efficiency (``fake_rejection``,
  ``clone_rejection``), ``q2pt_resolution`` (refined; ``sigma_core``, ``vs_pt``) and
  ``pulls`` of the predicted uncertainties;
  ``"uncertainty_<s>"`` points exit on the predicted sigma of q/pT instead (the first exit
  whose sigma, in units of the classical fit's sigma, is <= ``s``);
* ``exit_by_category``: for the primary variant at ``budget_50`` and at ``uncertainty_1``: per
  category of track (good main tracks per true-pT bin, fakes, clones, looper legs, and main
  tracks per timeframe-occupancy tercile) ``n``, ``flops_fraction``, ``mean_exit`` and
  ``first_exit_fraction``;
* ``at_equal_flops``: for budgets of 30/50/70/90/100% of ``reference_flops`` (the larger full
  network): per variant the point with the most FLOPs within the budget and its headline
  numbers;
* ``primary``: the variant the stage runs and the training's reason.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from alice_dyn.nn import ConfidencePolicy, UncertaintyPolicy
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.tracknet import metrics as M
from alice_dyn.tracknet.dataset import CLONE, FAKE, GOOD, TrackDataset, dataset_from_timeframe
from alice_dyn.tracknet.features import TARGETS
from alice_dyn.tracknet.network import (
    DEFAULT_MODEL_DIR,
    all_exit_outputs,
    load_track_net,
    outputs_to_physics,
)

LEVELS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 0.9999)
#: sigma(q/pT) thresholds of the uncertainty exit, in units of the classical fit's sigma
SIGMA_LEVELS = (0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0)
EQUAL_FLOPS = (0.3, 0.5, 0.7, 0.9, 1.0)


def _point(name, q, model, outs, table, full, ds: TrackDataset, policy=None) -> dict:
    from alice_dyn.tracknet.train import select

    if policy is None and q is not None:
        policy = ConfidencePolicy(q)
    out, idx = select(model, outs, policy)
    probs, refined, sigma = outputs_to_physics(
        model.objective, out, ds.inputs.reco, ds.inputs.scale
    )
    good = ds.main & (ds.labels == GOOD)
    fl = table[idx]
    return {
        "setting": name,
        "threshold": q,
        "flops_mean": float(fl.mean()) if len(fl) else None,
        "flops_fraction": float(fl.mean() / full) if len(fl) else None,
        "exit_fractions": (np.bincount(idx, minlength=len(table)) / max(len(idx), 1)).tolist(),
        "reject_fake": M.rejection_at_efficiency(probs[:, FAKE], ds.labels, ds.main),
        "reject_bad": M.rejection_at_efficiency(1.0 - probs[:, GOOD], ds.labels, ds.main),
        "q2pt_resolution": M.resolution(refined[:, 0], ds.truth[:, 0], ds.pt_true, good),
        "pulls": M.pulls(refined, sigma, ds.truth, good),
        "_exit_index": idx,  # removed before the JSON (exit_by_category)
    }


def _exit_stats(idx: np.ndarray, table: np.ndarray, full: float, sel: np.ndarray) -> dict:
    n = int(sel.sum())
    if not n:
        return {"n": 0, "flops_fraction": None, "mean_exit": None, "first_exit_fraction": None}
    i = idx[sel]
    return {
        "n": n,
        "flops_fraction": float(table[i].mean() / full),
        "mean_exit": float(i.mean()),
        "first_exit_fraction": float((i == 0).mean()),
    }


def exit_by_category(
    idx: np.ndarray, table: np.ndarray, full: float, ds: TrackDataset, occupancy: np.ndarray
) -> dict:
    """Where tracks leave, per category (see the module docstring)."""
    main, lab = ds.main, ds.labels
    good = main & (lab == GOOD)
    out: dict = {}
    for lo, hi in itertools.pairwise(M.PT_EDGES):
        sel = good & (ds.pt_true >= lo) & (ds.pt_true < hi)
        out[f"good_pt_{lo:g}_{hi:g}"] = _exit_stats(idx, table, full, sel)
    out["fake"] = _exit_stats(idx, table, full, main & (lab == FAKE))
    out["clone"] = _exit_stats(idx, table, full, main & (lab == CLONE))
    out["looper_leg"] = _exit_stats(idx, table, full, ~main)
    edges = np.quantile(occupancy[main], [1 / 3, 2 / 3]) if main.any() else [0, 0]
    for k, name in enumerate(("low", "mid", "high")):
        lo = -np.inf if k == 0 else edges[k - 1]
        hi = np.inf if k == 2 else edges[k]
        sel = main & (occupancy > lo) & (occupancy <= hi)
        out[f"occupancy_{name}"] = _exit_stats(idx, table, full, sel)
        out[f"occupancy_{name}"]["tracks_per_tf"] = (
            [float(occupancy[sel].min()), float(occupancy[sel].max())] if sel.any() else None
        )
    return out


def _headline(p: dict) -> dict:
    return {
        "setting": p["setting"],
        "flops_mean": p["flops_mean"],
        "fake_rejection_99": p["reject_fake"]["99"]["fake_rejection"],
        "clone_rejection_99": p["reject_bad"]["99"]["clone_rejection"],
        "q2pt_resolution": p["q2pt_resolution"]["sigma_core"],
        "pull_q2pt_core": p["pulls"]["q2pt"]["core"],
    }


def evaluate_track_net(
    truth_path: str | Path, model_dir: str | Path | None = None, *, max_tf: int | None = None
) -> dict:
    """All numbers of the module docstring for the simulation file ``truth_path``."""
    from alice_dyn.io import BadInputError
    from alice_dyn.tracknet.train import variant_dirs

    model_dir = Path(model_dir or DEFAULT_MODEL_DIR)
    dirs = variant_dirs(model_dir)
    if not dirs:
        raise BadInputError(model_dir, None, "no track-network model (config.json)")
    nets = {v: load_track_net(p) for v, p in dirs.items()}
    ds, occupancy, outs = _run_on_file(truth_path, nets, max_tf)
    main = ds.main
    res: dict = {
        "model": str(model_dir),
        "truth": str(truth_path),
        "n_timeframes": len(occupancy),
        "n_tracks": len(ds),
        "n_main": int(main.sum()),
        "main_class_counts": np.bincount(ds.labels[main], minlength=3).tolist(),
    }
    track = ds.inputs.track
    chi2_ndf, ncl = np.expm1(track[:, 4].astype(np.float64)), track[:, 5] * 152.0
    good = main & (ds.labels == GOOD)
    res["classical"] = {
        "cuts": M.classical_best_cut(chi2_ndf, ncl, ds.labels, main),
        "q2pt_resolution": M.resolution(ds.inputs.reco[:, 0], ds.truth[:, 0], ds.pt_true, good),
        "pulls": M.pulls(ds.inputs.reco, ds.inputs.scale, ds.truth, good),
    }
    primary = next(iter(dirs))
    res["variants"] = {}
    for v, (model, scaler, cfg) in nets.items():
        points, table, full = _variant_points(model, scaler, cfg, torch.cat(outs[v], dim=1), ds)
        if v == primary:
            occ = np.concatenate(occupancy)
            res["exit_by_category"] = {
                p["setting"]: exit_by_category(p["_exit_index"], table, full, ds, occ)
                for p in points
                if p["setting"] in ("budget_50", "uncertainty_1")
            }
        for p in points:
            del p["_exit_index"]
        res["variants"][v] = {
            "full_flops": full,
            "exit_flops": table.tolist(),
            "params": sum(p.numel() for p in model.parameters()),
            "points": points,
        }
    res["reference_flops"], res["at_equal_flops"] = _at_equal_flops(res["variants"])
    res["primary"] = {"variant": primary, "choice": nets[primary][2].get("primary_choice")}
    res["targets"] = list(TARGETS)
    return res


def _run_on_file(truth_path, nets: dict, max_tf: int | None):
    """The classical chain and every variant's exits on each timeframe of ``truth_path``:
    ``(dataset, per timeframe the occupancy (n_tracks,) of its tracks, {variant: [exit outputs
    (n_exits, n_tracks, ...) per timeframe]})``."""
    from alice_dyn.io import open_timeframes

    parts: list[TrackDataset] = []
    occupancy: list[np.ndarray] = []  # per track: tracks in its timeframe
    outs: dict[str, list[torch.Tensor]] = {v: [] for v in nets}
    with open_timeframes(truth_path) as reader:
        for i, tf in enumerate(reader):
            if max_tf is not None and i >= max_tf:
                break
            ds = dataset_from_timeframe(tf)
            parts.append(ds)
            occupancy.append(np.full(len(ds), len(ds), np.float64))
            for v, (model, scaler, _) in nets.items():
                outs[v].append(all_exit_outputs(model, scaler.tensors(ds.inputs)))
    return TrackDataset.concatenate(parts), occupancy, outs


def _variant_points(model, scaler, cfg: dict, o: torch.Tensor, ds: TrackDataset):
    """The operating points of one variant (full depth, calibrated budgets, confidence and
    uncertainty thresholds): ``(points, FLOPs per exit, full FLOPs)``."""
    x1 = scaler.tensors(ds.inputs.take(np.arange(min(1, len(ds)))))
    rep = exit_flops_for(model, x1)
    table = np.asarray(rep.exit_flops)
    full = rep.full_flops
    points = [_point("full", None, model, o, table, full, ds)]
    for key, b in cfg.get("thresholds", {}).items():
        pt = _point(f"budget_{key}", b["thresholds"], model, o, table, full, ds)
        pt["requested_fraction"] = b["calibration"]["target_fraction"]
        points.append(pt)
    points += [_point(f"threshold_{q:g}", q, model, o, table, full, ds) for q in LEVELS]
    points += [
        _point(f"uncertainty_{q:g}", q, model, o, table, full, ds, UncertaintyPolicy(q))
        for q in SIGMA_LEVELS
    ]
    return points, table, full


def _at_equal_flops(variants: dict) -> tuple[float, list[dict]]:
    """The reference (largest full) FLOPs and, per :data:`EQUAL_FLOPS` fraction of it, each
    variant's best point within that budget."""
    ref = max(r["full_flops"] for r in variants.values())
    eq = []
    for f in EQUAL_FLOPS:
        row: dict = {"budget_fraction": f, "budget_flops": f * ref}
        for v, r in variants.items():
            ok = [p for p in r["points"] if p["flops_mean"] <= f * ref * (1 + 1e-9)]
            row[v] = _headline(max(ok, key=lambda p: p["flops_mean"])) if ok else None
        eq.append(row)
    return ref, eq


def _f(x, pct: bool = True, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.{digits}f}%" if pct else f"{x:.3g}"


def format_track_net(r: dict) -> str:
    """Terminal summary of :func:`evaluate_track_net`."""
    cc = r["main_class_counts"]
    cl = r["classical"]
    cut = cl["cuts"]
    lines = [
        f"track network on {r['n_timeframes']} timeframes, {r['n_tracks']} tracks, "
        f"{r['n_main']} main (good {cc[0]}, fake {cc[1]}, clone {cc[2]})   [{r['model']}]",
        f"  default variant: {r['primary']['variant']}",
        "  rejection at 99% / 98% good efficiency            fakes            clones",
        f"    classical best chi2/ndf + n-cluster cut   "
        f"{_f(cut['99']['fake_rejection']):>8s} / {_f(cut['98']['fake_rejection']):<8s}"
        f"{_f(cut['99']['clone_rejection']):>8s} / {_f(cut['98']['clone_rejection'])}",
    ]
    for v, vr in r["variants"].items():
        full = vr["points"][0]
        lines.append(
            f"    network {v:<12s} full depth P(fake)/P(bad) "
            f"{_f(full['reject_fake']['99']['fake_rejection']):>8s} / "
            f"{_f(full['reject_fake']['98']['fake_rejection']):<8s}"
            f"{_f(full['reject_bad']['99']['clone_rejection']):>8s} / "
            f"{_f(full['reject_bad']['98']['clone_rejection'])}"
        )
    lines.append(
        f"  q/pT resolution (core, good tracks): classical "
        f"{_f(cl['q2pt_resolution']['sigma_core'])}; classical q/pT pull core "
        f"{_f(cl['pulls']['q2pt']['core'], pct=False)}"
    )
    lines.append(
        "  variant       setting          FLOPs/track  frac   fake rej99  clone rej99  "
        "q/pT res  pull(q/pT)"
    )
    for v, vr in r["variants"].items():
        for p in vr["points"]:
            if p["setting"].startswith(("threshold_", "uncertainty_")) and p["setting"] not in (
                "threshold_0.9", "threshold_0.99", "threshold_0.999", "uncertainty_0.7",
                "uncertainty_1", "uncertainty_1.5",
            ):  # fmt: skip
                continue
            lines.append(
                f"  {v:<13s} {p['setting']:<16s} {p['flops_mean']:>11.0f}  "
                f"{p['flops_fraction']:.2f}   {_f(p['reject_fake']['99']['fake_rejection']):>9s}"
                f"   {_f(p['reject_bad']['99']['clone_rejection']):>9s}   "
                f"{_f(p['q2pt_resolution']['sigma_core']):>7s}   "
                f"{_f(p['pulls']['q2pt']['core'], pct=False)}"
            )
    for setting, cats in r.get("exit_by_category", {}).items():
        lines.append(
            f"  where tracks leave ({r['primary']['variant']}, {setting}): category  n  "
            "FLOPs fraction  mean exit  first-exit fraction"
        )
        for name, c in cats.items():
            if c["n"]:
                lines.append(
                    f"    {name:<22s} {c['n']:>7d}  {c['flops_fraction']:.2f}  "
                    f"{c['mean_exit']:.2f}  {c['first_exit_fraction']:.2f}"
                )
    lines.append("  at equal FLOPs (budget = fraction of the larger full network):")
    for row in r["at_equal_flops"]:
        parts = []
        for v in r["variants"]:
            h = row[v]
            parts.append(
                f"{v} " + ("unreachable" if h is None else
                           f"{h['setting']} fake {_f(h['fake_rejection_99'])} clone "
                           f"{_f(h['clone_rejection_99'])} res {_f(h['q2pt_resolution'])}")
            )  # fmt: skip
        lines.append(f"    {row['budget_fraction']:.1f}: " + "; ".join(parts))
    return "\n".join(lines)
