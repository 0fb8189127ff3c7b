"""``alice-dyn train pid``: the dynamic PID networks and their baselines, from one dataset.

Layer: PID. Trains, on the same split of reconstructed, labelled tracks: the ZTW and SDN
early-exit networks (:mod:`alice_dyn.pid.network`), one MLP per detector subset and a LightGBM
model (:mod:`alice_dyn.pid.baselines`). Writes a model directory::

    DIR/ztw/{model.safetensors, config.json}    ZTW exits (cascading heads, ensemble; + budgets)
    DIR/sdn/{model.safetensors, config.json}    SDN-style exits (the stage's network)
    DIR/incremental/{model.safetensors, config.json}  TOF/TRD update of a TPC-only pass
    DIR/baselines/subset_mlps.safetensors + .json, DIR/baselines/gbdt.txt (LightGBM text)
    DIR/report.json                             provenance and validation metrics

Nothing is pickled. The shipped default (``alice_dyn/pid/data/default_model``) was made by the
command recorded in its ``report.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from alice_dyn.nn import dataset_hash, provenance
from alice_dyn.pid.baselines import GBDT, SUBSET_GROUPS, SubsetMLPs, mlp, train_gbdt
from alice_dyn.pid.dataset import GROUPS, PIDDataset, require_tracks, split_dataset
from alice_dyn.pid.incremental import save_incremental, train_incremental
from alice_dyn.pid.mismatch import CONFIG_KEY as MISMATCH_KEY
from alice_dyn.pid.mismatch import mismatch_config
from alice_dyn.pid.network import (
    PRIMARY,
    budget_policies,
    save_pid_net,
    train_pid_net,
    with_tof_mismatch,
)

#: oversampling of the rare species (electrons, muons) in the SDN network's training; None: off.
#: Off: 0.05 (electrons x5, muons x8) measured worse on the validation and calibration split
#: of the 100-timeframe training set (accuracy 93.73% vs 93.84%, as pure as n-sigma at its
#: efficiency in 36 vs 40 of 40 (species, p) bins)
RARE_FRACTION: float | None = None
#: learning rate of the SDN network's second (fine-tuning) joint training; None: none.
#: 2e-4 measured on the same split: accuracy 94.02% vs 93.84% without, 40 of 40 bins both
FINETUNE_LR: float | None = 2e-4
#: fraction of the TOF-matched training tracks whose TOF measurement is replaced by a TOF
#: mismatch (another track's hit, :func:`alice_dyn.pid.network.with_tof_mismatch`) in the
#: ZTW, SDN and incremental networks' training; 0: none.
#: Off: 0.05 / 0.1 measured no better on the validation and calibration split of the
#: 100-timeframe training set (SDN, training seeds 101/102/103: accuracy 93.98 / 93.92% vs
#: 93.995% on average) nor on an independent seed-505 validation set (93.83 / 93.82% vs
#: 93.875%; electrons at 0.3-0.4 GeV/c as pure as n-sigma with 2 / 1 of 3 seeds vs 2 of 3);
#: it does raise the median P(e) of TOF-mismatched electrons (0.01 -> 0.05-0.42).
#: docs/results/pid_network.md has the table.
if TYPE_CHECKING:
    from alice_dyn.pid.data_gen import TrainingSample

TOF_MISMATCH_FRACTION: float = 0.0
#: fewer tracks cannot be split into training, validation and calibration parts that each hold
#: every species (one pp timeframe has about 40)
MIN_TRAINING_TRACKS: int = 300


def enrichment_tracks(
    enriched: PIDDataset, val_fraction: float, seed: int, classes: tuple[int, ...] = (0, 1)
) -> tuple[PIDDataset, PIDDataset]:
    """The tracks of ``classes`` (default e, mu) from an enriched simulation (more of them than
    nature makes), split ``(for training, for early stopping)`` as the natural data are; their
    optional extra arrays are dropped (the natural training data carry none by default)."""
    rare = enriched.take(np.flatnonzero(np.isin(enriched.labels, classes)))
    rare.extra = {}
    return split_dataset(rare, val_fraction, seed)


def save_subset_mlps(models: SubsetMLPs, directory: Path) -> None:
    tensors, meta = {}, {}
    for subset, m in models.models.items():
        for k, v in m.state_dict().items():
            tensors[f"{subset}/{k}"] = v.contiguous()
        meta[subset] = {"groups": list(SUBSET_GROUPS[subset]), "n_in": int(m[0].in_features)}
    save_file(tensors, str(directory / "subset_mlps.safetensors"))
    (directory / "subset_mlps.json").write_text(json.dumps(meta, indent=1))


def load_subset_mlps(directory: Path) -> SubsetMLPs:
    meta = json.loads((directory / "subset_mlps.json").read_text())
    state = load_file(str(directory / "subset_mlps.safetensors"))
    out = SubsetMLPs()
    for subset, info in meta.items():
        m = mlp(info["n_in"])
        m.load_state_dict(
            {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith(subset + "/")}
        )
        m.eval()
        out.models[subset] = m
    return out


def load_gbdt(directory: Path) -> GBDT | None:
    path = directory / "gbdt.txt"
    if not path.exists():
        return None
    try:
        import lightgbm as lgb
    except ImportError:
        return None
    return GBDT(lgb.Booster(model_str=path.read_text()))


def train_all(
    data: PIDDataset,
    out_dir: str | Path,
    *,
    seed: int = 1,
    epochs: int = 30,
    val_fraction: float = 0.15,
    command: str = "",
    d: int = 64,
    depth: int = 6,
    rare_fraction: float | None = RARE_FRACTION,
    finetune_lr: float | None = FINETUNE_LR,
    tof_mismatch_fraction: float = TOF_MISMATCH_FRACTION,
    enriched: PIDDataset | None = None,
) -> dict:
    """Train everything on ``data`` and write the model directory; returns the report.
    ``rare_fraction``: oversampling of the rare species for the SDN network
    and ``finetune_lr``: its second training phase (:func:`alice_dyn.pid.network.train_pid_net`;
    None: none); ``tof_mismatch_fraction``: TOF-mismatch augmentation of the training split
    for the ZTW, SDN and incremental networks (needs ``data.extra["tof_mismatch"]``; the
    baselines train on the natural data); ``enriched``: tracks of an enriched simulation whose
    electrons and muons join the SDN network's training and early-stopping data
    (:func:`enrichment_tracks`; the other networks and every calibration stay natural)."""
    require_tracks(data, MIN_TRAINING_TRACKS, "to train the PID networks")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    # three disjoint parts: training, validation (early stopping) and calibration (exit
    # thresholds): thresholds fitted on the early-stopping set come out biased
    train, rest = split_dataset(data, 2 * val_fraction, seed)
    val, calib = split_dataset(rest, 0.5, seed + 1)
    report: dict = {
        "command": command,
        "n_train": len(train),
        "n_val": len(val),
        "n_calibration": len(calib),
        "class_counts": np.bincount(train.labels, minlength=5).tolist(),
        "dataset_sha256": dataset_hash(*[data.features[g] for g in GROUPS], data.labels),
    }
    # recorded only when used (absent: none), so the default's output is unchanged
    mismatch = {"fraction": tof_mismatch_fraction, "seed": seed} if tof_mismatch_fraction else None
    if mismatch:
        report["tof_mismatch"] = mismatch
    # the TOF-mismatch hypothesis of every network (alice_dyn.pid.mismatch), from the sidebands
    report[MISMATCH_KEY] = mismatch_config(train)
    enrich = None if enriched is None else enrichment_tracks(enriched, 2 * val_fraction, seed)
    if enrich is not None:
        report["enriched"] = {
            "n_train": len(enrich[0]),
            "n_val": len(enrich[1]),
            "class_counts": np.bincount(enrich[0].labels, minlength=5).tolist(),
            "dataset_sha256": dataset_hash(
                *[enriched.features[g] for g in GROUPS], enriched.labels
            ),
        }
    recipe = {
        "seed": seed, "epochs": epochs, "d": d, "depth": depth, "rare_fraction": rare_fraction,
        "finetune_lr": finetune_lr, "tof_mismatch_fraction": tof_mismatch_fraction,
    }  # fmt: skip
    for method in ("ztw", "sdn"):
        enrich_m = enrich if method == "sdn" else None
        model, scaler, prov = _train_exit_network(
            method, train, val, calib, out, report, recipe, mismatch, enrich_m
        )
        if method == PRIMARY:
            _train_incremental(model, scaler, train, val, out, report, prov, recipe, mismatch)
    report["baselines"] = _train_baselines(train, val, out / "baselines", seed)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def _train_exit_network(
    method: str,
    train: PIDDataset,
    val: PIDDataset,
    calib: PIDDataset,
    out: Path,
    report: dict,
    recipe: dict,
    mismatch: dict | None,
    enrich: tuple[PIDDataset, PIDDataset] | None,
):
    """Train one early-exit network (``"ztw"`` or ``"sdn"``), calibrate its budgets on
    ``calib``, write ``out/method`` and its part of ``report``; returns ``(model, scaler,
    provenance)``."""
    t0 = time.perf_counter()
    model, scaler, hist = train_pid_net(
        train, val, method, seed=recipe["seed"], epochs=recipe["epochs"], d=recipe["d"],
        depth=recipe["depth"], rare_fraction=recipe["rare_fraction"],
        finetune_lr=recipe["finetune_lr"], tof_mismatch_fraction=recipe["tof_mismatch_fraction"],
        enrich=enrich,
    )  # fmt: skip
    oversampling = hist.pop("oversampling", None)
    enrichment = hist.pop("enrichment", None)
    hist.pop("tof_mismatch", None)
    xva = scaler.tensors(val)
    budgets, level_curve = budget_policies(model, scaler.tensors(calib))
    with torch.no_grad():
        acc = [float((o.argmax(1).numpy() == val.labels).mean()) for o in model.forward_all(xva)]
    prov = provenance(seed=recipe["seed"], command=report["command"],
                      dataset=report["dataset_sha256"])  # fmt: skip
    save_pid_net(
        model,
        scaler,
        out / method,
        {
            "thresholds": budgets,
            "level_curve": level_curve,
            "provenance": prov,
            "metrics": {"val_accuracy_per_exit": acc, "train_seconds": time.perf_counter() - t0},
            "oversampling": oversampling,
            **({"tof_mismatch": mismatch} if mismatch else {}),
            **({"enrichment": enrichment} if enrichment else {}),
            MISMATCH_KEY: report[MISMATCH_KEY],
        },
    )
    report[method] = {
        "val_accuracy_per_exit": acc,
        "budgets": budgets,
        "epochs": {k: v.get("epochs") for k, v in hist.items()},
        "oversampling": oversampling,
        **({"enrichment": enrichment} if enrichment else {}),
    }
    return model, scaler, prov


def _train_incremental(model, scaler, train, val, out, report, prov, recipe, mismatch) -> None:
    """The TOF/TRD update network of ``model`` (the same TOF-mismatch tracks as its training;
    without oversampling: the same seed gives the same), written to ``out/incremental``."""
    train_upd = with_tof_mismatch(train, recipe["tof_mismatch_fraction"], recipe["seed"])
    upd, info = train_incremental(model, scaler, train_upd, val, seed=recipe["seed"])
    meta = {"network": PRIMARY, "provenance": prov, "metrics": info,
            **({"tof_mismatch": mismatch} if mismatch else {})}  # fmt: skip
    save_incremental(upd, out / "incremental", meta)
    report["incremental"] = {"network": PRIMARY, "val_accuracy": info["best"],
                             "train_seconds": info["seconds"]}  # fmt: skip


def _train_baselines(train: PIDDataset, val: PIDDataset, base: Path, seed: int) -> dict:
    """The per-subset MLPs and LightGBM (when installed), written to ``base``; returns their
    and n-sigma's validation accuracies."""
    base.mkdir(exist_ok=True)
    subset = SubsetMLPs().fit(train, seed=seed)
    save_subset_mlps(subset, base)
    gbdt = train_gbdt(train, seed=seed)
    if gbdt is not None:
        (base / "gbdt.txt").write_text(gbdt.booster.model_to_string())

    def val_accuracy(model) -> float | None:
        if model is None:
            return None
        return float((model.predict_proba(val).argmax(1) == val.labels).mean())

    return {
        "subset_mlp_val_accuracy": val_accuracy(subset),
        "gbdt_val_accuracy": val_accuracy(gbdt),
        "nsigma_val_accuracy": float((val.nsigma == val.labels).mean()),
    }


def train_from_simulation(
    out_dir: str | Path,
    sample: TrainingSample,
    *,
    reuse_embedding_dim: int = 0,
    epochs: int = 30,
    command: str = "",
    log=print,
) -> dict:
    """``alice-dyn train pid|pid-reuse``: the training data of ``sample``
    (:func:`alice_dyn.pid.data_gen.training_data`; the enriched e/mu sample too for ``pid``),
    then every network of :func:`train_all` written to ``out_dir``; returns the report.
    ``reuse_embedding_dim`` > 0: instead, the networks on the track network's embedding of that
    width (:func:`alice_dyn.tracknet.network.track_embedding_dim`) and their control
    (:func:`alice_dyn.pid.reuse.train_reuse_all`)."""
    from alice_dyn.pid.data_gen import training_data
    from alice_dyn.pid.reuse import train_reuse_all

    reuse = reuse_embedding_dim > 0
    ds, enriched = training_data(
        sample,
        embedding_dim=reuse_embedding_dim,
        tof_mismatch=TOF_MISMATCH_FRACTION > 0,
        enriched=not reuse,
        min_tracks=MIN_TRAINING_TRACKS,
        log=log,
    )
    seed = sample.seed
    if reuse:
        return train_reuse_all(ds, out_dir, seed=seed, epochs=epochs, command=command)
    return train_all(ds, out_dir, seed=seed, epochs=epochs, command=command, enriched=enriched)
