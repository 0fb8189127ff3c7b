"""Simulation configuration: collision system, detector response and outer-detector settings.

Layer: simulation. All numbers carry their unit in the name. Presets for the two collision
systems live in :data:`SYSTEM_PRESETS`; a :class:`SimConfig` is built with
:func:`SimConfig.for_system` and can be changed with ``dataclasses.replace``.

Multiplicity (documented dN/deta):

* ``pp``: charged-particle density dN/deta = 6.5 at |eta| = 0 (INEL>0 at 13.6 TeV), with
  negative-binomial fluctuations (k = 1.5), as measured by ALICE at the LHC.
* ``pbpb``: dN/deta = 1900 for the 0-5% most central collisions at 5.36 TeV, falling with
  centrality c (fraction) as ``1900 * (1 - c)**2.6``; the centrality is drawn uniformly in
  ``[centrality_min, centrality_max]`` (0-90% by default, mean dN/deta of about 590).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from alice_dyn.physics.particles import SPECIES

#: fraction of charged primaries per species (e, mu, pi, K, p, d), per system
_ABUNDANCE = {
    "pp": (0.012, 0.006, 0.800, 0.118, 0.0637, 0.0003),
    "pbpb": (0.010, 0.005, 0.780, 0.130, 0.0742, 0.0008),
}
#: Tsallis (T [GeV], n) of the pT spectrum per species, giving mean pT (pi, K, p) of about
#: (0.44, 0.73, 0.90) GeV/c in pp and (0.48, 0.86, 1.27) GeV/c in Pb-Pb (radial flow)
_TSALLIS = {
    "pp": ((0.115, 6.5), (0.115, 6.5), (0.12, 6.5), (0.19, 6.5), (0.22, 7.0), (0.26, 8.0)),
    "pbpb": ((0.13, 8.0), (0.13, 8.0), (0.15, 8.0), (0.27, 9.0), (0.40, 11.0), (0.50, 12.0)),
}


@dataclass(frozen=True)
class SimConfig:
    """All settings of the detector simulation (defaults: Pb-Pb at 0.5 T)."""

    system: str = "pbpb"
    bfield_t: float = 0.5
    collisions_per_tf: int = 2
    seed: int = 1
    run_number: int = 999999
    run_period: str = "SIM"
    n_orbits_per_tf: int = 32
    # --- collisions
    dndeta: float = 1900.0  # pp: per collision; pbpb: 0-5% central
    nbd_k: float = 1.5  # pp multiplicity fluctuations
    centrality_min: float = 0.0
    centrality_max: float = 0.9
    eta_max: float = 1.3  # |eta| < 0.9 plus margin
    pt_min_gev: float = 0.05
    pt_max_gev: float = 20.0
    with_deuterons: bool = True
    abundances: tuple[float, ...] = field(default=_ABUNDANCE["pbpb"])
    tsallis: tuple[tuple[float, float], ...] = field(default=_TSALLIS["pbpb"])
    interaction_rate_khz: float = 50.0
    vertex_sigma_xy_cm: float = 0.005
    vertex_sigma_z_cm: float = 6.0
    bunch_time_spread_ps: float = 150.0  # collision-time spread inside a bunch crossing
    ft0_efficiency: float = 1.0
    ft0_resolution_ps: float = 20.0
    # --- transport
    step_tpc_cm: float = 2.0  # transverse step inside the TPC (crossings are solved exactly)
    max_turns: float = 3.0  # loopers are followed for this many turns
    x0_inner_frac: float = 0.04  # ITS + beam pipe + TPC inner field cage, lumped at r = 78 cm
    x0_outer_frac: float = 0.01  # TPC outer field cage at r = 250 cm
    x0_trd_layer_frac: float = 0.035  # per TRD layer (radiator, chamber, electronics)
    # --- TPC response
    n_primaries_per_cm: float = 14.0
    ionisation_emin_ev: float = 20.0
    ionisation_emax_ev: float = 10000.0
    gain_variance: float = 0.65  # relative variance of the avalanche per electron
    adc_per_electron: float = 2.0
    noise_adc: float = 1.0
    qmax_threshold_adc: float = 3.0
    cluster_efficiency: float = 0.98
    pad_response_sigma_cm: float = 0.05
    shaping_sigma_time_bins: float = 0.35
    sigma0_y_cm: float = 0.02
    sigma0_z_cm: float = 0.03
    noise_fraction: float = 0.005  # noise clusters per signal cluster
    merge_clusters: bool = True
    # --- TRD / TOF
    trd_efficiency: float = 0.88
    trd_pt_min_gev: float = 0.0
    tof_efficiency: float = 0.80  # intrinsic x dead channels x matching losses
    tof_resolution_ps: float = 70.0
    tof_radius_cm: float = 380.0
    tof_half_length_cm: float = 370.0

    @classmethod
    def for_system(cls, system: str, **changes) -> SimConfig:
        """The preset of ``system`` (``"pp"`` or ``"pbpb"``), with ``changes`` applied."""
        if system not in SYSTEM_PRESETS:
            raise ValueError(
                f"unknown collision system {system!r}; choose from {sorted(SYSTEM_PRESETS)}"
            )
        return replace(cls(), **{**SYSTEM_PRESETS[system], **changes})

    def validate(self) -> None:
        """Raise ``ValueError`` for settings that make no sense."""
        if self.system not in SYSTEM_PRESETS:
            raise ValueError(f"unknown collision system {self.system!r}")
        if self.bfield_t == 0:
            raise ValueError("bfield_t must be non-zero (tracks need curvature)")
        if self.collisions_per_tf < 0:
            raise ValueError("collisions_per_tf must be >= 0")
        if len(self.abundances) != len(SPECIES) or len(self.tsallis) != len(SPECIES):
            raise ValueError(f"abundances and tsallis need one entry per species {SPECIES}")
        if not 0.0 <= self.centrality_min < self.centrality_max <= 1.0:
            raise ValueError("need 0 <= centrality_min < centrality_max <= 1")


SYSTEM_PRESETS: dict[str, dict] = {
    "pp": dict(
        system="pp",
        dndeta=6.5,
        abundances=_ABUNDANCE["pp"],
        tsallis=_TSALLIS["pp"],
        interaction_rate_khz=500.0,
        ft0_efficiency=0.85,
        ft0_resolution_ps=25.0,
        collisions_per_tf=8,
    ),
    "pbpb": dict(system="pbpb"),
}
