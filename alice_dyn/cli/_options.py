"""Option types and checks of the command line: every value validated before work starts.

Layer: user interface. Each ``argparse`` type below turns a bad value into one line naming the
option, the value and the allowed range (``alice-dyn simulate: error: argument --seed: must be
an integer >= 0, not -1``) and exit code 2, before anything is simulated, read or written.
:class:`OneLineParser` prints that line alone (the usage is one ``--help`` away).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path
from typing import NoReturn

from alice_dyn.framework.errors import UsageError


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return v


def int_at_least(lo: int, hi: int | None = None):
    """Type: an integer ``>= lo`` (and ``<= hi``)."""

    def check(text: str) -> int:
        v = _int(text)
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, not {v}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"must be an integer <= {hi}, not {v}")
        return v

    check.__name__ = "integer"
    return check


#: seeds, timeframe ids and counts: non-negative 32-bit integers (numpy seeds, O2's tf ids)
non_negative_int = int_at_least(0, 2**31 - 1)
positive_int = int_at_least(1, 2**31 - 1)


def float_in(lo: float, hi: float, *, lo_open: bool = False, unit: str = ""):
    """Type: a number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    def check(text: str) -> float:
        v = _float(text)
        if v < lo or v > hi or (lo_open and v == lo):
            left = "(" if lo_open else "["
            raise argparse.ArgumentTypeError(f"must be in {left}{lo:g}, {hi:g}]{unit}, not {v:g}")
        return v

    check.__name__ = "number"
    return check


def positive_float(text: str) -> float:
    """Type: a finite number > 0."""
    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {v:g}")
    return v


#: ALICE's solenoid: 0.5 T nominal, 0.2 T in low-field runs, either polarity
BFIELD_RANGE_T = (0.1, 0.5)


def bfield(text: str) -> float:
    """Type: the solenoid field in T, ``0.1 <= |B| <= 0.5`` (either polarity)."""
    v = _float(text)
    lo, hi = BFIELD_RANGE_T
    if not lo <= abs(v) <= hi:
        raise argparse.ArgumentTypeError(
            f"|B| must be in [{lo:g}, {hi:g}] T (ALICE: 0.5 T nominal, 0.2 T low field), not {v:g}"
        )
    return v


def compression(text: str) -> str:
    """Type: a ROOT compression ``ALGORITHM[:LEVEL]`` that uproot accepts (checked, kept as
    text)."""
    from alice_dyn.io.writer import parse_compression

    try:
        parse_compression(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use lz4:1-12, zlib:0-9, zstd:0-22, lzma:0-9 or none ({exc})"
        ) from None
    return text


def centrality_percent(text: str) -> tuple[float, float]:
    """Type: ``MIN-MAX`` in percent, ``0 <= MIN < MAX <= 100`` -> fractions ``(lo, hi)``."""
    try:
        lo, hi = (float(v) for v in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use MIN-MAX in percent, e.g. 0-10") from None
    if not 0.0 <= lo < hi <= 100.0:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 <= MIN < MAX <= 100 (percent)")
    return lo / 100.0, hi / 100.0


class OptionError(UsageError):
    """Options that do not go together (or a value only another option makes wrong): the
    command ends with one line ``alice-dyn COMMAND: error: ...`` and exit code 2."""


def writable_file(path: str | None, option: str) -> None:
    """Before any work: the folder of output file ``path`` exists or is made, and can be
    written to; else one line naming ``option`` (:class:`OptionError`). ``None``: no output."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise OptionError(f"{option} {path}: is a folder, not a file")
    writable_dir(str(p.resolve().parent), option, shown=path)


def writable_dir(path: str | None, option: str, shown: str | None = None) -> None:
    """Before any work: output folder ``path`` exists or is made, and can be written to."""
    if path is None:
        return
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OptionError(f"{option} {shown or path}: cannot make {p}: {exc.strerror}") from None
    try:  # a real probe: access() says yes to root where nothing can be made (e.g. /proc)
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        raise OptionError(
            f"{option} {shown or path}: cannot write in {p}: {exc.strerror}"
        ) from None
