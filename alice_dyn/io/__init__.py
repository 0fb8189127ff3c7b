"""ROOT I/O of timeframes: write with uproot, read back lazily and validated.

Layer: I/O, between the data model (:mod:`alice_dyn.event`, :mod:`alice_dyn.tpc`) and everything
that consumes timeframes. Two layouts (schema in :mod:`alice_dyn.io.schema`, ``docs/io_schema.md``):

* ``alice_dyn``: TTree ``timeframes``, one entry per timeframe, everything (clusters, collisions,
  MC particles, TOF, TRD) as columnar jagged branches;
* ``o2``: O2's ``tpcrec/TPCClusterNative`` buffers (clusters only).

Typical use::

    from alice_dyn.io import TimeframeWriter, open_timeframes

    with TimeframeWriter("tfs.root") as w:
        for tf in timeframes:
            w.write(tf)
    with open_timeframes("tfs.root", skip_bad=True) as reader:
        for tf in reader:
            ...

Every bad input raises :class:`BadInputError` ("FILE: timeframe N: problem").
"""

from alice_dyn.io.errors import BadInputError, BadTimeframeWarning
from alice_dyn.io.inspect import format_inspection, inspect_file
from alice_dyn.io.reader import (
    TimeframeReader,
    open_timeframes,
    read_timeframe,
    read_timeframes,
)
from alice_dyn.io.schema import (
    LAYOUT_ALICE_DYN,
    LAYOUT_O2,
    SCHEMA_DOC,
    SCHEMA_VERSION,
)
from alice_dyn.io.validate import timeframe_problems
from alice_dyn.io.writer import (
    DEFAULT_COMPRESSION,
    TimeframeWriter,
    parse_compression,
    write_timeframes,
)

__all__ = [
    "DEFAULT_COMPRESSION",
    "LAYOUT_ALICE_DYN",
    "LAYOUT_O2",
    "SCHEMA_DOC",
    "SCHEMA_VERSION",
    "BadInputError",
    "BadTimeframeWarning",
    "TimeframeReader",
    "TimeframeWriter",
    "format_inspection",
    "inspect_file",
    "open_timeframes",
    "parse_compression",
    "read_timeframe",
    "read_timeframes",
    "timeframe_problems",
    "write_timeframes",
]
