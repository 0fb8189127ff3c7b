"""alice_dyn.io (see the package docstring)."""
