"""The TOF-mismatch hypothesis in the PID network's posterior.

Layer: PID. A TOF match can be a mismatch: the hit of another particle (a few % of the matched
tracks, more at high occupancy). Its time is then unrelated to the track's species, and a
network that trusts it assigns a confident, wrong species (an electron whose mismatched TOF
time is 10 sigma from every hypothesis gets P(e) ~ 0.001 although its TPC dE/dx is plainly an
electron's). As ALICE's Bayesian PID does with its TOF response (a Gaussian plus a mismatch
term), the network's probabilities are combined with the mismatch hypothesis:

    P(s | x) = (1 - w) P(s | x) + w P(s | x without TOF),
    w = c / (c + L),  L = sum_s P(s | x without TOF) phi(n_s)

with ``phi`` the standard normal density of the track's TOF n-sigma ``n_s`` for hypothesis s
(``L``: the predictive density of the TOF measurement, in sigma units, if the match is right)
and ``c`` = mismatch probability x the density of a mismatched hit's time per sigma near the
track's expected times (``density``). ``P(s | x without TOF)`` comes from the same network with
the TOF group marked absent (one model serves every detector subset). Both passes run as ONE
batch: the tracks whose TOF is consistent with no hypothesis within ``gate_nsigma`` are
appended once more with their TOF removed (a few % of the TOF tracks), so the early exits, the
compute accounting and a run-time budget see the real cost. The other tracks keep the
network's probabilities (for them ``w`` is small unless the TPC contradicts a TOF time that
fits some hypothesis: a disagreement the network itself has learnt to weigh).

``c`` is a property of the data (occupancy, run period), measured on the training split as
ALICE measures its mismatch background, from the sidebands: the TOF tracks whose n-sigma for
their true species is 5-9.5 (:func:`sideband_density`; about 4e-4 per sigma in the simulated
Pb-Pb data, with 1.9% of the TOF tracks beyond 5 sigma). It is stored in every network's
``config.json`` under ``"tof_mismatch_posterior"``; a model without it is used as it is. (A
negative log-likelihood fit of ``c`` on the ~300 gated tracks of the calibration split was
tried first: its optimum went from the top of a 1e-8 .. 3e-2 grid on the calibration half to
the bottom on the validation half.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from alice_dyn.nn import ExitResult
from alice_dyn.pid.dataset import GROUPS, NSIGMA_CLIP, PIDDataset

CONFIG_KEY = "tof_mismatch_posterior"
#: the five TOF n-sigma columns of the ``tof`` feature group (stored clipped and / 5)
TOF_NSIGMA_SLICE = slice(
    GROUPS["tof"].index("nsigma_tof_El"), GROUPS["tof"].index("nsigma_tof_Pr") + 1
)
GATE_NSIGMA = 3.0
#: |n-sigma of the true species| range that measures the mismatch density (below the clip)
SIDEBAND_NSIGMA = (5.0, 9.5)


@dataclass(frozen=True)
class TOFMismatchPosterior:
    """``density``: ``c`` of the module docstring (per sigma); ``gate_nsigma``: tracks whose
    TOF n-sigma are all beyond it get the without-TOF pass."""

    density: float
    gate_nsigma: float = GATE_NSIGMA

    def to_json(self) -> dict:
        return {"density": self.density, "gate_nsigma": self.gate_nsigma}

    @classmethod
    def from_config(cls, config: dict) -> TOFMismatchPosterior | None:
        """From a model's ``config.json`` (None when the model has none)."""
        d = config.get(CONFIG_KEY)
        return None if d is None else cls(float(d["density"]), float(d["gate_nsigma"]))


def tof_nsigma(ds: PIDDataset) -> np.ndarray:
    """``(n, 5)`` TOF n-sigma of e, mu, pi, K, p (clipped to +-10; 0 without TOF)."""
    return ds.features["tof"][:, TOF_NSIGMA_SLICE].astype(np.float64) * (NSIGMA_CLIP / 2)


def gated(
    ds: PIDDataset, gate_nsigma: float = GATE_NSIGMA, nsigma: np.ndarray | None = None
) -> np.ndarray:
    """``(n,)`` bool: a TOF match consistent with no hypothesis within ``gate_nsigma``
    (``nsigma``: :func:`tof_nsigma` of ``ds`` when already at hand)."""
    ns = tof_nsigma(ds) if nsigma is None else nsigma
    return ds.masks["tof"] & (np.abs(ns).min(axis=1) > gate_nsigma)


def without_tof(x: dict[str, Tensor]) -> dict[str, Tensor]:
    """The network's inputs with the TOF group marked absent."""
    return {**x, "tof": torch.zeros_like(x["tof"]), "tof_mask": torch.zeros_like(x["tof_mask"])}


def append_without_tof(x: dict[str, Tensor], rows: np.ndarray) -> dict[str, Tensor]:
    """One batch: every track as it is, then the tracks ``rows`` once more without TOF."""
    idx = torch.as_tensor(rows, dtype=torch.long)
    extra = without_tof({k: v.index_select(0, idx) for k, v in x.items()})
    return {k: torch.cat([v, extra[k]]) for k, v in x.items()}


def mismatch_weight(p_without: np.ndarray, nsigma: np.ndarray, density: float) -> np.ndarray:
    """``(n,)`` posterior probability of a mismatch ``w`` from ``P(s | x without TOF)``
    ``(n, 5)`` and the TOF n-sigma ``(n, 5)``."""
    like = np.sum(p_without * np.exp(-0.5 * nsigma**2), axis=1) / np.sqrt(2 * np.pi)
    return density / (density + like)


def combine(
    p_with: np.ndarray, p_without: np.ndarray, nsigma: np.ndarray, density: float
) -> np.ndarray:
    """``(n, 5)`` probabilities with the mismatch hypothesis (module docstring)."""
    w = mismatch_weight(p_without, nsigma, density)[:, None]
    return (1.0 - w) * p_with + w * p_without


@dataclass
class MismatchResult:
    """Per track: ``probs (n, 5)``, ``exit_index (n,)`` (of the pass with TOF), ``flops (n,)``
    (both passes), ``mismatch_weight (n,)`` (0 for tracks not gated); ``result``: the batch's
    :class:`ExitResult` (``n`` + gated rows)."""

    probs: np.ndarray
    exit_index: np.ndarray
    flops: np.ndarray
    mismatch_weight: np.ndarray
    result: ExitResult


def run_with_mismatch(
    run: Callable[[dict[str, Tensor]], ExitResult],
    x: dict[str, Tensor],
    ds: PIDDataset,
    posterior: TOFMismatchPosterior | None,
) -> MismatchResult:
    """``run`` (dynamic inference of one batch) on ``x`` (the tensors of ``ds``) and, for the
    gated tracks, without TOF in the same batch; probabilities combined. No posterior: the
    network as it is."""
    n = len(ds)
    ns = tof_nsigma(ds) if posterior else None
    rows = np.flatnonzero(gated(ds, posterior.gate_nsigma, ns)) if posterior else np.zeros(0, int)
    res = run(append_without_tof(x, rows) if len(rows) else x)
    probs = torch.softmax(res.outputs.float(), dim=1).cpu().numpy().astype(np.float64)
    flops = res.flops.cpu().numpy()
    exits = res.exit_index.cpu().numpy()
    p, fl, w = probs[:n], flops[:n].copy(), np.zeros(n)
    if len(rows):
        fl[rows] += flops[n:]
        w[rows] = mismatch_weight(probs[n:], ns[rows], posterior.density)
        p = p.copy()
        p[rows] = (1.0 - w[rows, None]) * p[rows] + w[rows, None] * probs[n:]
    return MismatchResult(p.astype(np.float32), exits[:n], fl, w, res)


def sideband_density(
    ds: PIDDataset,
    sideband: tuple[float, float] = SIDEBAND_NSIGMA,
    gate_nsigma: float = GATE_NSIGMA,
) -> tuple[TOFMismatchPosterior, dict]:
    """The mismatch density ``c`` measured on labelled tracks ``ds`` (the training split): the
    TOF-matched tracks whose TOF n-sigma for their TRUE species lies in the sidebands
    ``sideband[0] <= |n| < sideband[1]`` (far beyond the Gaussian of right matches, below the
    clip at 10: mismatches, flat in n over such a range), per TOF track and per unit of n
    (both sides: width ``2 (sideband[1] - sideband[0])``). A count, so it is stable where a
    fit on the few hundred gated tracks is not; and the summary (counts, the fraction of TOF
    tracks beyond ``sideband[0]``)."""
    tof = ds.masks["tof"]
    n_tof = int(tof.sum())
    if n_tof == 0:
        raise ValueError("no TOF-matched track with a label: cannot measure the mismatch density")
    own = np.abs(tof_nsigma(ds)[tof][np.arange(n_tof), ds.labels[tof]])
    lo, hi = sideband
    k = int(np.sum((own >= lo) & (own < hi)))
    info = {
        "method": "sideband",
        "sideband_nsigma": [lo, hi],
        "n_tof": n_tof,
        "n_sideband": k,
        "fraction_beyond_sideband_start": float(np.mean(own >= lo)),
    }
    return TOFMismatchPosterior(k / (n_tof * 2.0 * (hi - lo)), gate_nsigma), info


def mismatch_config(ds: PIDDataset) -> dict:
    """The ``config.json`` block (:data:`CONFIG_KEY`) of a network trained on ``ds``: the
    posterior's settings and what :func:`sideband_density` measured."""
    posterior, measured = sideband_density(ds)
    return {**posterior.to_json(), "measured": measured}
