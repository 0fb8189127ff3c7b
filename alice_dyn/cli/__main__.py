"""``python -m alice_dyn.cli``: the ``alice-dyn`` command."""

import sys

from alice_dyn.cli import main

sys.exit(main())
