"""PID that reuses the track network's embedding instead of describing the track again.

Layer: PID. The track network (``track-net``, :mod:`alice_dyn.tracknet`) has already read every
cluster of a track (positions, charges, residuals) into an embedding ``(n, d_track)`` by the time
PID runs. :func:`pid_net_reuse` takes it as one more feature group (``trackemb``) of the PID
network's group stem, so the PID network needs fewer blocks of its own: it starts from a
description that already holds the cluster-level charge information the truncated mean throws
away. Measured against the standalone PID network and against a control with the same reduced
depth but without the embedding (so the saving is attributable to the reuse, not to the depth):
:func:`compare_reuse`.

Model files as the other PID networks (``model.safetensors`` + ``config.json`` with the feature
scaling, including the embedding's: :class:`~alice_dyn.pid.network.ReuseScaler`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from alice_dyn.nn import (
    EarlyExitNet,
    build_early_exit_mlp,
    register_model,
    save_model,
    train_joint,
)
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.pid.dataset import GROUPS, PIDDataset, split_dataset
from alice_dyn.pid.network import (
    N_CLASSES,
    REUSE_GROUP,
    FeatureScaler,
    ReuseScaler,
    load_saved_model,
)


@register_model("pid_net_reuse")
def pid_net_reuse(emb_dim: int = 32, d: int = 64, depth: int = 2, use_embedding: bool = True):
    """PID classifier (SDN exits) over the detector groups plus, with ``use_embedding``, the
    track network's embedding as the group ``trackemb``."""
    groups = {g: len(cols) for g, cols in GROUPS.items()}
    if use_embedding:
        groups[REUSE_GROUP] = int(emb_dim)
    return build_early_exit_mlp(groups=groups, out=N_CLASSES, method="sdn", d=d, depth=depth)


def train_reuse(
    train: PIDDataset,
    val: PIDDataset,
    *,
    use_embedding: bool = True,
    depth: int = 2,
    d: int = 64,
    seed: int = 1,
    epochs: int = 30,
) -> tuple[EarlyExitNet, ReuseScaler, dict]:
    """Joint (SDN) training, as the standalone network's."""
    torch.manual_seed(seed)
    scaler = ReuseScaler.fit_reuse(train, use_embedding)
    emb_dim = train.extra[REUSE_GROUP].shape[1] if use_embedding else 0
    kwargs = {"emb_dim": emb_dim, "d": d, "depth": depth, "use_embedding": use_embedding}
    model = pid_net_reuse(**kwargs)
    model.model_name, model.model_kwargs, model.model_module = "pid_net_reuse", kwargs, __name__
    xtr, ytr = scaler.tensors(train), torch.as_tensor(train.labels)
    xva, yva = scaler.tensors(val), torch.as_tensor(val.labels)
    hist = train_joint(
        model, (xtr, ytr), val_data=(xva, yva), epochs=epochs, batch_size=256, lr=2e-3,
        seed=seed, patience=6,
    )  # fmt: skip
    model.eval()
    return model, scaler, hist


def save_reuse(model: EarlyExitNet, scaler: ReuseScaler, directory: str | Path, extra: dict):
    return save_model(model, directory, extra_json={"feature_scaling": scaler.to_json(), **extra})


def load_reuse(directory: str | Path) -> tuple[EarlyExitNet, ReuseScaler, dict]:
    model, cfg = load_saved_model(directory)
    return model, ReuseScaler.from_json(cfg["feature_scaling"]), cfg


@torch.no_grad()
def accuracy_and_flops(model: EarlyExitNet, x: dict, y: np.ndarray) -> dict:
    """Accuracy of the last exit and FLOPs per track of the plain network (no exits)."""
    out = model(x, mode="one", exit=model.num_exits - 1)
    acc = float(np.mean(out.argmax(1).numpy() == y))
    return {"accuracy": acc, "flops_per_track": exit_flops_for(model, x).full_flops}


def compare_reuse(
    data: PIDDataset,
    standalone: tuple[EarlyExitNet, FeatureScaler],
    reuse: tuple[EarlyExitNet, ReuseScaler],
    control: tuple[EarlyExitNet, ReuseScaler],
) -> dict:
    """``{"standalone", "reuse", "control": {"accuracy", "flops_per_track"},
    "flops_saving", "accuracy_delta_pp"}`` (reuse vs standalone) on held-out ``data``."""
    y = data.labels
    res = {
        name: accuracy_and_flops(m, sc.tensors(data), y)
        for name, (m, sc) in (("standalone", standalone), ("reuse", reuse), ("control", control))
    }
    res["n_tracks"] = len(data)
    flops = {k: res[k]["flops_per_track"] for k in ("reuse", "standalone")}
    res["flops_saving"] = 1.0 - flops["reuse"] / flops["standalone"]
    res["accuracy_delta_pp"] = 100 * (res["reuse"]["accuracy"] - res["standalone"]["accuracy"])
    res["accuracy_delta_vs_control_pp"] = 100 * (
        res["reuse"]["accuracy"] - res["control"]["accuracy"]
    )
    return res


def train_reuse_all(
    data: PIDDataset,
    out_dir: str | Path,
    *,
    seed: int = 1,
    epochs: int = 30,
    depth: int = 1,
    command: str = "",
) -> dict:
    """Train the reusing network and its control (same depth, no embedding) on the split of
    :func:`alice_dyn.pid.train.train_all`; writes ``DIR/reuse`` and ``DIR/reuse_control``."""
    from alice_dyn.nn import dataset_hash, provenance
    from alice_dyn.pid.mismatch import CONFIG_KEY as MISMATCH_KEY
    from alice_dyn.pid.mismatch import mismatch_config
    from alice_dyn.pid.network import budget_policies

    out = Path(out_dir)
    train, rest = split_dataset(data, 0.3, seed)
    val, calib = split_dataset(rest, 0.5, seed + 1)
    digest = dataset_hash(data.extra[REUSE_GROUP], data.labels)
    report: dict = {"command": command, "n_train": len(train), "n_val": len(val), "depth": depth}
    # the TOF-mismatch hypothesis, measured on the training split as for the standalone network
    mismatch = mismatch_config(train)
    for name, use in (("reuse", True), ("reuse_control", False)):
        model, scaler, _ = train_reuse(
            train, val, use_embedding=use, depth=depth, seed=seed, epochs=epochs
        )
        res = accuracy_and_flops(model, scaler.tensors(val), val.labels)
        prov = provenance(seed=seed, command=command, dataset=digest)
        budgets, curve = budget_policies(model, scaler.tensors(calib))
        extra = {"thresholds": budgets, "level_curve": curve, "provenance": prov, "metrics": res,
                 MISMATCH_KEY: mismatch}  # fmt: skip
        save_reuse(model, scaler, out / name, extra)
        report[name] = res
    return report
