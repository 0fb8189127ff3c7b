"""TPC geometry and gas parameters: the one source of truth for pad rows, sectors and drift.

Layer: data model (no I/O, no physics processes). Every other part of alice_dyn — simulation,
coordinate transforms, kernels, tracking — reads its numbers from here.

Conventions (shared with :mod:`alice_dyn.tpc.transform`):

* 36 sectors, 18 per side: A side (z > 0) sectors 0-17, C side (z < 0) sectors 18-35.
  Sector ``s`` is centred at azimuth ``alpha = (10 + 20 * (s % 18))`` degrees.
* 152 pad rows in 10 regions (4 IROC regions with 63 rows, 6 OROC regions with 89 rows).
  The row's ``x`` is the radial distance (cm) of the pad centres from the beam axis, measured
  along the sector's centre line; row ``i`` of a region sits at ``r_region + (i + 0.5) * h``.
* The drift field points from the central electrode (z = 0) to the read-out chambers; electrons
  drift towards |z| = ``drift_length_cm``.

All tables are NumPy arrays indexed by row (``(152,)``) or sector (``(36,)``), so look-ups are
vectorised: ``ROW_X_CM[rows]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

N_SECTORS = 36
N_SECTORS_PER_SIDE = 18
N_ROWS = 152
N_REGIONS = 10
SECTOR_WIDTH_RAD = np.deg2rad(20.0)

# --- region table (ALICE TPC after LS2, O2 Mapper / GPU geometry) -------------------------------
#: rows per region; regions 0-3 form the IROC (63 rows), 4-9 the OROC (89 rows)
REGION_N_ROWS = np.array([17, 15, 16, 15, 18, 16, 16, 14, 13, 12], dtype=np.int32)
#: pad height (radial pad length) per region, cm
REGION_PAD_HEIGHT_CM = np.array([0.75, 0.75, 0.75, 0.75, 1.0, 1.0, 1.2, 1.2, 1.5, 1.5])
#: pad width (along the pad row) per region, cm
REGION_PAD_WIDTH_CM = np.array([0.416, 0.420, 0.420, 0.436, 0.6, 0.6, 0.608, 0.588, 0.604, 0.607])
#: radius of the lower edge of each region's first pad row, cm
REGION_R_START_CM = np.array(
    [84.85, 97.6, 108.85, 120.85, 134.7, 152.7, 170.8, 190.0, 208.9, 228.4]
)
#: read-out chamber of each region: 0 = IROC, 1-3 = OROC1..OROC3
REGION_ROC = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3], dtype=np.int8)

# Pads per row, run-length encoded as (pads, number of consecutive rows): 66 pads in the first
# row up to 138 in the last, 14,560 pads per sector.
_PADS_RLE = (
    (66, 3), (68, 3), (70, 3), (72, 3), (74, 4), (76, 4), (78, 3), (80, 3), (82, 3), (84, 3),
    (86, 3), (88, 3), (90, 4), (92, 3), (94, 3), (92, 3), (94, 3), (96, 3), (98, 3), (100, 3),
    (76, 4), (78, 3), (80, 4), (82, 3), (84, 4), (86, 3), (88, 3), (90, 4), (92, 3), (94, 4),
    (96, 3), (98, 3), (100, 2), (102, 3), (104, 3), (106, 1), (110, 2), (112, 3), (114, 3),
    (116, 3), (118, 5), (120, 2), (122, 2), (124, 3), (126, 2), (128, 3), (130, 2), (132, 3),
    (134, 2), (136, 2), (138, 2),
)  # fmt: skip

# --- per-row tables, shape (152,) -----------------------------------------------------------
ROW_REGION = np.repeat(np.arange(N_REGIONS, dtype=np.int8), REGION_N_ROWS)
_row_in_region = np.arange(N_ROWS) - np.repeat(
    np.cumsum(REGION_N_ROWS) - REGION_N_ROWS, REGION_N_ROWS
)
ROW_PAD_HEIGHT_CM = REGION_PAD_HEIGHT_CM[ROW_REGION]
ROW_PAD_WIDTH_CM = REGION_PAD_WIDTH_CM[ROW_REGION]
#: radial position of the pad row centre, cm (85.225 ... 245.65)
ROW_X_CM = np.round(REGION_R_START_CM[ROW_REGION] + (_row_in_region + 0.5) * ROW_PAD_HEIGHT_CM, 4)
#: radial lower edge of each row, cm, exact (touching rows share the edge value)
ROW_LOWER_EDGE_CM = REGION_R_START_CM[ROW_REGION] + _row_in_region * ROW_PAD_HEIGHT_CM
#: radial upper edge of each row, cm; equal to the next row's lower edge where rows touch
ROW_UPPER_EDGE_CM = ROW_LOWER_EDGE_CM + ROW_PAD_HEIGHT_CM
_touch = np.abs(ROW_UPPER_EDGE_CM[:-1] - ROW_LOWER_EDGE_CM[1:]) < 1e-6
ROW_UPPER_EDGE_CM[:-1][_touch] = ROW_LOWER_EDGE_CM[1:][_touch]
ROW_N_PADS = np.repeat(
    np.array([p for p, _ in _PADS_RLE], dtype=np.int32),
    np.array([n for _, n in _PADS_RLE]),
)
ROW_ROC = REGION_ROC[ROW_REGION]
ROW_IS_IROC = ROW_ROC == 0
N_ROWS_IROC = int(ROW_IS_IROC.sum())
#: half width of the sensitive row (pad plane) along y, cm
ROW_HALF_WIDTH_CM = 0.5 * ROW_N_PADS * ROW_PAD_WIDTH_CM

# --- per-sector tables, shape (36,) ---------------------------------------------------------
SECTOR_SIDE = (np.arange(N_SECTORS) >= N_SECTORS_PER_SIDE).astype(np.int8)  # 0 = A, 1 = C
SECTOR_ALPHA_RAD = np.deg2rad(10.0 + 20.0 * (np.arange(N_SECTORS) % N_SECTORS_PER_SIDE))
SECTOR_COS_ALPHA = np.cos(SECTOR_ALPHA_RAD)
SECTOR_SIN_ALPHA = np.sin(SECTOR_ALPHA_RAD)

# --- read-out and physics constants -----------------------------------------------------------
ADC_SATURATION = 1024  # ADC counts, 10-bit SAMPA
TPC_LENGTH_CM = 250.0 - 0.275  # distance central electrode to pad plane
TPC_INNER_RADIUS_CM = 84.85  # lower edge of the first pad row
TPC_OUTER_RADIUS_CM = float(REGION_R_START_CM[-1] + REGION_N_ROWS[-1] * REGION_PAD_HEIGHT_CM[-1])
BUNCH_SPACING_NS = 25.0
LHC_ORBIT_NS = 88924.6  # 3564 bunch slots
TIME_BIN_BC = 8  # one TPC time bin = 8 bunch crossings = 200 ns


@dataclass(frozen=True)
class TPCGasParam:
    """Gas and drift parameters (the O2 ``TPCGasParam`` / ``TPCDetParam`` values).

    Units in the field names. ``drift_length_cm`` is the maximum drift distance used by the
    time <-> z conversion; ``t0_time_bins`` is the time bin at which a cluster with zero drift
    distance (on the pad plane) would appear for a collision at time 0.
    """

    drift_velocity_cm_us: float = field(default=2.58, metadata={"range": "(0, inf)"})
    drift_length_cm: float = field(default=250.0, metadata={"range": "(0, inf)"})
    time_bin_us: float = field(default=0.2, metadata={"range": "(0, inf)"})
    t0_time_bins: float = field(default=0.0, metadata={"range": "[0, inf)"})
    #: transverse diffusion coefficient
    diffusion_t_cm_sqrtcm: float = field(default=0.0209, metadata={"range": "[0, inf)"})
    #: longitudinal diffusion coefficient
    diffusion_l_cm_sqrtcm: float = field(default=0.0221, metadata={"range": "[0, inf)"})
    #: energy per electron-ion pair
    w_ion_ev: float = field(default=37.3, metadata={"range": "(0, inf)"})
    #: primary ionisation of a MIP
    n_primaries_per_cm: float = field(default=14.0, metadata={"range": "(0, inf)"})
    gem_gain: float = field(default=2000.0, metadata={"range": "(0, inf)"})

    @property
    def drift_cm_per_time_bin(self) -> float:
        """Drift distance travelled in one time bin, cm."""
        return self.drift_velocity_cm_us * self.time_bin_us

    @property
    def max_drift_time_bins(self) -> float:
        """Time bins needed to drift the full drift length."""
        return self.drift_length_cm / self.drift_cm_per_time_bin

    def replace(self, **changes: float) -> TPCGasParam:
        """A copy with some values changed; unknown names raise ``TypeError``."""
        names = {f.name for f in fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown TPCGasParam field(s): {sorted(unknown)}")
        return TPCGasParam(**{**{n: getattr(self, n) for n in names}, **changes})


DEFAULT_GAS = TPCGasParam()


def row_of_radius(x_cm: np.ndarray) -> np.ndarray:
    """Pad row whose radial extent contains local ``x_cm``; -1 outside any row (gaps, outside).

    ``x_cm`` any shape; returns int32 of the same shape.
    """
    x = np.asarray(x_cm, dtype=np.float64)
    idx = np.searchsorted(ROW_LOWER_EDGE_CM, x, side="right") - 1
    idx_c = np.clip(idx, 0, N_ROWS - 1)
    inside = (idx >= 0) & (x < ROW_UPPER_EDGE_CM[idx_c])
    return np.where(inside, idx_c, -1).astype(np.int32)


def sector_of_phi(phi_rad: np.ndarray, z_cm: np.ndarray) -> np.ndarray:
    """Sector index (0-35) for azimuth ``phi_rad`` and side given by the sign of ``z_cm``."""
    phi = np.mod(np.asarray(phi_rad, dtype=np.float64), 2.0 * np.pi)
    s = np.floor(phi / SECTOR_WIDTH_RAD).astype(np.int32) % N_SECTORS_PER_SIDE
    return np.where(np.asarray(z_cm) < 0.0, s + N_SECTORS_PER_SIDE, s).astype(np.int32)


def summary_table() -> list[dict[str, float | int | str]]:
    """The geometry as a list of per-row dicts (for printing and documentation)."""
    return [
        {
            "row": r,
            "region": int(ROW_REGION[r]),
            "roc": ("IROC", "OROC1", "OROC2", "OROC3")[int(ROW_ROC[r])],
            "x_cm": float(ROW_X_CM[r]),
            "pad_width_cm": float(ROW_PAD_WIDTH_CM[r]),
            "pad_height_cm": float(ROW_PAD_HEIGHT_CM[r]),
            "n_pads": int(ROW_N_PADS[r]),
        }
        for r in range(N_ROWS)
    ]
