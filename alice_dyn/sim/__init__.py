"""alice_dyn.sim (see the package docstring)."""
