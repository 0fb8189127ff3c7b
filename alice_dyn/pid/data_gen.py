"""Make PID training data with the project's own chain: simulate -> ROOT -> tpc-reco -> dataset.

Layer: PID. Deterministic for a seed; everything goes through the same files and workflow as
real use (the simulation file, the AO2D-like reconstruction), so the network learns from the
reconstructed quantities it will see, not from MC truth. The workflow's options leave the
``pid-net`` stage out of that chain (``disable=("pid-net",)``: the network being trained must
not depend on a previous model, whose inputs may differ) and, for networks that reuse it, write
the track network's embedding (``tracknet_embedding``, ``O2tracknetemb``).
"""

from __future__ import annotations

from pathlib import Path

from alice_dyn.framework.executable import run_specs
from alice_dyn.framework.workflows import load_workflow
from alice_dyn.io import TimeframeWriter
from alice_dyn.pid.dataset import PIDDataset, dataset_from_reco
from alice_dyn.sim import SimConfig, simulate_timeframe


def make_pid_dataset(
    out_dir: str | Path,
    n_timeframes: int,
    *,
    system: str = "pbpb",
    seed: int = 1,
    first_tf: int = 0,
    embedding_dim: int = 0,
    tof_mismatch: bool | None = None,
    **sim_changes,
) -> PIDDataset:
    """Simulate ``n_timeframes`` (written to ``out_dir/sim.root``), reconstruct them
    (``out_dir/reco.root``) and return the labelled PID dataset (also ``out_dir/pid.npz``);
    ``embedding_dim``: also keep the track network's embedding (its width); ``tof_mismatch``:
    also the TOF-mismatch templates for the training (``extra["tof_mismatch"]``, drawn with
    ``seed``; :func:`alice_dyn.pid.dataset.tof_mismatch_columns`); ``None``: when the default
    training uses them (:data:`alice_dyn.pid.train.TOF_MISMATCH_FRACTION` > 0)."""
    if tof_mismatch is None:
        from alice_dyn.pid.train import TOF_MISMATCH_FRACTION

        tof_mismatch = TOF_MISMATCH_FRACTION > 0
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
    """The enriched simulation of the SDN network's training (:data:`alice_dyn.pid.train.
    ENRICHED_TIMEFRAMES` timeframes with ``ENRICHED_ABUNDANCES``, seed ``seed +
    ENRICHED_SEED_OFFSET``; ``changes``: the natural sample's ``system`` and settings), made
    with :func:`make_pid_dataset` into ``out_dir``."""
    from alice_dyn.pid import train

    return make_pid_dataset(
        out_dir, train.ENRICHED_TIMEFRAMES, seed=seed + train.ENRICHED_SEED_OFFSET,
        abundances=train.ENRICHED_ABUNDANCES, **changes,
    )  # fmt: skip
