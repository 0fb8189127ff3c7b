"""Baselines of the PID network, trained and evaluated on the same data.

Layer: PID.

* :class:`SubsetMLPs` — one MLP per detector subset (TPC, TPC+TOF, TPC+TRD, TPC+TOF+TRD),
  each on the features its detectors provide: O2Physics's older approach of one model per
  combination;
* :func:`train_gbdt` — a gradient-boosted tree (LightGBM, optional dependency) on all features,
  missing detectors as NaN (which trees handle natively);
* the n-sigma decision comes with the dataset (``PIDDataset.nsigma``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from alice_dyn.pid.dataset import GROUPS, SUBSETS, PIDDataset

N_CLASSES = 5
SUBSET_GROUPS = {
    "TPC": ("track", "tpc"),
    "TPC+TOF": ("track", "tpc", "tof"),
    "TPC+TRD": ("track", "tpc", "trd"),
    "TPC+TOF+TRD": ("track", "tpc", "tof", "trd"),
}


def flat_features(ds: PIDDataset, groups=tuple(GROUPS), missing: float = np.nan) -> np.ndarray:
    """``(n, n_features)`` concatenation of ``groups``; absent groups filled with ``missing``."""
    cols = []
    for g in groups:
        f = ds.features[g].astype(np.float32)
        cols.append(np.where(ds.masks[g][:, None], f, np.float32(missing)))
    return np.concatenate(cols, axis=1)


def mlp(n_in: int, hidden: int = 64, depth: int = 3, n_out: int = N_CLASSES) -> nn.Module:
    layers: list[nn.Module] = []
    d = n_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.GELU()]
        d = hidden
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


def train_classifier(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 1,
    epochs: int = 60,
    batch: int = 512,
    lr: float = 3e-3,
    val_fraction: float = 0.15,
    patience: int = 8,
) -> dict:
    """Cross-entropy training with AdamW and early stopping on a validation split."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n = len(y)
    perm = torch.randperm(n, generator=g).numpy()
    n_val = max(int(n * val_fraction), 1)
    val, tr = perm[:n_val], perm[n_val:]
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    best, best_state, bad = np.inf, None, 0
    history = []
    for _epoch in range(epochs):
        model.train()
        order = tr[torch.randperm(len(tr), generator=g).numpy()]
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            vloss = float(loss_fn(model(xt[val]), yt[val]))
        history.append(vloss)
        if vloss < best - 1e-4:
            best, bad = vloss, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"val_loss": history, "best_val_loss": best, "epochs": len(history)}


@dataclass
class SubsetMLPs:
    """One MLP per detector subset; each track is classified by the model of its subset."""

    models: dict[str, nn.Module] = field(default_factory=dict)
    min_tracks: int = 200

    def fit(self, ds: PIDDataset, seed: int = 1, **kw) -> SubsetMLPs:
        names = ds.subset_name()
        for k, subset in enumerate(SUBSETS):
            sel = names == subset
            if sel.sum() < self.min_tracks:
                if subset != "TPC":
                    continue  # too few tracks to train: falls back to the TPC-only model
                sel = np.ones(len(ds), bool)  # the fallback itself: every track has the TPC
            x = flat_features(ds.take(sel), SUBSET_GROUPS[subset], 0.0)
            model = mlp(x.shape[1])
            train_classifier(model, x, ds.labels[sel], seed=seed + k, **kw)
            self.models[subset] = model
        return self

    def predict_proba(self, ds: PIDDataset) -> np.ndarray:
        names = ds.subset_name()
        out = np.zeros((len(ds), N_CLASSES), np.float32)
        for subset in SUBSETS:
            sel = names == subset
            if not sel.any():
                continue
            key = subset if subset in self.models else "TPC"
            x = flat_features(ds.take(sel), SUBSET_GROUPS[key], 0.0)
            with torch.no_grad():
                out[sel] = torch.softmax(self.models[key](torch.as_tensor(x)), dim=1).numpy()
        return out


class GBDT:
    """LightGBM booster on all features; ``predict_proba`` like the other models."""

    def __init__(self, booster) -> None:
        self.booster = booster

    def predict_proba(self, ds: PIDDataset) -> np.ndarray:
        return np.asarray(self.booster.predict(flat_features(ds)), dtype=np.float32)


def train_gbdt(ds: PIDDataset, seed: int = 1, n_rounds: int = 300) -> GBDT | None:
    """A LightGBM multi-class model on all features (NaN for missing detectors), or ``None``
    when LightGBM is not installed (``pip install alice-dyn[ml]``)."""
    try:
        import lightgbm as lgb
    except ImportError:
        return None
    params = {
        "objective": "multiclass", "num_class": N_CLASSES, "learning_rate": 0.05,
        "num_leaves": 31, "seed": seed, "num_threads": 1, "verbose": -1,
        "deterministic": True,
    }  # fmt: skip
    train = lgb.Dataset(flat_features(ds), label=ds.labels)
    return GBDT(lgb.train(params, train, num_boost_round=n_rounds))
