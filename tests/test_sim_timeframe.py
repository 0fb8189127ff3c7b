"""Whole simulated timeframes: determinism, ordering, labels, multiplicities, ClusterNative."""

from __future__ import annotations

import numpy as np
import pytest

from alice_dyn.event.timeframe import REACHED_TPC
from alice_dyn.io import timeframe_problems
from alice_dyn.physics.particles import species_index
from alice_dyn.sim import SimConfig, simulate_timeframe
from alice_dyn.sim.generator import generate_collisions, sample_pt
from alice_dyn.sim.timeframe import merge_close_clusters, sector_row_time_order
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc.cluster_native import CLUSTER_NATIVE_DTYPE, unpack_clusters


@pytest.fixture(scope="module")
def pp_tf():
    return simulate_timeframe(SimConfig.for_system("pp", seed=42), 3)


def test_same_seed_same_timeframe_other_seed_differs(pp_tf):
    again = simulate_timeframe(SimConfig.for_system("pp", seed=42), 3)
    assert again.clusters.records.tobytes() == pp_tf.clusters.records.tobytes()
    assert np.array_equal(again.clusters.mc_label, pp_tf.clusters.mc_label)
    assert np.array_equal(again.tof.time_ps, pp_tf.tof.time_ps)
    other = simulate_timeframe(SimConfig.for_system("pp", seed=43), 3)
    assert other.clusters.records.tobytes() != pp_tf.clusters.records.tobytes()


def test_timeframe_is_valid_and_in_o2_order(pp_tf):
    cl = pp_tf.clusters
    assert cl.records.dtype == CLUSTER_NATIVE_DTYPE
    key = cl.sector.astype(np.int64) * geo.N_ROWS + cl.row
    assert np.all(np.diff(key) >= 0)
    u = unpack_clusters(cl.records)
    assert np.all(u.pad < geo.ROW_N_PADS[cl.row])
    assert np.all(u.q_max <= geo.ADC_SATURATION - 1)
    assert np.all(u.q_tot >= u.q_max)
    assert timeframe_problems(pp_tf) == []


def test_labels_point_at_particles_and_counts_agree(pp_tf):
    lab = pp_tf.clusters.mc_label
    n = len(pp_tf.particles)
    assert lab.min() >= -1 and lab.max() < n
    assert 0 < np.mean(lab < 0) < 0.02  # noise clusters, ~0.5%
    counts = np.bincount(lab[lab >= 0], minlength=n)
    assert np.array_equal(counts, pp_tf.particles.n_tpc_clusters)
    assert np.array_equal(counts > 0, pp_tf.particles.reached & REACHED_TPC > 0)
    assert np.all(pp_tf.tof.label < n) and len(np.unique(pp_tf.tof.label)) == len(pp_tf.tof)


def test_collisions_pile_up_within_one_drift_time():
    cfg = SimConfig.for_system("pbpb", collisions_per_tf=5, seed=9)
    gen = generate_collisions(cfg, np.random.default_rng(1))
    gaps_us = np.diff(gen.time_ns) / 1e3
    assert np.all(gaps_us > 0)
    assert np.mean(gaps_us) < 100.0  # drift time ~97 us at 50 kHz: collisions overlap
    assert np.all(np.abs(gen.t0_meas_ps - gen.time_ns * 1e3) < 5 * cfg.ft0_resolution_ps)


@pytest.mark.parametrize("system,lo,hi", [("pp", 2 * 6.5 * 1.3 * 0.5, 2 * 6.5 * 1.3 * 1.6)])
def test_pp_multiplicity_matches_dndeta(system, lo, hi):
    cfg = SimConfig.for_system(system, collisions_per_tf=400, seed=3)
    gen = generate_collisions(cfg, np.random.default_rng(2))
    assert lo < gen.multiplicity.mean() < hi


def test_pbpb_multiplicity_and_species_mix():
    cfg = SimConfig.for_system("pbpb", collisions_per_tf=50, seed=3)
    gen = generate_collisions(cfg, np.random.default_rng(4))
    mean_dndeta = gen.multiplicity.mean() / (2 * cfg.eta_max)
    assert 400 < mean_dndeta < 800  # 0-90% centrality, ~590 expected
    frac = np.bincount(gen.species, minlength=6) / len(gen.species)
    assert frac[2] == pytest.approx(0.78, abs=0.02)  # pions dominate
    assert frac[3] == pytest.approx(0.13, abs=0.02)
    assert np.mean(gen.charge > 0) == pytest.approx(0.5, abs=0.02)
    assert np.all(species_index(gen.pdg) == gen.species)


def test_heavier_species_have_harder_spectra():
    cfg = SimConfig.for_system("pbpb")
    rng = np.random.default_rng(0)
    means = [sample_pt(np.full(50000, s, np.int8), cfg, rng).mean() for s in (2, 3, 4)]
    assert means[0] < means[1] < means[2]


def test_sort_and_merge_kernels():
    sector = np.array([1, 0, 0, 0, 0], dtype=np.int32)
    row = np.array([0, 5, 5, 5, 4], dtype=np.int32)
    time = np.array([1.0, 30.0, 10.0, 10.4, 99.0])
    order = sector_row_time_order(sector, row, time)
    assert order.tolist() == [4, 2, 3, 1, 0]
    pad = np.array([5.0, 5.3, 8.0])
    t = np.array([10.0, 10.4, 10.5])
    qtot = np.array([100.0, 50.0, 30.0])
    flags = np.zeros(3, np.uint8)
    label = np.array([7, 8, 9], np.int32)
    keep = merge_close_clusters(
        np.zeros(3, np.int32), np.zeros(3, np.int32), pad, t, np.ones(3), np.ones(3),
        qtot / 3, qtot, flags, label,
    )  # fmt: skip
    assert keep.tolist() == [True, False, True]  # 0 and 1 unresolvable, 2 is 2.7 pads away
    assert label[0] == 7 and pad[0] == pytest.approx(5.1)
    assert qtot[0] == 150.0


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="collision system"):
        SimConfig.for_system("xexe")
    with pytest.raises(ValueError, match="bfield"):
        simulate_timeframe(SimConfig.for_system("pp", bfield_t=0.0), 0)
