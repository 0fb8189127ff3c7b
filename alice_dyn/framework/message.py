"""Messages between processors: a header and a payload.

Layer: framework. Payloads are kept as they are made — no serialisation in one process:

* ``"ndarray"``: one NumPy array (handed over without copy);
* ``"columns"``: a dict of NumPy arrays (a columnar table such as ClusterNative records and
  their sector/row/label columns);
* ``"object"``: a small Python object (metadata, parameters); the multi-process runner
  serialises it, so keep large data in arrays.

The multi-process runner moves ``ndarray`` and ``columns`` payloads through shared memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alice_dyn.framework.spec import DataType

SERIALIZATION_NDARRAY = "ndarray"
SERIALIZATION_COLUMNS = "columns"
SERIALIZATION_OBJECT = "object"


@dataclass(frozen=True)
class DataHeader:
    """O2-like header: address, timeframe, payload size and serialisation method.

    ``timeslice`` is the framework's running index of the timeframe (0, 1, ...: the order in
    which timeframes flow); ``tf_id`` is the timeframe's own id (from the data, e.g. the file).
    """

    origin: str
    description: str
    subspec: int
    timeslice: int
    tf_id: int
    payload_size: int
    serialization: str

    @property
    def data_type(self) -> DataType:
        return DataType(self.origin, self.description, self.subspec)


@dataclass(frozen=True)
class Message:
    """A header and its payload."""

    header: DataHeader
    payload: Any


class Parts(tuple):
    """The messages of one input binding that matches several outputs (a subspec wildcard such
    as ``TPC/CLUSTERNATIVE`` fed by 36 sectors), ordered by subspec: the value of that binding
    in a runner's inputs ``{binding: message or Parts}``."""

    __slots__ = ()


def each_message(inputs: Mapping[str, Any]) -> Iterator[Any]:
    """Every message of a runner's inputs ``{binding: message or Parts}``, one by one."""
    for value in inputs.values():
        if isinstance(value, Parts):
            yield from value
        else:
            yield value


def serialization_of(payload: Any) -> str:
    """Serialisation method for a payload (see the module docstring)."""
    if isinstance(payload, np.ndarray):
        return SERIALIZATION_NDARRAY
    if (
        isinstance(payload, dict)
        and payload
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in payload.items())
    ):
        return SERIALIZATION_COLUMNS
    return SERIALIZATION_OBJECT


def payload_size(payload: Any) -> int:
    """Bytes of a payload's arrays (0 for objects, whose size is not tracked)."""
    if isinstance(payload, np.ndarray):
        return int(payload.nbytes)
    if isinstance(payload, dict):
        return int(sum(v.nbytes for v in payload.values() if isinstance(v, np.ndarray)))
    return 0


def make_message(data_type: DataType, payload: Any, timeslice: int, tf_id: int) -> Message:
    """A message for ``payload`` addressed to ``data_type``."""
    header = DataHeader(
        data_type.origin,
        data_type.description,
        data_type.subspec,
        timeslice,
        tf_id,
        payload_size(payload),
        serialization_of(payload),
    )
    return Message(header, payload)
