"""What a processor sees while it runs: inputs, an output allocator, options, configuration.

Layer: framework. Mirrors O2's ``InitContext``, ``ProcessingContext`` (``inputs()``,
``outputs()``, ``services()``) and ``EndOfStreamContext``. Outputs are collected while ``run``
executes and sent when it returns, as in O2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from alice_dyn.framework.message import DataHeader, Message, Parts, make_message
from alice_dyn.framework.online import TimeframeTiming, current_clock
from alice_dyn.framework.spec import DataProcessorSpec, DataType, OutputSpec, SpecError

#: allocates a framework-owned array: ``(shape, dtype) -> ndarray``
ArrayFactory = Callable[[tuple[int, ...], np.dtype], np.ndarray]

#: what ``pc.report`` accepts: a number or a list of numbers
ReportValue = float | int | list[float]


def report_value(key: str, value: Any) -> ReportValue:
    """``value`` as a plain JSON-able ``int``, ``float`` or ``list[float]`` (``TypeError``
    otherwise)."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"pc.report: the key must be a non-empty string, not {key!r}")
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, list | tuple | np.ndarray):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is not None and arr.ndim == 1:
            return [float(v) for v in arr]
    raise TypeError(
        f"pc.report({key!r}, ...): expected a float, an int or a list of floats, "
        f"not {type(value).__name__}"
    )


def heap_arrays(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The in-process allocator: plain NumPy memory."""
    return np.empty(shape, dtype=dtype)


class InputRecord:
    """The inputs of one timeframe, by binding name (``pc.inputs.get("clusters")``).

    A binding whose input matches several outputs (a subspec wildcard such as
    ``clusters:TPC/CLUSTERNATIVE`` fed by 36 sectors) holds several parts, ordered by subspec:
    :meth:`get_all` gives their payloads, :meth:`parts` their ``(header, payload)`` pairs (O2's
    ``InputRecordWalker``); :meth:`get` and :meth:`header` need exactly one part.
    """

    def __init__(self, processor: str, messages: dict[str, Message | Parts]) -> None:
        self._processor = processor
        self._parts: dict[str, list[Message]] = {
            b: list(m) if isinstance(m, Parts) else [m] for b, m in messages.items()
        }

    def _one(self, binding: str) -> Message:
        try:
            parts = self._parts[binding]
        except KeyError:
            raise KeyError(
                f"processor {self._processor!r}: no input {binding!r} in this timeframe "
                f"(present: {sorted(self._parts)})"
            ) from None
        if len(parts) != 1:
            subs = [m.header.subspec for m in parts]
            raise LookupError(
                f"processor {self._processor!r}: input {binding!r} has {len(parts)} parts in "
                f"this timeframe (subspecs {subs}): use pc.inputs.get_all({binding!r}) or "
                f"pc.inputs.parts({binding!r})"
            )
        return parts[0]

    def get(self, binding: str) -> Any:
        """The payload bound to ``binding`` — the producer's object itself, not a copy;
        ``LookupError`` when the binding holds several parts (use :meth:`get_all`).

        Inputs are read-only (``const`` in O2): the multi-process runner hands out read-only
        views of shared memory, so a task must copy before modifying (inline it would
        silently change the producer's data)."""
        return self._one(binding).payload

    def header(self, binding: str):
        """The header of the one part bound to ``binding``."""
        return self._one(binding).header

    def get_all(self, binding: str) -> list[Any]:
        """The payloads of every part bound to ``binding``, ordered by subspec (``[]`` when
        none arrived for this timeframe)."""
        return [m.payload for m in self._parts.get(binding, ())]

    def parts(self, binding: str) -> list[tuple[DataHeader, Any]]:
        """``(header, payload)`` of every part bound to ``binding``, ordered by subspec."""
        return [(m.header, m.payload) for m in self._parts.get(binding, ())]

    def is_valid(self, binding: str) -> bool:
        """False for an optional input that did not arrive for this timeframe."""
        return binding in self._parts

    def __contains__(self, binding: str) -> bool:
        return binding in self._parts

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


class DataAllocator:
    """Creates the outputs of one ``run`` call (``pc.outputs``).

    * :meth:`make` / :meth:`make_columns`: framework-owned buffers the task fills in place
      (zero copy; in the multi-process runner they live in shared memory);
    * :meth:`snapshot`: copies the object now, so the task may reuse it;
    * :meth:`adopt`: hands an object over without copying (the task must not touch it again).

    Outputs are addressed by an :class:`OutputSpec`, a :class:`DataType`, the output's binding
    or ``"ORIGIN/DESCRIPTION[/SUBSPEC]"``; anything the processor did not declare is an error.
    Once ``run`` has returned, a task must not write to what it sent (consumers may be reading
    it in another process), as in O2.
    """

    def __init__(self, spec: DataProcessorSpec, arrays: ArrayFactory = heap_arrays) -> None:
        self._spec = spec
        self._arrays = arrays
        self._pending: list[tuple[OutputSpec, Any]] = []

    def declares(self, output: str | DataType | OutputSpec) -> bool:
        """Whether the processor declared ``output`` (optional outputs of configurable stages)."""
        try:
            self._spec.output(output)
        except SpecError:
            return False
        return True

    def _resolve(self, output: str | DataType | OutputSpec) -> OutputSpec:
        out = self._spec.output(output)
        if any(o.data_type == out.data_type for o, _ in self._pending):
            raise SpecError(
                f"processor {self._spec.name!r}: output {out.data_type} made twice in one timeframe"
            )
        return out

    def make(self, output, shape: int | tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """A framework-owned array of ``shape`` and ``dtype`` to fill; sent when run returns."""
        out = self._resolve(output)
        arr = self._arrays(tuple(np.atleast_1d(shape).tolist()), np.dtype(dtype))
        self._pending.append((out, arr))
        return arr

    def make_columns(self, output, columns: dict[str, tuple[Any, Any]]) -> dict[str, np.ndarray]:
        """Framework-owned columns ``{name: (shape, dtype)}`` to fill; sent when run returns."""
        out = self._resolve(output)
        arrays = {
            k: self._arrays(tuple(np.atleast_1d(shape).tolist()), np.dtype(dtype))
            for k, (shape, dtype) in columns.items()
        }
        self._pending.append((out, arrays))
        return arrays

    def snapshot(self, output, obj: Any) -> None:
        """Send a copy of ``obj`` (array, dict of arrays or small object)."""
        out = self._resolve(output)
        if isinstance(obj, np.ndarray):
            dst = self._arrays(obj.shape, obj.dtype)
            dst[...] = obj
        elif isinstance(obj, dict) and obj and all(isinstance(v, np.ndarray) for v in obj.values()):
            dst = {}
            for k, v in obj.items():
                dst[k] = self._arrays(v.shape, v.dtype)
                dst[k][...] = v
        else:
            dst = copy.deepcopy(obj)
        self._pending.append((out, dst))

    def adopt(self, output, obj: Any) -> None:
        """Send ``obj`` itself, without a copy."""
        self._pending.append((self._resolve(output), obj))

    def collect(self, timeslice: int, tf_id: int) -> list[Message]:
        """The messages made in this call (the framework sends them after ``run``)."""
        msgs = [make_message(o.data_type, p, timeslice, tf_id) for o, p in self._pending]
        self._pending = []
        return msgs


class ControlService:
    """``pc.services.control``: a source calls :meth:`end_of_stream` when it has no more data."""

    def __init__(self) -> None:
        self.eos_requested = False

    def end_of_stream(self) -> None:
        self.eos_requested = True


class Services:
    def __init__(self) -> None:
        self.control = ControlService()


class InitContext:
    """Given to ``Task.init``: the processor's options and configuration groups."""

    def __init__(self, spec: DataProcessorSpec, config: dict[str, Any], lane: int = 0) -> None:
        self.name = spec.name
        self.spec = spec
        self.options = {o.name: spec.option(o.name) for o in spec.options}
        self.config = config
        self.lane = lane

    def option(self, name: str) -> Any:
        return self.spec.option(name)


class ProcessingContext:
    """Given to ``Task.run`` for each timeframe.

    ``timeslice`` is the running index of the timeframe in this run; ``tf_id`` its own id,
    inherited from the inputs — a source sets it from its data (``pc.tf_id = ...``).
    ``timing`` (:class:`~alice_dyn.framework.online.TimeframeTiming`): arrival, latency budget,
    deadline and backlog of this timeframe, the same for every processor of the timeslice.
    ``report(key, value)`` attaches a per-timeframe value to the run summary.
    """

    def __init__(
        self,
        spec: DataProcessorSpec,
        inputs: InputRecord,
        outputs: DataAllocator,
        services: Services,
        config: dict[str, Any],
        timeslice: int,
        tf_id: int,
        timing: TimeframeTiming | None = None,
    ) -> None:
        self.name = spec.name
        self.inputs = inputs
        self.outputs = outputs
        self.services = services
        self.config = config
        self.timeslice = timeslice
        self.tf_id = tf_id
        self.timing = timing if timing is not None else TimeframeTiming(current_clock().now())
        self.reports: dict[str, ReportValue] = {}
        self._spec = spec

    def report(self, key: str, value: ReportValue) -> None:
        """Attach ``value`` (a float, an int or a list of floats) to this timeframe under
        ``key``; the run summary collects it (``summary.tf_reports[tf_id][processor][key]``).
        Reporting a key twice keeps the last value."""
        self.reports[key] = report_value(key, value)

    def option(self, name: str) -> Any:
        return self._spec.option(name)

    def end_of_stream(self) -> None:
        """Shortcut for ``pc.services.control.end_of_stream()``."""
        self.services.control.end_of_stream()


class EndOfStreamContext:
    """Given to ``Task.end_of_stream`` once every timeframe has passed."""

    def __init__(self, spec: DataProcessorSpec, config: dict[str, Any]) -> None:
        self.name = spec.name
        self.config = config
