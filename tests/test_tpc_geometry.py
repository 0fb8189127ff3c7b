"""TPC geometry tables and gas parameters (alice_dyn.tpc.geometry) against REFERENCE.md §2."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alice_dyn.tpc import geometry as geo

REGION_ROWS = [17, 15, 16, 15, 18, 16, 16, 14, 13, 12]
REGION_PAD_HEIGHT = [0.75, 0.75, 0.75, 0.75, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5]
REGION_PAD_WIDTH = [0.416, 0.420, 0.420, 0.436, 0.6, 0.6, 0.608, 0.588, 0.604, 0.607]
#: radius of the first row of each region, mm (REFERENCE.md), taken as the row's lower edge
REGION_R_START_MM = [848.5, 976, 1088.5, 1208.5, 1347, 1527, 1708, 1900, 2089, 2284]
REGION_FIRST_ROW = np.concatenate([[0], np.cumsum(REGION_ROWS)[:-1]])

_lo = geo.ROW_X_CM - 0.5 * geo.ROW_PAD_HEIGHT_CM
_hi = geo.ROW_X_CM + 0.5 * geo.ROW_PAD_HEIGHT_CM


# --- pad rows and regions ---------------------------------------------------------------------


def test_row_and_region_counts():
    assert geo.N_ROWS == 152
    assert geo.N_REGIONS == 10
    assert geo.REGION_N_ROWS.tolist() == REGION_ROWS
    assert int(geo.REGION_N_ROWS.sum()) == 152
    assert geo.N_ROWS_IROC == 63
    assert int(geo.ROW_IS_IROC.sum()) == 63
    assert int((~geo.ROW_IS_IROC).sum()) == 89
    # IROC rows come first, then OROC1..3
    assert geo.ROW_IS_IROC[:63].all() and not geo.ROW_IS_IROC[63:].any()
    assert np.bincount(geo.ROW_ROC).tolist() == [63, 34, 30, 25]


def test_per_row_tables_have_row_shape():
    for table in (
        geo.ROW_REGION,
        geo.ROW_PAD_HEIGHT_CM,
        geo.ROW_PAD_WIDTH_CM,
        geo.ROW_X_CM,
        geo.ROW_N_PADS,
        geo.ROW_ROC,
        geo.ROW_HALF_WIDTH_CM,
    ):
        assert table.shape == (152,)
    assert np.bincount(geo.ROW_REGION).tolist() == REGION_ROWS
    assert (np.diff(geo.ROW_REGION) >= 0).all()


def test_pad_sizes_per_region():
    np.testing.assert_array_equal(geo.REGION_PAD_HEIGHT_CM, REGION_PAD_HEIGHT)
    np.testing.assert_array_equal(geo.REGION_PAD_WIDTH_CM, REGION_PAD_WIDTH)
    np.testing.assert_array_equal(geo.ROW_PAD_HEIGHT_CM, np.repeat(REGION_PAD_HEIGHT, REGION_ROWS))
    np.testing.assert_array_equal(geo.ROW_PAD_WIDTH_CM, np.repeat(REGION_PAD_WIDTH, REGION_ROWS))


def test_row_x_range_and_region_starts():
    assert geo.ROW_X_CM[0] == pytest.approx(85.225, abs=1e-9)
    assert geo.ROW_X_CM[-1] == pytest.approx(245.65, abs=1e-9)
    assert (np.diff(geo.ROW_X_CM) > 0).all()
    # first row of each region: half a pad height above the region's start radius
    expected = np.array(REGION_R_START_MM) / 10.0 + 0.5 * np.array(REGION_PAD_HEIGHT)
    np.testing.assert_allclose(geo.ROW_X_CM[REGION_FIRST_ROW], expected, atol=1e-9)
    np.testing.assert_allclose(geo.REGION_R_START_CM, np.array(REGION_R_START_MM) / 10.0)
    assert geo.TPC_INNER_RADIUS_CM == pytest.approx(84.85)
    assert geo.TPC_OUTER_RADIUS_CM == pytest.approx(228.4 + 12 * 1.5)


def test_row_spacing_equals_pad_height_within_region():
    same_region = geo.ROW_REGION[1:] == geo.ROW_REGION[:-1]
    spacing = np.diff(geo.ROW_X_CM)
    np.testing.assert_allclose(
        spacing[same_region], geo.ROW_PAD_HEIGHT_CM[1:][same_region], atol=1e-9
    )
    # regions of one read-out chamber touch; between chambers there is a gap of 2-3 cm
    gap = _lo[1:] - _hi[:-1]
    same_roc = geo.ROW_ROC[1:] == geo.ROW_ROC[:-1]
    np.testing.assert_allclose(gap[same_roc], 0.0, atol=1e-9)
    np.testing.assert_allclose(gap[~same_roc], [2.6, 2.1, 2.1], atol=1e-9)
    assert np.nonzero(~same_roc)[0].tolist() == [62, 96, 126]


def test_pads_per_row():
    assert geo.ROW_N_PADS[0] == 66
    assert geo.ROW_N_PADS[-1] == 138
    assert int(geo.ROW_N_PADS.sum()) == 14_560
    assert geo.ROW_N_PADS.min() == 66 and geo.ROW_N_PADS.max() == 138
    assert (geo.ROW_N_PADS % 2 == 0).all()  # symmetric about the sector centre line
    np.testing.assert_allclose(geo.ROW_HALF_WIDTH_CM, 0.5 * geo.ROW_N_PADS * geo.ROW_PAD_WIDTH_CM)


def test_pad_plane_fits_inside_its_20_degree_sector():
    # every row's sensitive half-width, at its lower edge, stays within +-10 degrees
    assert (geo.ROW_HALF_WIDTH_CM / _lo < np.tan(np.deg2rad(10.0))).all()


def test_summary_table_matches_arrays():
    table = geo.summary_table()
    assert len(table) == 152
    assert table[0] == {
        "row": 0,
        "region": 0,
        "roc": "IROC",
        "x_cm": pytest.approx(85.225),
        "pad_width_cm": 0.416,
        "pad_height_cm": 0.75,
        "n_pads": 66,
    }
    assert table[151]["roc"] == "OROC3" and table[151]["n_pads"] == 138
    assert [r["n_pads"] for r in table] == geo.ROW_N_PADS.tolist()


# --- sectors -----------------------------------------------------------------------------------


def test_sector_alphas_and_sides():
    assert geo.N_SECTORS == 36 and geo.N_SECTORS_PER_SIDE == 18
    assert geo.SECTOR_WIDTH_RAD == pytest.approx(np.deg2rad(20.0))
    i = np.arange(36)
    np.testing.assert_allclose(np.rad2deg(geo.SECTOR_ALPHA_RAD), 10.0 + 20.0 * (i % 18))
    np.testing.assert_allclose(geo.SECTOR_COS_ALPHA, np.cos(geo.SECTOR_ALPHA_RAD))
    np.testing.assert_allclose(geo.SECTOR_SIN_ALPHA, np.sin(geo.SECTOR_ALPHA_RAD))
    assert geo.SECTOR_SIDE.tolist() == [0] * 18 + [1] * 18  # 0 = A, 1 = C
    # A sector s and C sector s + 18 face each other
    np.testing.assert_array_equal(geo.SECTOR_ALPHA_RAD[:18], geo.SECTOR_ALPHA_RAD[18:])


@pytest.mark.parametrize("side_z", [50.0, -50.0])
def test_sector_of_phi_every_sector(side_z):
    alpha = np.deg2rad(10.0 + 20.0 * np.arange(18))
    offsets = np.deg2rad(np.array([-9.99, -5.0, 0.0, 5.0, 9.99]))
    phi = (alpha[:, None] + offsets[None, :]).ravel()
    expected = np.repeat(np.arange(18), offsets.size) + (18 if side_z < 0 else 0)
    z = np.full_like(phi, side_z)
    np.testing.assert_array_equal(geo.sector_of_phi(phi, z), expected)
    # the same azimuth shifted by a full turn, either way, gives the same sector
    np.testing.assert_array_equal(geo.sector_of_phi(phi - 2 * np.pi, z), expected)
    np.testing.assert_array_equal(geo.sector_of_phi(phi + 4 * np.pi, z), expected)


@settings(max_examples=200, deadline=None)
@given(
    sector=st.integers(0, 35),
    frac=st.floats(-0.499, 0.499),
)
def test_sector_of_phi_property(sector, frac):
    phi = geo.SECTOR_ALPHA_RAD[sector] + frac * geo.SECTOR_WIDTH_RAD
    z = 10.0 if sector < 18 else -10.0
    assert int(geo.sector_of_phi(np.array([phi]), np.array([z]))[0]) == sector
    # azimuth from atan2, which lies in (-pi, pi]
    phi_atan = np.arctan2(np.sin(phi), np.cos(phi))
    assert int(geo.sector_of_phi(phi_atan, z)) == sector


def test_sector_of_phi_boundaries_and_dtype():
    edges = np.deg2rad([0.0, 20.0, 340.0])
    out = geo.sector_of_phi(edges, np.ones(3))
    assert out.dtype == np.int32
    assert out.tolist() == [0, 1, 17]
    assert geo.sector_of_phi(np.deg2rad([359.999999]), np.array([-1.0])).tolist() == [35]


# --- row_of_radius -----------------------------------------------------------------------------


def test_row_of_radius_inverts_row_x():
    out = geo.row_of_radius(geo.ROW_X_CM)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, np.arange(152))
    for f in (-0.49, -0.25, 0.25, 0.49):
        np.testing.assert_array_equal(
            geo.row_of_radius(geo.ROW_X_CM + f * geo.ROW_PAD_HEIGHT_CM), np.arange(152)
        )


@settings(max_examples=200, deadline=None)
@given(row=st.integers(0, 151), frac=st.floats(-0.499, 0.499))
def test_row_of_radius_property(row, frac):
    x = geo.ROW_X_CM[row] + frac * geo.ROW_PAD_HEIGHT_CM[row]
    assert int(geo.row_of_radius(x)) == row


def test_row_of_radius_gaps_and_outside():
    # the gaps between read-out chambers (IROC | OROC1 | OROC2 | OROC3) have no pads
    gap_rows = np.array([62, 96, 126])
    assert (_lo[gap_rows + 1] - _hi[gap_rows] > 2.0).all()
    mid_gap = 0.5 * (_hi[gap_rows] + _lo[gap_rows + 1])
    assert (geo.row_of_radius(mid_gap) == -1).all()
    outside = np.array([-10.0, 0.0, 50.0, 84.84, 246.41, 300.0, 1e9])
    assert (geo.row_of_radius(outside) == -1).all()
    assert int(geo.row_of_radius(84.85)) == 0  # lower edge belongs to the row (half-open)
    assert int(geo.row_of_radius(246.4)) == -1  # upper edge of the last row does not


def test_row_of_radius_keeps_shape():
    x = np.array([[85.225, 10.0], [245.65, 133.0]])
    out = geo.row_of_radius(x)
    assert out.shape == (2, 2)
    assert out.tolist() == [[0, -1], [151, -1]]


def test_row_of_radius_adjacent_rows_leave_no_gap():
    touching = np.nonzero(geo.ROW_ROC[1:] == geo.ROW_ROC[:-1])[0]
    # the shared boundary of two touching rows of a chamber belongs to one of them
    rows = geo.row_of_radius(_hi[touching])
    assert np.isin(rows - touching, [0, 1]).all(), _hi[touching][rows < 0]


# --- gas parameters ----------------------------------------------------------------------------


def test_gas_defaults():
    gas = geo.DEFAULT_GAS
    assert gas.drift_velocity_cm_us == 2.58
    assert gas.drift_length_cm == 250.0
    assert gas.time_bin_us == 0.2
    assert gas.t0_time_bins == 0.0
    assert gas.diffusion_t_cm_sqrtcm == 0.0209
    assert gas.diffusion_l_cm_sqrtcm == 0.0221
    assert gas.w_ion_ev == 37.3
    assert gas.n_primaries_per_cm == 14.0
    assert gas.gem_gain == 2000.0
    assert gas.drift_cm_per_time_bin == pytest.approx(2.58 * 0.2, rel=1e-15)
    assert gas.max_drift_time_bins == pytest.approx(250.0 / (2.58 * 0.2), rel=1e-15)
    assert geo.TIME_BIN_BC * geo.BUNCH_SPACING_NS == pytest.approx(gas.time_bin_us * 1e3)
    assert geo.ADC_SATURATION == 1024
    assert geo.TPC_LENGTH_CM == pytest.approx(249.725)


def test_gas_replace():
    gas = geo.TPCGasParam()
    faster = gas.replace(drift_velocity_cm_us=2.7, t0_time_bins=3.0)
    assert faster.drift_velocity_cm_us == 2.7 and faster.t0_time_bins == 3.0
    assert faster.drift_length_cm == gas.drift_length_cm
    assert faster.drift_cm_per_time_bin == pytest.approx(2.7 * 0.2)
    assert gas.drift_velocity_cm_us == 2.58  # the original is unchanged
    assert gas.replace() == gas


def test_gas_replace_rejects_unknown_names():
    with pytest.raises(TypeError, match="drift_speed"):
        geo.DEFAULT_GAS.replace(drift_speed=2.7)
    with pytest.raises(TypeError, match="unknown"):
        geo.DEFAULT_GAS.replace(drift_velocity_cm_us=2.7, bogus=1.0)


def test_gas_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        geo.DEFAULT_GAS.drift_velocity_cm_us = 3.0  # type: ignore[misc]
