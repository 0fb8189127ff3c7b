"""alice_dyn.framework (see the package docstring)."""
