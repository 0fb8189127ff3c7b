"""PID datasets: per reconstructed track, feature groups per detector with presence masks.

Layer: PID (reads the AO2D-like reconstruction output and the simulation's MC truth). Groups:

* ``track`` (always): log10 p (tpcInnerParam), pT, tgl, charge sign, clusters / 152,
  chi2 per cluster;
* ``tpc`` (when the dE/dx is valid): dE/dx qTot / 50, log of it, qMax / qTot, and the TPC
  n-sigma of the five hypotheses (``O2pidtpc``, clipped to +-10, / 5): the calibrated
  Bethe-Bloch response the reconstruction already knows, so the network need not relearn it;
* ``tof`` (when matched): beta, 1 / beta, squared mass estimate ``p^2 (1/beta^2 - 1)``, track
  length / 400 cm, time of flight / 20 ns, and the TOF n-sigma of the five hypotheses
  (``O2pidtof``, expected times from the track length and the FT0 event time; clipped, / 5);
* ``trd`` (when matched): mean tracklet charge, number of layers / 6.

Missing detectors are missing groups (a False mask), never NaN. Labels are the PID species
index of the matched MC particle (0-4: e, mu, pi, K, p); tracks that are fakes, looper legs,
deuterons or without label are left out.

TOF mismatch templates (for training, :func:`tof_mismatch_columns`): as ALICE builds them, every
TOF-matched track also gets the time of a random hit of another TOF-matched track of the same
timeframe, with its own length and momentum; beta, 1 / beta, mass^2, time and the five TOF
n-sigma are recomputed with the track's own TOF resolution (derived from its stored n-sigma).
The resulting ``tof`` group goes to ``extra["tof_mismatch"]``; the training replaces a
fraction of the real TOF groups by it (:func:`alice_dyn.pid.network.with_tof_mismatch`), so
the network learns that a TOF time inconsistent with every hypothesis carries no information.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alice_dyn.framework.errors import UsageError
from alice_dyn.physics.particles import SPEED_OF_LIGHT_CM_PER_NS, species_index
from alice_dyn.reco.pid_nsigma import (
    PID_MASSES,
    PIDNSigmaParam,
    nsigma_tof,
    tof_expected_ps,
)
from alice_dyn.reco.tof_matching import TOFMatchParam

NSIGMA_SPECIES = ("El", "Mu", "Pi", "Ka", "Pr")
NSIGMA_CLIP = 10.0
GROUPS = {
    "track": ("log_p", "pt", "tgl", "sign", "ncl", "chi2ncl"),
    "tpc": ("dedx", "log_dedx", "qmax_ratio", *(f"nsigma_tpc_{s}" for s in NSIGMA_SPECIES)),
    "tof": (
        "beta",
        "inv_beta",
        "mass2",
        "length",
        "tof_ns",
        *(f"nsigma_tof_{s}" for s in NSIGMA_SPECIES),
    ),
    "trd": ("signal", "n_layers"),
}
SUBSETS = ("TPC", "TPC+TOF", "TPC+TRD", "TPC+TOF+TRD")
TABLES = {
    "O2track_iu": ("fSigned1Pt", "fTgl", "fFlags"),
    "O2trackextra": (
        "fTPCInnerParam", "fTPCSignal", "fTPCSignalQmax", "fTPCNClsFound", "fTPCChi2NCl",
        "fTRDSignal", "fTRDPattern", "fTOFSignal", "fLength", "fBeta", "fHasTOF", "fHasTRD",
    ),
    "O2mctracklabel": ("fMcParticleId", "fMcMask"),
    "O2pid": ("fPidNSigma",),
    "O2pidtpc": tuple(f"fTPCNSigma{s}" for s in NSIGMA_SPECIES),
    "O2pidtof": tuple(f"fTOFNSigma{s}" for s in NSIGMA_SPECIES),
}  # fmt: skip


@dataclass
class PIDDataset:
    """Features per group ``(n, n_features)``, masks per group ``(n,)`` bool, labels ``(n,)``.

    ``p`` (GeV/c) and ``nsigma`` (the n-sigma decision, for the baseline) ride along;
    ``extra`` holds optional per-track arrays from earlier networks (``"trackemb"``: the track
    network's embedding ``(n, d)``, see :mod:`alice_dyn.pid.reuse`).
    """

    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    labels: np.ndarray
    p: np.ndarray
    nsigma: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def unlabelled(
        cls,
        features: dict[str, np.ndarray],
        masks: dict[str, np.ndarray],
        p: np.ndarray,
        extra: dict[str, np.ndarray] | None = None,
    ) -> PIDDataset:
        """Tracks without MC truth (what the reconstruction sees): labels and n-sigma decision
        0 stand in; ``p`` (GeV/c) ``(n,)``."""
        n = len(p)
        labels, nsigma = np.zeros(n, np.int64), np.zeros(n, np.int8)
        return cls(features, masks, labels, p, nsigma, dict(extra or {}))

    def __len__(self) -> int:
        return len(self.labels)

    def subset_name(self) -> np.ndarray:
        """Detector subset of every track (one of :data:`SUBSETS`)."""
        tof, trd = self.masks["tof"], self.masks["trd"]
        idx = tof.astype(int) + 2 * trd.astype(int)
        return np.array(["TPC", "TPC+TOF", "TPC+TRD", "TPC+TOF+TRD"])[idx]

    def take(self, index: np.ndarray) -> PIDDataset:
        return PIDDataset(
            {k: v[index] for k, v in self.features.items()},
            {k: v[index] for k, v in self.masks.items()},
            self.labels[index],
            self.p[index],
            self.nsigma[index],
            {k: v[index] for k, v in self.extra.items()},
        )

    @staticmethod
    def concatenate(parts: list[PIDDataset]) -> PIDDataset:
        return PIDDataset(
            {k: np.concatenate([d.features[k] for d in parts]) for k in GROUPS},
            {k: np.concatenate([d.masks[k] for d in parts]) for k in GROUPS},
            np.concatenate([d.labels for d in parts]),
            np.concatenate([d.p for d in parts]),
            np.concatenate([d.nsigma for d in parts]),
            {k: np.concatenate([d.extra[k] for d in parts]) for k in parts[0].extra},
        )

    def save(self, path: str | Path) -> None:
        """``.npz`` (no pickled objects)."""
        arrays = {f"f_{k}": v for k, v in self.features.items()}
        arrays.update({f"m_{k}": v for k, v in self.masks.items()})
        arrays.update({f"x_{k}": v for k, v in self.extra.items()})
        np.savez_compressed(path, labels=self.labels, p=self.p, nsigma=self.nsigma, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> PIDDataset:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                {k: z[f"f_{k}"] for k in GROUPS},
                {k: z[f"m_{k}"] for k in GROUPS},
                z["labels"],
                z["p"],
                z["nsigma"],
                {k[2:]: z[k] for k in z.files if k.startswith("x_")},
            )


def features_from_columns(c: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Feature groups and masks from AO2D columns (``O2track_iu``, ``O2trackextra``,
    ``O2pidtpc``, ``O2pidtof``)."""
    f32 = np.float32
    p = np.maximum(c["fTPCInnerParam"].astype(np.float64), 1e-3)
    q2pt = c["fSigned1Pt"].astype(np.float64)
    pt = 1.0 / np.maximum(np.abs(q2pt), 1e-3)
    dedx = c["fTPCSignal"].astype(np.float64)
    tpc_ok = np.isfinite(dedx) & (dedx > 0)
    dedx = np.where(tpc_ok, dedx, 50.0)
    beta = c["fBeta"].astype(np.float64)
    tof_ok = (c["fHasTOF"] > 0) & (beta > 0)
    beta_s = np.where(tof_ok, beta, 1.0)
    trd_ok = c["fHasTRD"] > 0
    n_layers = np.array([bin(int(v)).count("1") for v in c["fTRDPattern"]], dtype=np.float64)

    def nsigma(det: str, ok: np.ndarray) -> np.ndarray:
        """``(n, 5)`` n-sigma of the hypotheses / 5, clipped; 0 where invalid (-999)."""
        v = np.column_stack([c[f"f{det}NSigma{s}"] for s in NSIGMA_SPECIES]).astype(np.float64)
        good = ok[:, None] & (v > -900.0) & np.isfinite(v)
        return np.where(good, np.clip(v, -NSIGMA_CLIP, NSIGMA_CLIP), 0.0) / 5.0

    features = {
        "track": np.column_stack(
            [
                np.log10(p),
                np.minimum(pt, 20.0) / 5.0,
                c["fTgl"],
                np.sign(q2pt),
                c["fTPCNClsFound"] / 152.0,
                np.minimum(c["fTPCChi2NCl"], 20.0) / 5.0,
            ]
        ).astype(f32),
        "tpc": np.column_stack(
            [
                dedx / 50.0,
                np.log(dedx / 50.0),
                np.where(tpc_ok, c["fTPCSignalQmax"] / np.maximum(dedx, 1e-3), 0.0),
                nsigma("TPC", tpc_ok),
            ]
        ).astype(f32),
        "tof": np.where(
            tof_ok[:, None],
            np.column_stack(
                [
                    beta_s,
                    np.minimum(1.0 / beta_s, 5.0),
                    np.clip(p * p * (1.0 / beta_s**2 - 1.0), -2, 10),
                    c["fLength"] / 400.0,
                    np.clip(c["fTOFSignal"] / 2e4, -1, 5),
                    nsigma("TOF", tof_ok),
                ]
            ),
            0.0,
        ).astype(f32),
        "trd": np.where(
            trd_ok[:, None],
            np.column_stack([np.minimum(c["fTRDSignal"], 10.0), n_layers / 6.0]),
            0.0,
        ).astype(f32),
    }
    masks = {"track": np.ones(len(p), bool), "tpc": tpc_ok, "tof": tof_ok, "trd": trd_ok}
    return features, masks


TOF_NSIGMA_COLUMNS = tuple(f"fTOFNSigma{s}" for s in NSIGMA_SPECIES)
#: draws per track for a mismatched hit with a physical time of flight (the matcher's beta
#: window); a track without one after that many keeps its own TOF measurement
TOF_MISMATCH_TRIES = 16


def tof_matched(c: dict[str, np.ndarray]) -> np.ndarray:
    """``(n,)`` bool: the track has a usable TOF measurement (as :func:`features_from_columns`)."""
    return (
        (c["fHasTOF"] > 0)
        & (c["fBeta"] > 0)
        & (c["fLength"] > 0)
        & (c["fTOFSignal"] > 0)
        & (c["fTPCInnerParam"] > 0)
    )


def tof_event_time_resolution(
    c: dict[str, np.ndarray], prm: PIDNSigmaParam | None = None
) -> np.ndarray:
    """``(n,)`` event-time resolution (ps) of every TOF-matched track (NaN elsewhere), derived
    from its stored TOF n-sigma: the AO2D has no per-track resolution. With the hypothesis of
    the largest ``|t - t_exp|``, ``sigma = (t - t_exp) / n_sigma`` and
    ``sigma^2 = tof_res^2 + t0_res^2 + sigma_p^2`` (:func:`~alice_dyn.reco.pid_nsigma.nsigma_tof`);
    feeding the result back into ``nsigma_tof`` reproduces the stored n-sigma. Tracks where it
    is not determined (zero n-sigma) get the median of the others."""
    prm = prm or PIDNSigmaParam()
    ok = tof_matched(c)
    p = np.maximum(c["fTPCInnerParam"].astype(np.float64), 1e-3)
    length = c["fLength"].astype(np.float64)
    t = c["fTOFSignal"].astype(np.float64)
    texp = np.column_stack([tof_expected_ps(length, p, m) for m in PID_MASSES])
    ns = np.column_stack([c[k] for k in TOF_NSIGMA_COLUMNS]).astype(np.float64)
    k = np.argmax(np.abs(t[:, None] - texp), axis=1)
    rows = np.arange(len(t))
    dt, nk, tk, mk = t - texp[rows, k], ns[rows, k], texp[rows, k], PID_MASSES[k]
    good = ok & np.isfinite(nk) & (np.abs(nk) > 1e-6) & (nk > -900.0)
    sigma = np.where(good, dt / np.where(good, nk, 1.0), np.nan)
    sig_p = tk * mk * mk / (p * p + mk * mk) * prm.rel_momentum_resolution
    t0_res = np.sqrt(np.maximum(sigma**2 - sig_p**2 - prm.tof_resolution_ps**2, 0.0))
    fill = float(np.median(t0_res[good])) if good.any() else 0.0
    return np.where(ok, np.where(good, t0_res, fill), np.nan)


def tof_mismatch_columns(
    c: dict[str, np.ndarray],
    rng: np.random.Generator,
    prm: PIDNSigmaParam | None = None,
    match: TOFMatchParam | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """TOF columns of every track of one timeframe ``c`` (AO2D columns) after a TOF mismatch:
    each TOF-matched track gets the ``fTOFSignal`` of another TOF-matched track of the
    timeframe (drawn at random, never itself; redrawn up to :data:`TOF_MISMATCH_TRIES` times
    until the time of flight is physical for its own length, ``min_beta < beta < max_beta`` as
    in the matcher), its own length and momentum, and ``fBeta = L / (c t)`` and the five
    ``fTOFNSigma*`` recomputed with its own resolution (:func:`tof_event_time_resolution`).
    Returns the columns (``fTOFSignal``, ``fBeta``, ``fTOFNSigma*``; unchanged for tracks
    without a donor) and the donor index of every track (-1: none). ``prm``, ``match``: the
    n-sigma and matching settings (default: their defaults)."""
    prm, match = prm or PIDNSigmaParam(), match or TOFMatchParam()
    ok = tof_matched(c)
    n = len(ok)
    t = c["fTOFSignal"].astype(np.float64)
    length = c["fLength"].astype(np.float64)
    pool = np.flatnonzero(ok)
    donor = np.full(n, -1, np.int64)
    if len(pool) >= 2:
        pos = np.arange(len(pool))
        todo = np.ones(len(pool), bool)
        for _ in range(TOF_MISMATCH_TRIES):
            idx = np.flatnonzero(todo)
            if len(idx) == 0:
                break
            r = rng.integers(0, len(pool) - 1, size=len(idx))
            cand = pool[r + (r >= pos[idx])]  # skip the track itself
            beta = length[pool[idx]] / (t[cand] * 1e-3 * SPEED_OF_LIGHT_CM_PER_NS)
            phys = (beta > match.min_beta) & (beta < match.max_beta)
            donor[pool[idx[phys]]] = cand[phys]
            todo[idx[phys]] = False
    has = donor >= 0
    t_new = np.where(has, t[np.maximum(donor, 0)], t)
    p = c["fTPCInnerParam"].astype(np.float64)
    ns = nsigma_tof(t_new, length, p, np.nan_to_num(tof_event_time_resolution(c, prm)), prm)
    beta_new = length / (t_new * 1e-3 * SPEED_OF_LIGHT_CM_PER_NS)
    out = {
        "fTOFSignal": t_new.astype(np.float32),
        "fBeta": np.where(has, beta_new, c["fBeta"]).astype(np.float32),
    }
    for s, name in enumerate(TOF_NSIGMA_COLUMNS):
        out[name] = np.where(has, ns[:, s], c[name]).astype(np.float32)
    return out, donor


def dataset_from_reco(
    reco_path: str | Path,
    truth_path: str | Path,
    embedding_dim: int = 0,
    *,
    tof_mismatch: bool = False,
    seed: int = 0,
) -> PIDDataset:
    """Matched, labelled tracks of an AO2D-like file and its simulation (see the module doc);
    ``embedding_dim > 0`` also reads the track network's embedding (``O2tracknetemb``) into
    ``extra["trackemb"]``; ``tof_mismatch``: also the ``tof`` group after a TOF mismatch
    (:func:`tof_mismatch_columns`, drawn per timeframe with ``(seed, tf_id)``, so a file split
    in parts gives the same draws) in ``extra["tof_mismatch"]``."""
    from alice_dyn.io.aod import iter_matched

    tables = dict(TABLES)
    emb_names = tuple(f"fEmb{i:02d}" for i in range(embedding_dim))
    if embedding_dim:
        tables["O2tracknetemb"] = emb_names
    parts = []
    for reco, tf in iter_matched(reco_path, truth_path, tables):
        c = {name: reco[name] for table in TABLES.values() for name in table}
        mc = c["fMcParticleId"]
        sp = np.where(mc >= 0, species_index(tf.particles.pdg)[np.maximum(mc, 0)], -1)
        keep = (mc >= 0) & ((c["fMcMask"] & 0x8000) == 0) & ((c["fFlags"] & 0x2) == 0)
        keep &= (sp >= 0) & (sp < 5) & (c["fTPCInnerParam"] > 0)
        feats, masks = features_from_columns({k: v[keep] for k, v in c.items()})
        labels = sp[keep].astype(np.int64)
        p = c["fTPCInnerParam"][keep].astype(np.float32)
        extra = {}
        if embedding_dim:
            emb = np.column_stack([reco[name] for name in emb_names]).astype(np.float32)
            extra["trackemb"] = emb[keep]
        if tof_mismatch:
            rng = np.random.default_rng([seed, int(tf.meta.tf_id)])
            mis, _ = tof_mismatch_columns(c, rng)
            f_mis, _ = features_from_columns({k: v[keep] for k, v in {**c, **mis}.items()})
            extra["tof_mismatch"] = f_mis["tof"]
        parts.append(
            PIDDataset(feats, masks, labels, p, c["fPidNSigma"][keep].astype(np.int8), extra)
        )
    return PIDDataset.concatenate(parts)


def split_dataset(ds: PIDDataset, fraction: float, seed: int) -> tuple[PIDDataset, PIDDataset]:
    """``(rest, part)``: a random ``fraction`` of the tracks (``part``, drawn with ``seed``)
    and the others, in a fixed order for a seed."""
    perm = np.random.default_rng(seed).permutation(len(ds))
    n_part = int(fraction * len(ds))
    return ds.take(perm[n_part:]), ds.take(perm[:n_part])


def require_tracks(ds: PIDDataset, n_min: int, purpose: str) -> None:
    """A one-line :class:`~alice_dyn.framework.errors.UsageError` when ``ds`` has fewer than
    ``n_min`` tracks for ``purpose`` (e.g. "to train the PID networks")."""
    if len(ds) < n_min:
        raise UsageError(
            f"{len(ds)} tracks are too few {purpose} (at least {n_min}: simulate more "
            "timeframes, --timeframes)"
        )
