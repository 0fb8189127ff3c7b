"""Read timeframes from ROOT files lazily, one chunk of TTree entries at a time.

Layer: I/O. :class:`TimeframeReader` opens a file written by :mod:`alice_dyn.io.writer` (layout
``alice_dyn``) or by O2 (layout ``o2``, detected automatically), checks it at file level (exists,
is ROOT, not truncated, has the tree and the branches with the schema's types) when constructed,
then reads entries in chunks and yields one validated :class:`Timeframe` at a time. Only one
chunk is in memory at once, so memory is bounded whatever the file size.

The O2 layout comes in three variants (:func:`~alice_dyn.io.o2_layout.plan_o2_layout`): the
project's ``uint8`` array branch, O2's single ``std::vector<char>`` branch with its ``Size``
branch, or O2's per-sector branches; O2's MC truth (``TPCClusterNativeMCTruth``) is decoded into
``mc_label`` and, in full, into the :class:`~alice_dyn.io.o2_mc_truth.ClusterMCTruth` that
:meth:`TimeframeReader.iter_with_mc_truth` and :func:`read_o2_mc_truth` return.

Every problem raises :class:`~alice_dyn.io.errors.BadInputError` naming the file, the timeframe
(entry index) and the problem. With ``skip_bad=True`` a bad timeframe — unreadable (corrupted
basket, decompression error) or invalid — is skipped with a
:class:`~alice_dyn.io.errors.BadTimeframeWarning` and a log record, and counted; file-level
problems always raise.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import warnings
from collections.abc import Iterator
from types import TracebackType

import awkward as ak
import numpy as np
import uproot

from alice_dyn.event.timeframe import (
    Collisions,
    MCParticles,
    Timeframe,
    TimeframeMeta,
    TOFHits,
    TPCClusters,
    TRDTracklets,
)
from alice_dyn.io.errors import BadInputError, BadTimeframeWarning
from alice_dyn.io.o2_layout import (
    O2_MODE_ARRAY,
    O2Plan,
    TimeframeProblem,
    o2_native_timeframe,
    o2_timeframe,
    plan_o2_layout,
)
from alice_dyn.io.o2_mc_truth import ClusterMCTruth, read_view
from alice_dyn.io.schema import (
    CHECKSUM,
    CLUSTERS,
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
    crc32_of,
)
from alice_dyn.io.validate import timeframe_problems
from alice_dyn.tpc.cluster_native import CLUSTER_NATIVE_DTYPE

logger = logging.getLogger(__name__)

#: largest chunk (uncompressed) read at once when ``step=None``
MAX_CHUNK = "256 MB"

_CONTAINERS = {
    "clusters": TPCClusters,
    "collisions": Collisions,
    "particles": MCParticles,
    "tof": TOFHits,
    "trd": TRDTracklets,
}


# --- file level ---------------------------------------------------------------------------------
def _check_root_header(path: str) -> None:
    """Raise if ``path`` is missing, not a ROOT file, or shorter than its header says."""
    if not os.path.exists(path):
        raise BadInputError(path, None, "no such file")
    if not os.path.isfile(path):
        raise BadInputError(path, None, "not a regular file")
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:4] != b"root":
        raise BadInputError(path, None, f"not a ROOT file (starts with {head[:4]!r})")
    if len(head) < 20:
        raise BadInputError(path, None, f"truncated ROOT header ({size} bytes)")
    version = int.from_bytes(head[4:8], "big")
    end = int.from_bytes(head[12:20] if version >= 1_000_000 else head[12:16], "big")
    if end > size:
        raise BadInputError(
            path, None, f"truncated file: {size} bytes on disk, the ROOT header says {end}"
        )


def open_root(path: str | os.PathLike[str]) -> uproot.ReadOnlyDirectory:
    """Open ``path`` with uproot after the header checks; no array cache (streaming use)."""
    p = os.fspath(path)
    _check_root_header(p)
    try:
        return uproot.open(p, array_cache=None)
    except Exception as exc:
        raise BadInputError(
            p, None, f"cannot open as ROOT file: {type(exc).__name__}: {exc}"
        ) from exc


def _type_of(branch) -> tuple[bool, np.dtype | None, str]:
    """``(jagged, dtype, description)`` of a branch's uproot interpretation."""
    interp = branch.interpretation
    if isinstance(interp, uproot.AsJagged) and isinstance(interp.content, uproot.AsDtype):
        dt = np.dtype(interp.content.to_dtype)
        return True, dt, f"{dt.name}[] (jagged)"
    if isinstance(interp, uproot.AsDtype) and np.dtype(interp.to_dtype).shape == ():
        dt = np.dtype(interp.to_dtype)
        return False, dt, dt.name
    return False, None, f"{branch.typename} ({type(interp).__name__})"


def detect_layout(f: uproot.ReadOnlyDirectory, path: str) -> str:
    """``"alice_dyn"`` or ``"o2"`` by which TTree the file holds; raises if neither."""
    try:
        classes = f.classnames(recursive=False)
    except Exception as exc:
        raise BadInputError(path, None, f"cannot list the file's keys: {exc}") from exc
    trees = {k.split(";")[0] for k, v in classes.items() if v in ("TTree", "TNtuple")}
    if TREE_NAME in trees:
        return LAYOUT_ALICE_DYN
    if O2_TREE_NAME in trees:
        return LAYOUT_O2
    found = ", ".join(f"{k} ({v})" for k, v in sorted(classes.items())) or "nothing"
    raise BadInputError(
        path,
        None,
        f"missing TTree: neither {TREE_NAME!r} (alice_dyn layout) nor {O2_TREE_NAME!r} "
        f"(O2 layout); the file holds {found}",
    )


def _expected_branches(layout: str) -> dict[str, tuple[bool, tuple[np.dtype, ...]]]:
    """Required branch -> (jagged, accepted dtypes)."""
    if layout == LAYOUT_O2:
        return {O2_CLUSTERS_BRANCH: (True, (np.dtype(np.uint8), np.dtype(np.int8)))}
    out = {c.name: (False, (c.dtype,)) for c in SCALARS}
    for g in GROUPS:
        for c in g.columns:
            out[g.branch(c)] = (True, (c.dtype,))
    return out


def check_o2_branches(tree, path: str) -> tuple[O2Plan, list[str]]:
    """The O2 layout's plan and the branches to read with uproot's own interpretation.

    The project's ``array`` variant is checked as :func:`check_branches` does; O2's own
    variants need jagged ``int8``/``uint8`` data (``std::vector<char>``) and ``uint32`` Size
    branches. Raises :class:`BadInputError` (one line) otherwise.
    """
    plan = plan_o2_layout(tree, path)
    if plan.mode == O2_MODE_ARRAY:
        return plan, _check_expected(tree, LAYOUT_O2, path)
    wrong = []
    for name, size in plan.data.values():
        is_jagged, dt, desc = _type_of(tree[name])
        if not is_jagged or dt not in (np.dtype(np.int8), np.dtype(np.uint8)):
            wrong.append(f"{name} is {desc}, O2 writes std::vector<char>")
        is_jagged, dt, desc = _type_of(tree[size])
        if is_jagged or dt != np.dtype(np.uint32):
            wrong.append(f"{size} is {desc}, O2 writes uint32 (leaf /i)")
    if wrong:
        raise BadInputError(path, None, "wrong branch types: " + "; ".join(wrong))
    return plan, plan.array_names


def check_branches(tree, layout: str, path: str) -> list[str]:
    """Raise if required branches are missing or have other types; returns the names to read."""
    if layout == LAYOUT_O2:
        return check_o2_branches(tree, path)[1]
    return _check_expected(tree, layout, path)


def _check_expected(tree, layout: str, path: str) -> list[str]:
    """:func:`check_branches` for the alice_dyn layout and the O2 ``array`` variant."""
    expected = _expected_branches(layout)
    present = set(tree.keys(recursive=False))
    missing = [name for name in expected if name not in present]
    if missing:
        raise BadInputError(path, None, f"TTree {tree.name!r} lacks branches: {', '.join(missing)}")
    wrong = []
    for name, (jagged, dtypes) in expected.items():
        is_jagged, dt, desc = _type_of(tree[name])
        if is_jagged != jagged or dt not in dtypes:
            want = f"{dtypes[0].name}[] (jagged)" if jagged else dtypes[0].name
            wrong.append(f"{name} is {desc}, the schema needs {want}")
    names = list(expected)
    optional = {CHECKSUM.name: (False, CHECKSUM.dtype)}
    if layout == LAYOUT_O2:
        optional = {
            O2_LABELS_BRANCH: (True, np.dtype(np.int32)),
            O2_CHECKSUM_BRANCH: (False, CHECKSUM.dtype),
        }
    for name, (jagged, dtype) in optional.items():
        if name not in present:
            continue
        is_jagged, dt, desc = _type_of(tree[name])
        if is_jagged != jagged or dt != dtype:
            want = f"{dtype.name}[] (jagged)" if jagged else dtype.name
            wrong.append(f"{name} is {desc}, the schema needs {want}")
        names.append(name)
    if wrong:
        raise BadInputError(path, None, "wrong branch types: " + "; ".join(wrong))
    return names


def read_metadata(f: uproot.ReadOnlyDirectory, path: str) -> dict:
    """The alice_dyn file metadata (JSON TObjString), checked for format and version."""
    try:
        raw = f[METADATA_KEY]
    except Exception as exc:
        raise BadInputError(
            path, None, f"missing or unreadable {METADATA_KEY!r} object ({exc})"
        ) from exc
    try:
        meta = json.loads(str(raw))
    except ValueError as exc:
        raise BadInputError(path, None, f"{METADATA_KEY!r} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise BadInputError(path, None, f"{METADATA_KEY!r} does not describe a {FORMAT_NAME} file")
    version = meta.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise BadInputError(
            path,
            None,
            f"schema version {version!r}; this reader understands 1-{SCHEMA_VERSION}",
        )
    for table in STRING_SCALARS.values():
        if not isinstance(meta.get(table), list):
            raise BadInputError(path, None, f"{METADATA_KEY!r} lacks the string table {table!r}")
    return meta


# --- chunks -------------------------------------------------------------------------------------
#: failures of the machine, not of the file: never turned into a bad timeframe
class _ClosedReaderError(ValueError):
    """Iterating a reader after ``close()``."""


_NOT_BAD_INPUT = (MemoryError, KeyboardInterrupt, BadInputError, _ClosedReaderError)


def _describe(exc: BaseException) -> str:
    """One line: exception type and message, without uproot's trailing file name."""
    text = str(exc).split("\nin file ")[0].strip().replace("\n", " ")
    return f"{type(exc).__name__}: {text}"


def _flat(array) -> tuple[np.ndarray, np.ndarray]:
    """Flat content and ``(n + 1,)`` offsets of a jagged awkward array (or values of a flat one).

    Offsets index the returned content (they need not start at 0); no copy where uproot's
    layout is already a ListOffsetArray over a NumpyArray.
    """
    layout = array.layout
    if isinstance(layout, ak.contents.NumpyArray):
        return np.asarray(layout.data), np.arange(len(layout) + 1)
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(
        layout.content, ak.contents.NumpyArray
    ):
        return np.asarray(layout.content.data), np.asarray(layout.offsets.data, dtype=np.int64)
    counts = ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ak.to_numpy(ak.flatten(array, axis=1)), offsets


class _Chunk:
    """Flat columns of entries ``[start, stop)``; ``column(name, i)`` slices entry ``start + i``."""

    def __init__(self, start: int, arrays: dict, mc: dict | None = None) -> None:
        self.start = start
        self.n = len(next(iter(arrays.values()))) if arrays else 0
        self._flat = {name: _flat(a) for name, a in arrays.items()}
        #: O2 MC truth: plan key -> per-entry flat buffer (or problem string)
        self.mc = mc or {}

    def __contains__(self, name: str) -> bool:
        return name in self._flat

    def scalar(self, name: str, i: int):
        return self._flat[name][0][i]

    def scalar_array(self, name: str, i: int) -> np.ndarray:
        return self._flat[name][0][i : i + 1]

    def column(self, name: str, i: int) -> np.ndarray:
        content, offsets = self._flat[name]
        return content[offsets[i] : offsets[i + 1]]


def _verify_checksum(chunk: _Chunk, i: int, name: str, arrays: list[np.ndarray]) -> None:
    """Raise :class:`TimeframeProblem` if the stored CRC-32 differs from that of ``arrays``."""
    if name not in chunk:
        return
    stored = int(chunk.scalar(name, i))
    computed = crc32_of(arrays)
    if stored != computed:
        raise TimeframeProblem(
            f"checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): "
            "the data are corrupted"
        )


def _alice_dyn_timeframe(chunk: _Chunk, i: int, strings: dict) -> Timeframe:
    """Build entry ``i`` of a chunk (alice_dyn layout); raises :class:`TimeframeProblem`."""
    _verify_checksum(
        chunk,
        i,
        CHECKSUM.name,
        [chunk.scalar_array(c.name, i) for c in SCALARS]
        + [chunk.column(g.branch(c), i) for g in GROUPS for c in g.columns],
    )
    meta_values = {}
    for col in SCALARS:
        value = chunk.scalar(col.name, i)
        if col.name in STRING_SCALARS:
            table = strings[STRING_SCALARS[col.name]]
            if not 0 <= int(value) < len(table):
                raise TimeframeProblem(
                    f"{col.name} {int(value)} is not in the metadata table "
                    f"{STRING_SCALARS[col.name]!r} of {len(table)} strings"
                )
            value = table[int(value)]
        else:
            value = value.item()
        meta_values[col.attr] = value
    parts = {}
    for g in GROUPS:
        cols = {c.attr: chunk.column(g.branch(c), i) for c in g.columns}
        lengths = {g.branch(c): len(cols[c.attr]) for c in g.columns}
        if len(set(lengths.values())) > 1:
            raise TimeframeProblem(f"branches of group {g.prefix!r} differ in length: {lengths}")
        if g is CLUSTERS:
            n = len(cols["sector"])
            records = np.empty(n, CLUSTER_NATIVE_DTYPE)
            for attr in list(cols):
                if attr.startswith("records."):
                    records[attr.removeprefix("records.")] = cols.pop(attr)
            cols["records"] = records
        parts[g.container] = _CONTAINERS[g.container](**cols)
    return Timeframe(meta=TimeframeMeta(**meta_values), **parts)


class TimeframeReader:
    """Iterate over the timeframes of a ROOT file, one :class:`Timeframe` at a time.

    Args:
        path: a file in the ``alice_dyn`` or ``o2`` layout (detected).
        step: entries per chunk read at once. ``None`` (default) follows the file's basket
            boundaries (what the writer flushed together), so every basket is decompressed
            once, splitting chunks above :data:`MAX_CHUNK`; an ``int`` is a fixed number of
            entries; a string such as ``"100 MB"`` sizes chunks by uncompressed bytes.
        skip_bad: skip bad timeframes (warning + log + count) instead of raising.
        entry_start, entry_stop: the range of entries, as in a Python slice (negatives count
            from the end).

    File-level problems raise :class:`BadInputError` from the constructor. Attributes after
    (or during) an iteration: ``n_read`` timeframes yielded, ``n_skipped`` and ``skipped``, a list
    of ``(entry, problem)``; they restart with each new iteration. ``layout``, ``metadata``
    and ``len(reader)`` (entries in the range) are known from the start.

    The arrays of a yielded timeframe are views into its chunk: keeping a timeframe keeps its
    chunk alive, so ``copy()`` the columns of the few you keep for long.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        step: int | str | None = None,
        skip_bad: bool = False,
        entry_start: int | None = None,
        entry_stop: int | None = None,
    ) -> None:
        if isinstance(step, int) and step < 1:
            raise ValueError(f"step must be >= 1, got {step}")
        self.path = os.fspath(path)
        self.skip_bad = skip_bad
        self.step = step
        self.n_read = 0
        self.n_skipped = 0
        self.skipped: list[tuple[int, str]] = []
        self._file = open_root(self.path)
        try:
            self.layout = detect_layout(self._file, self.path)
            tree_name = TREE_NAME if self.layout == LAYOUT_ALICE_DYN else O2_TREE_NAME
            try:
                self._tree = self._file[tree_name]
                num_entries = int(self._tree.num_entries)
            except Exception as exc:
                raise BadInputError(
                    self.path, None, f"cannot read TTree {tree_name!r}: {type(exc).__name__}: {exc}"
                ) from exc
            self._o2: O2Plan | None = None
            if self.layout == LAYOUT_O2:
                self._o2, self._names = check_o2_branches(self._tree, self.path)
            else:
                self._names = check_branches(self._tree, self.layout, self.path)
            self.metadata = (
                read_metadata(self._file, self.path) if self.layout == LAYOUT_ALICE_DYN else {}
            )
        except BaseException:
            self._file.close()
            raise
        entries = range(num_entries)[slice(entry_start, entry_stop)]
        self.entry_start = entries.start
        self.entry_stop = max(entries.stop, entries.start)

    # --- context manager / sizes ---------------------------------------------------------------
    def __len__(self) -> int:
        return self.entry_stop - self.entry_start

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TimeframeReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- iteration ------------------------------------------------------------------------------
    def chunk_ranges(self) -> list[tuple[int, int]]:
        """The ``(start, stop)`` entry ranges read at once."""
        start, stop = self.entry_start, self.entry_stop
        if start >= stop:
            return []
        if self.step is None:
            wanted = set(self._names)
            try:
                bounds = self._tree.common_entry_offsets(filter_name=lambda n: n in wanted)
                cap = max(1, int(self._tree.num_entries_for(MAX_CHUNK, filter_name=self._names)))
            except Exception:  # damaged branch metadata: fall back to single entries
                bounds, cap = list(range(start, stop + 1)), 1
            cuts = sorted({start, stop, *(b for b in bounds if start < b < stop)})
            # files from other writers may have few common basket boundaries: cap the chunks
            capped = [start]
            for cut in cuts[1:]:
                capped.extend(range(capped[-1] + cap, cut, cap))
                capped.append(cut)
            cuts = capped
        elif isinstance(self.step, str):
            try:
                per = self._tree.num_entries_for(self.step, filter_name=self._names)
            except Exception as exc:
                raise ValueError(f"bad step {self.step!r}: {exc}") from exc
            cuts = [*range(start, stop, max(1, int(per))), stop]
        else:
            cuts = [*range(start, stop, self.step), stop]
        return list(itertools.pairwise(cuts))

    def _read(self, start: int, stop: int) -> _Chunk:
        if self._file.closed:  # not the file's fault: do not report it as a bad timeframe
            raise _ClosedReaderError(f"{self.path}: reading from a closed TimeframeReader")
        arrays = self._tree.arrays(
            self._names, entry_start=start, entry_stop=stop, library="ak", how=dict
        )
        mc = {}
        if self._o2 is not None:
            for key, name in self._o2.mc.items():
                mc[key] = read_view(self._tree[name], start, stop)
        return _Chunk(start, arrays, mc)

    def _build(self, chunk: _Chunk, i: int) -> tuple[Timeframe, ClusterMCTruth | None]:
        """Timeframe of entry ``chunk.start + i`` and its O2 MC truth (None if not stored)."""
        entry = chunk.start + i
        truth = None
        if self._o2 is not None and self._o2.mode != O2_MODE_ARRAY:
            buffers = {
                key: (chunk.column(name, i), int(chunk.scalar(size, i)))
                for key, (name, size) in self._o2.data.items()
            }
            mc = {key: per_entry[i] for key, per_entry in chunk.mc.items()}
            tf, truth = o2_native_timeframe(self._o2, buffers, mc, entry)
            problems = timeframe_problems(tf, n_particles_known=False)
        elif self.layout == LAYOUT_O2:
            labels = chunk.column(O2_LABELS_BRANCH, i) if O2_LABELS_BRANCH in chunk else None
            buffer = chunk.column(O2_CLUSTERS_BRANCH, i)
            _verify_checksum(
                chunk, i, O2_CHECKSUM_BRANCH, [buffer] if labels is None else [buffer, labels]
            )
            tf = o2_timeframe(buffer, labels, entry)
            problems = timeframe_problems(tf, n_particles_known=False)
        else:
            tf = _alice_dyn_timeframe(chunk, i, self.metadata)
            problems = timeframe_problems(tf)
        if problems:
            raise TimeframeProblem("; ".join(problems))
        return tf, truth

    def _bad(self, entry: int, problem: str, tf_id: int | None = None) -> None:
        error = BadInputError(self.path, entry, problem, tf_id=tf_id)
        if not self.skip_bad:
            raise error
        self.n_skipped += 1
        self.skipped.append((entry, problem))
        logger.warning("skipping bad timeframe: %s", error)
        warnings.warn(f"skipping bad timeframe: {error}", BadTimeframeWarning, stacklevel=3)

    def _chunks(self) -> Iterator[tuple[_Chunk | None, int, str | None]]:
        """Yield ``(chunk, entry, None)`` per readable entry or ``(None, entry, problem)``."""
        for start, stop in self.chunk_ranges():
            try:
                chunk = self._read(start, stop)
            except _NOT_BAD_INPUT:
                raise
            except Exception as exc:
                if stop - start == 1:
                    yield None, start, f"cannot read: {_describe(exc)}"
                    continue
                # isolate the unreadable entries: the others of the chunk may be fine
                for entry in range(start, stop):
                    try:
                        single = self._read(entry, entry + 1)
                    except _NOT_BAD_INPUT:
                        raise
                    except Exception as exc1:
                        yield None, entry, f"cannot read: {_describe(exc1)}"
                    else:
                        yield single, entry, None
                continue
            for entry in range(start, stop):
                yield chunk, entry, None

    def __iter__(self) -> Iterator[Timeframe]:
        for tf, _ in self.iter_with_mc_truth():
            yield tf

    def iter_with_mc_truth(self) -> Iterator[tuple[Timeframe, ClusterMCTruth | None]]:
        """Iterate as ``iter(reader)`` does, yielding ``(timeframe, MC truth)`` pairs.

        The MC truth is the full label list of every cluster (in the timeframe's cluster
        order) from O2's ``TPCClusterNativeMCTruth`` branches, ``None`` when the file has none
        (alice_dyn layout, the project's O2 ``array`` variant, O2 files without MC).
        """
        self.n_read = 0
        self.n_skipped = 0
        self.skipped = []
        for chunk, entry, problem in self._chunks():
            if chunk is None:
                self._bad(entry, problem or "unreadable")
                continue
            try:
                tf, truth = self._build(chunk, entry - chunk.start)
            except _NOT_BAD_INPUT:
                raise
            except Exception as exc:
                problem = str(exc) if isinstance(exc, TimeframeProblem) else _describe(exc)
                tf_id = None
                if self.layout == LAYOUT_ALICE_DYN:
                    tf_id = int(chunk.scalar("tf_id", entry - chunk.start))
                self._bad(entry, problem, tf_id)
                continue
            self.n_read += 1
            yield tf, truth


def open_timeframes(path: str | os.PathLike[str], **kwargs) -> TimeframeReader:
    """A :class:`TimeframeReader` on ``path`` (use it in a ``with`` block and iterate)."""
    return TimeframeReader(path, **kwargs)


def read_timeframe(path: str | os.PathLike[str], i: int) -> Timeframe:
    """Timeframe at entry ``i`` (negative counts from the end); ``IndexError`` if out of range."""
    with TimeframeReader(path, step=1) as reader:
        n = len(reader)
        if not -n <= i < n:
            raise IndexError(f"{reader.path}: timeframe {i} out of range ({n} timeframes)")
        reader.entry_start = i % n
        reader.entry_stop = reader.entry_start + 1
        return next(iter(reader))


def read_timeframes(path: str | os.PathLike[str], **kwargs) -> list[Timeframe]:
    """All timeframes of ``path`` as a list (small files only: everything is in memory)."""
    with TimeframeReader(path, **kwargs) as reader:
        return list(reader)


def read_o2_mc_truth(path: str | os.PathLike[str], **kwargs) -> list[ClusterMCTruth | None]:
    """The O2 MC truth of every timeframe of ``path`` (``None`` where the file has none).

    Same checks and keyword arguments as :func:`read_timeframes` (with ``skip_bad=True`` the
    skipped timeframes are left out of the list, as they are there).
    """
    with TimeframeReader(path, **kwargs) as reader:
        return [truth for _, truth in reader.iter_with_mc_truth()]
