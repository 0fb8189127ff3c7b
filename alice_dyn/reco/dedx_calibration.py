"""The TPC dE/dx calibration table and its loading.

Layer: reconstruction. The truncated mean is not proportional to the mean energy loss
(docs/simulation.md), so, as O2 fits its own Bethe-Bloch parameters to measured truncated
means, the
expected signal and its resolution are a table in log10(beta*gamma) (:class:`DedxCalibration`)
with the MIP scale (MIP = 50) and the dip-angle coefficient. The shipped table
(:data:`DEFAULT_CALIBRATION`, ``alice_dyn/reco/data/dedx_calibration.json``) is made by
:func:`alice_dyn.calib.dedx.measure_calibration` (``alice-dyn calibrate dedx -o FILE``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_CALIBRATION = Path(__file__).parent / "data" / "dedx_calibration.json"
#: number of clusters at which the table's relative resolution holds
REFERENCE_CLUSTERS = 140.0


@dataclass(frozen=True)
class DedxCalibration:
    """Expected dE/dx (O2 units, MIP = 50) and relative resolution vs log10(beta*gamma)."""

    mip_scale: float
    log10_bg: np.ndarray
    signal: np.ndarray
    rel_sigma: np.ndarray
    n_clusters_ref: float = REFERENCE_CLUSTERS
    tgl_coefficient: float = 0.0

    @classmethod
    def load(cls, path: str | Path = DEFAULT_CALIBRATION) -> DedxCalibration:
        d = json.loads(Path(path).read_text())
        return cls(
            float(d["mip_scale"]),
            np.asarray(d["log10_bg"]),
            np.asarray(d["signal"]),
            np.asarray(d["rel_sigma"]),
            float(d.get("n_clusters_ref", REFERENCE_CLUSTERS)),
            float(d.get("tgl_coefficient", 0.0)),
        )

    def expected(self, p_gev: np.ndarray, mass_gev: np.ndarray | float) -> np.ndarray:
        """Expected signal for momentum ``p_gev`` and mass (extrapolated flat at the ends)."""
        lbg = np.log10(np.maximum(np.asarray(p_gev, dtype=np.float64) / mass_gev, 1e-3))
        return np.interp(lbg, self.log10_bg, self.signal)

    def sigma(
        self, p_gev: np.ndarray, mass_gev: np.ndarray | float, n_clusters: np.ndarray
    ) -> np.ndarray:
        """Absolute resolution: relative width at that beta*gamma, scaled by sqrt(N_ref / N)."""
        lbg = np.log10(np.maximum(np.asarray(p_gev, dtype=np.float64) / mass_gev, 1e-3))
        rel = np.interp(lbg, self.log10_bg, self.rel_sigma)
        n = np.maximum(np.asarray(n_clusters, dtype=np.float64), 10.0)
        return rel * self.expected(p_gev, mass_gev) * np.sqrt(self.n_clusters_ref / n)
