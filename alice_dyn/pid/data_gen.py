"""Make PID training data with the project's own chain: simulate -> ROOT -> tpc-reco -> dataset.

Layer: PID. Deterministic for a seed; everything goes through the same files and workflow as
real use (the simulation file, the AO2D-like reconstruction), so the network learns from the
reconstructed quantities it will see, not from MC truth. The workflow's options leave the
``pid-net`` stage out of that chain (``disable=("pid-net",)``: the network being trained must
not depend on a previous model, whose inputs may differ) and, for networks that reuse it, write
the track network's embedding (``tracknet_embedding``, ``O2tracknetemb``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alice_dyn.framework.executable import run_specs
from alice_dyn.framework.workflows import load_workflow
from alice_dyn.io import TimeframeWriter
from alice_dyn.pid.dataset import PIDDataset, dataset_from_reco, require_tracks
from alice_dyn.sim import SimConfig, simulate_timeframe

#: the enriched simulation of the SDN network's training (electrons and muons from it are added
#: to the training and early-stopping data, the logits shifted back to the natural mix):
#: timeframes, abundances of (e, mu, pi, K, p, d) (10x the electrons, 4x the muons of Pb-Pb),
#: seed = training seed + ENRICHED_SEED_OFFSET. Chosen on validation data only (the
#: validation + calibration split and three independent sets, seeds 505/606/707): as pure as
#: n-sigma at its efficiency in 172 of 176 (species, p) bins against 166, all 176 within one
#: standard deviation (171 before), electron recall 77.7% -> 80.6%, accuracy -0.08 pp on
#: average; docs/results/pid_network.md
ENRICHED_TIMEFRAMES: int = 40
ENRICHED_ABUNDANCES: tuple[float, ...] = (0.10, 0.02, 0.675, 0.130, 0.0742, 0.0008)
ENRICHED_SEED_OFFSET: int = 808


def make_pid_dataset(
    out_dir: str | Path,
    n_timeframes: int,
    *,
    system: str = "pbpb",
    seed: int = 1,
    first_tf: int = 0,
    embedding_dim: int = 0,
    tof_mismatch: bool = False,
    **sim_changes,
) -> PIDDataset:
    """Simulate ``n_timeframes`` (written to ``out_dir/sim.root``), reconstruct them
    (``out_dir/reco.root``) and return the labelled PID dataset (also ``out_dir/pid.npz``);
    ``embedding_dim``: also keep the track network's embedding (its width); ``tof_mismatch``:
    also the TOF-mismatch templates for the training (``extra["tof_mismatch"]``, drawn with
    ``seed``; :func:`alice_dyn.pid.dataset.tof_mismatch_columns`; the training asks for them
    when :data:`alice_dyn.pid.train.TOF_MISMATCH_FRACTION` > 0)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = out / "sim.root"
    reco = out / "reco.root"
    cfg = SimConfig.for_system(system, seed=seed, **sim_changes)
    with TimeframeWriter(sim) as writer:
        for tf_id in range(first_tf, first_tf + n_timeframes):
            writer.write(simulate_timeframe(cfg, tf_id))
    specs = load_workflow("tpc-reco").define_workflow(
        [str(sim)], str(reco), disable=("pid-net",), tracknet_embedding=embedding_dim > 0
    )
    summary = run_specs(specs, progress=False)
    summary.raise_if_failed()
    data = dataset_from_reco(
        reco, sim, embedding_dim=embedding_dim, tof_mismatch=tof_mismatch, seed=seed
    )
    data.save(out / "pid.npz")
    return data


def make_enriched_dataset(out_dir: str | Path, *, seed: int, **changes) -> PIDDataset:
    """The enriched simulation of the SDN network's training (:data:`ENRICHED_TIMEFRAMES`
    timeframes with :data:`ENRICHED_ABUNDANCES`, seed ``seed + ENRICHED_SEED_OFFSET``;
    ``changes``: the natural sample's ``system`` and settings), made with
    :func:`make_pid_dataset` into ``out_dir``."""
    return make_pid_dataset(
        out_dir, ENRICHED_TIMEFRAMES, seed=seed + ENRICHED_SEED_OFFSET,
        abundances=ENRICHED_ABUNDANCES, **changes,
    )  # fmt: skip


@dataclass(frozen=True)
class TrainingSample:
    """Where the PID training tracks come from: the reconstruction ``data`` (``alice-dyn run
    tpc-reco``) with its simulation file ``truth``, or else ``timeframes`` of ``system``
    (``centrality`` as fractions, ``collisions_per_tf``, ``seed``) simulated and reconstructed
    into ``work_dir`` (a new temporary folder when ``None``)."""

    data: str | Path | None = None
    truth: str | Path | None = None
    work_dir: str | Path | None = None
    timeframes: int = 30
    system: str = "pbpb"
    centrality: tuple[float, float] = (0.0, 0.7)
    collisions_per_tf: int = 2
    seed: int = 101


def training_data(
    sample: TrainingSample,
    *,
    embedding_dim: int = 0,
    tof_mismatch: bool = False,
    enriched: bool = False,
    min_tracks: int = 0,
    log=print,
) -> tuple[PIDDataset, PIDDataset | None]:
    """The PID training dataset of ``sample`` and (with ``enriched``, when it is simulated) the
    enriched e/mu dataset of the SDN network's training, which has a fixed size,
    :data:`ENRICHED_TIMEFRAMES` timeframes, whatever ``sample.timeframes``: ``log`` says so
    before it is made. ``embedding_dim``: keep the track network's embedding (its width) for
    :mod:`alice_dyn.pid.reuse`; ``tof_mismatch``: the TOF-mismatch templates of the training
    (:func:`make_pid_dataset`); ``min_tracks``: fewer tracks end it with a one-line error
    before the enriched sample is made."""
    s = sample
    data, truth, system, seed = s.data, s.truth, s.system, s.seed
    lo, hi = s.centrality
    if data is not None:
        ds = dataset_from_reco(data, truth, embedding_dim=embedding_dim)
        log(f"PID dataset: {len(ds)} tracks, classes {_class_counts(ds)}")
        require_tracks(ds, min_tracks, "for the PID training")
        return ds, None
    work = Path(s.work_dir or tempfile.mkdtemp(prefix="alice_dyn_pid_"))
    ds = make_pid_dataset(
        work, s.timeframes, system=system, seed=seed, centrality_min=lo, centrality_max=hi,
        collisions_per_tf=s.collisions_per_tf, embedding_dim=embedding_dim,
        tof_mismatch=tof_mismatch,
    )  # fmt: skip
    log(f"PID dataset: {len(ds)} tracks, classes {_class_counts(ds)}")
    require_tracks(ds, min_tracks, "for the PID training")
    if not enriched:
        return ds, None
    log(
        f"simulating the enriched e/mu sample of the SDN network's training as well: "
        f"{ENRICHED_TIMEFRAMES} {system} timeframes (a fixed size, whatever the number of "
        f"training timeframes), seed {seed + ENRICHED_SEED_OFFSET}, into {work / 'enriched'}"
    )
    extra = make_enriched_dataset(
        work / "enriched", seed=seed, system=system, centrality_min=lo, centrality_max=hi,
        collisions_per_tf=s.collisions_per_tf, tof_mismatch=tof_mismatch,
    )  # fmt: skip
    log(f"enriched dataset: {len(extra)} tracks, classes {_class_counts(extra)}")
    return ds, extra


def _class_counts(ds: PIDDataset) -> list[int]:
    return np.bincount(ds.labels, minlength=5).tolist()
