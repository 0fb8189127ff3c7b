"""The dynamic PID network: one early-exit model for every subset of detectors.

Layer: PID (on the physics-free :mod:`alice_dyn.nn`). Each detector's feature group is embedded
by its own layer; absent detectors (no TOF match, no TRD) are replaced by a learned "missing"
embedding through their presence masks (:class:`alice_dyn.nn.GroupStem`), so one model serves
tracks with any subset of TPC, TOF and TRD at any batch size, without NaN tricks. Residual
blocks follow, with an exit head after each; ZTW-style cascading heads and a geometric
ensemble, or plain SDN heads.

Model files: ``model.safetensors`` + ``config.json`` (architecture, the feature scaling, the
calibrated thresholds for 25/50/75% of the FLOPs, provenance and metrics).

The ``pid-net`` stage and the CLI see a saved network through :class:`PIDNetPredictor`
(:func:`load_pid_predictor`): AO2D columns in, network inputs or probabilities out; the feature
scaling (:class:`FeatureScaler`, :class:`ReuseScaler` for the network that also reads the track
network's embedding, :mod:`alice_dyn.pid.reuse`) stays inside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from alice_dyn.io import BadInputError
from alice_dyn.nn import (
    ConfidencePolicy,
    EarlyExitNet,
    ExitResult,
    ModelFileError,
    ThresholdCalibrator,
    build_early_exit_mlp,
    load_model,
    register_model,
    run_dynamic,
    save_model,
    train_backbone,
    train_ensemble,
    train_heads,
    train_joint,
)
from alice_dyn.pid.dataset import GROUPS, PIDDataset, features_from_columns
from alice_dyn.pid.mismatch import MismatchResult, TOFMismatchPosterior, run_with_mismatch

N_CLASSES = 5
DEFAULT_MODEL_DIR = Path(__file__).parent / "data" / "default_model"
BUDGET_FRACTIONS = (0.25, 0.5, 0.75)
#: the dynamic network the pid-net stage runs: SDN exits with joint training measured better
#: than ZTW's frozen backbone on held-out tracks (93.9% vs 93.5%, and on every detector subset)
PRIMARY = "sdn"
#: the network on the track network's embedding, beside :data:`PRIMARY` (:mod:`.reuse`)
REUSE = "reuse"
#: the feature group (and ``PIDDataset.extra`` key) of the track network's embedding
REUSE_GROUP = "trackemb"


@register_model("pid_net")
def pid_net(method: str = "ztw", d: int = 64, depth: int = 6) -> EarlyExitNet:
    """Early-exit PID classifier over the detector feature groups of :data:`GROUPS`."""
    groups = {g: len(cols) for g, cols in GROUPS.items()}
    return build_early_exit_mlp(groups=groups, out=N_CLASSES, method=method, d=d, depth=depth)


@dataclass
class FeatureScaler:
    """Per-group standardisation (mean, std over tracks where the group is present)."""

    mean: dict[str, list[float]]
    std: dict[str, list[float]]

    @classmethod
    def fit(cls, ds: PIDDataset) -> FeatureScaler:
        mean, std = {}, {}
        for g in GROUPS:
            x = ds.features[g][ds.masks[g]].astype(np.float64)
            if len(x) < 2:
                x = np.zeros((2, ds.features[g].shape[1]))
            mean[g] = x.mean(axis=0).tolist()
            std[g] = np.maximum(x.std(axis=0), 1e-3).tolist()
        return cls(mean, std)

    def tensors(self, ds: PIDDataset) -> dict[str, torch.Tensor]:
        """The network's inputs: scaled groups (zero where absent) and ``<group>_mask``."""
        out = {}
        for g in GROUPS:
            m = ds.masks[g]
            x = (ds.features[g] - np.asarray(self.mean[g])) / np.asarray(self.std[g])
            x = np.where(m[:, None], x, 0.0).astype(np.float32)
            out[g] = torch.from_numpy(np.ascontiguousarray(x))
            out[g + "_mask"] = torch.from_numpy(m.astype(np.float32))
        return out

    def embedding_group(self) -> str | None:
        """The ``PIDDataset.extra`` array this scaling also reads (None: none)."""
        return None

    def to_json(self) -> dict:
        return {"kind": "standard", "groups": {g: list(GROUPS[g]) for g in GROUPS},
                "mean": self.mean, "std": self.std}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict) -> FeatureScaler:
        """The scaling stored in a ``config.json``: a :class:`ReuseScaler` when it has an
        ``embedding`` entry (the networks of :mod:`alice_dyn.pid.reuse`)."""
        if cls is FeatureScaler and "embedding" in d:
            return ReuseScaler.from_json(d)
        return cls(d["mean"], d["std"])


@dataclass
class ReuseScaler(FeatureScaler):
    """:class:`FeatureScaler` plus the standardisation of the track network's embedding
    (``extra["trackemb"]``, :data:`REUSE_GROUP`) when the network reads it."""

    emb_mean: list[float] | None = None
    emb_std: list[float] | None = None

    @classmethod
    def fit_reuse(cls, ds: PIDDataset, use_embedding: bool) -> ReuseScaler:
        base = FeatureScaler.fit(ds)
        if not use_embedding:
            return cls(base.mean, base.std)
        e = ds.extra[REUSE_GROUP].astype(np.float64)
        return cls(base.mean, base.std, e.mean(0).tolist(), np.maximum(e.std(0), 1e-3).tolist())

    def embedding_group(self) -> str | None:
        return None if self.emb_mean is None else REUSE_GROUP

    def tensors(self, ds: PIDDataset) -> dict[str, torch.Tensor]:
        out = super().tensors(ds)
        if self.emb_mean is not None:
            e = (ds.extra[REUSE_GROUP] - np.asarray(self.emb_mean)) / np.asarray(self.emb_std)
            out[REUSE_GROUP] = torch.from_numpy(np.ascontiguousarray(e, dtype=np.float32))
        return out

    def to_json(self) -> dict:
        return {**super().to_json(), "embedding": {"mean": self.emb_mean, "std": self.emb_std}}

    @classmethod
    def from_json(cls, d: dict) -> ReuseScaler:
        emb = d.get("embedding") or {}
        return cls(d["mean"], d["std"], emb.get("mean"), emb.get("std"))


def oversampling_factors(
    labels: np.ndarray, rare_fraction: float, max_factor: int = 8
) -> list[int]:
    """Per class, how many times each training track is repeated so that a class below
    ``rare_fraction`` of the tracks reaches about that fraction (at most ``max_factor``)."""
    counts = np.bincount(labels, minlength=N_CLASSES).astype(np.float64)
    frac = counts / max(counts.sum(), 1.0)
    out = []
    for f in frac:
        k = 1 if f <= 0 or f >= rare_fraction else round(rare_fraction / f)
        out.append(int(min(max(k, 1), max_factor)))
    return out


def oversample(ds: PIDDataset, factors: list[int]) -> PIDDataset:
    """``ds`` with every track of class ``c`` repeated ``factors[c]`` times (order kept)."""
    return ds.take(np.repeat(np.arange(len(ds)), np.asarray(factors)[ds.labels]))


def with_tof_mismatch(ds: PIDDataset, fraction: float, seed: int) -> PIDDataset:
    """``ds`` with ``round(fraction * n_tof)`` of its TOF-matched tracks (drawn without
    replacement with ``seed``) carrying their TOF-mismatch group (``extra["tof_mismatch"]``,
    :func:`alice_dyn.pid.dataset.tof_mismatch_columns`) instead of their real ``tof`` group;
    everything else, and ``ds`` itself, unchanged. ``fraction`` 0: ``ds``."""
    if not fraction:
        return ds
    if "tof_mismatch" not in ds.extra:
        raise ValueError("tof_mismatch_fraction needs the dataset's extra['tof_mismatch']")
    tof = np.flatnonzero(ds.masks["tof"])
    rng = np.random.default_rng([seed, 0x70F])
    pick = rng.choice(tof, size=round(fraction * len(tof)), replace=False)
    feats = dict(ds.features)
    feats["tof"] = ds.features["tof"].copy()
    feats["tof"][pick] = ds.extra["tof_mismatch"][pick]
    return PIDDataset(feats, ds.masks, ds.labels, ds.p, ds.nsigma, ds.extra)


@torch.no_grad()
def shift_head_biases(model: EarlyExitNet, factors: list[int]) -> None:
    """Undo the prior shift of oversampling: subtract ``log(factor_c)`` from class ``c``'s
    logit at every exit (the last ``Linear`` of each head), so the probabilities refer to the
    natural class mix again. SDN heads only (no cascading heads, no ensemble)."""
    if model.ensemble is not None or any(getattr(h, "cascading", False) for h in model.heads):
        raise ValueError("bias correction is defined for SDN heads only")
    shift = torch.log(torch.as_tensor(factors, dtype=torch.float32))
    for head in model.heads:
        last = head.mlp[-1] if isinstance(head.mlp, torch.nn.Sequential) else head.mlp
        last.bias -= shift.to(last.bias.dtype)


def _enriched(
    train: PIDDataset, val: PIDDataset, enrich: tuple[PIDDataset, PIDDataset]
) -> tuple[PIDDataset, PIDDataset, list[float]]:
    """``train`` and ``val`` with the enriched tracks appended, and the per-class factor
    (class count with / without them in ``train``) that shifts the prior back."""
    if train.extra or val.extra:
        raise ValueError("enrich: the natural data must not carry extra arrays")
    before = np.bincount(train.labels, minlength=N_CLASSES)
    train = PIDDataset.concatenate([train, enrich[0]])
    val = PIDDataset.concatenate([val, enrich[1]])
    after = np.bincount(train.labels, minlength=N_CLASSES)
    return train, val, (after / np.maximum(before, 1)).tolist()


def train_pid_net(
    train: PIDDataset,
    val: PIDDataset,
    method: str,
    *,
    seed: int = 1,
    epochs: int = 30,
    rare_fraction: float | None = None,
    finetune_lr: float | None = None,
    tof_mismatch_fraction: float = 0.0,
    enrich: tuple[PIDDataset, PIDDataset] | None = None,
    **arch,
) -> tuple[EarlyExitNet, FeatureScaler, dict]:
    """Train one PID network; ``ztw``: ZTW's staged recipe (backbone, then heads on the frozen
    backbone with self-distillation, then the ensemble); ``sdn``: joint training.

    ``rare_fraction`` (SDN only): classes rarer than that in ``train`` (electrons, muons) are
    oversampled to about that fraction, in the training and the early-stopping data alike, and
    every exit's logits are shifted back by ``-log(factor)`` afterwards (the model's
    probabilities refer to the natural mix; the factors go to ``hist["oversampling"]``).
    ``finetune_lr`` (SDN only): after the joint training (which keeps its best epoch), a second
    joint training from there at this lower learning rate, same early stopping, kept only if
    its best validation loss is lower (``hist["finetune"]``).
    ``tof_mismatch_fraction`` (both methods): that fraction of the TOF-matched training tracks
    get their TOF-mismatch group (:func:`with_tof_mismatch`, fixed for the whole training;
    the early-stopping data and the feature scaling stay natural; ``hist["tof_mismatch"]``).
    ``enrich`` (SDN only): extra tracks ``(for training, for early stopping)`` of rare species
    from an enriched simulation (:func:`alice_dyn.pid.train.enrichment_tracks`), added to
    ``train`` and ``val`` before anything else (the feature scaling included); every exit's
    logits are shifted back by ``-log(factor)``, factor = class count with / without them in
    ``train`` (``hist["enrichment"]``)."""
    torch.manual_seed(seed)
    enrichment = None
    if enrich is not None:
        if method != "sdn":
            raise ValueError("enrich: the prior correction is defined for SDN heads only")
        train, val, enrichment = _enriched(train, val, enrich)
    scaler = FeatureScaler.fit(train)
    factors = None
    if rare_fraction and method == "sdn":
        factors = oversampling_factors(train.labels, rare_fraction)
        train, val = oversample(train, factors), oversample(val, factors)
    train = with_tof_mismatch(train, tof_mismatch_fraction, seed)
    xtr, ytr = scaler.tensors(train), torch.as_tensor(train.labels)
    xva, yva = scaler.tensors(val), torch.as_tensor(val.labels)
    model = pid_net(method=method, **arch)
    model.model_name, model.model_kwargs = "pid_net", {"method": method, **arch}
    model.model_module = __name__
    kw = dict(val_data=(xva, yva), epochs=epochs, batch_size=256, lr=2e-3, seed=seed, patience=6)
    if method == "ztw":
        hist = {
            "backbone": train_backbone(model, (xtr, ytr), **kw),
            "heads": train_heads(model, (xtr, ytr), distill_temperature=2.0, **kw),
            "ensemble": train_ensemble(
                model, (xtr, ytr), val_data=(xva, yva), epochs=epochs, seed=seed
            ),
        }
    else:
        hist = {"joint": train_joint(model, (xtr, ytr), **kw)}
        if finetune_lr:
            before = {k: v.clone() for k, v in model.state_dict().items()}
            hist["finetune"] = train_joint(model, (xtr, ytr), **{**kw, "lr": finetune_lr})
            if hist["finetune"]["best_val_loss"] > hist["joint"]["best_val_loss"]:
                model.load_state_dict(before)  # no better than the first phase: keep it
                hist["finetune"]["kept"] = False
    if factors is not None:
        shift_head_biases(model, factors)
        hist["oversampling"] = {"rare_fraction": rare_fraction, "factors": factors}
    if enrichment is not None:
        shift_head_biases(model, enrichment)
        hist["enrichment"] = {"factors": enrichment, "n_train": len(enrich[0])}
    if tof_mismatch_fraction:
        hist["tof_mismatch"] = {"fraction": tof_mismatch_fraction}
    model.eval()
    return model, scaler, hist


def budget_policies(model: EarlyExitNet, val_inputs) -> tuple[dict[str, dict], dict]:
    """Confidence thresholds for 25/50/75% of the full network's FLOPs, and the whole
    fraction -> level curve (:class:`alice_dyn.nn.budget.TabulatedCalibrator`, for the run-time
    budgets), from calibration data."""
    cal = ThresholdCalibrator(model, val_inputs, ConfidencePolicy(0.0))
    out = {}
    for f in BUDGET_FRACTIONS:
        level = cal.level_for(f)
        p = cal.policy_at(level)
        calibration = cal.calibration(f, level)
        out[f"{round(f * 100)}"] = {**p.to_json(), "calibration": calibration}
    return out, cal.curve()


def save_pid_net(model, scaler: FeatureScaler, directory: str | Path, extra: dict) -> Path:
    return save_model(model, directory, extra_json={"feature_scaling": scaler.to_json(), **extra})


def load_saved_model(directory: str | Path) -> tuple[EarlyExitNet, dict]:
    """:func:`alice_dyn.nn.load_model` whose unusable directories (no ``config.json``, missing
    or altered weights) are the user's to fix: :class:`~alice_dyn.io.BadInputError`, one line
    naming the file."""
    try:
        return load_model(directory)
    except ModelFileError as exc:
        raise BadInputError(exc.path, None, exc.problem) from None


def load_pid_net(directory: str | Path) -> tuple[EarlyExitNet, FeatureScaler, dict]:
    """``(model, scaler, config)`` of a saved PID network (any of ``DIR/sdn``, ``DIR/ztw``,
    ``DIR/reuse``, ...; the scaler as stored, see :meth:`FeatureScaler.from_json`)."""
    model, cfg = load_saved_model(directory)
    return model, FeatureScaler.from_json(cfg["feature_scaling"]), cfg


@dataclass
class PIDNetPredictor:
    """A saved PID network as the ``pid-net`` stage and the CLI use it.

    ``model``: the early-exit network; ``config``: its ``config.json`` (thresholds, level
    curve, TOF-mismatch posterior). The feature scaling is internal: callers hand in AO2D
    columns (``O2track_iu``, ``O2trackextra``, ``O2pidtpc``, ``O2pidtof``) and, for the
    network on the track network's embedding, that embedding ``(n, d)``.
    """

    model: EarlyExitNet
    scaler: FeatureScaler
    config: dict

    @property
    def mismatch(self) -> TOFMismatchPosterior | None:
        """The model's TOF-mismatch posterior (None when it has none)."""
        return TOFMismatchPosterior.from_config(self.config)

    def dataset_from_columns(
        self, cols: Mapping[str, np.ndarray], embedding: np.ndarray | None = None
    ) -> PIDDataset:
        """The unlabelled tracks of AO2D columns ``cols`` (``n`` rows), with ``embedding``
        ``(n, d)`` when the network reads it (ignored otherwise)."""
        feats, masks = features_from_columns(cols)
        extra = {}
        group = self.scaler.embedding_group()
        if group is not None:
            n = len(masks["track"])
            if embedding is None:
                raise ValueError("this PID network reads the track network's embedding")
            emb = np.asarray(embedding, np.float32)
            if len(emb) != n:
                raise ValueError(f"the track embedding has {len(emb)} rows for {n} tracks")
            extra[group] = emb
        return PIDDataset.unlabelled(feats, masks, cols["fTPCInnerParam"], extra)

    def inputs_from_columns(
        self, cols: Mapping[str, np.ndarray], embedding: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        """The network's input tensors for AO2D columns (see :meth:`dataset_from_columns`)."""
        return self.scaler.tensors(self.dataset_from_columns(cols, embedding))

    def run_on_columns(
        self,
        cols: Mapping[str, np.ndarray],
        run: Callable[[dict[str, torch.Tensor]], ExitResult],
        *,
        embedding: np.ndarray | None = None,
        tof_mismatch: bool = True,
    ) -> MismatchResult:
        """``run`` (dynamic inference of one batch of inputs) on the tracks of ``cols``;
        ``tof_mismatch``: with the model's TOF-mismatch hypothesis when it has one
        (:func:`alice_dyn.pid.mismatch.run_with_mismatch`)."""
        ds = self.dataset_from_columns(cols, embedding)
        posterior = self.mismatch if tof_mismatch else None
        return run_with_mismatch(run, self.scaler.tensors(ds), ds, posterior)


def load_pid_predictor(
    model_dir: str | Path | None = None, *, reuse: bool = False
) -> PIDNetPredictor:
    """The network the ``pid-net`` stage runs from ``model_dir`` (default: the shipped one):
    ``DIR/sdn`` (:data:`PRIMARY`), or with ``reuse`` the one on the track network's embedding,
    ``DIR/reuse``."""
    directory = Path(model_dir or DEFAULT_MODEL_DIR) / (REUSE if reuse else PRIMARY)
    return PIDNetPredictor(*load_pid_net(directory))


@torch.no_grad()
def predict(
    model: EarlyExitNet,
    scaler: FeatureScaler,
    ds: PIDDataset,
    policy=None,
    mismatch: TOFMismatchPosterior | None = None,
):
    """``(probabilities (n, 5), exit index (n,), FLOPs per track (n,))``; no policy: the full
    network (last exit). ``mismatch``: with the TOF-mismatch hypothesis
    (:mod:`alice_dyn.pid.mismatch`; the FLOPs include the without-TOF pass)."""
    x = scaler.tensors(ds)
    if policy is None:
        policy = ConfidencePolicy(2.0)  # unreachable: everything goes to the last exit
    r = run_with_mismatch(lambda inp: run_dynamic(model, inp, policy), x, ds, mismatch)
    return r.probs, r.exit_index, r.flops
