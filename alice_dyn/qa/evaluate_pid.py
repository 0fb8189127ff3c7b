"""PID performance of the n-sigma decision (``O2pid.fPidNSigma``) against MC truth.

Layer: QA. Streams the RECO and truth files timeframe by timeframe with
:func:`alice_dyn.io.aod.iter_matched` (same matching and errors as the tracking evaluation)
into two mergeable accumulators (:mod:`alice_dyn.qa.accumulate`; :func:`pid_evaluation`):
:class:`PIDConfusion` and :class:`PIDHistograms`. Per species (e, mu, pi, K, p) and momentum
bin (``fTPCInnerParam``): efficiency = N(true s, identified s) / N(true s), purity = N(true s,
identified s) / N(identified s), binomial errors; the overall accuracy; the confusion matrix;
and the dE/dx-vs-p and beta-vs-p histograms for the plots.
Definitions in :data:`PID_DEFINITIONS` (also ``docs/evaluation.md``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from alice_dyn.io.aod import iter_matched
from alice_dyn.physics.particles import N_SPECIES_PID, SPECIES, species_index
from alice_dyn.qa.accumulate import Accumulator, Hist2D, bin_index, ratio
from alice_dyn.qa.evaluate_tracking import ETA_MAX
from alice_dyn.qa.truth import Evaluation, MatchedTracks

P_EDGES_GEV = (0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)
PID_SPECIES = SPECIES[:N_SPECIES_PID]  # e, mu, pi, K, p
TRUE_LABELS = (*PID_SPECIES, "other")  # "other": deuterons and unknown codes
DECISION_LABELS = ("none", *PID_SPECIES)  # fPidNSigma -1, 0..4
#: 2-D histograms kept for the plots (x log-spaced in p)
DEDX_HIST = {"x": (0.1, 10.0, 120), "y": (0.0, 300.0, 150)}
BETA_HIST = {"x": (0.2, 10.0, 120), "y": (0.2, 1.1, 180)}

PID_TABLES: dict[str, tuple[str, ...]] = {
    "O2track_iu": ("fSigned1Pt", "fTgl", "fFlags"),
    "O2trackextra": ("fTPCInnerParam", "fTPCSignal", "fTPCNClsFound", "fBeta", "fHasTOF"),
    "O2mctracklabel": ("fMcParticleId", "fMcMask"),
    "O2pid": ("fPidNSigma",),
}

PID_DEFINITIONS: dict[str, str] = {
    "selection": (
        f"good tracks (not looper legs, fMcParticleId >= 0, fMcMask & 0x8000 == 0) with "
        f"|eta| < {ETA_MAX} (eta from fTgl) and {P_EDGES_GEV[0]} <= fTPCInnerParam < "
        f"{P_EDGES_GEV[-1]} GeV/c; true species from the labelled particle's PDG code"
    ),
    "efficiency": "per species s and p bin: N(true s and fPidNSigma == s) / N(true s)",
    "purity": (
        "per species s and p bin: N(true s and fPidNSigma == s) / N(fPidNSigma == s) "
        "(deuterons identified as s count against the purity)"
    ),
    "errors": "binomial sqrt(x(1-x)/N) with N the denominator",
    "nsigma_accuracy": (
        "tracks of the five species (e, mu, pi, K, p) with fPidNSigma == true species / all "
        "of them (no decision counts as wrong); same as accuracy_all"
    ),
    "accuracy_with_decision": "same among the tracks with a decision (fPidNSigma >= 0)",
    "decision_fraction": "tracks of the five species with a decision / all of them",
    "accuracy_tpc_only / accuracy_with_tof": "nsigma_accuracy for tracks without / with fHasTOF",
    "confusion_matrix": "counts[true][decision], true in e, mu, pi, K, p, other; decision in "
    "none, e, mu, pi, K, p",
    "histograms": (
        "dedx_vs_p: fTPCSignal vs fTPCInnerParam of all main tracks with |eta| < 0.9; "
        "beta_vs_p: fBeta vs fTPCInnerParam of those with fHasTOF"
    ),
}


@dataclass
class PIDHistograms(Accumulator):
    """dE/dx vs p of main tracks in the acceptance and beta vs p of those with TOF (plots)."""

    dedx_vs_p: Hist2D = field(default_factory=lambda: Hist2D(DEDX_HIST["x"], DEDX_HIST["y"]))
    beta_vs_p: Hist2D = field(default_factory=lambda: Hist2D(BETA_HIST["x"], BETA_HIST["y"]))

    def add(self, m: MatchedTracks) -> None:
        reco = m.reco
        eta = np.arcsinh(reco["fTgl"].astype(np.float64))
        pin = reco["fTPCInnerParam"].astype(np.float64)
        has_tof = reco["fHasTOF"].astype(np.int64) != 0
        inacc = m.classes["main"] & (np.abs(eta) < ETA_MAX)
        self.dedx_vs_p.fill(pin[inacc], reco["fTPCSignal"][inacc])
        self.beta_vs_p.fill(pin[inacc & has_tof], reco["fBeta"][inacc & has_tof])

    def result(self) -> dict:
        return {
            "histograms": {
                "dedx_vs_p": self.dedx_vs_p.to_dict(),
                "beta_vs_p": self.beta_vs_p.to_dict(),
            }
        }


def _accuracy(cm: np.ndarray) -> dict:
    """Accuracy of the decision for the five species of the confusion matrix ``cm`` ``(p bin,
    true, decision)``."""
    five = cm[:, :N_SPECIES_PID, :].sum(axis=0)  # true 0-4 x decision
    n_all = int(five.sum())
    n_dec = int(five[:, 1:].sum())
    n_ok = int(sum(five[s, s + 1] for s in range(N_SPECIES_PID)))
    a, da = ratio(n_ok, n_all)
    ad, dad = ratio(n_ok, n_dec)
    f, _ = ratio(n_dec, n_all)
    return {
        "n": n_all, "n_with_decision": n_dec, "n_correct": n_ok, "accuracy_all": a,
        "accuracy_all_err": da, "accuracy_with_decision": ad,
        "accuracy_with_decision_err": dad, "decision_fraction": f,
    }  # fmt: skip


def _species_summary(conf: np.ndarray, s: int, p_edges: tuple[float, ...]) -> dict:
    """Efficiency and purity of species ``s`` in total and per p bin."""
    n_true = conf[:, s, :].sum(axis=1)
    n_id = conf[:, :, s + 1].sum(axis=1)
    n_ok = conf[:, s, s + 1]
    bins = []
    for i in range(len(p_edges) - 1):
        e, de = ratio(n_ok[i], n_true[i])
        pu, dpu = ratio(n_ok[i], n_id[i])
        bins.append(
            {"p_lo": p_edges[i], "p_hi": p_edges[i + 1],
             "n_true": int(n_true[i]), "n_identified": int(n_id[i]),
             "n_correct": int(n_ok[i]), "efficiency": e, "efficiency_err": de,
             "purity": pu, "purity_err": dpu}
        )  # fmt: skip
    e, de = ratio(n_ok.sum(), n_true.sum())
    pu, dpu = ratio(n_ok.sum(), n_id.sum())
    return {
        "n_true": int(n_true.sum()),
        "n_identified": int(n_id.sum()),
        "n_correct": int(n_ok.sum()),
        "efficiency": e,
        "efficiency_err": de,
        "purity": pu,
        "purity_err": dpu,
        "vs_p": bins,
    }


@dataclass
class PIDConfusion(Accumulator):
    """The confusion matrix ``(p bin, true: 5 species + other, decision: none + 5 species)`` of
    the selected tracks, and its part with fHasTOF: accuracies, efficiencies, purities."""

    p_edges: tuple[float, ...] = P_EDGES_GEV
    n_timeframes: int = 0
    n_tracks: int = 0
    confusion: np.ndarray = field(init=False)
    confusion_tof: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        shape = (len(self.p_edges) - 1, len(TRUE_LABELS), len(DECISION_LABELS))
        self.confusion = np.zeros(shape, np.int64)
        self.confusion_tof = np.zeros_like(self.confusion)

    def add(self, m: MatchedTracks) -> None:
        reco = m.reco
        self.n_timeframes += 1
        self.n_tracks += len(reco)
        eta = np.arcsinh(reco["fTgl"].astype(np.float64))
        b = bin_index(reco["fTPCInnerParam"].astype(np.float64), self.p_edges)
        sel = m.classes["good"] & (np.abs(eta) < ETA_MAX) & (b >= 0)
        has_tof = reco["fHasTOF"].astype(np.int64) != 0
        label = reco["fMcParticleId"][sel]
        true = species_index(m.tf.particles.pdg)[label].astype(np.int64)
        true = np.where((true >= 0) & (true < N_SPECIES_PID), true, N_SPECIES_PID)
        dec = reco["fPidNSigma"][sel].astype(np.int64)
        dec = np.where((dec >= 0) & (dec < N_SPECIES_PID), dec, -1) + 1
        np.add.at(self.confusion, (b[sel], true, dec), 1)
        t = has_tof[sel]
        np.add.at(self.confusion_tof, (b[sel][t], true[t], dec[t]), 1)

    def result(self) -> dict:
        conf = self.confusion
        acc = _accuracy(conf)
        return {
            "nsigma_accuracy": acc["accuracy_all"],
            "nsigma_accuracy_err": acc["accuracy_all_err"],
            **acc,
            "accuracy_tpc_only": _accuracy(conf - self.confusion_tof)["accuracy_all"],
            "accuracy_with_tof": _accuracy(self.confusion_tof)["accuracy_all"],
            "n_timeframes": self.n_timeframes,
            "n_tracks": self.n_tracks,
            "n_selected": int(conf.sum()),
            "n_other_species": int(conf[:, N_SPECIES_PID, :].sum()),
            "species": list(PID_SPECIES),
            "p_edges": list(self.p_edges),
            "per_species": {
                name: _species_summary(conf, s, self.p_edges) for s, name in enumerate(PID_SPECIES)
            },
            "confusion_matrix": {
                "true": list(TRUE_LABELS),
                "decision": list(DECISION_LABELS),
                "counts": conf.sum(axis=0).tolist(),
            },
        }


class PIDEvaluation(Evaluation):
    """Every PID accumulator (:func:`pid_evaluation`); :meth:`result` assembles the JSON-ready
    result of :func:`evaluate_pid` (without the file names)."""

    def result(self) -> dict:
        return {**self.part_results(), "definitions": dict(PID_DEFINITIONS)}


def pid_evaluation(p_edges: tuple[float, ...] = P_EDGES_GEV) -> PIDEvaluation:
    """An empty PID evaluation (``p_edges``: GeV/c); ``add(reco, tf)`` per timeframe, ``+`` to
    merge, ``result()``."""
    return PIDEvaluation({"confusion": PIDConfusion(p_edges), "histograms": PIDHistograms()})


def evaluate_pid(reco_path: str | os.PathLike[str], truth_path: str | os.PathLike[str]) -> dict:
    """PID performance of ``O2pid.fPidNSigma`` in ``reco_path`` against ``truth_path``.

    Returns a JSON-ready dict (keys in ``docs/evaluation.md``). Raises
    :class:`alice_dyn.io.BadInputError` naming the file and timeframe when the files do not
    belong together.
    """
    ev = pid_evaluation()
    for reco, tf in iter_matched(reco_path, truth_path, PID_TABLES):
        ev.add(reco, tf)
    out = ev.result()
    out["reco_file"], out["truth_file"] = os.fspath(reco_path), os.fspath(truth_path)
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def format_pid(result: dict) -> str:
    """Accuracy and per-species efficiency/purity tables of :func:`evaluate_pid`'s result."""
    r = result
    lines = [
        f"PID performance (n-sigma decision): {r['n_timeframes']} timeframes, "
        f"{r['n_selected']} selected tracks of {r['n_tracks']}",
        f"  accuracy (all)            {_pct(r['accuracy_all'])}",
        f"  accuracy (with decision)  {_pct(r['accuracy_with_decision'])}   "
        f"decision for {_pct(r['decision_fraction'])}",
        f"  accuracy TPC only / +TOF  {_pct(r['accuracy_tpc_only'])} / "
        f"{_pct(r['accuracy_with_tof'])}",
        "",
        "  species  n_true  efficiency  purity",
    ]
    for name, s in r["per_species"].items():
        lines.append(
            f"  {name:7s} {s['n_true']:7d}  {_pct(s['efficiency']):>10s}  {_pct(s['purity']):>6s}"
        )
    edges = r["p_edges"]
    head = "  p (GeV/c)  " + "".join(f"{n + ' eff/pur':>16s}" for n in r["per_species"])
    lines += ["", head]
    for i in range(len(edges) - 1):
        cells = "".join(
            f"{_pct(s['vs_p'][i]['efficiency']):>8s}/{_pct(s['vs_p'][i]['purity']):<7s}"
            for s in r["per_species"].values()
        )
        lines.append(f"  {edges[i]:4.1f}-{edges[i + 1]:<4.1f}  {cells}")
    cm = r["confusion_matrix"]
    lines += ["", "  confusion (rows true, columns decision): " + " ".join(cm["decision"])]
    for name, row in zip(cm["true"], cm["counts"], strict=True):
        lines.append(f"  {name:6s} " + " ".join(f"{v:7d}" for v in row))
    return "\n".join(lines)
