"""alice_dyn.kernels (see the package docstring)."""
