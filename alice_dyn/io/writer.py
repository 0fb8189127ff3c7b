"""Write timeframes to ROOT files with uproot (TTree, one entry per timeframe).

Layer: I/O. :class:`TimeframeWriter` buffers a few timeframes and appends them to the TTree in
one ``extend`` call (one basket per branch per flush), so memory stays bounded by the flush size
whatever the number of timeframes. Timeframes are validated before they are buffered
(:func:`alice_dyn.io.validate.timeframe_problems`): a file written here always reads back.

``layout="o2"`` writes O2's own ``tpc-native-clusters.root`` with PyROOT
(:mod:`alice_dyn.io.o2_writer`: ``std::vector<char>`` + ``Size`` branches and O2's MC truth;
ROOT is needed for it only). ``o2_branches="array"`` still writes the project's former uint8-array
variant with uproot (old files; tests of the reader).

Default compression is LZ4 level 1: measured by ``benchmarks/bench_io.py``, it reads several
times faster than ZLIB(1) at a modestly larger file (see docs/io_schema.md).
"""

from __future__ import annotations

import json
import logging
import os
from types import TracebackType

import awkward as ak
import numpy as np
import uproot
from uproot.compression import Compression

import alice_dyn
from alice_dyn.event.timeframe import Timeframe
from alice_dyn.io.errors import BadInputError
from alice_dyn.io.o2_layout import o2_entry
from alice_dyn.io.o2_writer import O2_WRITE_MODES, O2NativeClusterWriter, require_root
from alice_dyn.io.schema import (
    CHECKSUM,
    FORMAT_NAME,
    GROUPS,
    LAYOUT_ALICE_DYN,
    LAYOUT_O2,
    METADATA_KEY,
    O2_CHECKSUM_BRANCH,
    O2_CLUSTERS_BRANCH,
    O2_LABELS_BRANCH,
    O2_TREE_NAME,
    SCALARS,
    SCHEMA_VERSION,
    STRING_SCALARS,
    TREE_NAME,
    TREE_TITLE,
    Column,
    Group,
    crc32_of,
)
from alice_dyn.io.validate import timeframe_problems

logger = logging.getLogger(__name__)

CompressionLike = Compression | str | None
#: default compression of written files (see the module docstring)
DEFAULT_COMPRESSION = "lz4:1"
#: ``o2_branches`` value of the project's former uint8-array variant of the O2 layout
O2_ARRAY = "array"
_ALGORITHMS = {"zlib": uproot.ZLIB, "lz4": uproot.LZ4, "zstd": uproot.ZSTD, "lzma": uproot.LZMA}


def parse_compression(compression: CompressionLike) -> Compression | None:
    """``"lz4"``, ``"zstd:3"``, ``"none"``/``None`` or an uproot compression object -> object."""
    if compression is None or isinstance(compression, Compression):
        return compression
    name, _, level = str(compression).lower().partition(":")
    if name in ("none", "", "0"):
        return None
    if name not in _ALGORITHMS:
        raise ValueError(f"unknown compression {compression!r}; use one of {sorted(_ALGORITHMS)}")
    return _ALGORITHMS[name](int(level) if level else 1)


def _cast(values: np.ndarray, dtype: np.dtype, what: str) -> np.ndarray:
    """``values`` as ``dtype``; refuses integer overflow and floats stored into integers."""
    values = np.asarray(values)
    if values.dtype == dtype:
        return values
    if dtype.kind in "iu" and values.size:
        if values.dtype.kind not in "iub":
            raise ValueError(f"{what} has dtype {values.dtype}, the schema needs {dtype}")
        info = np.iinfo(dtype)
        lo, hi = int(values.min()), int(values.max())
        if lo < info.min or hi > info.max:
            raise ValueError(f"{what} values {lo}..{hi} do not fit {dtype}")
    elif dtype.kind == "f" and values.dtype.kind not in "iufb":
        raise ValueError(f"{what} has dtype {values.dtype}, the schema needs {dtype}")
    return values.astype(dtype)


def _jagged(columns: dict[str, np.ndarray], counts: np.ndarray) -> ak.Array:
    """``(n_entries,)`` jagged records of ``columns`` (flat, equal length) split by ``counts``."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(v)) for v in columns.values()],
        list(columns),
        length=int(offsets[-1]),
    )
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), record))


def _jagged_plain(values: np.ndarray, counts: np.ndarray) -> ak.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    content = ak.contents.NumpyArray(np.ascontiguousarray(values))
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), content))


def _group_value(tf: Timeframe, group: Group, column: Column) -> np.ndarray:
    part = getattr(tf, group.container)
    if column.attr.startswith("records."):
        return part.records[column.attr.removeprefix("records.")]
    return getattr(part, column.attr)


def branch_types(layout: str = LAYOUT_ALICE_DYN) -> dict[str, object]:
    """uproot ``mktree`` branch types of a layout (jagged groups as awkward record types)."""
    if layout == LAYOUT_O2:
        empty = np.zeros(1, np.int64)
        return {
            O2_CLUSTERS_BRANCH: _jagged_plain(np.empty(0, np.uint8), empty[:0]).type.content,
            O2_LABELS_BRANCH: _jagged_plain(np.empty(0, np.int32), empty[:0]).type.content,
            O2_CHECKSUM_BRANCH: CHECKSUM.dtype,
        }
    if layout != LAYOUT_ALICE_DYN:
        raise ValueError(f"unknown layout {layout!r}; use {LAYOUT_ALICE_DYN!r} or {LAYOUT_O2!r}")
    types: dict[str, object] = {c.name: c.dtype for c in (*SCALARS, CHECKSUM)}
    for g in GROUPS:
        cols = {c.name: np.empty(0, c.dtype) for c in g.columns}
        types[g.prefix] = _jagged(cols, np.zeros(0, np.int64)).type.content
    return types


class TimeframeWriter:
    """Write :class:`Timeframe` objects to ``path`` (recreated), one TTree entry per timeframe.

    Args:
        path: output file; an existing file is replaced.
        layout: ``"alice_dyn"`` (everything, TTree ``timeframes``) or ``"o2"`` (clusters and
            their MC labels only, O2's ``tpcrec/TPCClusterNative``; needs ROOT unless
            ``o2_branches="array"``).
        o2_branches: with ``layout="o2"``: ``"single"`` (O2's default, one branch),
            ``"sectors"`` (O2's per-sector branches) or ``"array"`` (the project's former
            uint8-array variant, written with uproot; kept for old files and tests).
        compression: ``"lz4:1"`` (default), ``"zlib:1"``, ``"zstd:1"``, ``"lzma:1"``, ``None``
            or an uproot compression object.
        flush_timeframes, flush_clusters: flush (one basket per branch) once this many
            timeframes or clusters are buffered; memory is bounded by about
            ``flush_clusters * 20`` bytes plus one timeframe.
        validate: check every timeframe before writing (:class:`BadInputError` if bad). Turn off
            only to produce bad files on purpose (tests).

    Use as a context manager; leaving the block flushes and closes (also after an exception,
    so the timeframes written so far stay readable).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layout: str = LAYOUT_ALICE_DYN,
        compression: CompressionLike = DEFAULT_COMPRESSION,
        flush_timeframes: int = 8,
        flush_clusters: int = 4_000_000,
        validate: bool = True,
        o2_branches: str = "single",
    ) -> None:
        if layout not in (LAYOUT_ALICE_DYN, LAYOUT_O2):
            raise ValueError(
                f"unknown layout {layout!r}; use {LAYOUT_ALICE_DYN!r} or {LAYOUT_O2!r}"
            )
        if flush_timeframes < 1 or flush_clusters < 1:
            raise ValueError("flush_timeframes and flush_clusters must be >= 1")
        if o2_branches not in (*O2_WRITE_MODES, O2_ARRAY):
            raise ValueError(
                f"unknown o2_branches {o2_branches!r}; use one of {(*O2_WRITE_MODES, O2_ARRAY)}"
            )
        self.path = os.fspath(path)
        self.layout = layout
        self.compression = parse_compression(compression)
        self._native: O2NativeClusterWriter | None = None
        if layout == LAYOUT_O2 and o2_branches != O2_ARRAY:
            require_root()  # one line naming what to install, before anything is written
        self.flush_timeframes = flush_timeframes
        self.flush_clusters = flush_clusters
        self.validate = validate
        self.n_written = 0  # timeframes accepted by write()
        self._buffer: list[dict[str, np.ndarray]] = []
        self._buffered_clusters = 0
        self._strings: dict[str, list[str]] = {table: [] for table in STRING_SCALARS.values()}
        self._metadata_dirty = False
        self._file = None
        if layout == LAYOUT_O2 and o2_branches != O2_ARRAY:
            self._native = O2NativeClusterWriter(
                self.path, compression=self.compression, mode=o2_branches
            )
            return
        self._file = uproot.recreate(self.path, compression=self.compression)
        try:
            if layout == LAYOUT_O2:
                self._tree = self._file.mktree(O2_TREE_NAME, branch_types(layout))
            else:
                self._tree = self._file.mktree(TREE_NAME, branch_types(layout), title=TREE_TITLE)
                self._write_metadata()
        except BaseException:
            self._file.close()
            raise

    # --- public -------------------------------------------------------------------------------
    def write(self, tf: Timeframe) -> None:
        """Buffer one timeframe (validated unless ``validate=False``); flushes when full."""
        try:
            if self.validate:
                problems = timeframe_problems(tf)
                if problems:
                    raise ValueError("; ".join(problems))
            if self._native is not None:
                self._native.write(tf)
                self.n_written += 1
                return
            entry = self._entry_columns(tf)
        except ValueError as exc:
            raise BadInputError(
                self.path, self.n_written, f"refusing to write: {exc}", tf_id=tf.meta.tf_id
            ) from None
        self._buffer.append(entry)
        self._buffered_clusters += len(tf.clusters)
        self.n_written += 1
        if (
            len(self._buffer) >= self.flush_timeframes
            or self._buffered_clusters >= self.flush_clusters
        ):
            self.flush()

    def write_many(self, tfs) -> int:
        """Write every timeframe of an iterable; returns how many."""
        n = 0
        for tf in tfs:
            self.write(tf)
            n += 1
        return n

    def flush(self) -> None:
        """Append the buffered timeframes to the tree (one basket per branch)."""
        if self._native is not None:
            return  # ROOT fills its baskets itself
        if self._metadata_dirty:
            self._write_metadata()
        if not self._buffer:
            return
        if self.layout == LAYOUT_O2:
            data = self._o2_arrays()
        else:
            data = self._alice_dyn_arrays()
        self._tree.extend(data)
        logger.debug(
            "%s: flushed %d timeframes, %d clusters",
            self.path,
            len(self._buffer),
            self._buffered_clusters,
        )
        self._buffer.clear()
        self._buffered_clusters = 0

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._native is not None:
            self._native.close()
            return
        if self._file.closed:
            return
        try:
            self.flush()
        finally:
            self._file.close()

    def __enter__(self) -> TimeframeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------------
    def _string_id(self, table: str, value: str) -> int:
        strings = self._strings[table]
        if value not in strings:
            strings.append(str(value))
            self._metadata_dirty = True
        return strings.index(value)

    def _write_metadata(self) -> None:
        meta = {
            "format": FORMAT_NAME,
            "schema_version": SCHEMA_VERSION,
            **self._strings,
            "creator": f"alice_dyn {alice_dyn.__version__} (uproot {uproot.__version__})",
            "compression": str(self.compression),
        }
        if METADATA_KEY in self._file:
            del self._file[METADATA_KEY]
        self._file[METADATA_KEY] = json.dumps(meta)
        self._metadata_dirty = False

    def _entry_columns(self, tf: Timeframe) -> dict[str, np.ndarray]:
        """Flat columns of one timeframe, already cast to the schema dtypes."""
        if self.layout == LAYOUT_O2:
            buffer, labels = o2_entry(tf)
            crc = np.array([crc32_of([buffer, labels])], dtype=CHECKSUM.dtype)
            return {O2_CLUSTERS_BRANCH: buffer, O2_LABELS_BRANCH: labels, O2_CHECKSUM_BRANCH: crc}
        out: dict[str, np.ndarray] = {}
        for col in SCALARS:
            value = getattr(tf.meta, col.attr)
            if col.name in STRING_SCALARS:
                value = self._string_id(STRING_SCALARS[col.name], value)
            out[col.name] = _cast(np.asarray([value]), col.dtype, f"meta.{col.attr}")
        for g in GROUPS:
            lengths = set()
            for col in g.columns:
                values = _group_value(tf, g, col)
                out[g.branch(col)] = _cast(values, col.dtype, f"{g.container}.{col.attr}")
                lengths.add(len(out[g.branch(col)]))
            if len(lengths) > 1:
                raise ValueError(f"{g.container}: columns differ in length {sorted(lengths)}")
        out[CHECKSUM.name] = np.array([crc32_of(out.values())], dtype=CHECKSUM.dtype)
        return out

    def _o2_arrays(self) -> dict[str, ak.Array]:
        out = {}
        for name in (O2_CLUSTERS_BRANCH, O2_LABELS_BRANCH):
            parts = [e[name] for e in self._buffer]
            counts = np.array([len(p) for p in parts], dtype=np.int64)
            out[name] = _jagged_plain(np.concatenate(parts), counts)
        out[O2_CHECKSUM_BRANCH] = np.concatenate([e[O2_CHECKSUM_BRANCH] for e in self._buffer])
        return out

    def _alice_dyn_arrays(self) -> dict[str, object]:
        out: dict[str, object] = {
            c.name: np.concatenate([e[c.name] for e in self._buffer]) for c in (*SCALARS, CHECKSUM)
        }
        for g in GROUPS:
            first = g.branch(g.columns[0])
            counts = np.array([len(e[first]) for e in self._buffer], dtype=np.int64)
            cols = {
                c.name: np.concatenate([e[g.branch(c)] for e in self._buffer]) for c in g.columns
            }
            out[g.prefix] = _jagged(cols, counts)
        return out


def write_timeframes(path: str | os.PathLike[str], timeframes, **kwargs) -> int:
    """Write an iterable of timeframes to ``path``; ``kwargs`` go to :class:`TimeframeWriter`."""
    with TimeframeWriter(path, **kwargs) as writer:
        return writer.write_many(timeframes)
