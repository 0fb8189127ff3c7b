"""Particle species, Bethe-Bloch (ALEPH) dE/dx, TOF times and curvature (alice_dyn.physics)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alice_dyn.physics import bethe_bloch as bb
from alice_dyn.physics import particles as pp

M = dict(zip(pp.SPECIES, pp.MASSES_GEV, strict=True))
C_CM_PER_PS = 29.9792458e-3


# --- species -----------------------------------------------------------------------------------


def test_species_tables():
    assert pp.SPECIES == ("e", "mu", "pi", "K", "p", "d")
    assert pp.N_SPECIES_PID == 5
    assert pp.PDG_CODES.tolist() == [11, 13, 211, 321, 2212, 1000010020]
    np.testing.assert_allclose(
        pp.MASSES_GEV, [0.000511, 0.105658, 0.139570, 0.493677, 0.938272, 1.875613], rtol=1e-5
    )


@pytest.mark.parametrize(
    "pdg,species,charge",
    [
        (11, 0, -1),  # e-
        (-11, 0, 1),  # e+
        (13, 1, -1),  # mu-
        (-13, 1, 1),  # mu+
        (211, 2, 1),  # pi+
        (-211, 2, -1),  # pi-
        (321, 3, 1),  # K+
        (-321, 3, -1),  # K-
        (2212, 4, 1),  # p
        (-2212, 4, -1),  # anti-p
        (1000010020, 5, 1),  # d
        (-1000010020, 5, -1),  # anti-d
    ],
)
def test_species_charge_pdg(pdg, species, charge):
    assert int(pp.species_index(pdg)) == species
    assert int(pp.charge_of(pdg)) == charge
    assert int(pp.pdg_of(species, charge)) == pdg


def test_species_round_trip_vectorised():
    species = np.repeat(np.arange(6), 2)
    charge = np.tile([1, -1], 6)
    pdg = pp.pdg_of(species, charge)
    assert pdg.dtype == np.int32
    assert len(set(pdg.tolist())) == 12
    np.testing.assert_array_equal(pp.species_index(pdg), species)
    np.testing.assert_array_equal(pp.charge_of(pdg), charge)
    assert pp.species_index(pdg).dtype == np.int8 and pp.charge_of(pdg).dtype == np.int8


def test_unknown_pdg():
    unknown = np.array([0, 22, -22, 111, 2112, -2112, 12, 1000020030, 99999])
    assert (pp.species_index(unknown) == -1).all()
    assert (pp.charge_of(unknown) == 0).all()
    assert pp.species_index(np.array([[11, 22], [211, 0]])).tolist() == [[0, -1], [2, -1]]


def test_curvature_radius():
    assert pp.curvature_radius_cm(1.0, 0.5) == pytest.approx(667.128, rel=1e-5)
    # R[m] = pT / (0.3 B): within 0.1 % of the rounded textbook constant
    assert pp.curvature_radius_cm(1.0, 0.5) == pytest.approx(100 / (0.3 * 0.5), rel=1e-3)
    assert pp.curvature_radius_cm(1.0, 0.2) == pytest.approx(667.128 * 2.5, rel=1e-5)
    assert pp.curvature_radius_cm(1.0, -0.5) == pytest.approx(667.128, rel=1e-5)
    np.testing.assert_allclose(
        pp.curvature_radius_cm(np.array([0.5, 2.0, 2.0]), 0.5, np.array([1, -1, 2])),
        [333.564, 1334.256, 667.128],
        rtol=1e-5,
    )


# --- ALEPH Bethe-Bloch -------------------------------------------------------------------------


def test_aleph_formula():
    p1, p2, p3, p4, p5 = bb.ALEPH_SIMULATION
    assert bb.ALEPH_SIMULATION == (0.0820172, 9.94795, 8.97292e-5, 2.05873, 1.65272)
    bg = 2.0
    beta = bg / np.sqrt(1 + bg * bg)
    expected = p1 / beta**p4 * (p2 - beta**p4 - np.log(p3 + bg**-p5))
    assert bb.aleph_bethe_bloch(bg) == pytest.approx(expected, rel=1e-12)
    assert bb.aleph_bethe_bloch(4.0) == pytest.approx(0.98636, rel=1e-4)


def test_expected_dedx_is_one_at_bg_4():
    for name in ("e", "mu", "pi", "K", "p", "d"):
        assert bb.expected_dedx_mip(4.0 * M[name], M[name]) == pytest.approx(1.0, rel=1e-14)
    assert bb.expected_dedx_mip(4.0 * M["pi"], M["pi"], charge=-1) == pytest.approx(1.0)


def test_aleph_shape():
    bg = np.logspace(-0.5, 4, 4001)
    f = bb.aleph_bethe_bloch(bg)
    bg_min = bg[np.argmin(f)]
    assert 3.0 < bg_min < 4.5  # minimum ionisation near bg 3-4
    assert f.min() == pytest.approx(bb.aleph_bethe_bloch(4.0), rel=2e-3)
    # below the minimum: 1/beta^2-like rise, monotonic
    low = bg < bg_min
    assert (np.diff(f[low]) < 0).all()
    assert bb.aleph_bethe_bloch(0.5) / f.min() > 3.5
    beta = lambda x: x / np.sqrt(1 + x * x)  # noqa: E731
    ratio = bb.aleph_bethe_bloch(0.3) / bb.aleph_bethe_bloch(0.6)
    assert ratio == pytest.approx((beta(0.6) / beta(0.3)) ** 2, rel=0.15)
    # above the minimum: relativistic rise, monotonic, saturating on the Fermi plateau
    high = bg > bg_min
    assert (np.diff(f[high]) > 0).all()
    p1, p2, p3, _, _ = bb.ALEPH_SIMULATION
    plateau = p1 * (p2 - 1.0 - np.log(p3))
    assert bb.aleph_bethe_bloch(1e4) == pytest.approx(plateau, rel=5e-3)
    assert 1.4 < plateau / f.min() < 1.6  # ~50 % rise in Ne-CO2-N2
    assert bb.aleph_bethe_bloch(100.0) / f.min() > 1.2


def test_dedx_bands_at_half_gev():
    p = 0.5
    d = {s: float(bb.expected_dedx_mip(p, M[s])) for s in ("e", "mu", "pi", "K", "p")}
    # slow protons and kaons (bg 0.53, 1.0) ionise far more than a MIP
    assert d["p"] > d["K"] > d["pi"]
    assert d["p"] > 3.0 and d["K"] > 1.4
    # pions and muons are both near minimum ionisation
    assert d["pi"] == pytest.approx(1.0, abs=0.01)
    assert d["mu"] == pytest.approx(d["pi"], rel=0.02)
    # electrons (bg ~ 1000) sit on the Fermi plateau, ~50 % above the pion MIP
    assert d["e"] > 1.4 * d["pi"]
    p1, p2, p3, _, _ = bb.ALEPH_SIMULATION
    plateau = p1 * (p2 - 1.0 - np.log(p3)) / bb.aleph_bethe_bloch(4.0)
    assert d["e"] == pytest.approx(plateau, rel=0.01)


def test_dedx_charge_dependence():
    # charge sign does not matter; |z| = 2 scales by z^2.3 at the same beta*gamma
    p = np.array([0.3, 1.0, 3.0])
    np.testing.assert_array_equal(
        bb.expected_dedx_mip(p, M["p"], charge=-1), bb.expected_dedx_mip(p, M["p"])
    )
    assert bb.CHARGE_EXPONENT == 2.3
    he3 = 2.80839
    bg = 2.5
    ratio = bb.expected_dedx_mip(bg * he3 / 2, he3, charge=2) / bb.expected_dedx_mip(bg, 1.0)
    assert ratio == pytest.approx(2.0**2.3)


# --- velocity and TOF --------------------------------------------------------------------------


def test_beta_of():
    assert bb.beta_of(1.0, M["pi"]) == pytest.approx(1.0 / np.sqrt(1.0 + M["pi"] ** 2))
    assert bb.beta_of(M["p"], M["p"]) == pytest.approx(1 / np.sqrt(2))
    assert bb.beta_of(1.0, 0.0) == 1.0
    b = bb.beta_of(np.array([0.1, 1.0, 10.0]), M["K"])
    assert (np.diff(b) > 0).all() and (b < 1).all() and (b > 0).all()


def test_tof_expected_time_l380_p1():
    L = 380.0
    t = {s: float(bb.tof_expected_time_ps(L, 1.0, M[s])) for s in ("e", "pi", "K", "p")}
    assert t["e"] == pytest.approx(L / C_CM_PER_PS, rel=1e-6)  # ~12.676 ns
    assert t["pi"] == pytest.approx(12798.3, abs=0.5)
    assert t["K"] == pytest.approx(14135.9, abs=0.5)
    assert t["p"] == pytest.approx(17381.3, abs=0.5)
    assert t["e"] < t["pi"] < t["K"] < t["p"]
    # pion-kaon separation at 1 GeV/c and 3.8 m: ~1.3 ns, i.e. ~20 sigma at 60 ps
    assert t["K"] - t["pi"] > 20 * 60


@settings(max_examples=200, deadline=None)
@given(
    length=st.floats(1.0, 1000.0),
    p=st.floats(0.05, 50.0),
    species=st.integers(0, 5),
)
def test_tof_is_length_over_beta_c(length, p, species):
    m = pp.MASSES_GEV[species]
    t = bb.tof_expected_time_ps(length, p, m)
    assert t == pytest.approx(length / (bb.beta_of(p, m) * C_CM_PER_PS), rel=1e-12)
    assert t >= length / C_CM_PER_PS * (1 - 1e-12)
    assert bb.tof_expected_time_ps(length, p, m, charge=-1) == pytest.approx(t, rel=1e-15)


def test_tof_vectorised():
    t = bb.tof_expected_time_ps(np.array([380.0, 380.0]), np.array([1.0, 2.0]), pp.MASSES_GEV[2])
    assert t.shape == (2,) and t[0] > t[1]
