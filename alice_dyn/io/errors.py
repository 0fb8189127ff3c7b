"""Errors and warnings of the ROOT I/O layer.

Layer: I/O. Every problem with an input file — missing, not ROOT, truncated, corrupted, missing
tree or branches, wrong types, values out of range — is reported as one :class:`BadInputError`
naming the file, the timeframe (when the problem belongs to one) and the problem. A reader run
with ``skip_bad=True`` turns per-timeframe problems into :class:`BadTimeframeWarning`.
"""

from __future__ import annotations

import os

from alice_dyn.framework.errors import UsageError


class BadInputError(UsageError):
    """An input file (or one timeframe in it) cannot be read as valid timeframes.

    Attributes:
        path: the file, as given.
        tf: entry index of the timeframe in the file (``None`` for a file-level problem).
        problem: what is wrong, in words.
        tf_id: the timeframe's own id when it could be read (``None`` otherwise).

    The message reads ``"FILE: timeframe 3: <problem>"`` (``"FILE: <problem>"`` without a
    timeframe); ``" (tf_id N)"`` follows the index when the id is known and differs from it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        tf: int | None,
        problem: str,
        *,
        tf_id: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.tf = tf
        self.problem = problem
        self.tf_id = tf_id
        super().__init__(self._message())

    def _message(self) -> str:
        if self.tf is None:
            return f"{self.path}: {self.problem}"
        where = f"timeframe {self.tf}"
        if self.tf_id is not None and self.tf_id != self.tf:
            where += f" (tf_id {self.tf_id})"
        return f"{self.path}: {where}: {self.problem}"

    def __reduce__(self):  # keep the attributes through pickling (multiprocessing)
        return (_rebuild_bad_input, (self.path, self.tf, self.problem, self.tf_id))


def _rebuild_bad_input(path: str, tf: int | None, problem: str, tf_id: int | None):
    return BadInputError(path, tf, problem, tf_id=tf_id)


class BadTimeframeWarning(UserWarning):
    """A bad timeframe was skipped (reader with ``skip_bad=True``); the message names it."""
