"""Tracking performance of a reconstruction output (AO2D-like ``DF_<n>`` folders) against MC truth.

Layer: QA (reads files; computes no reconstruction). The RECO file is the one written by
``alice-dyn run tpc-reco`` (``docs/aod_schema.md``); the truth is the simulation file it was
made from (``docs/io_schema.md``). ``DF_<n>/O2tfmeta`` ``fTfId`` equals the simulation's
``tf_id``; ``O2mctracklabel`` ``fMcParticleId`` is a row of that timeframe's ``mc_*``.

Both files are streamed timeframe by timeframe: distributions are accumulated in fixed, fine
histograms (:class:`Dist`), so memory does not grow with the number of timeframes. Every
quantity is defined in :data:`TRACKING_DEFINITIONS` (also in ``docs/evaluation.md`` and in the
result's ``"definitions"``).

Typical use::

    result = evaluate_tracking("AO2D.root", "sim.root")
    print(format_tracking(result))
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.event.tracks import LOOPER_LEG, REJECTED
from alice_dyn.io.errors import BadInputError
from alice_dyn.io.reader import open_root, open_timeframes
from alice_dyn.io.schema import LAYOUT_ALICE_DYN
from alice_dyn.physics.particles import MASSES_GEV, SPECIES, species_index
from alice_dyn.reco.mc_labels import MC_MASK_FAKE, primary_and_clones

# --- AOD conventions (docs/aod_schema.md) ---------------------------------------------------------
FLAG_LOOPER_LEG = LOOPER_LEG  # 0x2: a later leg of a particle that has its own main track
FLAG_REJECTED = REJECTED  # 0x4: rejected as fake by a later stage

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
#: Gaussian core: sigma = half the 16-84% interval; its statistical error ~ this / sqrt(n)
CORE_SIGMA_ERR_FACTOR = 0.962

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


# --- bounded-memory distributions -----------------------------------------------------------------
class Dist:
    """A distribution kept as a fine histogram plus exact moments (bounded memory).

    ``quantile`` interpolates linearly inside the bin (resolution far below the bin width for
    smooth distributions) and is NaN when it falls in the under/overflow. ``mean``/``std`` use
    all finite values, inside the range or not.
    """

    def __init__(self, lo: float, hi: float, nbins: int) -> None:
        self.edges = np.linspace(lo, hi, nbins + 1)
        self.counts = np.zeros(nbins + 2, np.int64)  # [underflow, bins..., overflow]
        self.n = 0
        self._n_finite = 0
        self._sum = 0.0
        self._sum2 = 0.0

    def fill(self, values: np.ndarray) -> None:
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[~np.isnan(x)]
        if not len(x):
            return
        idx = np.searchsorted(self.edges, x, side="right")  # 0: below, nbins+1: at/above hi
        self.counts += np.bincount(idx, minlength=len(self.counts))
        self.n += len(x)
        finite = x[np.isfinite(x)]
        self._n_finite += len(finite)
        self._sum += float(finite.sum())
        self._sum2 += float(np.dot(finite, finite))

    def quantile(self, q: float) -> float:
        if self.n == 0:
            return math.nan
        target = q * self.n
        cum = np.cumsum(self.counts)
        k = int(np.searchsorted(cum, target, side="left"))
        if k == 0 or k >= len(self.counts) - 1:
            return math.nan
        prev = cum[k - 1]
        frac = (target - prev) / self.counts[k]
        lo, hi = self.edges[k - 1], self.edges[k]
        return float(lo + frac * (hi - lo))

    def median(self) -> float:
        return self.quantile(0.5)

    def core_sigma(self) -> float:
        """Half the 16-84% interval (the sigma of a Gaussian core)."""
        return 0.5 * (self.quantile(0.841345) - self.quantile(0.158655))

    def core_sigma_err(self) -> float:
        return CORE_SIGMA_ERR_FACTOR * self.core_sigma() / math.sqrt(self.n) if self.n else math.nan

    def mean(self) -> float:
        return self._sum / self._n_finite if self._n_finite else math.nan

    def std(self) -> float:
        if self._n_finite < 2:
            return math.nan
        m = self.mean()
        return math.sqrt(max(self._sum2 / self._n_finite - m * m, 0.0))

    def summary(self) -> dict:
        return {
            "n": self.n,
            "sigma_core": _num(self.core_sigma()),
            "sigma_core_err": _num(self.core_sigma_err()),
            "rms": _num(self.std()),
            "mean": _num(self.mean()),
            "median": _num(self.median()),
        }


def _num(x: float) -> float | None:
    """JSON-safe number: NaN/inf -> None."""
    x = float(x)
    return x if math.isfinite(x) else None


def ratio(k: float, n: float) -> tuple[float | None, float | None]:
    """``k/n`` and its binomial error ``sqrt(e(1-e)/n)`` (``None`` for ``n = 0``)."""
    k, n = float(k), float(n)
    if n <= 0:
        return None, None
    e = k / n
    return e, math.sqrt(max(e * (1.0 - e), 0.0) / n)


def bin_index(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Bin of each value in ``[edges[i], edges[i+1])``; -1 outside."""
    e = np.asarray(edges, dtype=np.float64)
    i = np.searchsorted(e, np.asarray(values, dtype=np.float64), side="right") - 1
    return np.where((i >= 0) & (i < len(e) - 1), i, -1)


def bin_counts(values: np.ndarray, edges: Sequence[float], weights=None) -> np.ndarray:
    i = bin_index(values, edges)
    ok = i >= 0
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[ok]
    return np.bincount(i[ok], weights=w, minlength=len(edges) - 1)[: len(edges) - 1]


# --- reading RECO and truth together ------------------------------------------------------------
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


@dataclass
class RecoTimeframe:
    """The track columns of one ``DF_<n>`` (every column one row per track)."""

    df: int  # n of DF_<n>
    tf_id: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


_DF_RE = re.compile(r"^DF_(\d+)$")


def _df_folders(f, path: str) -> list[int]:
    try:
        keys = f.keys(recursive=False, cycle=False)
    except Exception as exc:
        raise BadInputError(path, None, f"cannot list the file: {exc}") from exc
    dfs = sorted(int(m.group(1)) for k in keys if (m := _DF_RE.match(k)))
    if not dfs:
        raise BadInputError(path, None, "no DF_<n> folders: not a reconstruction (AO2D) file")
    return dfs


def _read_table(f, path: str, df: int, table: str, names: Sequence[str], tf_id=None) -> dict:
    key = f"DF_{df}/{table}"
    try:
        tree = f[key]
    except Exception:
        raise BadInputError(path, df, f"no table {table}", tf_id=tf_id) from None
    missing = [n for n in names if n not in tree.keys()]
    if missing:
        raise BadInputError(path, df, f"{table} lacks columns {missing}", tf_id=tf_id)
    try:
        arrays = tree.arrays(list(names), library="np")
    except Exception as exc:
        raise BadInputError(
            path, df, f"cannot read {table}: {type(exc).__name__}: {exc}", tf_id=tf_id
        ) from exc
    return {n: np.asarray(arrays[n]) for n in names}


def _read_tf_id(f, path: str, df: int) -> int:
    cols = _read_table(f, path, df, "O2tfmeta", ("fTfId",))
    if len(cols["fTfId"]) != 1:
        raise BadInputError(path, df, f"O2tfmeta has {len(cols['fTfId'])} rows, expected 1")
    return int(cols["fTfId"][0])


def iter_matched(
    reco_path: str | os.PathLike[str],
    truth_path: str | os.PathLike[str],
    tables: dict[str, Sequence[str]],
) -> Iterator[tuple[RecoTimeframe, Timeframe]]:
    """Yield ``(reco, truth)`` per RECO timeframe, streaming both files in the truth's order.

    Every RECO ``fTfId`` must exist exactly once in the truth file and every ``fMcParticleId``
    must be a row of that timeframe's MC particles (or -1): otherwise :class:`BadInputError`
    naming the RECO file, its ``DF_<n>`` and the ``fTfId``. Truth timeframes without a RECO
    counterpart are skipped (a RECO file may cover part of a simulation).
    """
    reco_path, truth_path = os.fspath(reco_path), os.fspath(truth_path)
    reco = open_root(reco_path)
    try:
        dfs = _df_folders(reco, reco_path)
        df_tf = {df: _read_tf_id(reco, reco_path, df) for df in dfs}
        with open_timeframes(truth_path) as reader:
            if reader.layout != LAYOUT_ALICE_DYN:
                raise BadInputError(
                    truth_path, None, f"{reader.layout} layout holds no MC truth (mc_* branches)"
                )
            truth = open_root(truth_path)
            try:
                truth_ids = np.asarray(truth["timeframes"]["tf_id"].array(library="np"), np.int64)
            except Exception as exc:
                raise BadInputError(truth_path, None, f"cannot read tf_id: {exc}") from exc
            finally:
                truth.close()
            entry_of: dict[int, list[int]] = {}
            for entry, tf_id in enumerate(truth_ids.tolist()):
                entry_of.setdefault(tf_id, []).append(entry)
            wanted: dict[int, list[int]] = {}  # truth entry -> DF numbers
            for df, tf_id in df_tf.items():
                entries = entry_of.get(tf_id, [])
                if not entries:
                    raise BadInputError(
                        reco_path,
                        df,
                        f"fTfId {tf_id} has no timeframe in the truth file {truth_path}",
                        tf_id=tf_id,
                    )
                if len(entries) > 1:
                    raise BadInputError(
                        reco_path,
                        df,
                        f"fTfId {tf_id} is ambiguous: entries {entries} of {truth_path}",
                        tf_id=tf_id,
                    )
                wanted.setdefault(entries[0], []).append(df)
            reader.entry_start = min(wanted)
            reader.entry_stop = max(wanted) + 1
            for entry, tf in enumerate(reader, start=reader.entry_start):
                for df in wanted.get(entry, ()):
                    yield _read_reco(reco, reco_path, df, df_tf[df], tables, tf, truth_path), tf
    finally:
        reco.close()


def _read_reco(f, path, df, tf_id, tables, tf: Timeframe, truth_path) -> RecoTimeframe:
    cols: dict[str, np.ndarray] = {}
    n_rows: dict[str, int] = {}
    for table, names in tables.items():
        t = _read_table(f, path, df, table, names, tf_id)
        n_rows[table] = len(next(iter(t.values())))
        cols.update(t)
    if len(set(n_rows.values())) > 1:
        raise BadInputError(path, df, f"track tables differ in rows: {n_rows}", tf_id=tf_id)
    if "fMcParticleId" in cols:
        label = cols["fMcParticleId"].astype(np.int64)
        n_mc = len(tf.particles)
        bad = (label < -1) | (label >= n_mc)
        if bad.any():
            raise BadInputError(
                path,
                df,
                f"fMcParticleId {int(label[bad][0])} out of range: the truth timeframe "
                f"(tf_id {tf_id}) in {truth_path} has {n_mc} MC particles",
                tf_id=tf_id,
            )
        cols["fMcParticleId"] = label
    return RecoTimeframe(df, tf_id, cols)


# --- truth quantities -----------------------------------------------------------------------------
@dataclass
class TruthKinematics:
    """Per MC particle ``(n_mc,)``: pT, p, eta at the vertex, species index (-1 unknown)."""

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
    """Boolean masks ``looper``, ``main``, ``fake``, ``good``, ``primary``, ``clone``."""
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


# --- the evaluator --------------------------------------------------------------------------------
def _new_res() -> Dist:
    return Dist(-0.5, 0.5, 10000)


@dataclass
class TrackingEvaluator:
    """Accumulates tracking performance timeframe by timeframe (:meth:`add`, :meth:`result`)."""

    pt_edges: tuple[float, ...] = PT_EDGES_GEV
    n_timeframes: int = 0
    n_particles: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nb = len(self.pt_edges) - 1
        self.eff_den = np.zeros(nb, np.int64)
        self.eff_num = np.zeros(nb, np.int64)
        self.species_den = np.zeros(len(SPECIES), np.int64)
        self.species_num = np.zeros(len(SPECIES), np.int64)
        self.fc_main = np.zeros(nb, np.int64)
        self.fc_fake = np.zeros(nb, np.int64)
        self.fc_clone = np.zeros(nb, np.int64)
        self.res_1gev = _new_res()
        self.res_1gev_species = [_new_res() for _ in SPECIES]
        self.res_vs_pt = [_new_res() for _ in range(nb)]
        self.dedx = Dist(0.0, 400.0, 40000)
        self.beta = Dist(-0.2, 0.2, 40000)
        self.beta_all = Dist(-0.2, 0.2, 40000)
        self.tof_dt = Dist(-5000.0, 5000.0, 10000)
        for k in (
            "n_tracks", "n_looper_legs", "n_main", "n_fake", "n_good", "n_clone", "n_rejected",
            "n_rejected_fake", "n_findable", "n_found", "n_findable_pt_above_0p3",
            "n_found_pt_above_0p3", "n_charge_misid", "n_tof_particles", "n_tof_matched",
            "n_tof_tracks", "n_tof_agree",
        ):  # fmt: skip
            self.counts.setdefault(k, 0)

    def _count(self, key: str, mask_or_n) -> None:
        n = int(np.count_nonzero(mask_or_n)) if isinstance(mask_or_n, np.ndarray) else mask_or_n
        self.counts[key] += n

    def add(self, reco: RecoTimeframe, tf: Timeframe) -> None:
        """Add one RECO timeframe and its truth."""
        self.n_timeframes += 1
        self.n_particles += len(tf.particles)
        kin = TruthKinematics.of(tf)
        mc = tf.particles
        c = track_classes(reco)
        label = reco["fMcParticleId"]
        n_mc = len(mc)

        def at_label(values: np.ndarray, fill) -> np.ndarray:
            """``values`` of each track's particle (``fill`` for tracks without a label)."""
            out = np.full(len(label), fill, dtype=np.result_type(values, np.asarray(fill)))
            ok = label >= 0
            out[ok] = values[label[ok]]
            return out

        self._count("n_tracks", len(reco))
        self._count("n_looper_legs", c["looper"])
        self._count("n_main", c["main"])
        self._count("n_fake", c["main"] & c["fake"])
        self._count("n_good", c["good"])
        self._count("n_clone", c["clone"])
        self._count("n_rejected", c["main"] & c["rejected"])
        self._count("n_rejected_fake", c["main"] & c["rejected"] & c["fake"])

        # efficiency
        findable = (
            (np.abs(kin.eta) < ETA_MAX)
            & (kin.pt > FINDABLE_PT_MIN_GEV)
            & (np.asarray(mc.n_tpc_clusters) >= FINDABLE_MIN_CLUSTERS)
        )
        found = np.zeros(n_mc, bool)
        found[label[c["good"]]] = True
        self._count("n_findable", findable)
        self._count("n_found", findable & found)
        high = findable & (kin.pt > EFFICIENCY_PT_MIN_GEV)
        self._count("n_findable_pt_above_0p3", high)
        self._count("n_found_pt_above_0p3", high & found)
        self.eff_den += bin_counts(kin.pt[findable], self.pt_edges).astype(np.int64)
        self.eff_num += bin_counts(kin.pt[findable & found], self.pt_edges).astype(np.int64)
        sp_ok = high & (kin.species >= 0)
        self.species_den += np.bincount(kin.species[sp_ok], minlength=len(SPECIES))
        self.species_num += np.bincount(kin.species[sp_ok & found], minlength=len(SPECIES))

        # fake / clone vs reconstructed pT
        with np.errstate(divide="ignore"):
            pt_reco = 1.0 / np.abs(reco["fSigned1Pt"].astype(np.float64))
        self.fc_main += bin_counts(pt_reco[c["main"]], self.pt_edges).astype(np.int64)
        self.fc_fake += bin_counts(pt_reco[c["main"] & c["fake"]], self.pt_edges).astype(np.int64)
        self.fc_clone += bin_counts(pt_reco[c["clone"]], self.pt_edges).astype(np.int64)

        # momentum resolution, charge
        g = c["good"]
        pt_t, p_t, eta_t = (at_label(a, np.nan) for a in (kin.pt, kin.p, kin.eta))
        sp_t = at_label(kin.species, -1)
        s1pt = reco["fSigned1Pt"].astype(np.float64)
        q_t = at_label(kin.charge.astype(np.int64), 0)
        self._count("n_charge_misid", g & (np.sign(s1pt) != np.sign(q_t)))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = (pt_reco - pt_t) / pt_t
        acc = g & (np.abs(eta_t) < ETA_MAX)
        win = acc & (pt_t > RES_WINDOW_GEV[0]) & (pt_t < RES_WINDOW_GEV[1])
        self.res_1gev.fill(rel[win])
        for s in range(len(SPECIES)):
            self.res_1gev_species[s].fill(rel[win & (sp_t == s)])
        res_sel = acc & ~((sp_t == PROTON) & (p_t < PROTON_P_MIN_GEV))
        b = bin_index(pt_t, self.pt_edges)
        for i in range(len(self.res_vs_pt)):
            self.res_vs_pt[i].fill(rel[res_sel & (b == i)])

        # dE/dx of minimum-ionising pions
        pin = reco["fTPCInnerParam"].astype(np.float64)
        dsel = (
            acc & (sp_t == PION) & (pin > DEDX_P_WINDOW_GEV[0]) & (pin < DEDX_P_WINDOW_GEV[1])
            & (reco["fTPCNClsFound"].astype(np.int64) >= DEDX_MIN_CLUSTERS)
        )  # fmt: skip
        self.dedx.fill(reco["fTPCSignal"][dsel])

        # TOF
        tof = tf.tof
        hit_time = np.full(n_mc, np.nan)
        own = np.asarray(tof.label) >= 0
        hit_time[np.asarray(tof.label)[own]] = np.asarray(tof.time_ps)[own]
        has_hit = np.isfinite(hit_time)
        col = np.asarray(mc.collision, np.int64)
        t0 = at_label(np.asarray(tf.collisions.t0_meas_ps, np.float64)[col], np.nan)
        t0_res = at_label(np.asarray(tf.collisions.t0_resolution_ps, np.float64)[col], np.nan)
        has_tof = reco["fHasTOF"].astype(np.int64) != 0
        # matching efficiency: particles with a hit and a good track
        denom = np.zeros(n_mc, bool)
        denom[label[c["primary"]]] = True
        denom &= has_hit
        matched = np.zeros(n_mc, bool)
        matched[label[c["primary"] & has_tof]] = True
        self._count("n_tof_particles", denom)
        self._count("n_tof_matched", denom & matched)
        # agreement of the matched time with the particle's own hit
        tsel = g & has_tof
        dt = reco["fTOFSignal"].astype(np.float64) + t0 - at_label(hit_time, np.nan)
        sigma = np.sqrt(TOF_SIGMA_PS**2 + t0_res**2)
        with np.errstate(invalid="ignore"):
            agree = tsel & (np.abs(dt) < TOF_AGREE_NSIGMA * sigma)
        self._count("n_tof_tracks", tsel)
        self._count("n_tof_agree", agree)
        self.tof_dt.fill(dt[agree])
        beta_true = p_t / np.sqrt(p_t**2 + MASSES_GEV[PION] ** 2)
        bsel = tsel & (sp_t == PION) & (p_t > TOF_P_WINDOW_GEV[0]) & (p_t < TOF_P_WINDOW_GEV[1])
        dbeta = reco["fBeta"].astype(np.float64) - beta_true
        self.beta_all.fill(dbeta[bsel])
        self.beta.fill(dbeta[bsel & agree])

    # --- results ----------------------------------------------------------------------------------
    def result(self) -> dict:
        """The JSON-ready result (numbers as fractions; ``None`` where undefined)."""
        k = self.counts
        edges = self.pt_edges
        eff_all, eff_all_err = ratio(k["n_found"], k["n_findable"])
        eff, eff_err = ratio(k["n_found_pt_above_0p3"], k["n_findable_pt_above_0p3"])
        fake, fake_err = ratio(k["n_fake"], k["n_main"])
        n_kept = k["n_main"] - k["n_rejected"]
        fake_rej, _ = ratio(k["n_fake"] - k["n_rejected_fake"], n_kept)
        clone, clone_err = ratio(k["n_clone"], k["n_main"])
        looper, _ = ratio(k["n_looper_legs"], k["n_tracks"])
        misid, _ = ratio(k["n_charge_misid"], k["n_good"])
        tof_eff, tof_eff_err = ratio(k["n_tof_matched"], k["n_tof_particles"])
        tof_agree, tof_agree_err = ratio(k["n_tof_agree"], k["n_tof_tracks"])
        dedx_med, dedx_sig = self.dedx.median(), self.dedx.core_sigma()
        dedx_res = dedx_sig / dedx_med if dedx_med else math.nan
        eff_vs_pt = []
        fc_vs_pt = []
        res_vs_pt = []
        for i in range(len(edges) - 1):
            e, de = ratio(self.eff_num[i], self.eff_den[i])
            eff_vs_pt.append(
                {"pt_lo": edges[i], "pt_hi": edges[i + 1], "n": int(self.eff_den[i]),
                 "n_found": int(self.eff_num[i]), "efficiency": e, "efficiency_err": de}
            )  # fmt: skip
            f, df = ratio(self.fc_fake[i], self.fc_main[i])
            cl, dcl = ratio(self.fc_clone[i], self.fc_main[i])
            fc_vs_pt.append(
                {"pt_lo": edges[i], "pt_hi": edges[i + 1], "n": int(self.fc_main[i]),
                 "fake_rate": f, "fake_rate_err": df, "clone_rate": cl, "clone_rate_err": dcl}
            )  # fmt: skip
            res_vs_pt.append(
                {"pt_lo": edges[i], "pt_hi": edges[i + 1], **self.res_vs_pt[i].summary()}
            )
        by_species = {}
        res_species = {}
        for s, name in enumerate(SPECIES):
            e, de = ratio(self.species_num[s], self.species_den[s])
            by_species[name] = {
                "n": int(self.species_den[s]),
                "efficiency": e,
                "efficiency_err": de,
            }
            if self.res_1gev_species[s].n:
                res_species[name] = self.res_1gev_species[s].summary()
        return {
            "efficiency_pt_above_0p3": eff,
            "efficiency_pt_above_0p3_err": eff_err,
            "fake_rate": fake,
            "fake_rate_err": fake_err,
            "clone_rate": clone,
            "clone_rate_err": clone_err,
            "rel_pt_resolution_1gev": _num(self.res_1gev.core_sigma()),
            "rel_pt_resolution_1gev_err": _num(self.res_1gev.core_sigma_err()),
            "rel_pt_resolution_1gev_rms": _num(self.res_1gev.std()),
            "rel_pt_bias_1gev": _num(self.res_1gev.mean()),
            "dedx_resolution": _num(dedx_res),
            "dedx_resolution_err": _num(self.dedx.core_sigma_err() / dedx_med)
            if dedx_med
            else None,
            "dedx_resolution_rms": _num(self.dedx.std() / self.dedx.mean())
            if self.dedx.n
            else None,
            "tof_beta_resolution": _num(self.beta.core_sigma()),
            "tof_beta_resolution_err": _num(self.beta.core_sigma_err()),
            "tof_beta_resolution_all_matched": _num(self.beta_all.core_sigma()),
            "looper_leg_fraction": looper,
            "n_timeframes": self.n_timeframes,
            "n_tracks": k["n_tracks"],
            "n_findable": k["n_findable"],
            "efficiency_findable": eff_all,
            "efficiency_findable_err": eff_all_err,
            "fake_rate_after_rejection": fake_rej,
            "charge_misid_fraction": misid,
            "tof_matching_efficiency": tof_eff,
            "tof_matching_efficiency_err": tof_eff_err,
            "tof_agreement": tof_agree,
            "tof_agreement_err": tof_agree_err,
            "tof_mismatch_fraction": None if tof_agree is None else 1.0 - tof_agree,
            "tof_time_residual_ps": self.tof_dt.summary(),
            "dedx_mip": self.dedx.summary(),
            "counts": {"n_particles": self.n_particles, **{k2: int(v) for k2, v in k.items()}},
            "efficiency_vs_pt": eff_vs_pt,
            "efficiency_by_species": by_species,
            "fake_clone_vs_pt": fc_vs_pt,
            "resolution_vs_pt": res_vs_pt,
            "rel_pt_resolution_1gev_by_species": res_species,
            "rel_pt_resolution_1gev_summary": self.res_1gev.summary(),
            "tof_beta_residual": self.beta.summary(),
            "definitions": dict(TRACKING_DEFINITIONS),
        }


def evaluate_tracking(
    reco_path: str | os.PathLike[str], truth_path: str | os.PathLike[str]
) -> dict:
    """Tracking performance of ``reco_path`` (AO2D-like) against the simulation ``truth_path``.

    Returns a JSON-ready dict (keys in ``docs/evaluation.md``; definitions under
    ``"definitions"``). Raises :class:`BadInputError` naming the file and timeframe when the
    files do not belong together.
    """
    ev = TrackingEvaluator()
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
