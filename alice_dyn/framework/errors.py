"""Errors a user can fix, as the framework knows them (no physics here).

Layer: framework. :class:`UsageError` is the base of every problem that is the user's to fix
— a malformed workflow or specification, an unknown configuration key, an option out of range,
a bad input file — and that therefore ends a command with one line naming the problem and exit
code 2, never a traceback. Other layers subclass it (``alice_dyn.io.BadInputError`` for input
files); the framework and the command line catch the base class only.
"""

from __future__ import annotations


class UsageError(Exception):
    """A problem with what the user gave (workflow, configuration, option, input file)."""


__all__ = ["UsageError"]
