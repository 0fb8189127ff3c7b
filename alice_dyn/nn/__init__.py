"""alice_dyn.nn (see the package docstring)."""
