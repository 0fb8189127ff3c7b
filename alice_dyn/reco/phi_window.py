"""Candidate (track, hit) pairs by phi: the search shared by the TOF and TRD matching.

Layer: reconstruction (NumPy). Hits are sorted by azimuth once; each track's candidates are
the hits inside its phi window, found by binary search in the sorted list extended by +-2 pi
(the wrap-around). Cost and memory grow with the number of candidate pairs, not with
tracks x hits.
"""

from __future__ import annotations

import numpy as np


def signed_drphi(phi_h: np.ndarray, phi_t: np.ndarray, radius_cm: float) -> np.ndarray:
    """``r * dphi`` (cm) of hit minus track, dphi wrapped into [-pi, pi)."""
    return (np.mod(phi_h - phi_t + np.pi, 2 * np.pi) - np.pi) * radius_cm


def phi_window_pairs(
    phi_t: np.ndarray, tracks: np.ndarray, phi_h: np.ndarray, half_width_rad: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(track, hit)`` index pairs ``(n_pairs,)`` with ``|phi_h - phi_t| <= half_width_rad``
    (up to rounding: callers apply their exact cut after), for the track indices ``tracks``;
    pairs grouped by track in the order of ``tracks``. A window wider than half the circle can
    list a hit twice."""
    order = np.argsort(phi_h, kind="stable")
    ph = phi_h[order]
    ext_phi = np.concatenate([ph - 2 * np.pi, ph, ph + 2 * np.pi])
    ext_idx = np.concatenate([order, order, order])
    w = half_width_rad + 1e-12  # slightly wide: the exact test follows
    lo = np.searchsorted(ext_phi, phi_t[tracks] - w, side="left")
    hi = np.searchsorted(ext_phi, phi_t[tracks] + w, side="right")
    cnt = hi - lo
    t = np.repeat(tracks, cnt)
    j = ext_idx[np.repeat(lo - np.cumsum(cnt) + cnt, cnt) + np.arange(int(cnt.sum()))]
    return t, j
