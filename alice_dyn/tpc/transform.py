"""TPC coordinate transforms, NumPy reference (the fast kernels are tested against these).

Layer: data model. Frames and conventions:

* **Pad/time** ``(sector, row, pad, time)``: ``pad`` is a continuous coordinate along the row,
  pad ``i`` covers ``[i, i + 1)`` so its centre is ``i + 0.5``; ``time`` is in time bins
  (200 ns) counted from the start of the timeframe.
* **Sector-local** ``(x, y, z)`` in cm: ``x`` along the sector's centre line (the row radius),
  ``y`` along the row, ``z`` along the beam. ``u = (pad - n_pads / 2) * pad_width`` is the
  position seen from the front of the pad plane; ``y = u`` on the A side and ``y = -u`` on the
  C side, because the C-side chambers are seen from behind (mirror image), as in O2.
* **Drift**: electrons drift from the ionisation point towards the pad plane at ``|z| = L``
  (``L = TPCGasParam.drift_length_cm``). A cluster from a collision at time ``t0`` (time bins)
  arrives at ``time = t0 + gas.t0_time_bins + (L - |z|) / (v_drift * t_bin)``; so
  ``|z| = L - (time - t0 - gas.t0_time_bins) * v_drift * t_bin``, positive on the A side and
  negative on the C side. Before the collision time of a track is known, pass ``t0 = 0``.
* **Global** ``(x, y, z)`` in cm: ALICE frame; the sector frame is rotated by the sector's
  ``alpha`` about z: ``X = x cos(alpha) - y sin(alpha)``, ``Y = x sin(alpha) + y cos(alpha)``.
"""

from __future__ import annotations

import numpy as np

from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc.geometry import DEFAULT_GAS, TPCGasParam


def _side_sign(sector: np.ndarray) -> np.ndarray:
    """+1 for A-side sectors, -1 for C-side sectors."""
    return 1.0 - 2.0 * geo.SECTOR_SIDE[np.asarray(sector, dtype=np.int64)]


def pad_to_y(sector: np.ndarray, row: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Sector-local y (cm) of a continuous pad coordinate."""
    row = np.asarray(row, dtype=np.int64)
    u = (np.asarray(pad, dtype=np.float64) - 0.5 * geo.ROW_N_PADS[row]) * geo.ROW_PAD_WIDTH_CM[row]
    return _side_sign(sector) * u


def y_to_pad(sector: np.ndarray, row: np.ndarray, y_cm: np.ndarray) -> np.ndarray:
    """Continuous pad coordinate of sector-local ``y_cm``; inverse of :func:`pad_to_y`."""
    row = np.asarray(row, dtype=np.int64)
    u = _side_sign(sector) * np.asarray(y_cm, dtype=np.float64)
    return u / geo.ROW_PAD_WIDTH_CM[row] + 0.5 * geo.ROW_N_PADS[row]


def time_to_z(
    sector: np.ndarray,
    time: np.ndarray,
    t0_time_bins: np.ndarray | float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> np.ndarray:
    """Sector-local z (cm) of a cluster time (time bins) for a collision at ``t0_time_bins``."""
    drift = (np.asarray(time, dtype=np.float64) - t0_time_bins - gas.t0_time_bins) * (
        gas.drift_cm_per_time_bin
    )
    return _side_sign(sector) * (gas.drift_length_cm - drift)


def z_to_time(
    sector: np.ndarray,
    z_cm: np.ndarray,
    t0_time_bins: np.ndarray | float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> np.ndarray:
    """Cluster time (time bins) of sector-local ``z_cm``; inverse of :func:`time_to_z`."""
    drift = gas.drift_length_cm - _side_sign(sector) * np.asarray(z_cm, dtype=np.float64)
    return drift / gas.drift_cm_per_time_bin + t0_time_bins + gas.t0_time_bins


def pad_time_to_local(
    sector: np.ndarray,
    row: np.ndarray,
    pad: np.ndarray,
    time: np.ndarray,
    t0_time_bins: np.ndarray | float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sector, row, pad, time)`` -> sector-local ``(x, y, z)`` in cm, each ``(n,)``."""
    row_i = np.asarray(row, dtype=np.int64)
    x = geo.ROW_X_CM[row_i].astype(np.float64)
    return x, pad_to_y(sector, row_i, pad), time_to_z(sector, time, t0_time_bins, gas)


def local_to_pad_time(
    sector: np.ndarray,
    row: np.ndarray,
    y_cm: np.ndarray,
    z_cm: np.ndarray,
    t0_time_bins: np.ndarray | float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> tuple[np.ndarray, np.ndarray]:
    """Sector-local ``(y, z)`` on a pad row -> ``(pad, time)``."""
    return y_to_pad(sector, row, y_cm), z_to_time(sector, z_cm, t0_time_bins, gas)


def local_to_global(
    sector: np.ndarray, x_cm: np.ndarray, y_cm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate sector-local ``(x, y)`` into global ``(X, Y)`` (z is unchanged)."""
    s = np.asarray(sector, dtype=np.int64)
    c, sn = geo.SECTOR_COS_ALPHA[s], geo.SECTOR_SIN_ALPHA[s]
    x = np.asarray(x_cm, dtype=np.float64)
    y = np.asarray(y_cm, dtype=np.float64)
    return x * c - y * sn, x * sn + y * c


def global_to_local(
    sector: np.ndarray, gx_cm: np.ndarray, gy_cm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate global ``(X, Y)`` into the frame of ``sector``; inverse of :func:`local_to_global`."""
    s = np.asarray(sector, dtype=np.int64)
    c, sn = geo.SECTOR_COS_ALPHA[s], geo.SECTOR_SIN_ALPHA[s]
    gx = np.asarray(gx_cm, dtype=np.float64)
    gy = np.asarray(gy_cm, dtype=np.float64)
    return gx * c + gy * sn, -gx * sn + gy * c


def pad_time_to_global(
    sector: np.ndarray,
    row: np.ndarray,
    pad: np.ndarray,
    time: np.ndarray,
    t0_time_bins: np.ndarray | float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sector, row, pad, time)`` -> global ``(X, Y, Z)`` in cm."""
    x, y, z = pad_time_to_local(sector, row, pad, time, t0_time_bins, gas)
    gx, gy = local_to_global(sector, x, y)
    return gx, gy, z


def global_to_pad_time(
    gx_cm: np.ndarray,
    gy_cm: np.ndarray,
    gz_cm: np.ndarray,
    t0_time_bins: np.ndarray | float = 0.0,
    gas: TPCGasParam = DEFAULT_GAS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Global ``(X, Y, Z)`` -> ``(sector, row, pad, time)``.

    The sector comes from the azimuth and the sign of z, the row from the local x; points
    outside every pad row — radial gaps, or the dead zone between two sectors' pad planes
    (pad outside ``[0, n_pads)``) — get ``row = -1`` and NaN pad/time.
    """
    gx = np.asarray(gx_cm, dtype=np.float64)
    gy = np.asarray(gy_cm, dtype=np.float64)
    gz = np.asarray(gz_cm, dtype=np.float64)
    sector = geo.sector_of_phi(np.arctan2(gy, gx), gz)
    x, y = global_to_local(sector, gx, gy)
    row = geo.row_of_radius(x)
    pad, time = local_to_pad_time(sector, np.where(row >= 0, row, 0), y, gz, t0_time_bins, gas)
    ok = (row >= 0) & (pad >= 0.0) & (pad < geo.ROW_N_PADS[np.where(row >= 0, row, 0)])
    row = np.where(ok, row, -1).astype(np.int32)
    return sector, row, np.where(ok, pad, np.nan), np.where(ok, time, np.nan)
