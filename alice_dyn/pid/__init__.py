"""Particle identification with networks: datasets from reconstructed tracks, the dynamic PID
network that works with any subset of detectors, and its baselines."""
