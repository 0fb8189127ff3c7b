"""The transport kernel's helpers (alice_dyn.sim.transport) and its resumption contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alice_dyn.physics.particles import MASSES_GEV, SPEED_OF_LIGHT_CM_PER_NS
from alice_dyn.sim import SimConfig
from alice_dyn.sim import transport as tr
from alice_dyn.tpc import geometry as geo


def _inputs(n=40, seed=5):
    """``n`` particles (pions, kaons, protons, electrons; both charges) from near the origin."""
    rng = np.random.default_rng(seed)
    species = rng.choice([0, 2, 3, 4], n)
    pt = rng.uniform(0.15, 3.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    eta = rng.uniform(-1.0, 1.0, n)
    p3 = np.column_stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)])
    vtx = rng.normal(0.0, [0.01, 0.01, 5.0], (n, 3))
    charge = rng.choice([-1.0, 1.0], n)
    t_coll = rng.uniform(0.0, 1e5, n)
    seeds = rng.integers(0, 2**31 - 1, n).astype(np.uint32)
    prm = tr.kernel_params(SimConfig.for_system("pp", seed=1), geo.DEFAULT_GAS)
    return p3, vtx, charge, MASSES_GEV[species], tr.CTAU_CM[species], t_coll, seeds, prm


def _transport(args, cap):
    """Run the kernel to the end, doubling the cluster buffers when it asks for more."""
    n = args[0].shape[0]
    cl_f, cl_i, cl_label = np.zeros((6, cap)), np.zeros((3, cap), np.int32), np.zeros(cap, np.int32)
    per = (np.zeros(n, np.uint8), np.zeros(n, np.int16), np.zeros((n, 6)), np.zeros((n, 6, 5)))
    trd_n = np.zeros(n, np.int32)
    first, n_cl, resumed = 0, 0, 0
    while True:
        first, n_cl = tr.transport_particles(first, *args, cl_f, cl_i, cl_label, n_cl, *per, trd_n)
        if first >= n:
            return (cl_f[:, :n_cl], cl_i[:, :n_cl], cl_label[:n_cl], *per, trd_n), resumed
        resumed += 1
        cl_f = np.concatenate([cl_f, np.zeros_like(cl_f)], axis=1)
        cl_i = np.concatenate([cl_i, np.zeros_like(cl_i)], axis=1)
        cl_label = np.concatenate([cl_label, np.zeros_like(cl_label)])


def test_output_does_not_depend_on_where_the_kernel_resumed():
    args = _inputs()
    small, resumed = _transport(args, cap=2000)
    large, resumed_never = _transport(args, cap=200_000)
    assert resumed > 0 and resumed_never == 0
    for a, b in zip(small, large, strict=True):
        assert a.shape == b.shape and a.tobytes() == b.tobytes()
    reached, n_tpc = large[3], large[4]
    assert large[2].size == n_tpc.sum() > 0
    assert np.array_equal(reached & 0x1 != 0, n_tpc > 0)
    assert np.array_equal(reached & 0x2 != 0, large[-1] > 0)  # TRD bit <=> tracklets
    assert np.array_equal(reached & 0x4 != 0, large[5][:, 0] == 1.0)  # TOF bit <=> hit


def test_helix_step_length_by_region():
    assert tr._helix_step_length(0.0, 2.0) == 10.0  # fast up to the inner material
    assert tr._helix_step_length(75.0, 2.0) == pytest.approx(3.5)  # lands just past r = 78
    assert tr._helix_step_length(150.0, 2.0) == 2.0  # TPC step
    assert tr._helix_step_length(300.0, 2.0) == 4.0  # outside the TPC


def test_tof_hit_lies_on_the_tof_cylinder_with_its_time_of_flight():
    prm = tr.kernel_params(SimConfig.for_system("pp", seed=1, tof_efficiency=1.0), geo.DEFAULT_GAS)
    r_tof = prm[tr.P_TOF_R]
    tof_f = np.zeros((1, 6))
    p, m = 2.0, MASSES_GEV[2]
    # a radial chord at phi = 0.3 (away from sector edges), z = 10 cm, crossing r_tof halfway
    c, s = math.cos(0.3), math.sin(0.3)
    r0, r1 = r_tof - 2.0, r_tof + 2.0
    hit = tr._tof_hit(
        0, r0 * c, r0 * s, 10.0, r1 * c, r1 * s, 10.0, r0, r1, r_tof, p, m, 12.0, 370.0, 4.0,
        100.0, prm, tof_f,
    )  # fmt: skip
    assert hit and tof_f[0, 0] == 1.0
    assert math.hypot(tof_f[0, 1], tof_f[0, 2]) == pytest.approx(r_tof)
    assert abs(tof_f[0, 3] - 10.0) <= 0.5 * tr.TOF_PAD_Z_CM
    assert tof_f[0, 5] == pytest.approx(372.0)  # path at the chord's start + half the chord
    beta = p / math.hypot(p, m)
    t_ps = (100.0 + 12.0 + 2.0 / (beta * SPEED_OF_LIGHT_CM_PER_NS)) * 1e3
    assert abs(tof_f[0, 4] - t_ps) < 6 * prm[tr.P_TOF_RES]


def test_advance_without_material_keeps_a_unit_direction_and_adds_the_step():
    prm = tr.kernel_params(SimConfig.for_system("pp", seed=1), geo.DEFAULT_GAS)
    p, m, phi, omega, ds, tgl, dl3 = 1.0, MASSES_GEV[2], 0.4, 0.002, 2.0, 0.5, 2.0 * math.sqrt(1.25)
    # from r = 150 to 152 cm outside the drift volume (|z| > drift length): no material
    drift_l = prm[tr.P_DRIFT_L]
    out = tr._advance(
        p, m, phi, omega, ds, tgl, dl3, 150.0, 152.0, 300.0, 1.0, 10.0, 0.1, 0.0, drift_l, prm
    )
    p1, tx, ty, tz, tof_ns, path, turned, gas_path = out
    assert p1 == p and gas_path == 0.0
    assert tx * tx + ty * ty + tz * tz == pytest.approx(1.0)
    assert math.atan2(ty, tx) == pytest.approx(phi + omega * ds)
    assert path == pytest.approx(10.0 + dl3) and turned == pytest.approx(0.1 + omega * ds)
    beta = p / math.hypot(p, m)
    assert tof_ns == pytest.approx(1.0 + dl3 / (beta * SPEED_OF_LIGHT_CM_PER_NS))
