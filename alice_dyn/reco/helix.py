"""Tracks as global helices: circle in the bending plane and a line in z, from O2 parameters.

Layer: reconstruction (NumPy, vectorised over tracks). Used to extrapolate tracks to the TOF
and TRD radii and to compute track lengths. Conventions of :mod:`alice_dyn.reco.track_model`:
curvature ``C = -k B q2pt`` (1/cm), positive tracks turn clockwise seen from +z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alice_dyn.reco.track_model import KB


@dataclass
class Helices:
    """Global helices of ``n`` tracks at their reference point (the innermost cluster).

    ``x0, y0, z0`` (cm) the reference point, ``phi0`` (rad) the direction of travel there,
    ``crv`` signed curvature (1/cm), ``tgl`` dip tangent.
    """

    x0: np.ndarray
    y0: np.ndarray
    z0: np.ndarray
    phi0: np.ndarray
    crv: np.ndarray
    tgl: np.ndarray

    @property
    def centre(self) -> tuple[np.ndarray, np.ndarray]:
        r = 1.0 / np.where(self.crv == 0, 1e-12, self.crv)
        return self.x0 - np.sin(self.phi0) * r, self.y0 + np.cos(self.phi0) * r

    def at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position after transverse path ``s`` (cm, may be negative)."""
        c = np.where(np.abs(self.crv) < 1e-12, 1e-12, self.crv)
        phi = self.phi0 + c * s
        x = self.x0 + (np.sin(phi) - np.sin(self.phi0)) / c
        y = self.y0 - (np.cos(phi) - np.cos(self.phi0)) / c
        return x, y, self.z0 + self.tgl * s


def helices_from_tracks(tracks, bfield_t: float) -> Helices:
    """Global helices from :class:`~alice_dyn.event.tracks.TPCTracks` parameters."""
    a = tracks.alpha_rad.astype(np.float64)
    x = tracks.x_cm.astype(np.float64)
    y = tracks.y_cm.astype(np.float64)
    ca, sa = np.cos(a), np.sin(a)
    phi = np.arcsin(np.clip(tracks.snp.astype(np.float64), -0.999999, 0.999999)) + a
    return Helices(
        x0=x * ca - y * sa,
        y0=x * sa + y * ca,
        z0=tracks.z_cm.astype(np.float64),
        phi0=phi,
        crv=-KB * bfield_t * tracks.q2pt.astype(np.float64),
        tgl=tracks.tgl.astype(np.float64),
    )


def path_to_radius(h: Helices, radius: float | np.ndarray) -> np.ndarray:
    """Transverse path (cm) from the reference point, going forward, to the first crossing of
    the cylinder ``radius``; NaN if the helix never reaches it."""
    xc, yc = h.centre
    rc = np.hypot(xc, yc)
    rr = 1.0 / np.maximum(np.abs(h.crv), 1e-12)
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), rc.shape)
    # intersection of circle (centre c, radius rr) with the cylinder: angle at the centre
    cosang = (rc * rc + rr * rr - radius * radius) / (2.0 * rc * rr)
    ok = np.abs(cosang) <= 1.0
    ang = np.arccos(np.clip(cosang, -1.0, 1.0))
    # angular position of the origin seen from the centre, and of the reference point
    base = np.arctan2(-yc, -xc)
    start = np.arctan2(h.y0 - yc, h.x0 - xc)
    sgn = np.sign(h.crv)
    best = np.full(rc.shape, np.inf)
    for cand in (base + ang, base - ang):
        dphi = sgn * (cand - start)
        dphi = np.mod(dphi, 2.0 * np.pi)  # forward along the direction of travel
        best = np.minimum(best, dphi)
    s = best * rr
    return np.where(ok, s, np.nan)


def path_from_beam_line(h: Helices) -> np.ndarray:
    """Transverse path (cm) from the point of closest approach to the beam line (z axis) to
    the reference point (positive for tracks that travel outward)."""
    xc, yc = h.centre
    rr = 1.0 / np.maximum(np.abs(h.crv), 1e-12)
    base = np.arctan2(-yc, -xc)  # direction of the origin from the centre: closest approach
    start = np.arctan2(h.y0 - yc, h.x0 - xc)
    dphi = np.mod(np.sign(h.crv) * (start - base), 2.0 * np.pi)
    dphi = np.where(dphi > np.pi, dphi - 2.0 * np.pi, dphi)
    return dphi * rr
