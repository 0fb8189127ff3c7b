"""Detector simulation: collisions, transport with TPC/TRD/TOF response, whole timeframes."""

from alice_dyn.sim.config import SYSTEM_PRESETS, SimConfig
from alice_dyn.sim.timeframe import simulate, simulate_particle_gun, simulate_timeframe

__all__ = [
    "SYSTEM_PRESETS",
    "SimConfig",
    "simulate",
    "simulate_particle_gun",
    "simulate_timeframe",
]
