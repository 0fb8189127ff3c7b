"""TPC coordinate transforms (alice_dyn.tpc.transform): round trips and A/C-side conventions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc import transform as tr

GAS = geo.DEFAULT_GAS
CM_PER_BIN = 2.58 * 0.2
L = 250.0
N = 16  # points per hypothesis example


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-6)


@st.composite
def pad_plane_points(draw, n=N):
    """(sector, row, pad, time, t0) inside the pad plane, |z| in (1, 249) cm."""
    sector = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 35)))
    row = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 151)))
    u = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
    pad = 0.5 + u * (geo.ROW_N_PADS[row] - 1.0)
    abs_z = draw(hnp.arrays(np.float64, n, elements=st.floats(1.001, 248.999)))
    t0 = draw(
        st.one_of(
            st.floats(-1000.0, 1e5),
            hnp.arrays(np.float64, n, elements=st.floats(-1000.0, 1e5)),
        )
    )
    time = t0 + (L - abs_z) / CM_PER_BIN
    return sector, row, pad, time, t0


# --- pad <-> y ---------------------------------------------------------------------------------


def test_pad_centre_is_y_zero():
    rows = np.arange(152)
    for sector in (0, 7, 18, 35):
        s = np.full(152, sector)
        np.testing.assert_array_equal(tr.pad_to_y(s, rows, geo.ROW_N_PADS / 2), 0.0)
        np.testing.assert_allclose(tr.y_to_pad(s, rows, np.zeros(152)), geo.ROW_N_PADS / 2)


def test_pad_direction_a_and_c_side():
    rows = np.arange(152)
    n = geo.ROW_N_PADS
    w = geo.ROW_PAD_WIDTH_CM
    # A side: larger pad -> larger y; pad 0 .. n_pads spans -half_width .. +half_width
    y0 = tr.pad_to_y(np.zeros(152, int), rows, np.zeros(152))
    y1 = tr.pad_to_y(np.zeros(152, int), rows, np.ones(152))
    yn = tr.pad_to_y(np.zeros(152, int), rows, n.astype(float))
    close(y1 - y0, w)
    close(y0, -geo.ROW_HALF_WIDTH_CM)
    close(yn, geo.ROW_HALF_WIDTH_CM)
    # C side: mirror image, larger pad -> smaller y
    c = np.full(152, 20)
    close(tr.pad_to_y(c, rows, np.ones(152)) - tr.pad_to_y(c, rows, np.zeros(152)), -w)
    close(tr.pad_to_y(c, rows, np.zeros(152)), geo.ROW_HALF_WIDTH_CM)


def test_pad_to_y_hand_values():
    # row 0: 66 pads of 0.416 cm; centre of pad 0 is pad coordinate 0.5
    assert tr.pad_to_y(0, 0, 0.5) == pytest.approx((0.5 - 33) * 0.416)
    assert tr.pad_to_y(18, 0, 0.5) == pytest.approx(-(0.5 - 33) * 0.416)
    # row 151: 138 pads of 0.607 cm
    assert tr.pad_to_y(5, 151, 100.0) == pytest.approx((100 - 69) * 0.607)
    assert tr.pad_to_y(23, 151, 100.0) == pytest.approx(-(100 - 69) * 0.607)


@settings(max_examples=200, deadline=None)
@given(pad_plane_points())
def test_pad_y_round_trip(pts):
    sector, row, pad, _, _ = pts
    y = tr.pad_to_y(sector, row, pad)
    assert (np.abs(y) < geo.ROW_HALF_WIDTH_CM[row]).all()
    close(tr.y_to_pad(sector, row, y), pad)


# --- time <-> z --------------------------------------------------------------------------------


@pytest.mark.parametrize("t0", [0.0, 123.25])
def test_drift_convention(t0):
    """A cluster at time t0 has zero drift: it sits on the pad plane, |z| = drift length."""
    a, c = np.array([3]), np.array([21])
    assert tr.time_to_z(a, t0, t0)[0] == pytest.approx(L)
    assert tr.time_to_z(c, t0, t0)[0] == pytest.approx(-L)
    # the central electrode (z = 0) is reached after the full drift time
    t_cathode = t0 + L / CM_PER_BIN
    assert tr.time_to_z(a, t_cathode, t0)[0] == pytest.approx(0.0, abs=1e-9)
    assert tr.z_to_time(c, 0.0, t0)[0] == pytest.approx(t_cathode)
    assert L / CM_PER_BIN == pytest.approx(GAS.max_drift_time_bins)
    # one time bin later the cluster is 0.516 cm further from the pad plane
    assert tr.time_to_z(a, t0 + 1.0, t0)[0] == pytest.approx(L - 0.516)
    assert tr.time_to_z(c, t0 + 1.0, t0)[0] == pytest.approx(-(L - 0.516))


def test_z_sign_by_side():
    time = np.linspace(1.0, 480.0, 50)
    assert (tr.time_to_z(np.full(50, 0), time) > 0).all()
    assert (tr.time_to_z(np.full(50, 17), time) > 0).all()
    assert (tr.time_to_z(np.full(50, 18), time) < 0).all()
    assert (tr.time_to_z(np.full(50, 35), time) < 0).all()
    # later arrival means a longer drift: |z| decreases with time on both sides
    assert (np.diff(tr.time_to_z(np.full(50, 0), time)) < 0).all()
    assert (np.diff(tr.time_to_z(np.full(50, 30), time)) > 0).all()


def test_gas_t0_and_collision_t0_add():
    gas = GAS.replace(t0_time_bins=10.0)
    z_shifted = tr.time_to_z(0, 110.0, 0.0, gas)
    assert z_shifted == pytest.approx(tr.time_to_z(0, 100.0, 0.0))
    assert z_shifted == pytest.approx(tr.time_to_z(0, 110.0, 10.0))
    assert tr.z_to_time(0, 100.0, 5.0, gas) == pytest.approx(tr.z_to_time(0, 100.0) + 15.0)
    fast = GAS.replace(drift_velocity_cm_us=5.16)
    assert tr.time_to_z(0, 1.0, 0.0, fast) == pytest.approx(L - 5.16 * 0.2)


@settings(max_examples=200, deadline=None)
@given(pad_plane_points())
def test_time_z_round_trip(pts):
    sector, _, _, time, t0 = pts
    z = tr.time_to_z(sector, time, t0)
    assert ((np.abs(z) > 1.0) & (np.abs(z) < 249.0)).all()
    assert (np.sign(z) == np.where(sector < 18, 1.0, -1.0)).all()
    close(tr.z_to_time(sector, z, t0), time)


@settings(max_examples=200, deadline=None)
@given(
    sector=hnp.arrays(np.int64, N, elements=st.integers(0, 35)),
    abs_z=hnp.arrays(np.float64, N, elements=st.floats(1.001, 248.999)),
    t0=st.floats(0.0, 1e5),
)
def test_z_time_round_trip(sector, abs_z, t0):
    z = np.where(sector < 18, abs_z, -abs_z)
    time = tr.z_to_time(sector, z, t0)
    assert (time > t0).all()
    close(tr.time_to_z(sector, time, t0), z)


# --- local <-> global --------------------------------------------------------------------------


def test_sector_centre_rotation():
    gx, gy = tr.local_to_global(np.array([0, 18, 4]), np.full(3, 100.0), np.zeros(3))
    phi = np.rad2deg(np.arctan2(gy, gx))
    close(phi, [10.0, 10.0, 90.0])
    close(np.hypot(gx, gy), 100.0)
    # local +y points towards larger azimuth
    gx, gy = tr.local_to_global(0, 100.0, 10.0)
    assert np.rad2deg(np.arctan2(gy, gx)) == pytest.approx(10.0 + np.rad2deg(np.arctan(0.1)))


@settings(max_examples=200, deadline=None)
@given(
    sector=hnp.arrays(np.int64, N, elements=st.integers(0, 35)),
    x=hnp.arrays(np.float64, N, elements=st.floats(-300.0, 300.0)),
    y=hnp.arrays(np.float64, N, elements=st.floats(-300.0, 300.0)),
)
def test_local_global_round_trip(sector, x, y):
    gx, gy = tr.local_to_global(sector, x, y)
    close(np.hypot(gx, gy), np.hypot(x, y))
    lx, ly = tr.global_to_local(sector, gx, gy)
    close(lx, x)
    close(ly, y)
    gx2, gy2 = tr.local_to_global(sector, *tr.global_to_local(sector, x, y))
    close(gx2, x)
    close(gy2, y)


# --- full chain --------------------------------------------------------------------------------


def test_pad_time_to_local_hand_values():
    x, y, z = tr.pad_time_to_local(
        np.array([0, 18]), np.array([0, 151]), np.array([33.0, 69.0]), np.array([0.0, 10.0])
    )
    close(x, [85.225, 245.65])
    close(y, [0.0, 0.0])
    close(z, [L, -(L - 10 * 0.516)])
    p, t = tr.local_to_pad_time(np.array([0, 18]), np.array([0, 151]), y, z)
    close(p, [33.0, 69.0])
    close(t, [0.0, 10.0])


@settings(max_examples=200, deadline=None)
@given(pad_plane_points())
def test_pad_time_global_round_trip(pts):
    sector, row, pad, time, t0 = pts
    gx, gy, gz = tr.pad_time_to_global(sector, row, pad, time, t0)
    # the global point is in the sector's 20-degree wedge, on its side, at the row's radius
    phi = np.arctan2(gy, gx)
    dphi = np.angle(np.exp(1j * (phi - geo.SECTOR_ALPHA_RAD[sector])))
    assert (np.abs(dphi) < np.deg2rad(10.0)).all()
    assert (np.sign(gz) == np.where(sector < 18, 1.0, -1.0)).all()
    assert (np.hypot(gx, gy) >= geo.ROW_X_CM[row] - 1e-9).all()
    s2, r2, p2, t2 = tr.global_to_pad_time(gx, gy, gz, t0)
    np.testing.assert_array_equal(s2, sector)
    np.testing.assert_array_equal(r2, row)
    close(p2, pad)
    close(t2, time)


def test_global_outside_rows_gives_minus_one_and_nan():
    gap_iroc_oroc = 0.5 * (geo.ROW_X_CM[62] + geo.ROW_X_CM[63])
    gap_oroc1_oroc2 = 0.5 * (geo.ROW_X_CM[96] + geo.ROW_X_CM[97])
    # on the sector-0 centre line: chamber gaps, inside the inner field cage, beyond the TPC
    r = np.array([gap_iroc_oroc, gap_oroc1_oroc2, 50.0, 84.0, 247.0, 400.0])
    alpha = np.deg2rad(10.0)
    gx, gy = r * np.cos(alpha), r * np.sin(alpha)
    for gz in (100.0, -100.0):
        sector, row, pad, time = tr.global_to_pad_time(gx, gy, np.full(r.size, gz))
        assert (row == -1).all()
        assert np.isnan(pad).all() and np.isnan(time).all()
        assert (sector == (0 if gz > 0 else 18)).all()
    # a mixture: only the points off the rows are flagged
    r = np.array([85.225, gap_iroc_oroc, 245.65])
    sector, row, pad, time = tr.global_to_pad_time(
        r * np.cos(alpha), r * np.sin(alpha), np.full(3, 50.0)
    )
    assert sector.tolist() == [0, 0, 0]
    assert row.tolist() == [0, -1, 151]
    assert np.isnan(pad).tolist() == [False, True, False]
    assert np.isnan(time).tolist() == [False, True, False]
    close(pad[[0, 2]], [33.0, 69.0])


def test_global_between_sectors_is_outside_the_pad_plane():
    """On a sector boundary the radius is inside a row, but the point lies in the dead zone
    between two sectors' pad planes: no pad, so row -1 and NaN like a radial gap."""
    r = 200.0
    phi = np.deg2rad(20.0 - 1e-6)  # just below the sector 0 / sector 1 boundary
    gx, gy = r * np.cos(phi), r * np.sin(phi)
    sector, row, pad, time = tr.global_to_pad_time(np.array([gx]), np.array([gy]), np.array([5.0]))
    assert (
        sector[0] == 0
        and geo.row_of_radius(
            np.array([gx * np.cos(np.deg2rad(10)) + gy * np.sin(np.deg2rad(10))])
        )[0]
        >= 0
    )
    assert row[0] == -1 and np.isnan(pad[0]) and np.isnan(time[0])
