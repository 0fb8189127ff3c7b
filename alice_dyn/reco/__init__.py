"""alice_dyn.reco (see the package docstring)."""
