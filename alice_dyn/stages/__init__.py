"""alice_dyn.stages (see the package docstring)."""
