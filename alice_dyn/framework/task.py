"""The Task API (``init`` / ``run`` / ``end_of_stream`` / ``stop``) and plain-function algorithms.

Layer: framework. A stage is a :class:`Task` subclass (state kept between timeframes, like an
O2 ``Task``) or a plain function ``f(pc)`` for stateless work. :func:`make_task` turns either
into a Task instance.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from alice_dyn.framework.context import EndOfStreamContext, InitContext, ProcessingContext


class Task:
    """Base class of stateful processors."""

    def init(self, ic: InitContext) -> None:
        """Called once before the first timeframe (read options, open files, load models)."""

    def run(self, pc: ProcessingContext) -> None:
        """Called for every timeframe whose inputs are complete."""
        raise NotImplementedError

    def end_of_stream(self, ec: EndOfStreamContext) -> None:
        """Called once after the last timeframe (flush and close outputs)."""

    def stop(self) -> None:
        """Called last, also after an error elsewhere (release resources)."""


class FunctionTask(Task):
    """A Task running a plain function ``f(pc)`` for every timeframe."""

    def __init__(self, fn: Callable[[ProcessingContext], Any]) -> None:
        self.fn = fn

    def run(self, pc: ProcessingContext) -> None:
        self.fn(pc)


def make_task(algorithm: Any) -> Task:
    """A Task from a Task subclass, a factory returning a Task, or a function ``f(pc)``."""
    if isinstance(algorithm, Task):
        return algorithm
    if inspect.isclass(algorithm) and issubclass(algorithm, Task):
        return algorithm()
    if callable(algorithm):
        try:
            params = inspect.signature(algorithm).parameters.values()
            n_required = sum(
                1
                for p in params
                if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            )
        except (TypeError, ValueError):
            n_required = 1
        if n_required == 0:
            task = algorithm()
            if not isinstance(task, Task):
                raise TypeError(f"algorithm factory {algorithm!r} did not return a Task")
            return task
        return FunctionTask(algorithm)
    raise TypeError(f"cannot make a Task from {algorithm!r}")
