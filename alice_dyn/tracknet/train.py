"""``alice-dyn train track``: both track-network variants from one simulated mix.

Layer: tracknet. Simulates the mix of :mod:`alice_dyn.tracknet.data_gen`, splits it by whole
timeframes into training / validation (early stopping, choice of the default variant) /
calibration (exit thresholds, reject threshold), trains the ``progressive`` and the ``depth``
variant jointly on all exits (SDN style, :func:`alice_dyn.nn.train_joint`) and writes::

    DIR/model.safetensors, DIR/config.json   the default variant (what the stage runs)
    DIR/<other variant>/...                   the other variant, same layout
    DIR/report.json                           data, timing, validation numbers, the choice

``config.json`` holds the feature scaling, the confidence thresholds calibrated for 25/50/75%
of the full network's FLOPs on the calibration split and the whole FLOPs-fraction -> threshold
curve (``level_curve``, for the run-time budgets), the reject thresholds (P(fake) cut keeping
99% / 98% of good calibration tracks, for the full network and per budget: ``by_budget``),
provenance and metrics. Class imbalance: the
common tracks (good, looper legs) of training timeframes are subsampled and the
cross-entropy is weighted per class by ``sqrt(n_good / n_class)`` over the training set.
The default variant: the one with the lower validation loss at the smallest average FLOPs
per track that both variants reach with confidence thresholds, the cheaper-reaching one when
the losses agree within 1% (:func:`choose_primary`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from alice_dyn.nn import (
    ConfidencePolicy,
    ThresholdCalibrator,
    dataset_hash,
    provenance,
    save_model,
    train_joint,
)
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.nn.inference import select_exits
from alice_dyn.tracknet import metrics as M
from alice_dyn.tracknet.dataset import CLASSES, FAKE, GOOD, TrackDataset
from alice_dyn.tracknet.features import TARGETS, FeatureScaler
from alice_dyn.tracknet.network import (
    VARIANTS,
    TrackNet,
    all_exit_outputs,
    build,
    outputs_to_physics,
)

BUDGET_FRACTIONS = (0.25, 0.5, 0.75)
DEFAULT_ARCH = {"d": 64, "dc": 16}


def class_weights(labels: np.ndarray) -> list[float]:
    """``sqrt(n_good / n_class)`` per class (1 for good; classes absent get 1)."""
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float64)
    return [
        float(math.sqrt(counts[GOOD] / c)) if c > 0 and counts[GOOD] > 0 else 1.0 for c in counts
    ]


def train_variant(
    variant: str,
    train: TrackDataset,
    val: TrackDataset,
    scaler: FeatureScaler,
    *,
    seed: int = 1,
    epochs: int = 20,
    regression_weight: float = 0.3,
    threads: int = 1,
    verbose: bool = True,
    **arch: int,
) -> tuple[TrackNet, dict]:
    """Train one variant on all exits jointly; returns the model and the history."""
    torch.manual_seed(seed)
    arch = {**DEFAULT_ARCH, **arch}
    model = build(
        variant,
        **arch,
        class_weights=class_weights(train.labels),
        regression_weight=regression_weight,
    )
    xtr, ytr = scaler.tensors(train.inputs), train.targets()
    xva, yva = scaler.tensors(val.inputs), val.targets()
    hist = train_joint(
        model, (xtr, ytr), val_data=(xva, yva), epochs=epochs, batch_size=512, lr=1e-3,
        seed=seed, patience=6, threads=threads, verbose=verbose, grad_clip=5.0,
    )  # fmt: skip
    model.eval()
    return model, hist


def exit_table(model: TrackNet, x: dict) -> np.ndarray:
    """FLOPs per track at each exit (from the layers)."""
    return np.asarray(exit_flops_for(model, x).exit_flops, np.float64)


def select(model: TrackNet, outs: torch.Tensor, policy) -> tuple[torch.Tensor, np.ndarray]:
    """Exit outputs and exit index per track under ``policy`` (None: last exit)."""
    if policy is None:
        return outs[-1], np.full(outs.shape[1], outs.shape[0] - 1)
    out, idx = select_exits(list(outs), policy, model.objective)
    return out, idx.numpy()


def reject_at(model: TrackNet, outs: torch.Tensor, policy, good: np.ndarray) -> dict:
    """P(fake) cut keeping 99% / 98% of the ``good`` tracks under ``policy``."""
    out, _ = select(model, outs, policy)
    p_fake = model.objective.probabilities(out).numpy()[:, FAKE]
    return {f"{round(e * 100)}": M.cut_at_efficiency(p_fake, good, e) for e in M.EFFICIENCIES}


def physics_metrics(model: TrackNet, out: torch.Tensor, ds: TrackDataset) -> dict:
    """Rejection at fixed efficiency, q/pT resolution and pulls of exit outputs ``out``."""
    probs, refined, sigma = outputs_to_physics(
        model.objective, out, ds.inputs.reco, ds.inputs.scale
    )
    good = ds.main & (ds.labels == GOOD)
    return {
        "reject_fake_score": M.rejection_at_efficiency(probs[:, FAKE], ds.labels, ds.main),
        "reject_bad_score": M.rejection_at_efficiency(1.0 - probs[:, GOOD], ds.labels, ds.main),
        "q2pt_resolution": M.resolution(refined[:, 0], ds.truth[:, 0], ds.pt_true, good)[
            "sigma_core"
        ],
        "pulls_core": {k: v["core"] for k, v in M.pulls(refined, sigma, ds.truth, good).items()},
    }


TIE = 0.01


def choose_primary(curves: dict[str, list[dict]]) -> dict:
    """The default variant: lower validation loss at the smallest average FLOPs both reach.

    ``curves[variant]``: points ``{"flops", "loss"}`` over confidence thresholds (validation).
    Ties (losses within :data:`TIE`) go to the variant whose cheapest setting needs fewer
    FLOPs (it offers more operating points).
    """
    floor = max(min(p["flops"] for p in pts) for pts in curves.values())

    def loss_at(pts: list[dict]) -> float:
        ok = [p for p in pts if p["flops"] <= floor * (1 + 1e-9)]
        return min(p["loss"] for p in ok)

    losses = {v: loss_at(pts) for v, pts in curves.items()}
    lowest = {v: min(p["flops"] for p in pts) for v, pts in curves.items()}
    best = min(losses, key=losses.get)
    tie = all(abs(x - losses[best]) <= TIE * abs(losses[best]) for x in losses.values())
    if tie:
        best = min(lowest, key=lowest.get)
    return {
        "rule": "lower validation loss at the smallest average FLOPs per track both variants "
        f"reach with confidence thresholds; within {TIE:.0%}: the variant that reaches fewer "
        "FLOPs",
        "flops": floor,
        "val_loss_at_flops": losses,
        "lowest_flops": lowest,
        "tie": tie,
        "primary": best,
    }


LEVELS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 2.0)


def validation_curve(model: TrackNet, outs: torch.Tensor, table: np.ndarray, y) -> list[dict]:
    """Validation loss and average FLOPs over confidence thresholds."""
    pts = []
    for q in LEVELS:
        out, idx = select(model, outs, ConfidencePolicy(q))
        pts.append(
            {"threshold": q, "flops": float(table[idx].mean()),
             "loss": float(model.objective.loss(out, y))}
        )  # fmt: skip
    return pts


def calibrate_budgets(
    model: TrackNet,
    cal: ThresholdCalibrator,
    xca,
    calib: TrackDataset,
    outs_val: torch.Tensor,
    table: np.ndarray,
    full: float,
    val: TrackDataset,
) -> tuple[dict, dict]:
    """The thresholds of each budget (:data:`BUDGET_FRACTIONS` of the full FLOPs, calibrated
    on ``calib``) with their validation FLOPs and physics, and the P(fake) cuts keeping 99%
    of the good calibration tracks at full depth and under each budget: ``(budgets,
    reject_threshold)`` as stored in the model's ``config.json``. ``table``: FLOPs per track
    at each exit; ``full``: the full network's (:attr:`alice_dyn.nn.FlopsReport.full_flops`)."""
    with torch.no_grad():
        outs_cal = all_exit_outputs(model, xca)
    good_cal = calib.main & (calib.labels == GOOD)
    budgets = {}
    full_cut = reject_at(model, outs_cal, None, good_cal)
    reject = {**full_cut, "by_budget": {"full": full_cut}}
    for f in BUDGET_FRACTIONS:
        level = cal.level_for(f)
        p = cal.policy_at(level)
        key = f"{round(f * 100)}"
        calibration = cal.calibration(f, level)
        out_v, idx_v = select(model, outs_val, p)
        budgets[key] = {
            **p.to_json(),
            "calibration": calibration,
            "val_flops_fraction": float(table[idx_v].mean() / full),
            "val": physics_metrics(model, out_v, val),
        }
        reject["by_budget"][key] = reject_at(model, outs_cal, p, good_cal)
    return budgets, reject


def _variant_record(
    variant,
    model,
    hist,
    t_train,
    table,
    full,
    budgets,
    reject,
    curve,
    per_exit,
    scaling,
    level_curve,
    provenance_of,
) -> tuple[dict, dict]:
    """``(config.json content, report entry)`` of one trained variant."""
    metrics = {
        "train_seconds": t_train,
        "epochs": hist["epochs"],
        "best_epoch": hist["best_epoch"],
        "val_loss": hist["best_val_loss"],
        "exit_flops": table.tolist(),
        "full_flops": full,
        "val_per_exit": per_exit,
        "val_curve": curve,
    }
    config = {
        "variant": variant,
        "classes": list(CLASSES),
        "targets": list(TARGETS),
        "feature_scaling": scaling,
        "thresholds": budgets,
        "level_curve": level_curve,
        "reject_threshold": reject,
        "provenance": provenance_of(metrics),
        "metrics": metrics,
    }
    entry = {
        "train_seconds": t_train,
        "epochs": hist["epochs"],
        "best_epoch": hist["best_epoch"],
        "val_loss": hist["best_val_loss"],
        "params": sum(p.numel() for p in model.parameters()),
        "exit_flops": table.tolist(),
        "full_flops": full,
        "budgets": {k: {kk: v[kk] for kk in ("thresholds", "calibration",
                        "val_flops_fraction", "val")} for k, v in budgets.items()},
        "reject_threshold": reject,
        "val_per_exit": per_exit,
        "val_curve": curve,
    }  # fmt: skip
    return config, entry


def train_all(
    data: dict[str, TrackDataset],
    out_dir: str | Path,
    *,
    seed: int = 1,
    epochs: int = 20,
    command: str = "",
    threads: int = 1,
    extra_report: dict | None = None,
    **arch: int,
) -> dict:
    """Train both variants on ``data`` (``train``, ``val``, ``calib``), write the directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, val, calib = data["train"], data["val"], data["calib"]
    scaler = FeatureScaler.fit(train.inputs, seed=seed)
    report: dict = {
        "command": command,
        **(extra_report or {}),
        "n_train": len(train),
        "n_val": len(val),
        "n_calibration": len(calib),
        "class_counts": {
            k: np.bincount(d.labels, minlength=3).tolist()
            for k, d in (("train", train), ("val", val), ("calib", calib))
        },
        "main_class_counts_val": np.bincount(val.labels[val.main], minlength=3).tolist(),
        "class_weights": class_weights(train.labels),
        "dataset_sha256": dataset_hash(
            train.inputs.track, train.labels, val.inputs.track, calib.inputs.track
        ),
        "variants": {},
    }
    xva, xca = scaler.tensors(val.inputs), scaler.tensors(calib.inputs)
    yva = val.targets()
    models, curves, configs = {}, {}, {}
    for variant in VARIANTS:
        t0 = time.perf_counter()
        model, hist = train_variant(
            variant, train, val, scaler, seed=seed, epochs=epochs, threads=threads, **arch
        )
        t_train = time.perf_counter() - t0
        with torch.no_grad():
            outs_val = all_exit_outputs(model, xva)
        table = exit_table(model, xva)
        full = exit_flops_for(model, xva).full_flops
        cal = ThresholdCalibrator(model, xca, ConfidencePolicy(0.0))
        budgets, reject = calibrate_budgets(model, cal, xca, calib, outs_val, table, full, val)
        curves[variant] = validation_curve(model, outs_val, table, yva)
        configs[variant], report["variants"][variant] = _variant_record(
            variant, model, hist, t_train, table, full, budgets, reject, curves[variant],
            [physics_metrics(model, outs_val[i], val) for i in range(model.num_exits)],
            scaler.to_json(), cal.curve(),
            provenance_of=lambda m: provenance(
                seed=seed, command=command, dataset_hash=report["dataset_sha256"], metrics=m
            ),
        )  # fmt: skip
        models[variant] = model
        print(f"[tracknet train] {variant}: {t_train:.0f} s, {hist['epochs']} epochs, "
              f"val loss {hist['best_val_loss']:.4f}", flush=True)  # fmt: skip
    choice = choose_primary(curves)
    report["choice"] = choice
    primary = choice["primary"]
    for variant, model in models.items():
        target = out if variant == primary else out / variant
        if variant != primary and target.exists():
            shutil.rmtree(target)
        save_model(model, target, extra_json={**configs[variant], "primary_choice": choice})
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def variant_dirs(model_dir: str | Path) -> dict[str, Path]:
    """``{variant: directory}`` of a trained model directory (the default at the top)."""
    d = Path(model_dir)
    out = {}
    for path in (d, *(d / v for v in VARIANTS)):
        cfg = path / "config.json"
        if cfg.exists():
            out[json.loads(cfg.read_text())["variant"]] = path
    return out


ROLES = ("train", "val", "calib")


def train_from_simulation(
    out_dir: str | Path,
    *,
    timeframes: int = 36,
    seed: int = 101,
    epochs: int = 20,
    command: str = "",
    data_dir: str | Path | None = None,
    threads: int = 1,
    mix=None,
    roles: tuple[str, ...] | None = None,
    **arch: int,
) -> dict:
    """Simulate the mix (or reuse ``data_dir`` made by the same ``timeframes`` and ``seed``),
    train both variants and write ``out_dir``; returns the report."""
    from alice_dyn.tracknet.data_gen import MIX, check_timeframes, make_datasets

    check_timeframes(timeframes, **({"roles": roles} if roles is not None else {}),
                     **({"mix": mix} if mix is not None else {}))  # fmt: skip
    torch.set_num_threads(threads)  # small models: one thread is fastest on a loaded CPU
    key = {"timeframes": int(timeframes), "seed": int(seed), "data": "mix7-interleaved-v1"}
    t0 = time.perf_counter()
    data: dict[str, TrackDataset] | None = None
    if data_dir is not None:
        dd = Path(data_dir)
        meta = dd / "meta.json"
        if meta.exists() and json.loads(meta.read_text()) == key:
            data = {r: TrackDataset.load(dd / f"{r}.npz") for r in ROLES}
    if data is None:
        kw = {"mix": mix} if mix is not None else {}
        if roles is not None:
            kw["roles"] = roles
        data = make_datasets(timeframes, seed, **kw)
        if data_dir is not None:
            dd = Path(data_dir)
            dd.mkdir(parents=True, exist_ok=True)
            for r in ROLES:
                data[r].save(dd / f"{r}.npz")
            (dd / "meta.json").write_text(json.dumps(key))
    t_data = time.perf_counter() - t0
    extra = {
        "timeframes": int(timeframes),
        "mix": [m[0] for m in (mix or MIX)],
        "data_seconds": t_data,
        "torch_threads": threads,
    }
    t1 = time.perf_counter()
    report = train_all(
        data, out_dir, seed=seed, epochs=epochs, command=command, threads=threads,
        extra_report=extra, **arch,
    )  # fmt: skip
    report["train_seconds_total"] = time.perf_counter() - t1
    (Path(out_dir) / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
