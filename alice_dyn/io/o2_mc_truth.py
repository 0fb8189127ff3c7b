"""O2's MC truth of TPC clusters: ``IOMCTruthContainerView`` branches and the flat container.

Layer: I/O. O2 stores the labels of the native clusters in branch ``TPCClusterNativeMCTruth``
(``TPCClusterNativeMCTruth_<s>`` per sector) of class ``o2::dataformats::IOMCTruthContainerView``:
one flat byte buffer cut in ten parts so that ROOT can stream more than 1 GB per entry. Its
members are ``int N1, N2`` and ``const char* part1 .. part10`` (``part1``-``part9`` hold ``N1``
bytes each, ``part10`` holds ``N2``: ``N1 = size // 10``, ``N2 = size - 9 * N1``). ROOT splits
the object branch (O2's ``RootTreeWriter`` uses ``TTree::Branch`` with split level 99), so
the file holds the sub-branches ``N1``, ``N2`` and ``part1``..``part10``; each entry of a
``part`` sub-branch is one flag byte (1 = array present, 0 = none) followed by the bytes.
uproot does not know that such a ``char*`` sub-branch is a counted byte array (it guesses a
string), so :func:`read_view_parts` reads them with an explicit ``uint8`` interpretation that
skips the flag byte, and checks the lengths against ``N1``/``N2``. An unsplit branch (split
level 0) is read through uproot's model of the class, built from the streamer info the file
carries (:func:`read_view`).

The ten parts concatenated are a flattened ``ConstMCTruthContainer<MCCompLabel>``::

    uint8  version = 1, sizeofHeaderElement = 4, sizeofTruthElement = 8, reserved = 0
    uint32 nHeader, nTruth                      (little endian, 12-byte header in all)
    uint32 index[nHeader]                       first label of each cluster
    uint64 label[nTruth]                        MCCompLabel

Cluster ``i`` owns labels ``index[i] .. index[i+1]`` (the last one up to ``nTruth``). An
``MCCompLabel`` packs trackID (bits 0-30), eventID (31-49), sourceID (50-57) and the fake flag
(bit 63); ``0xFFFFFFFFFFFFFFFF`` is "not set" and ``0xFFFFFFFFFFFFFFFE`` is noise.

Mapping to the project's ``mc_label`` (one particle per cluster): the O2 layout carries no
particle table, and O2's trackID is the row of the particle in the kinematics of one event of
one source. So the valid (set, not noise) labels of a timeframe are grouped by
``(sourceID, eventID)`` in ascending order; each group is given a block of
``max(trackID) + 1`` consecutive values, and a label's value is the start of its block plus its
trackID. A cluster's ``mc_label`` is the value of its *first* valid label (fake flag ignored),
``-1`` when it has only noise or no labels. Why this rule and not a dense index over the labels
present: it keeps O2's trackID (``mc_label - block start``, the row in that event's kinematics),
it is one to one for O2's files (blocks do not overlap), and for the files this project writes
(one event per timeframe, trackID = the particle's row: :mod:`alice_dyn.io.o2_writer`) it gives
back the simulation's particle row exactly, also when some particles left no cluster (a dense
index would shift every particle after one without clusters). Should the blocks not fit in
int32 (trackIDs near 2**31), the dense index over the distinct triples is used instead.
The full label list of every cluster stays available as :class:`ClusterMCTruth`
(``particle_keys`` lists the distinct triples).
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np
import uproot

#: bytes of the flat container's header
FLAT_HEADER_BYTES = 12
FLAT_VERSION = 1
HEADER_ELEMENT_BYTES = 4
TRUTH_ELEMENT_BYTES = 8
#: members of IOMCTruthContainerView
VIEW_PARTS = tuple(f"part{i}" for i in range(1, 11))
VIEW_COUNTS = ("N1", "N2")

MC_LABEL_NOT_SET = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
MC_LABEL_NOISE = np.uint64(0xFFFF_FFFF_FFFF_FFFE)
TRACK_BITS, EVENT_BITS, SOURCE_BITS = 31, 19, 8
_MASK_FULL = np.uint64((1 << (TRACK_BITS + EVENT_BITS + SOURCE_BITS)) - 1)

#: one decoded MCCompLabel
LABEL_DTYPE = np.dtype(
    [("track_id", "<i4"), ("event_id", "<i4"), ("source_id", "<i2"), ("fake", "?"), ("noise", "?")]
)
#: a distinct MC particle of a timeframe
PARTICLE_KEY_DTYPE = np.dtype([("source_id", "<i2"), ("event_id", "<i4"), ("track_id", "<i4")])


class MCTruthFormatError(ValueError):
    """A flat MC-truth buffer does not have O2's layout (one-line message with the numbers)."""


@dataclass(frozen=True)
class ClusterMCTruth:
    """All MC labels of the clusters of one timeframe, in the timeframe's cluster order.

    Attributes:
        offsets: ``(n_clusters + 1,)`` int64; cluster ``i`` owns ``raw[offsets[i]:offsets[i+1]]``.
        raw: ``(n_labels,)`` uint64, the MCCompLabel words as stored.
    """

    offsets: np.ndarray
    raw: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        """Labels per cluster, ``(n_clusters,)`` int64."""
        return np.diff(self.offsets)

    @property
    def labels(self) -> np.ndarray:
        """Decoded labels ``(n_labels,)`` of :data:`LABEL_DTYPE` (not-set words: all fields -1)."""
        return decode_labels(self.raw)

    @property
    def valid(self) -> np.ndarray:
        """``(n_labels,)`` bool: the label names a particle (set and not noise)."""
        return (self.raw != MC_LABEL_NOT_SET) & (self.raw != MC_LABEL_NOISE)

    def particle_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(particle (n_labels,) int32, keys (n_particles,) PARTICLE_KEY_DTYPE)``.

        ``particle`` is the dense index of each label's ``(sourceID, eventID, trackID)`` among
        the distinct ones of the timeframe, in ascending order of that triple; -1 for noise and
        not-set labels. ``keys`` are those triples.
        """
        valid = self.valid
        full = self.raw & _MASK_FULL
        unique, inverse = np.unique(full[valid], return_inverse=True)
        particle = np.full(self.raw.size, -1, dtype=np.int32)
        particle[valid] = inverse.astype(np.int32)
        keys = np.empty(unique.size, PARTICLE_KEY_DTYPE)
        dec = decode_labels(unique)
        for name in PARTICLE_KEY_DTYPE.names:
            keys[name] = dec[name]
        return particle, keys

    @property
    def particle_keys(self) -> np.ndarray:
        """``(n_particles,)`` :data:`PARTICLE_KEY_DTYPE`: what each ``mc_label`` value means."""
        return self.particle_index()[1]

    def block_index(self) -> np.ndarray:
        """``(n_labels,)`` int32: block start of each label's (source, event) plus its trackID.

        See the module docstring; -1 for noise and not-set labels. Falls back to
        :meth:`particle_index` when the blocks do not fit in int32.
        """
        valid = self.valid
        out = np.full(self.raw.size, -1, dtype=np.int32)
        if not valid.any():
            return out
        words = self.raw[valid]
        track = (words & np.uint64((1 << TRACK_BITS) - 1)).astype(np.int64)
        event = ((words & _MASK_FULL) >> np.uint64(TRACK_BITS)).astype(np.int64)
        events, inverse = np.unique(event, return_inverse=True)
        sizes = np.zeros(events.size, np.int64)
        np.maximum.at(sizes, inverse, track + 1)
        start = np.zeros(events.size, np.int64)
        np.cumsum(sizes[:-1], out=start[1:])
        if int(start[-1] + sizes[-1]) > np.iinfo(np.int32).max:
            return self.particle_index()[0]
        out[valid] = (start[inverse] + track).astype(np.int32)
        return out

    def mc_label(self) -> np.ndarray:
        """``(n_clusters,)`` int32: :meth:`block_index` of each cluster's first valid label."""
        particle = self.block_index()
        n = len(self)
        out = np.full(n, -1, dtype=np.int32)
        if particle.size == 0:
            return out
        cluster = np.repeat(np.arange(n), self.counts)
        has = particle >= 0
        # first valid label of each cluster: labels are grouped by cluster in order
        clusters_with, first = np.unique(cluster[has], return_index=True)
        out[clusters_with] = particle[has][first]
        return out

    def to_awkward(self) -> ak.Array:
        """Jagged ``(n_clusters, var)`` array of label records (fields of :data:`LABEL_DTYPE`)."""
        dec = self.labels
        content = ak.zip({name: dec[name] for name in LABEL_DTYPE.names})
        return ak.unflatten(content, self.counts)

    @classmethod
    def empty(cls, n_clusters: int = 0) -> ClusterMCTruth:
        """``n_clusters`` clusters without labels."""
        return cls(np.zeros(n_clusters + 1, np.int64), np.empty(0, np.uint64))

    @classmethod
    def concatenate(cls, parts: list[ClusterMCTruth]) -> ClusterMCTruth:
        """The clusters of ``parts`` one after the other (e.g. sectors in ascending order)."""
        if not parts:
            return cls.empty()
        counts = np.concatenate([p.counts for p in parts])
        offsets = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        raw = np.concatenate([p.raw[p.offsets[0] : p.offsets[-1]] for p in parts])
        return cls(offsets, raw)


def decode_labels(raw: np.ndarray) -> np.ndarray:
    """Unpack MCCompLabel words ``(n,)`` uint64 into :data:`LABEL_DTYPE` records."""
    raw = np.asarray(raw, dtype=np.uint64)
    out = np.empty(raw.size, LABEL_DTYPE)
    out["track_id"] = (raw & np.uint64((1 << TRACK_BITS) - 1)).astype(np.int32)
    out["event_id"] = ((raw >> np.uint64(TRACK_BITS)) & np.uint64((1 << EVENT_BITS) - 1)).astype(
        np.int32
    )
    out["source_id"] = (
        (raw >> np.uint64(TRACK_BITS + EVENT_BITS)) & np.uint64((1 << SOURCE_BITS) - 1)
    ).astype(np.int16)
    out["fake"] = (raw >> np.uint64(63)).astype(bool)
    out["noise"] = raw == MC_LABEL_NOISE
    unset = raw == MC_LABEL_NOT_SET
    for name in ("track_id", "event_id", "source_id"):
        out[name][unset] = -1
    out["fake"][unset] = False
    return out


def encode_labels(
    track_id: np.ndarray,
    event_id: np.ndarray,
    source_id: np.ndarray,
    fake: np.ndarray | bool = False,
) -> np.ndarray:
    """Pack ``(n,)`` fields into MCCompLabel words (uint64), as ``MCCompLabel::set`` does."""
    t = np.asarray(track_id, dtype=np.int64).astype(np.uint64) & np.uint64((1 << TRACK_BITS) - 1)
    e = np.asarray(event_id, dtype=np.int64).astype(np.uint64) & np.uint64((1 << EVENT_BITS) - 1)
    s = np.asarray(source_id, dtype=np.int64).astype(np.uint64) & np.uint64((1 << SOURCE_BITS) - 1)
    word = t | (e << np.uint64(TRACK_BITS)) | (s << np.uint64(TRACK_BITS + EVENT_BITS))
    return word | (np.asarray(fake, dtype=np.uint64) << np.uint64(63))


def flatten_mc_truth(offsets: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The flat container bytes ``(12 + 4 n + 8 m,)`` uint8 of ``n`` clusters and ``m`` labels."""
    offsets = np.asarray(offsets, dtype=np.int64)
    raw = np.asarray(raw, dtype="<u8")
    n = offsets.size - 1
    head = np.array([FLAT_VERSION, HEADER_ELEMENT_BYTES, TRUTH_ELEMENT_BYTES, 0], np.uint8)
    sizes = np.array([n, raw.size], "<u4")
    index = (offsets[:-1] - offsets[0]).astype("<u4")
    return np.concatenate(
        [head, sizes.view(np.uint8), index.view(np.uint8), raw.view(np.uint8)]
    ).astype(np.uint8)


def decode_flat_mc_truth(buffer: np.ndarray | bytes, n_clusters: int) -> ClusterMCTruth:
    """Decode a flattened ``ConstMCTruthContainer<MCCompLabel>`` for ``n_clusters`` clusters.

    An empty buffer means "no labels" and is accepted only for ``n_clusters == 0``. Raises
    :class:`MCTruthFormatError` for a wrong version or element size, a buffer shorter than its
    header says, ``nHeader != n_clusters`` or label indices out of range or decreasing.
    Trailing bytes after the labels are ignored, as O2's ``restore_from`` does.
    """
    raw = np.frombuffer(buffer, np.uint8) if isinstance(buffer, bytes) else np.asarray(buffer)
    raw = np.ascontiguousarray(raw).view(np.uint8).ravel()
    if raw.size == 0:
        if n_clusters:
            raise MCTruthFormatError(f"empty MC truth for {n_clusters} clusters")
        return ClusterMCTruth.empty()
    if raw.size < FLAT_HEADER_BYTES:
        raise MCTruthFormatError(
            f"MC truth of {raw.size} bytes is shorter than its {FLAT_HEADER_BYTES}-byte header"
        )
    version, size_head, size_truth = (int(x) for x in raw[:3])
    if (version, size_head, size_truth) != (
        FLAT_VERSION,
        HEADER_ELEMENT_BYTES,
        TRUTH_ELEMENT_BYTES,
    ):
        raise MCTruthFormatError(
            f"MC truth header says version {version}, element sizes {size_head}/{size_truth} "
            f"bytes; expected version {FLAT_VERSION}, {HEADER_ELEMENT_BYTES}/{TRUTH_ELEMENT_BYTES}"
        )
    n_head, n_truth = (int(x) for x in raw[4:12].view("<u4"))
    need = FLAT_HEADER_BYTES + HEADER_ELEMENT_BYTES * n_head + TRUTH_ELEMENT_BYTES * n_truth
    if raw.size < need:
        raise MCTruthFormatError(
            f"MC truth of {raw.size} bytes but its header ({n_head} clusters, {n_truth} labels) "
            f"needs {need}"
        )
    if n_head != n_clusters:
        raise MCTruthFormatError(
            f"MC truth indexes {n_head} clusters but the timeframe has {n_clusters}"
        )
    stop = FLAT_HEADER_BYTES + HEADER_ELEMENT_BYTES * n_head
    index = raw[FLAT_HEADER_BYTES:stop].view("<u4").astype(np.int64)
    labels = raw[stop:need].view("<u8")
    offsets = np.append(index, n_truth)
    if n_head and (index.max() > n_truth or np.any(np.diff(offsets) < 0)):
        bad = int(np.flatnonzero((offsets[1:] < offsets[:-1]) | (index > n_truth))[0])
        raise MCTruthFormatError(
            f"MC truth label index of cluster {bad} ({int(index[bad])}) is out of range or "
            f"decreasing ({n_truth} labels)"
        )
    if n_head == 0:
        offsets = np.zeros(1, np.int64)
    return ClusterMCTruth(offsets, labels.astype(np.uint64))


def view_subbranches(branch) -> dict[str, object] | None:
    """The ``N1``, ``N2``, ``part1``..``part10`` sub-branches of a split view branch, or None."""
    subs = {b.name.rsplit(".", 1)[-1].rsplit("/", 1)[-1]: b for b in branch.branches}
    if all(name in subs for name in (*VIEW_COUNTS, *VIEW_PARTS)):
        return {name: subs[name] for name in (*VIEW_COUNTS, *VIEW_PARTS)}
    return None


#: a part's entry: one flag byte, then the bytes
_PART_INTERPRETATION = uproot.AsJagged(uproot.AsDtype("u1"), header_bytes=1)


def is_view_branch(branch) -> bool:
    """True if ``branch`` can be read as an IOMCTruthContainerView (split or not)."""
    return view_subbranches(branch) is not None or isinstance(
        branch.interpretation, uproot.AsObjects
    )


def read_view(branch, start: int, stop: int) -> list[np.ndarray | str]:
    """Flat MC-truth buffers of entries ``[start, stop)`` of a view branch, split or not.

    A split branch is read part by part (:func:`read_view_parts`); an unsplit one (split level
    0) through uproot's model built from the file's streamer info. One ``uint8`` array per
    entry, or a one-line problem (str).
    """
    subs = view_subbranches(branch)
    if subs is not None:
        return read_view_parts(subs, start, stop)
    out: list[np.ndarray | str] = []
    for obj in branch.array(entry_start=start, entry_stop=stop, library="np"):
        n1, n2 = int(obj.member("N1")), int(obj.member("N2"))
        pieces = [np.asarray(obj.member(p)).view(np.uint8).ravel() for p in VIEW_PARTS]
        out.append(_join(pieces, n1, n2))
    return out


def _join(pieces: list[np.ndarray], n1: int, n2: int) -> np.ndarray | str:
    """The ten parts as one buffer, or the problem if their lengths disagree with N1/N2."""
    lengths = [p.size for p in pieces]
    if lengths != [n1] * 9 + [n2]:
        return f"part lengths {lengths} disagree with N1 = {n1}, N2 = {n2}"
    return np.concatenate(pieces)


def read_view_parts(subbranches: dict, start: int, stop: int) -> list[np.ndarray | str]:
    """Flat MC-truth buffers of entries ``[start, stop)`` of one split view branch.

    Returns one ``uint8`` array per entry, or a one-line problem (str) when a part's length
    disagrees with ``N1``/``N2``.
    """
    counts = {
        name: np.asarray(subbranches[name].array(entry_start=start, entry_stop=stop, library="np"))
        for name in VIEW_COUNTS
    }
    parts = []
    for name in VIEW_PARTS:
        arr = subbranches[name].array(
            _PART_INTERPRETATION, entry_start=start, entry_stop=stop, library="ak"
        )
        parts.append(_content_offsets(arr))
    out: list[np.ndarray | str] = []
    for i in range(stop - start):
        n1, n2 = int(counts["N1"][i]), int(counts["N2"][i])
        pieces = [content[offsets[i] : offsets[i + 1]] for content, offsets in parts]
        out.append(_join(pieces, n1, n2))
    return out


def _content_offsets(array: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Flat ``uint8`` content and ``(n + 1,)`` offsets of a jagged array of bytes."""
    counts = ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
    offsets = np.zeros(counts.size + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return ak.to_numpy(ak.flatten(array, axis=1)).astype(np.uint8, copy=False), offsets
