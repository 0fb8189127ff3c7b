"""Physics constants, particle species and detector response functions (no I/O)."""
