"""The ``alice-dyn`` command line (placeholder, filled by the CLI module)."""


def main(argv=None) -> int:
    return 0
