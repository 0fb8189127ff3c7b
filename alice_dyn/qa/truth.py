"""MC truth of reconstructed tracks: the particles' kinematics and the track classes.

Layer: QA. For one ``DF_<n>`` of an AO2D-like file and its simulated timeframe
(:func:`alice_dyn.io.aod.iter_matched`): per MC particle the true kinematics
(:class:`TruthKinematics`), per track the classes of ``docs/evaluation.md`` (:func:`track_classes`:
looper leg, main, fake, good, primary, clone, rejected) and :class:`MatchedTracks`, which holds
both and the truth seen from each track, computed once and shared by every accumulator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.event.tracks import LOOPER_LEG, REJECTED
from alice_dyn.io.aod import RecoTimeframe
from alice_dyn.physics.particles import species_index
from alice_dyn.qa.accumulate import Accumulator
from alice_dyn.reco.mc_labels import MC_MASK_FAKE, primary_and_clones

# --- AOD conventions (docs/aod_schema.md) ---------------------------------------------------------
FLAG_LOOPER_LEG = LOOPER_LEG  # 0x2: a later leg of a particle that has its own main track
FLAG_REJECTED = REJECTED  # 0x4: rejected as fake by a later stage


@dataclass
class TruthKinematics:
    """Per MC particle ``(n_mc,)``: pT, p (GeV/c), eta at the vertex, species index (-1
    unknown), charge (e)."""

    pt: np.ndarray
    p: np.ndarray
    eta: np.ndarray
    species: np.ndarray
    charge: np.ndarray

    @classmethod
    def of(cls, tf: Timeframe) -> TruthKinematics:
        mc = tf.particles
        px, py, pz = (np.asarray(a, np.float64) for a in (mc.px_gev, mc.py_gev, mc.pz_gev))
        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(np.where(pt > 0, pz / pt, np.sign(pz) * np.inf))
        return cls(pt, np.hypot(pt, pz), eta, species_index(mc.pdg), np.asarray(mc.charge))


def track_classes(reco: RecoTimeframe) -> dict[str, np.ndarray]:
    """Boolean masks ``(n_tracks,)`` ``looper``, ``main``, ``fake``, ``good``, ``primary``,
    ``clone``, ``rejected`` (``fTPCNClsFound``, when read, picks the primary of a particle)."""
    label = reco["fMcParticleId"]
    flags = reco["fFlags"].astype(np.int64)
    looper = (flags & FLAG_LOOPER_LEG) != 0
    fake = (label < 0) | ((reco["fMcMask"].astype(np.int64) & MC_MASK_FAKE) != 0)
    main = ~looper
    good = main & ~fake
    ncls = reco.columns.get("fTPCNClsFound", np.zeros(len(label), np.int64))
    primary, clone = primary_and_clones(label, good, ncls)
    rejected = (flags & FLAG_REJECTED) != 0
    return dict(
        looper=looper, main=main, fake=fake, good=good, primary=primary, clone=clone,
        rejected=rejected,
    )  # fmt: skip


class MatchedTracks:
    """One RECO timeframe and its truth, with the quantities every accumulator shares (each
    computed on first use, then kept): :attr:`kin`, :attr:`classes` and the truth of each
    track's particle (:meth:`at_label`, :attr:`pt_true`, ...). Per-track arrays are
    ``(n_tracks,)``, per-particle arrays ``(n_mc,)``."""

    def __init__(self, reco: RecoTimeframe, tf: Timeframe) -> None:
        self.reco = reco
        self.tf = tf
        self.label = reco["fMcParticleId"]
        self.n_mc = len(tf.particles)
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[MatchedTracks], Any]) -> Any:
        """``compute(self)``, computed once per ``key`` (quantities two accumulators share)."""
        if key not in self._memo:
            self._memo[key] = compute(self)
        return self._memo[key]

    @functools.cached_property
    def kin(self) -> TruthKinematics:
        return TruthKinematics.of(self.tf)

    @functools.cached_property
    def classes(self) -> dict[str, np.ndarray]:
        return track_classes(self.reco)

    def at_label(self, values: np.ndarray, fill) -> np.ndarray:
        """``values`` ``(n_mc,)`` of each track's particle (``fill`` for tracks without a
        label)."""
        label = self.label
        out = np.full(len(label), fill, dtype=np.result_type(values, np.asarray(fill)))
        ok = label >= 0
        out[ok] = values[label[ok]]
        return out

    @functools.cached_property
    def pt_true(self) -> np.ndarray:
        return self.at_label(self.kin.pt, np.nan)

    @functools.cached_property
    def p_true(self) -> np.ndarray:
        return self.at_label(self.kin.p, np.nan)

    @functools.cached_property
    def eta_true(self) -> np.ndarray:
        return self.at_label(self.kin.eta, np.nan)

    @functools.cached_property
    def species_true(self) -> np.ndarray:
        """Species index of each track's particle (-1: none or unknown)."""
        return self.at_label(self.kin.species, -1)

    @functools.cached_property
    def pt_reco(self) -> np.ndarray:
        """1/|fSigned1Pt| (GeV/c, float64; inf for 0)."""
        with np.errstate(divide="ignore"):
            return 1.0 / np.abs(self.reco["fSigned1Pt"].astype(np.float64))


@dataclass
class Evaluation(Accumulator):
    """Accumulators (``parts``, name -> accumulator with ``add(MatchedTracks)`` and
    ``result() -> dict``) fed the same timeframes; ``+`` merges them part by part."""

    parts: dict[str, Any]

    def add(self, reco: RecoTimeframe, tf: Timeframe) -> None:
        """Add one RECO timeframe and its truth to every part."""
        m = MatchedTracks(reco, tf)
        for part in self.parts.values():
            part.add(m)

    def part_results(self) -> dict:
        """The union of the parts' results."""
        out: dict = {}
        for part in self.parts.values():
            out.update(part.result())
        return out


__all__ = [
    "FLAG_LOOPER_LEG",
    "FLAG_REJECTED",
    "Evaluation",
    "MatchedTracks",
    "TruthKinematics",
    "track_classes",
]
