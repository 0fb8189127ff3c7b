"""Incremental PID: update a first (TPC-only) prediction when TOF/TRD arrive, from its cache.

Layer: PID. In the reconstruction the TPC track exists before the outer detectors are matched:
a first PID pass can run on the track and TPC groups alone, and later TOF and TRD information
arrives for some tracks. Recomputing the whole network for them repeats the stem and every
block. Instead the first pass keeps, per track, the embedding ``h`` at the exit it left
(``run_dynamic(..., keep_embedding=True)``) and the exit index; :class:`IncrementalPIDUpdate`
then produces the updated prediction from

``z = LayerNorm(h) + late(tof, trd) + depth[exit]``  ->  one residual block  ->  head,

where ``late`` embeds the newly arrived groups (with presence masks, a learned "missing"
embedding otherwise, as the network's own stem) and ``depth`` tells the update which exit
``h`` comes from. Its cost is one block of the network instead of the stem and all six:
:func:`update_cost` measures both from the layers. The update is trained on the frozen
network: cross-entropy on the labels plus distillation from the same network run with every
detector (the prediction a full recomputation would give).

Files: ``incremental/model.safetensors`` + ``incremental/config.json`` beside the network.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from alice_dyn.nn import (
    ConfidencePolicy,
    EarlyExitNet,
    ExitHead,
    ExitPolicy,
    GroupStem,
    ResidualMLPBlock,
    module_flops,
    run_dynamic,
    take,
)
from alice_dyn.nn.flops import exit_flops_for
from alice_dyn.pid.dataset import GROUPS, PIDDataset
from alice_dyn.pid.mismatch import (
    TOFMismatchPosterior,
    append_without_tof,
    combine,
    gated,
    tof_nsigma,
)
from alice_dyn.pid.network import N_CLASSES, FeatureScaler

#: the detector groups that arrive after the TPC track (matched later in the chain)
LATE_GROUPS = ("tof", "trd")
FORMAT = "alice_dyn.pid.incremental/1"


class IncrementalPIDUpdate(nn.Module):
    """Updated class logits ``(n, 5)`` from a cached embedding ``h (n, d)``, its exit index
    ``(n,)`` and the late detector groups (dict ``tof``, ``tof_mask``, ``trd``, ``trd_mask``)."""

    def __init__(self, d: int, num_exits: int, late_groups: dict[str, int], expansion: float = 2.0):
        super().__init__()
        self.d, self.num_exits = int(d), int(num_exits)
        self.late_groups = {k: int(v) for k, v in late_groups.items()}
        self.norm = nn.LayerNorm(d)
        self.late = GroupStem(self.late_groups, d)
        self.depth = nn.Embedding(num_exits, d)
        self.block = ResidualMLPBlock(d, expansion=expansion)
        self.head = ExitHead(d, N_CLASSES)

    def forward(self, h: Tensor, exit_index: Tensor, late: dict[str, Tensor]) -> Tensor:
        z = self.norm(h) + self.late(late) + self.depth(exit_index)
        return self.head(self.block(z))

    def flops(self, args: tuple, output: Tensor) -> int:
        """Own operations: the two additions forming ``z``."""
        return 2 * output.shape[0] * self.d

    def config(self) -> dict:
        return {"d": self.d, "num_exits": self.num_exits, "late_groups": self.late_groups}


def tpc_only(x: dict[str, Tensor]) -> dict[str, Tensor]:
    """The network's inputs with the late groups marked absent (what the first pass sees)."""
    out = dict(x)
    for g in LATE_GROUPS:
        out[g] = torch.zeros_like(x[g])
        out[g + "_mask"] = torch.zeros_like(x[g + "_mask"])
    return out


def late_inputs(x: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: x[k] for g in LATE_GROUPS for k in (g, g + "_mask")}


@torch.no_grad()
def first_pass(model: EarlyExitNet, x: dict[str, Tensor], policy: ExitPolicy | None = None):
    """The TPC-only pass: ``ExitResult`` with the embeddings kept (no policy: full depth)."""
    policy = policy or ConfidencePolicy(2.0)
    return run_dynamic(model, tpc_only(x), policy, keep_embedding=True)


@torch.no_grad()
def _cached_embeddings(model: EarlyExitNet, x: dict[str, Tensor]) -> Tensor:
    """``(n, num_exits, d)``: the TPC-only embedding at every exit."""
    inter = list(model.forward_intermediates(tpc_only(x)))
    return torch.stack([inter[k] for k in model.exit_after], dim=1)


def train_incremental(
    model: EarlyExitNet,
    scaler: FeatureScaler,
    train: PIDDataset,
    val: PIDDataset,
    *,
    seed: int = 1,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 2e-3,
    temperature: float = 2.0,
) -> tuple[IncrementalPIDUpdate, dict]:
    """Train the update on the frozen ``model``: each track's cached embedding comes from a
    random exit every epoch; loss = CE(labels) + T² KL(full-information network || update)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    d = model.blocks[0].fc2.out_features
    upd = IncrementalPIDUpdate(d, model.num_exits, {g: len(GROUPS[g]) for g in LATE_GROUPS})

    def prepare(ds: PIDDataset):
        x = scaler.tensors(ds)
        with torch.no_grad():
            teacher = model(x, mode="one", exit=model.num_exits - 1)
        return _cached_embeddings(model, x), late_inputs(x), teacher, torch.as_tensor(ds.labels)

    h_tr, late_tr, t_tr, y_tr = prepare(train)
    h_va, late_va, _, y_va = prepare(val)
    opt = torch.optim.AdamW(upd.parameters(), lr=lr, weight_decay=1e-2)
    n, n_ex = len(y_tr), model.num_exits
    history, best, best_state, t0 = [], -1.0, None, time.perf_counter()
    for epoch in range(epochs):
        upd.train()
        perm = torch.randperm(n, generator=gen)
        ex_all = torch.randint(0, n_ex, (n,), generator=gen)
        for s in range(0, n, batch_size):
            b = perm[s : s + batch_size]
            ex = ex_all[b]
            logits = upd(h_tr[b, ex], ex, {k: v[b] for k, v in late_tr.items()})
            kd = F.kl_div(
                F.log_softmax(logits / temperature, -1),
                F.log_softmax(t_tr[b] / temperature, -1),
                log_target=True,
                reduction="batchmean",
            )
            loss = F.cross_entropy(logits, y_tr[b]) + temperature**2 * kd
            opt.zero_grad()
            loss.backward()
            opt.step()
        upd.eval()
        with torch.no_grad():
            accs = [
                float((upd(h_va[:, e], torch.full_like(y_va, e), late_va).argmax(1) == y_va)
                      .float().mean())
                for e in range(n_ex)
            ]  # fmt: skip
        history.append({"epoch": epoch, "val_accuracy_per_exit": accs})
        if np.mean(accs) > best:
            best = float(np.mean(accs))
            best_state = {k: v.clone() for k, v in upd.state_dict().items()}
    upd.load_state_dict(best_state)
    upd.eval()
    return upd, {"history": history, "seconds": time.perf_counter() - t0, "best": best}


def save_incremental(upd: IncrementalPIDUpdate, directory: str | Path, extra: dict) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in upd.state_dict().items()}, str(d / "model.safetensors")
    )
    doc = {"format": FORMAT, "config": upd.config(), **extra}
    (d / "config.json").write_text(json.dumps(doc, indent=1) + "\n")
    return d


def load_incremental(directory: str | Path) -> IncrementalPIDUpdate:
    d = Path(directory)
    doc = json.loads((d / "config.json").read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{d}: not an incremental PID update (format {doc.get('format')!r})")
    upd = IncrementalPIDUpdate(**doc["config"])
    upd.load_state_dict(load_file(str(d / "model.safetensors")), strict=True)
    return upd.eval()


@torch.no_grad()
def update(upd: IncrementalPIDUpdate, first, x: dict[str, Tensor]) -> Tensor:
    """Updated probabilities ``(n, 5)`` from a :func:`first_pass` result and the inputs."""
    return torch.softmax(upd(first.embedding, first.exit_index, late_inputs(x)), dim=1)


@torch.no_grad()
def update_with_mismatch(
    upd: IncrementalPIDUpdate,
    first,
    x: dict[str, Tensor],
    ds: PIDDataset,
    posterior: TOFMismatchPosterior | None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`update` with the network's TOF-mismatch hypothesis (:mod:`alice_dyn.pid.mismatch`):
    for the tracks whose TOF fits no species within the posterior's gate, the update runs once
    more from the same cached embedding with the TOF group marked absent (TRD as it arrived),
    in the same batch, and the two are combined as the full network's passes are. Returns the
    probabilities ``(n, 5)`` and the rows ``(n,)`` bool that took the second update (none
    without a posterior: the update as it is)."""
    n = len(ds)
    rows = np.zeros(n, dtype=bool)
    if posterior is not None:
        ns = tof_nsigma(ds)
        rows = gated(ds, posterior.gate_nsigma, ns)
    r = np.flatnonzero(rows)
    inp = {**late_inputs(x), "h": first.embedding, "exit": first.exit_index}
    if len(r):  # the gated rows once more, TOF marked absent (h and exit as they are)
        inp = append_without_tof(inp, r)
    late = {k: inp[k] for k in late_inputs(x)}
    probs = torch.softmax(upd(inp["h"], inp["exit"], late), dim=1).numpy().astype(np.float64)
    p = probs[:n]
    if len(r):
        p = p.copy()
        p[r] = combine(p[r], probs[n:], ns[r], posterior.density)
    return p.astype(np.float32), rows


def update_cost(model: EarlyExitNet, upd: IncrementalPIDUpdate, x: dict[str, Tensor]) -> dict:
    """FLOPs per track of the update, of a full pass of the network (stem, blocks, last head)
    and their ratio, counted from the layers on the first rows of ``x``."""
    one = take(x, torch.arange(1))
    h = torch.zeros(1, upd.d)
    ex = torch.zeros(1, dtype=torch.long)
    f_upd = module_flops(upd, lambda: upd(h, ex, late_inputs(one)), 1)
    full = exit_flops_for(model, one).full_flops
    return {"update_flops": f_upd, "full_pass_flops": full, "ratio": f_upd / full}
