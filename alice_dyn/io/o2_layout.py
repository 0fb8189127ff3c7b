"""O2's cluster file layout (``tpc-native-clusters.root``): TTree ``tpcrec``, one entry per TF.

Layer: I/O. Three variants of the tree are read (:func:`plan_o2_layout` tells which):

* ``array`` — what this project wrote before it wrote O2's own layout
  (:mod:`alice_dyn.io.o2_writer`; ``o2_branches="array"`` still writes it): branch
  ``TPCClusterNative`` holds each timeframe's O2 buffer as a jagged ``uint8`` array
  (``UChar_t x[n]``) — the ``ClusterCountIndex`` (``uint32 [36][152]``) followed by the
  12-byte ClusterNative records in (sector, row) order, exactly what
  :func:`~alice_dyn.tpc.cluster_native.encode_o2_buffer` produces. Branch
  ``TPCClusterNativeMCLabels`` (jagged ``int32``) holds one MC particle index per record, in
  the same order; it is optional on reading (missing = all ``-1``).
* ``single`` — O2's own writer (``RootTreeWriter`` binary branch; the project's default):
  ``TPCClusterNative`` is a ``std::vector<char>`` object branch with the same buffer, plus
  ``TPCClusterNativeSize`` (leaf ``/i``, the byte count, checked). MC truth:
  ``TPCClusterNativeMCTruth`` (:mod:`alice_dyn.io.o2_mc_truth`), one label container for all
  clusters.
* ``sectors`` — O2 per-sector branches ``TPCClusterNative_<s>`` + ``TPCClusterNative_<s>Size``
  for the sectors present, each buffer with a full ``[36][152]`` index in which only sector
  ``s`` counts clusters; merged into one timeframe in (sector, row) order. MC truth
  ``TPCClusterNativeMCTruth_<s>`` indexes the clusters of sector ``s`` only.

As O2's ``ClusterNativeHelper::Reader::init``, a data branch without its ``Size`` branch is
refused; O2 reads the single branch when it exists and the per-sector ones otherwise.

Only clusters live in this layout: a timeframe read from it has empty collisions, particles,
TOF and TRD, ``tf_id`` equal to the entry index and the other meta values from
:data:`~alice_dyn.io.schema.O2_DEFAULT_META`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alice_dyn.event.timeframe import (
    Collisions,
    MCParticles,
    Timeframe,
    TimeframeMeta,
    TOFHits,
    TPCClusters,
    TRDTracklets,
)
from alice_dyn.io.errors import BadInputError
from alice_dyn.io.o2_mc_truth import (
    ClusterMCTruth,
    MCTruthFormatError,
    decode_flat_mc_truth,
    is_view_branch,
)
from alice_dyn.io.schema import (
    COLLISIONS,
    O2_CLUSTERS_BRANCH,
    O2_DEFAULT_META,
    O2_LABELS_BRANCH,
    O2_MC_TRUTH_BRANCH,
    O2_SIZE_SUFFIX,
    PARTICLES,
    TOF,
    TRD,
    Group,
    o2_sector_branch,
)
from alice_dyn.tpc.cluster_native import (
    CLUSTER_COUNT_INDEX_SHAPE,
    CLUSTER_NATIVE_DTYPE,
    ClusterNativeFormatError,
    decode_o2_buffer,
    encode_o2_buffer,
    sector_row_from_index,
    sector_row_order,
)
from alice_dyn.tpc.geometry import N_SECTORS

O2_MODE_ARRAY = "array"
O2_MODE_SINGLE = "single"
O2_MODE_SECTORS = "sectors"


class TimeframeProblem(Exception):
    """Internal: one timeframe is bad; the reader adds the file and the entry."""


def o2_entry(tf: Timeframe, sector: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One TF (or only its clusters of ``sector``) as the O2 layout stores it: ``(buffer uint8
    (21888 + 12 n,), labels int32 (n,))``.

    Clusters are stably reordered by (sector, row) if needed, labels alongside.
    """
    c = tf.clusters
    records, sec, row, labels = c.records, c.sector, c.row, c.mc_label
    if sector is not None:
        sel = np.asarray(sec) == sector
        records, sec, row, labels = records[sel], sec[sel], row[sel], labels[sel]
    buffer = encode_o2_buffer(records, sec, row)
    return buffer, np.asarray(labels, dtype=np.int32)[sector_row_order(sec, row)]


def _empty_group(group: Group):
    containers = {
        "collisions": Collisions,
        "particles": MCParticles,
        "tof": TOFHits,
        "trd": TRDTracklets,
    }
    cls = containers[group.container]
    return cls(**{col.attr: np.empty(0, col.dtype) for col in group.columns})


def o2_timeframe(buffer: np.ndarray, labels: np.ndarray | None, entry: int) -> Timeframe:
    """Build the :class:`Timeframe` of one O2 entry (``buffer`` uint8, ``labels`` int32 or None).

    Raises :class:`TimeframeProblem` if the buffer's layout is wrong or the labels do not match
    the clusters one to one. Arrays are views into ``buffer`` where possible.
    """
    raw = np.asarray(buffer)
    if raw.dtype != np.uint8:
        raw = raw.view(np.uint8)
    try:
        index, records = decode_o2_buffer(raw)
    except ClusterNativeFormatError as exc:
        raise TimeframeProblem(f"bad {O2_CLUSTERS_BRANCH} buffer: {exc}") from None
    if labels is None:
        mc_label = np.full(records.size, -1, dtype=np.int32)
    else:
        mc_label = np.asarray(labels, dtype=np.int32)
        if mc_label.size != records.size:
            raise TimeframeProblem(
                f"{O2_LABELS_BRANCH} has {mc_label.size} labels but {O2_CLUSTERS_BRANCH} holds "
                f"{records.size} clusters"
            )
    return _clusters_timeframe(index, records, mc_label, entry)


def _clusters_timeframe(
    index: np.ndarray, records: np.ndarray, mc_label: np.ndarray, entry: int
) -> Timeframe:
    """A timeframe of clusters only: ``index`` (36, 152), ``records`` and ``mc_label`` (n,)."""
    sector, row = sector_row_from_index(index)
    meta = TimeframeMeta(tf_id=entry, **O2_DEFAULT_META)
    return Timeframe(
        meta=meta,
        clusters=TPCClusters(records=records, sector=sector, row=row, mc_label=mc_label),
        collisions=_empty_group(COLLISIONS),
        particles=_empty_group(PARTICLES),
        tof=_empty_group(TOF),
        trd=_empty_group(TRD),
    )


# --- O2's own writer: std::vector<char> + Size branches, single or per sector ------------------
@dataclass(frozen=True)
class O2Plan:
    """How the clusters of a ``tpcrec`` tree are stored.

    Attributes:
        mode: :data:`O2_MODE_ARRAY`, :data:`O2_MODE_SINGLE` or :data:`O2_MODE_SECTORS`.
        data: sector (``None`` for the single branch) -> ``(data branch, Size branch)``; in
            ``array`` mode ``{None: ("TPCClusterNative", None)}``. Sectors ascending.
        mc: sector (or ``None``) -> MC-truth branch name (empty without MC truth).
    """

    mode: str
    data: dict[int | None, tuple[str, str | None]]
    mc: dict[int | None, str] = field(default_factory=dict)

    @property
    def array_names(self) -> list[str]:
        """Data and Size branches, read with their default uproot interpretation."""
        return [n for pair in self.data.values() for n in pair if n is not None]


def _is_object_branch(branch) -> bool:
    """True for a ``std::vector<char>`` object branch (O2), false for a ``UChar_t x[n]`` leaf."""
    return "vector" in str(branch.typename)


def plan_o2_layout(tree, path: str) -> O2Plan:
    """Find the cluster branches of O2's ``tpcrec`` tree; one-line :class:`BadInputError` if bad.

    The single branch wins when present (as in O2); otherwise the sectors 0-35 present. A data
    branch of O2's writer without its ``Size`` branch, per-sector MC truth for only some of the
    data sectors, or an MC-truth branch that is not an IOMCTruthContainerView, is refused. The
    project's own ``uint8`` array branch (no ``Size`` branch) is the ``array`` variant.
    """
    present = set(tree.keys(recursive=False))

    def size_of(name: str) -> str:
        size = name + O2_SIZE_SUFFIX
        if size not in present:
            raise BadInputError(
                path,
                None,
                f"data branch {name!r} has no {size!r} branch (O2's reader refuses it)",
            )
        return size

    if (
        O2_CLUSTERS_BRANCH in present
        and O2_CLUSTERS_BRANCH + O2_SIZE_SUFFIX not in present
        and not _is_object_branch(tree[O2_CLUSTERS_BRANCH])
    ):  # the project's UChar_t array with its counter: no Size branch needed
        return O2Plan(O2_MODE_ARRAY, {None: (O2_CLUSTERS_BRANCH, None)})
    if O2_CLUSTERS_BRANCH in present:
        mode = O2_MODE_SINGLE
        data = {None: (O2_CLUSTERS_BRANCH, size_of(O2_CLUSTERS_BRANCH))}
    else:
        mode = O2_MODE_SECTORS
        data = {
            s: (name, size_of(name))
            for s in range(N_SECTORS)
            if (name := o2_sector_branch(O2_CLUSTERS_BRANCH, s)) in present
        }
        if not data:
            raise BadInputError(
                path,
                None,
                f"TTree {tree.name!r} lacks branches: {O2_CLUSTERS_BRANCH} (nor "
                f"{O2_CLUSTERS_BRANCH}_<sector> with their {O2_SIZE_SUFFIX} branches)",
            )
    mc = {s: name for s in data if (name := o2_sector_branch(O2_MC_TRUTH_BRANCH, s)) in present}
    if mc and len(mc) != len(data):
        missing = ", ".join(str(s) for s in data if s not in mc)
        raise BadInputError(
            path, None, f"MC truth branches {O2_MC_TRUTH_BRANCH}_<s> missing for sectors {missing}"
        )
    for name in mc.values():
        if not is_view_branch(tree[name]):
            raise BadInputError(
                path,
                None,
                f"MC truth branch {name!r} ({tree[name].typename}) cannot be read as an "
                "IOMCTruthContainerView (members N1, N2, part1-part10)",
            )
    return O2Plan(mode, data, mc)


def _decode_native(name: str, buffer: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(index (36, 152), records)`` of one O2 buffer after the Size check; empty = no clusters."""
    raw = np.asarray(buffer)
    if raw.dtype != np.uint8:
        raw = raw.view(np.uint8)
    if raw.size != size:
        raise TimeframeProblem(
            f"{name}{O2_SIZE_SUFFIX} says {size} bytes but {name} holds {raw.size} bytes"
        )
    if raw.size == 0:  # O2's parseSector: no buffer, no clusters
        return np.zeros(CLUSTER_COUNT_INDEX_SHAPE, np.uint32), np.empty(0, CLUSTER_NATIVE_DTYPE)
    try:
        return decode_o2_buffer(raw)
    except ClusterNativeFormatError as exc:
        raise TimeframeProblem(f"bad {name} buffer: {exc}") from None


def o2_native_timeframe(
    plan: O2Plan,
    buffers: dict[int | None, tuple[np.ndarray, int]],
    mc: dict[int | None, np.ndarray | str] | None,
    entry: int,
) -> tuple[Timeframe, ClusterMCTruth | None]:
    """The timeframe (and its MC truth) of one entry written by O2 (``single``/``sectors``).

    ``buffers`` maps each key of ``plan.data`` to ``(bytes, Size value)``; ``mc`` each key of
    ``plan.mc`` to the flat MC-truth bytes (or a problem string). Per-sector buffers must count
    clusters in their own sector only; they are merged in ascending sector order. Raises
    :class:`TimeframeProblem` naming the branch and the numbers.
    """
    indices, records, truths = [], [], []
    for key, (name, _) in plan.data.items():
        buffer, size = buffers[key]
        index, recs = _decode_native(name, buffer, size)
        if key is not None:
            others = index.sum(axis=1, dtype=np.int64)
            others[key] = 0
            if others.any():
                bad = int(np.flatnonzero(others)[0])
                raise TimeframeProblem(
                    f"{name} counts {int(others[bad])} clusters in sector {bad}, not its own"
                )
        indices.append(index)
        records.append(recs)
        if mc is not None and key in plan.mc:
            flat = mc[key]
            if isinstance(flat, str):
                raise TimeframeProblem(f"{plan.mc[key]}: {flat}")
            try:
                truths.append(decode_flat_mc_truth(flat, recs.size))
            except MCTruthFormatError as exc:
                raise TimeframeProblem(f"{plan.mc[key]}: {exc}") from None
    index = np.sum(indices, axis=0, dtype=np.uint32).reshape(CLUSTER_COUNT_INDEX_SHAPE)
    all_records = records[0] if len(records) == 1 else np.concatenate(records)
    truth = ClusterMCTruth.concatenate(truths) if plan.mc and mc is not None else None
    if truth is None:
        mc_label = np.full(all_records.size, -1, dtype=np.int32)
    else:
        mc_label = truth.mc_label()
    return _clusters_timeframe(index, all_records, mc_label, entry), truth
