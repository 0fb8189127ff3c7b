"""Tracking performance of a reconstruction output (AO2D-like ``DF_<n>`` folders) against MC truth.

Layer: QA (reads files through :mod:`alice_dyn.io.aod`; computes no reconstruction). The RECO
file is the one written by ``alice-dyn run tpc-reco`` (``docs/aod_schema.md``); the truth is the
simulation file it was made from (``docs/io_schema.md``).

The evaluation is a set of small mergeable accumulators, one per observable (coffea's way;
:mod:`alice_dyn.qa.accumulate`): :class:`TrackCounts` (fake, clone, looper-leg rates),
:class:`Efficiency`, :class:`FakeCloneVsPt`, :class:`ChargeMisid`, :class:`PtResolution`,
:class:`DedxResolution`, :class:`TofMatching`, :class:`TofAgreement` and
:class:`TofBetaResolution`. Each takes a timeframe (:class:`~alice_dyn.qa.truth.MatchedTracks`)
in ``add``, merges with ``+`` and gives its keys of the result in ``result()``;
:func:`tracking_evaluation` bundles them, so partial evaluations (of separate processes, Dask
partitions) sum to the one of the whole file. Both files are streamed timeframe by timeframe
and distributions kept in fixed, fine histograms, so memory does not grow with the number of
timeframes. Every quantity is defined in :data:`TRACKING_DEFINITIONS` (also in
``docs/evaluation.md`` and in the result's ``"definitions"``).

Typical use::

    result = evaluate_tracking("AO2D.root", "sim.root")
    print(format_tracking(result))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from alice_dyn.io.aod import iter_matched
from alice_dyn.physics.particles import MASSES_GEV, SPECIES
from alice_dyn.qa.accumulate import Accumulator, Dist, bin_counts, bin_index, num, ratio
from alice_dyn.qa.truth import Evaluation, MatchedTracks

# --- selections -----------------------------------------------------------------------------------
ETA_MAX = 0.9
FINDABLE_PT_MIN_GEV = 0.1
FINDABLE_MIN_CLUSTERS = 70
EFFICIENCY_PT_MIN_GEV = 0.3  # the headline efficiency: findable particles above this pT
PT_EDGES_GEV = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
RES_WINDOW_GEV = (0.9, 1.1)  # relative pT resolution "at 1 GeV/c"
PROTON_P_MIN_GEV = 0.5  # protons below: energy loss before the TPC biases pT, excluded
DEDX_P_WINDOW_GEV = (0.4, 0.6)  # pions near minimum ionisation (fTPCInnerParam)
DEDX_MIN_CLUSTERS = 100
TOF_P_WINDOW_GEV = (1.0, 1.5)  # pions for the beta resolution (true momentum)
TOF_SIGMA_PS = 80.0  # TOF time resolution assumed by the agreement test
TOF_AGREE_NSIGMA = 5.0

PION, PROTON = SPECIES.index("pi"), SPECIES.index("p")

TRACKING_DEFINITIONS: dict[str, str] = {
    "track classes": (
        "looper leg: fFlags & 0x2; main track: not a looper leg; fake: fMcParticleId < 0 or "
        "fMcMask & 0x8000; good: main and not fake. Tracks flagged 0x4 (rejected by a later "
        "stage) are kept in every number unless the key says otherwise."
    ),
    "findable": (
        f"MC particle with |eta| < {ETA_MAX}, pT > {FINDABLE_PT_MIN_GEV} GeV/c (momentum at the "
        f"vertex) and mc_n_tpc_clusters >= {FINDABLE_MIN_CLUSTERS}"
    ),
    "efficiency": (
        "fraction of findable particles with at least one good track labelled with them; "
        f"efficiency_pt_above_0p3: findable particles with pT > {EFFICIENCY_PT_MIN_GEV} GeV/c; "
        "efficiency_vs_pt in true-pT bins; errors binomial sqrt(e(1-e)/n)"
    ),
    "fake_rate": "fake main tracks / main tracks",
    "fake_rate_after_rejection": "same, leaving out the tracks flagged 0x4",
    "clone_rate": (
        "good tracks beyond the first per particle / main tracks (the first = most fTPCNClsFound); "
        "fake_clone_vs_pt bins the main tracks in reconstructed pT = 1/|fSigned1Pt|"
    ),
    "looper_leg_fraction": "looper-leg tracks / all tracks",
    "charge_misid_fraction": "good tracks with sign(fSigned1Pt) != the particle's charge / good",
    "rel_pt_resolution_1gev": (
        "good tracks of particles with 0.9 < pT_true < 1.1 GeV/c and |eta_true| < 0.9: "
        "Gaussian-core sigma of (pT_reco - pT_true)/pT_true = half the 16-84% interval "
        "(error 0.962 sigma/sqrt(n)); pT_reco = 1/|fSigned1Pt| (at the innermost update), "
        "pT_true at the vertex. rel_pt_resolution_1gev_rms: standard deviation of all of them; "
        "_by_species: per true species; resolution_vs_pt: same in true-pT bins, protons with "
        f"p_true < {PROTON_P_MIN_GEV} GeV/c left out (energy loss before the TPC)"
    ),
    "dedx_resolution": (
        f"good tracks of pions with {DEDX_P_WINDOW_GEV[0]} < fTPCInnerParam < "
        f"{DEDX_P_WINDOW_GEV[1]} GeV/c, fTPCNClsFound >= {DEDX_MIN_CLUSTERS}, |eta_true| < 0.9: "
        "core sigma (half the 16-84% interval) / median of fTPCSignal; dedx_resolution_rms: "
        "standard deviation / mean"
    ),
    "tof_matching_efficiency": (
        "particles with a TOF hit and a good track whose first good track has fHasTOF / "
        "particles with a TOF hit and a good track"
    ),
    "tof_agreement": (
        "good tracks with fHasTOF whose particle has a TOF hit with "
        f"|fTOFSignal + t0 - hit time| < {TOF_AGREE_NSIGMA:g} sigma, sigma = sqrt("
        f"{TOF_SIGMA_PS:g}^2 + t0_resolution^2) ps, t0 = measured time of the particle's "
        "collision; tof_mismatch_fraction = 1 - tof_agreement (a hit of another particle at a "
        "compatible time cannot be told apart from the AOD)"
    ),
    "tof_beta_resolution": (
        "good tracks of pions with 1 < p_true < 1.5 GeV/c, fHasTOF and TOF agreement: core sigma "
        "(half the 16-84% interval) of fBeta - p/E (true momentum at the vertex, pion mass); "
        "tof_beta_resolution_all_matched: without the agreement requirement"
    ),
}


def _n(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n, np.int64)


def _in_acceptance(m: MatchedTracks) -> np.ndarray:
    """Good tracks of particles with |eta_true| < :data:`ETA_MAX`."""
    return m.classes["good"] & (np.abs(m.eta_true) < ETA_MAX)


def _pt_bin_rows(edges: tuple[float, ...]) -> list[dict]:
    return [{"pt_lo": edges[i], "pt_hi": edges[i + 1]} for i in range(len(edges) - 1)]


# --- the accumulators, one per observable ---------------------------------------------------------
@dataclass
class TrackCounts(Accumulator):
    """Timeframes, particles and tracks per class: fake, clone and looper-leg rates."""

    n_timeframes: int = 0
    n_particles: int = 0
    n_tracks: int = 0
    n_looper_legs: int = 0
    n_main: int = 0
    n_fake: int = 0
    n_good: int = 0
    n_clone: int = 0
    n_rejected: int = 0
    n_rejected_fake: int = 0

    def add(self, m: MatchedTracks) -> None:
        c = m.classes
        self.n_timeframes += 1
        self.n_particles += m.n_mc
        self.n_tracks += len(m.reco)
        self.n_looper_legs += _n(c["looper"])
        self.n_main += _n(c["main"])
        self.n_fake += _n(c["main"] & c["fake"])
        self.n_good += _n(c["good"])
        self.n_clone += _n(c["clone"])
        self.n_rejected += _n(c["main"] & c["rejected"])
        self.n_rejected_fake += _n(c["main"] & c["rejected"] & c["fake"])

    def result(self) -> dict:
        fake, fake_err = ratio(self.n_fake, self.n_main)
        clone, clone_err = ratio(self.n_clone, self.n_main)
        kept = self.n_main - self.n_rejected
        return {
            "fake_rate": fake,
            "fake_rate_err": fake_err,
            "clone_rate": clone,
            "clone_rate_err": clone_err,
            "looper_leg_fraction": ratio(self.n_looper_legs, self.n_tracks)[0],
            "n_timeframes": self.n_timeframes,
            "n_tracks": self.n_tracks,
            "fake_rate_after_rejection": ratio(self.n_fake - self.n_rejected_fake, kept)[0],
        }


@dataclass
class Efficiency(Accumulator):
    """Findable particles with a good track: in total, above 0.3 GeV/c, per true-pT bin
    (``pt_edges``, GeV/c) and per species above 0.3 GeV/c."""

    pt_edges: tuple[float, ...] = PT_EDGES_GEV
    n_findable: int = 0
    n_found: int = 0
    n_findable_pt_above_0p3: int = 0
    n_found_pt_above_0p3: int = 0
    den: np.ndarray = field(init=False)  # findable per pT bin
    num: np.ndarray = field(init=False)  # found per pT bin
    species_den: np.ndarray = field(default_factory=lambda: _zeros(len(SPECIES)))
    species_num: np.ndarray = field(default_factory=lambda: _zeros(len(SPECIES)))

    def __post_init__(self) -> None:
        self.den, self.num = _zeros(len(self.pt_edges) - 1), _zeros(len(self.pt_edges) - 1)

    def add(self, m: MatchedTracks) -> None:
        kin = m.kin
        findable = (
            (np.abs(kin.eta) < ETA_MAX)
            & (kin.pt > FINDABLE_PT_MIN_GEV)
            & (np.asarray(m.tf.particles.n_tpc_clusters) >= FINDABLE_MIN_CLUSTERS)
        )
        found = np.zeros(m.n_mc, bool)
        found[m.label[m.classes["good"]]] = True
        self.n_findable += _n(findable)
        self.n_found += _n(findable & found)
        high = findable & (kin.pt > EFFICIENCY_PT_MIN_GEV)
        self.n_findable_pt_above_0p3 += _n(high)
        self.n_found_pt_above_0p3 += _n(high & found)
        self.den += bin_counts(kin.pt[findable], self.pt_edges).astype(np.int64)
        self.num += bin_counts(kin.pt[findable & found], self.pt_edges).astype(np.int64)
        sp_ok = high & (kin.species >= 0)
        self.species_den += np.bincount(kin.species[sp_ok], minlength=len(SPECIES))
        self.species_num += np.bincount(kin.species[sp_ok & found], minlength=len(SPECIES))

    def result(self) -> dict:
        eff, eff_err = ratio(self.n_found_pt_above_0p3, self.n_findable_pt_above_0p3)
        eff_all, eff_all_err = ratio(self.n_found, self.n_findable)
        vs_pt = []
        for i, row in enumerate(_pt_bin_rows(self.pt_edges)):
            e, de = ratio(self.num[i], self.den[i])
            vs_pt.append({**row, "n": int(self.den[i]), "n_found": int(self.num[i]),
                          "efficiency": e, "efficiency_err": de})  # fmt: skip
        by_species = {}
        for s, name in enumerate(SPECIES):
            e, de = ratio(self.species_num[s], self.species_den[s])
            by_species[name] = {"n": int(self.species_den[s]), "efficiency": e,
                                "efficiency_err": de}  # fmt: skip
        return {
            "efficiency_pt_above_0p3": eff,
            "efficiency_pt_above_0p3_err": eff_err,
            "n_findable": self.n_findable,
            "efficiency_findable": eff_all,
            "efficiency_findable_err": eff_all_err,
            "efficiency_vs_pt": vs_pt,
            "efficiency_by_species": by_species,
        }


@dataclass
class FakeCloneVsPt(Accumulator):
    """Main, fake and clone tracks per reconstructed-pT bin (``pt_edges``, GeV/c)."""

    pt_edges: tuple[float, ...] = PT_EDGES_GEV
    main: np.ndarray = field(init=False)
    fake: np.ndarray = field(init=False)
    clone: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        nb = len(self.pt_edges) - 1
        self.main, self.fake, self.clone = _zeros(nb), _zeros(nb), _zeros(nb)

    def add(self, m: MatchedTracks) -> None:
        c, pt = m.classes, m.pt_reco
        self.main += bin_counts(pt[c["main"]], self.pt_edges).astype(np.int64)
        self.fake += bin_counts(pt[c["main"] & c["fake"]], self.pt_edges).astype(np.int64)
        self.clone += bin_counts(pt[c["clone"]], self.pt_edges).astype(np.int64)

    def result(self) -> dict:
        rows = []
        for i, row in enumerate(_pt_bin_rows(self.pt_edges)):
            f, df = ratio(self.fake[i], self.main[i])
            cl, dcl = ratio(self.clone[i], self.main[i])
            rows.append({**row, "n": int(self.main[i]), "fake_rate": f, "fake_rate_err": df,
                         "clone_rate": cl, "clone_rate_err": dcl})  # fmt: skip
        return {"fake_clone_vs_pt": rows}


@dataclass
class ChargeMisid(Accumulator):
    """Good tracks whose sign of fSigned1Pt differs from their particle's charge."""

    n_good: int = 0
    n_charge_misid: int = 0

    def add(self, m: MatchedTracks) -> None:
        g = m.classes["good"]
        q_t = m.at_label(m.kin.charge.astype(np.int64), 0)
        s1pt = m.reco["fSigned1Pt"].astype(np.float64)
        self.n_good += _n(g)
        self.n_charge_misid += _n(g & (np.sign(s1pt) != np.sign(q_t)))

    def result(self) -> dict:
        return {"charge_misid_fraction": ratio(self.n_charge_misid, self.n_good)[0]}


def _new_res() -> Dist:
    return Dist(-0.5, 0.5, 10000)


@dataclass
class PtResolution(Accumulator):
    """(pT_reco - pT_true)/pT_true of good tracks in the acceptance: near 1 GeV/c (all and per
    species) and per true-pT bin (``pt_edges``, GeV/c; low-momentum protons left out)."""

    pt_edges: tuple[float, ...] = PT_EDGES_GEV
    at_1gev: Dist = field(default_factory=_new_res)
    at_1gev_species: list[Dist] = field(default_factory=lambda: [_new_res() for _ in SPECIES])
    vs_pt: list[Dist] = field(init=False)

    def __post_init__(self) -> None:
        self.vs_pt = [_new_res() for _ in range(len(self.pt_edges) - 1)]

    def add(self, m: MatchedTracks) -> None:
        pt_t, p_t, sp_t = m.pt_true, m.p_true, m.species_true
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = (m.pt_reco - pt_t) / pt_t
        acc = _in_acceptance(m)
        win = acc & (pt_t > RES_WINDOW_GEV[0]) & (pt_t < RES_WINDOW_GEV[1])
        self.at_1gev.fill(rel[win])
        for s in range(len(SPECIES)):
            self.at_1gev_species[s].fill(rel[win & (sp_t == s)])
        res_sel = acc & ~((sp_t == PROTON) & (p_t < PROTON_P_MIN_GEV))
        b = bin_index(pt_t, self.pt_edges)
        for i in range(len(self.vs_pt)):
            self.vs_pt[i].fill(rel[res_sel & (b == i)])

    def result(self) -> dict:
        r = self.at_1gev
        return {
            "rel_pt_resolution_1gev": num(r.core_sigma()),
            "rel_pt_resolution_1gev_err": num(r.core_sigma_err()),
            "rel_pt_resolution_1gev_rms": num(r.std()),
            "rel_pt_bias_1gev": num(r.mean()),
            "resolution_vs_pt": [
                {**row, **d.summary()}
                for row, d in zip(_pt_bin_rows(self.pt_edges), self.vs_pt, strict=True)
            ],
            "rel_pt_resolution_1gev_by_species": {
                name: d.summary()
                for name, d in zip(SPECIES, self.at_1gev_species, strict=True)
                if d.n
            },
            "rel_pt_resolution_1gev_summary": r.summary(),
        }


@dataclass
class DedxResolution(Accumulator):
    """fTPCSignal of good minimum-ionising pions in the acceptance with enough clusters."""

    dedx: Dist = field(default_factory=lambda: Dist(0.0, 400.0, 40000))

    def add(self, m: MatchedTracks) -> None:
        reco = m.reco
        pin = reco["fTPCInnerParam"].astype(np.float64)
        sel = (
            _in_acceptance(m) & (m.species_true == PION)
            & (pin > DEDX_P_WINDOW_GEV[0]) & (pin < DEDX_P_WINDOW_GEV[1])
            & (reco["fTPCNClsFound"].astype(np.int64) >= DEDX_MIN_CLUSTERS)
        )  # fmt: skip
        self.dedx.fill(reco["fTPCSignal"][sel])

    def result(self) -> dict:
        d = self.dedx
        med = d.median()
        return {
            "dedx_resolution": num(d.core_sigma() / med if med else np.nan),
            "dedx_resolution_err": num(d.core_sigma_err() / med) if med else None,
            "dedx_resolution_rms": num(d.std() / d.mean()) if d.n else None,
            "dedx_mip": d.summary(),
        }


def _tof_hit_time(m: MatchedTracks) -> np.ndarray:
    """Per MC particle ``(n_mc,)``: the time (ps) of its own TOF hit, NaN without one."""
    tof = m.tf.tof
    hit_time = np.full(m.n_mc, np.nan)
    own = np.asarray(tof.label) >= 0
    hit_time[np.asarray(tof.label)[own]] = np.asarray(tof.time_ps)[own]
    return hit_time


def _has_tof(m: MatchedTracks) -> np.ndarray:
    return m.reco["fHasTOF"].astype(np.int64) != 0


def _tof_agreement(m: MatchedTracks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per track: good with fHasTOF, fTOFSignal + t0 - the particle's hit time (ps), and that
    residual within :data:`TOF_AGREE_NSIGMA` sigma."""
    tf = m.tf
    col = np.asarray(tf.particles.collision, np.int64)
    t0 = m.at_label(np.asarray(tf.collisions.t0_meas_ps, np.float64)[col], np.nan)
    t0_res = m.at_label(np.asarray(tf.collisions.t0_resolution_ps, np.float64)[col], np.nan)
    tsel = m.classes["good"] & _has_tof(m)
    hit = m.memo("tof_hit_time", _tof_hit_time)
    dt = m.reco["fTOFSignal"].astype(np.float64) + t0 - m.at_label(hit, np.nan)
    sigma = np.sqrt(TOF_SIGMA_PS**2 + t0_res**2)
    with np.errstate(invalid="ignore"):
        agree = tsel & (np.abs(dt) < TOF_AGREE_NSIGMA * sigma)
    return tsel, dt, agree


@dataclass
class TofMatching(Accumulator):
    """Particles with a TOF hit and a good track, and those whose first good track has TOF."""

    n_tof_particles: int = 0
    n_tof_matched: int = 0

    def add(self, m: MatchedTracks) -> None:
        primary = m.classes["primary"]
        denom = np.zeros(m.n_mc, bool)
        denom[m.label[primary]] = True
        denom &= np.isfinite(m.memo("tof_hit_time", _tof_hit_time))
        matched = np.zeros(m.n_mc, bool)
        matched[m.label[primary & _has_tof(m)]] = True
        self.n_tof_particles += _n(denom)
        self.n_tof_matched += _n(denom & matched)

    def result(self) -> dict:
        eff, err = ratio(self.n_tof_matched, self.n_tof_particles)
        return {"tof_matching_efficiency": eff, "tof_matching_efficiency_err": err}


@dataclass
class TofAgreement(Accumulator):
    """Good tracks with TOF whose time agrees with their particle's own hit, and the time
    residual (ps) of those."""

    n_tof_tracks: int = 0
    n_tof_agree: int = 0
    residual: Dist = field(default_factory=lambda: Dist(-5000.0, 5000.0, 10000))

    def add(self, m: MatchedTracks) -> None:
        tsel, dt, agree = m.memo("tof_agreement", _tof_agreement)
        self.n_tof_tracks += _n(tsel)
        self.n_tof_agree += _n(agree)
        self.residual.fill(dt[agree])

    def result(self) -> dict:
        agree, err = ratio(self.n_tof_agree, self.n_tof_tracks)
        return {
            "tof_agreement": agree,
            "tof_agreement_err": err,
            "tof_mismatch_fraction": None if agree is None else 1.0 - agree,
            "tof_time_residual_ps": self.residual.summary(),
        }


@dataclass
class TofBetaResolution(Accumulator):
    """fBeta - p/E of good pions with TOF at 1-1.5 GeV/c: those whose TOF time agrees with
    their hit, and all of them."""

    agreeing: Dist = field(default_factory=lambda: Dist(-0.2, 0.2, 40000))
    all_matched: Dist = field(default_factory=lambda: Dist(-0.2, 0.2, 40000))

    def add(self, m: MatchedTracks) -> None:
        tsel, _dt, agree = m.memo("tof_agreement", _tof_agreement)
        p_t = m.p_true
        beta_true = p_t / np.sqrt(p_t**2 + MASSES_GEV[PION] ** 2)
        sel = (
            tsel & (m.species_true == PION)
            & (p_t > TOF_P_WINDOW_GEV[0]) & (p_t < TOF_P_WINDOW_GEV[1])
        )  # fmt: skip
        dbeta = m.reco["fBeta"].astype(np.float64) - beta_true
        self.all_matched.fill(dbeta[sel])
        self.agreeing.fill(dbeta[sel & agree])

    def result(self) -> dict:
        return {
            "tof_beta_resolution": num(self.agreeing.core_sigma()),
            "tof_beta_resolution_err": num(self.agreeing.core_sigma_err()),
            "tof_beta_resolution_all_matched": num(self.all_matched.core_sigma()),
            "tof_beta_residual": self.agreeing.summary(),
        }


# --- the evaluation -------------------------------------------------------------------------------
#: the result's keys, in the order of the JSON (docs/evaluation.md)
TRACKING_KEYS = (
    "efficiency_pt_above_0p3", "efficiency_pt_above_0p3_err", "fake_rate", "fake_rate_err",
    "clone_rate", "clone_rate_err", "rel_pt_resolution_1gev", "rel_pt_resolution_1gev_err",
    "rel_pt_resolution_1gev_rms", "rel_pt_bias_1gev", "dedx_resolution", "dedx_resolution_err",
    "dedx_resolution_rms", "tof_beta_resolution", "tof_beta_resolution_err",
    "tof_beta_resolution_all_matched", "looper_leg_fraction", "n_timeframes", "n_tracks",
    "n_findable", "efficiency_findable", "efficiency_findable_err", "fake_rate_after_rejection",
    "charge_misid_fraction", "tof_matching_efficiency", "tof_matching_efficiency_err",
    "tof_agreement", "tof_agreement_err", "tof_mismatch_fraction", "tof_time_residual_ps",
    "dedx_mip", "counts", "efficiency_vs_pt", "efficiency_by_species", "fake_clone_vs_pt",
    "resolution_vs_pt", "rel_pt_resolution_1gev_by_species", "rel_pt_resolution_1gev_summary",
    "tof_beta_residual", "definitions",
)  # fmt: skip
#: the ``counts`` of the result, in order, and the part that holds each
TRACKING_COUNTS = {
    "n_particles": "tracks", "n_tracks": "tracks", "n_looper_legs": "tracks",
    "n_main": "tracks", "n_fake": "tracks", "n_good": "tracks", "n_clone": "tracks",
    "n_rejected": "tracks", "n_rejected_fake": "tracks", "n_findable": "efficiency",
    "n_found": "efficiency", "n_findable_pt_above_0p3": "efficiency",
    "n_found_pt_above_0p3": "efficiency", "n_charge_misid": "charge",
    "n_tof_particles": "tof_matching", "n_tof_matched": "tof_matching",
    "n_tof_tracks": "tof_agreement", "n_tof_agree": "tof_agreement",
}  # fmt: skip


class TrackingEvaluation(Evaluation):
    """Every tracking accumulator (:func:`tracking_evaluation`); :meth:`result` assembles the
    JSON-ready result of :func:`evaluate_tracking` (without the file names)."""

    def result(self) -> dict:
        """The JSON-ready result (numbers as fractions; ``None`` where undefined)."""
        parts = self.part_results()
        parts["counts"] = {k: int(getattr(self.parts[p], k)) for k, p in TRACKING_COUNTS.items()}
        parts["definitions"] = dict(TRACKING_DEFINITIONS)
        return {k: parts[k] for k in TRACKING_KEYS}


def tracking_evaluation(pt_edges: tuple[float, ...] = PT_EDGES_GEV) -> TrackingEvaluation:
    """An empty tracking evaluation (``pt_edges``: GeV/c); ``add(reco, tf)`` per timeframe,
    ``+`` to merge, ``result()``."""
    return TrackingEvaluation(
        {
            "tracks": TrackCounts(),
            "efficiency": Efficiency(pt_edges),
            "fake_clone": FakeCloneVsPt(pt_edges),
            "charge": ChargeMisid(),
            "pt_resolution": PtResolution(pt_edges),
            "dedx": DedxResolution(),
            "tof_matching": TofMatching(),
            "tof_agreement": TofAgreement(),
            "tof_beta": TofBetaResolution(),
        }
    )


#: the columns read per table (docs/aod_schema.md)
TRACK_TABLES: dict[str, tuple[str, ...]] = {
    "O2track_iu": ("fSigned1Pt", "fTgl", "fFlags"),
    "O2trackextra": (
        "fTPCInnerParam",
        "fTPCSignal",
        "fTPCNClsFound",
        "fTOFSignal",
        "fBeta",
        "fHasTOF",
    ),
    "O2mctracklabel": ("fMcParticleId", "fMcMask"),
}


def evaluate_tracking(
    reco_path: str | os.PathLike[str], truth_path: str | os.PathLike[str]
) -> dict:
    """Tracking performance of ``reco_path`` (AO2D-like) against the simulation ``truth_path``.

    Returns a JSON-ready dict (keys in ``docs/evaluation.md``; definitions under
    ``"definitions"``). Raises :class:`~alice_dyn.io.BadInputError` naming the file and
    timeframe when the files do not belong together.
    """
    ev = tracking_evaluation()
    for reco, tf in iter_matched(reco_path, truth_path, TRACK_TABLES):
        ev.add(reco, tf)
    out = ev.result()
    out["reco_file"], out["truth_file"] = os.fspath(reco_path), os.fspath(truth_path)
    return out


# --- terminal tables ------------------------------------------------------------------------------
def _fmt(x, digits: int = 4, pct: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{100 * x:.2f}%" if pct else f"{x:.{digits}g}"


def _pm(v, e, pct: bool = True) -> str:
    if v is None:
        return "-"
    if e is None:
        return _fmt(v, pct=pct)
    return f"{_fmt(v, pct=pct)} +- {_fmt(e, pct=pct)}"


def format_tracking(result: dict) -> str:
    """Summary and per-bin tables of :func:`evaluate_tracking`'s result, for the terminal."""
    r = result
    c = r.get("counts", {})

    def pm(key: str, pct: bool = True) -> str:
        return _pm(r.get(key), r.get(key + "_err"), pct=pct)

    def pc(key: str) -> str:
        return _fmt(r.get(key), pct=True)

    rows = [
        ("efficiency (pT > 0.3 GeV/c)", pm("efficiency_pt_above_0p3")),
        ("efficiency (all findable)", pm("efficiency_findable")),
        ("fake rate", f"{pm('fake_rate')}   (without 0x4-flagged: "
         f"{pc('fake_rate_after_rejection')})"),
        ("clone rate", pm("clone_rate")),
        ("looper legs", f"{c.get('n_looper_legs', '-')} tracks, {pc('looper_leg_fraction')}"),
        ("charge misidentified", pc("charge_misid_fraction")),
        ("pT resolution at 1 GeV/c", f"{pm('rel_pt_resolution_1gev')} core, "
         f"{pc('rel_pt_resolution_1gev_rms')} RMS"),
        ("dE/dx resolution (MIP pions)", f"{pm('dedx_resolution')} core, "
         f"{pc('dedx_resolution_rms')} RMS"),
        ("TOF beta resolution (pi 1-1.5)", pm("tof_beta_resolution", pct=False)),
        ("TOF matching efficiency", pm("tof_matching_efficiency")),
        ("TOF time agrees with truth", pm("tof_agreement")),
    ]  # fmt: skip
    lines = [
        f"tracking performance: {r['n_timeframes']} timeframes, {r['n_tracks']} tracks, "
        f"{r['n_findable']} findable particles",
        *(f"  {name:31s} {value}" for name, value in rows),
        "",
        "   pT (GeV/c)    findable  efficiency        main tracks  fake     clone    "
        "res core  res RMS",
    ]
    for e, f, s in zip(
        r["efficiency_vs_pt"], r["fake_clone_vs_pt"], r["resolution_vs_pt"], strict=True
    ):
        lines.append(
            f"  {e['pt_lo']:5.2f}-{e['pt_hi']:<6.2f} {e['n']:9d}  "
            f"{_pm(e['efficiency'], e['efficiency_err']):16s}  {f['n']:11d}  "
            f"{_fmt(f['fake_rate'], pct=True):7s}  {_fmt(f['clone_rate'], pct=True):7s}  "
            f"{_fmt(s['sigma_core'], pct=True):8s}  {_fmt(s['rms'], pct=True)}"
        )
    return "\n".join(lines)
