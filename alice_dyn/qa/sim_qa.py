"""Physics summary of timeframes with MC truth: multiplicities, detector fractions, dE/dx.

Layer: QA (reads the data model only). :class:`SimSummary` accumulates timeframe by timeframe
so a file of any size is summarised in bounded memory. The dE/dx figure is the truncated mean
of the clusters' qTot (normalised by pad length and dip angle from MC truth) for minimum
ionising pions, the number the simulation's realism is judged by (ALICE: 5-7%).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alice_dyn.event.timeframe import IS_LOOPER, REACHED_TOF, REACHED_TRD, Timeframe
from alice_dyn.physics.particles import SPECIES, species_index
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc.cluster_native import unpack_clusters

#: O2's truncation: keep sorted clusters from 2/128 to 77/128
TRUNCATION = (2.0 / 128.0, 77.0 / 128.0)


def truncated_mean(
    values: np.ndarray, low: float = TRUNCATION[0], high: float = TRUNCATION[1]
) -> float:
    """Mean of the sorted ``values`` between the fractions ``low`` and ``high`` (NumPy)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    lo, hi = int(len(v) * low), int(len(v) * high)
    return float(v[lo:hi].mean()) if hi > lo else float("nan")


@dataclass
class SimSummary:
    """Accumulated summary over timeframes; :meth:`add` one at a time, :meth:`result` at the end."""

    n_timeframes: int = 0
    n_collisions: int = 0
    n_particles: int = 0
    n_clusters: int = 0
    n_noise_clusters: int = 0
    n_tof: int = 0
    n_trd_tracklets: int = 0
    species_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(SPECIES), np.int64))
    n_tpc_particles: int = 0  # particles with >= 1 TPC cluster in |eta| < 0.9
    n_tpc_tof: int = 0
    n_tpc_trd: int = 0
    n_loopers: int = 0
    mip_dedx: list[float] = field(default_factory=list)

    def add(self, tf: Timeframe) -> None:
        """Add one timeframe."""
        p, cl = tf.particles, tf.clusters
        self.n_timeframes += 1
        self.n_collisions += len(tf.collisions)
        self.n_particles += len(p)
        self.n_clusters += len(cl)
        self.n_noise_clusters += int(np.count_nonzero(cl.mc_label < 0))
        self.n_tof += len(tf.tof)
        self.n_trd_tracklets += len(tf.trd)
        sp = species_index(p.pdg)
        self.species_counts += np.bincount(sp[sp >= 0], minlength=len(SPECIES))
        pt = np.hypot(p.px_gev, p.py_gev).astype(np.float64)
        pz = p.pz_gev.astype(np.float64)
        eta = np.arcsinh(pz / np.maximum(pt, 1e-9))
        in_tpc = (p.n_tpc_clusters > 0) & (np.abs(eta) < 0.9)
        self.n_tpc_particles += int(in_tpc.sum())
        self.n_tpc_tof += int(np.count_nonzero(in_tpc & (p.reached & REACHED_TOF > 0)))
        self.n_tpc_trd += int(np.count_nonzero(in_tpc & (p.reached & REACHED_TRD > 0)))
        self.n_loopers += int(np.count_nonzero(p.reached & IS_LOOPER))
        self._add_mip_dedx(tf, sp, pt, pz)

    def _add_mip_dedx(self, tf: Timeframe, sp: np.ndarray, pt: np.ndarray, pz: np.ndarray) -> None:
        """Truncated-mean dE/dx of pions with 0.4 < p < 0.6 GeV/c and >= 100 clusters."""
        p_tot = np.hypot(pt, pz)
        sel = (sp == 2) & (p_tot > 0.4) & (p_tot < 0.6) & (tf.particles.n_tpc_clusters >= 100)
        sel &= (tf.particles.reached & IS_LOOPER) == 0
        if not sel.any():
            return
        lab = tf.clusters.mc_label
        keep = lab >= 0
        keep[keep] = sel[lab[keep]]
        if not keep.any():
            return
        lab = lab[keep]
        q = unpack_clusters(tf.clusters.records[keep]).q_tot.astype(np.float64)
        tgl = pz[lab] / pt[lab]
        q /= geo.ROW_PAD_HEIGHT_CM[tf.clusters.row[keep]] * np.sqrt(1.0 + tgl * tgl)
        order = np.argsort(lab, kind="stable")
        lab, q = lab[order], q[order]
        bounds = np.flatnonzero(np.diff(lab)) + 1
        for chunk in np.split(q, bounds):
            if len(chunk) >= 100:
                self.mip_dedx.append(truncated_mean(chunk))

    def result(self) -> dict[str, float | int | dict[str, int]]:
        """The summary as a flat dict (fractions, not percent)."""
        d = np.asarray(self.mip_dedx)
        n_tpc = max(self.n_tpc_particles, 1)
        return {
            "timeframes": self.n_timeframes,
            "collisions": self.n_collisions,
            "mc_particles": self.n_particles,
            "clusters": self.n_clusters,
            "noise_cluster_fraction": self.n_noise_clusters / max(self.n_clusters, 1),
            "tof_hits": self.n_tof,
            "trd_tracklets": self.n_trd_tracklets,
            "species": {s: int(c) for s, c in zip(SPECIES, self.species_counts, strict=True)},
            "tpc_particles_eta09": self.n_tpc_particles,
            "fraction_with_tof": self.n_tpc_tof / n_tpc,
            "fraction_with_trd": self.n_tpc_trd / n_tpc,
            "loopers": self.n_loopers,
            "mip_pions_for_dedx": int(d.size),
            "dedx_mip_resolution": float(d.std() / d.mean()) if d.size > 2 else float("nan"),
        }
