"""The ``alice-dyn`` command line: one module per subcommand.

Layer: user interface; it only wires the package's layers together. Options are kebab-case
with visible defaults (``alice-dyn COMMAND --help``) and validated before work starts
(:mod:`alice_dyn.cli._options`). Exit codes: 0 success; 1 a processor failed during a run
(the message names it and the timeframe); 2 a bad option, workflow, configuration or input
file (one line, no traceback; also a file that cannot be read or written); 130 interrupted
(Ctrl-C); 141 the reader of the output went away (``| head``), quietly.

Subcommands: ``simulate`` (:mod:`~alice_dyn.cli.simulate`), ``inspect`` and ``summary``
(:mod:`~alice_dyn.cli.inspect`), ``quickstart`` (:mod:`~alice_dyn.cli.quickstart`),
``workflows`` and ``run`` (:mod:`~alice_dyn.cli.run`), ``evaluate``
(:mod:`~alice_dyn.cli.evaluate`), ``train`` (:mod:`~alice_dyn.cli.train`), ``calibrate``
(:mod:`~alice_dyn.cli.calibrate`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from alice_dyn import __version__
from alice_dyn.cli import calibrate, evaluate, inspect, quickstart, run, simulate, train
from alice_dyn.cli._options import OneLineParser

#: exit codes of the shell conventions: killed by SIGINT / SIGPIPE
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="alice-dyn",
        description="alice_dyn: dynamic neural networks for ALICE O2-style TPC reconstruction.",
    )
    parser.add_argument("--version", action="version", version=f"alice-dyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    simulate.add_parser(sub)
    inspect.add_parsers(sub)
    quickstart.add_parser(sub)
    run.add_parsers(sub)
    evaluate.add_parser(sub)
    train.add_parser(sub)
    calibrate.add_parser(sub)
    return parser


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away: no traceback, and no second error when Python flushes
    stdout at exit (it is pointed at /dev/null)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``alice-dyn`` (exit codes in the module docstring)."""
    from alice_dyn.framework.errors import UsageError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"alice-dyn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except OSError as exc:  # a file the user named cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"alice-dyn {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"alice-dyn {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = ["build_parser", "main"]
