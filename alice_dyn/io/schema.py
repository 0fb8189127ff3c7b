"""The on-disk schema of alice_dyn timeframe files (one TTree entry per timeframe).

Layer: I/O. This module only *describes* the layout — names, dtypes, units — and renders that
description as Markdown (:data:`SCHEMA_DOC`, copied to ``docs/io_schema.md``). The writer, the
reader and the inspector all take their branch lists from here, so the documentation cannot drift
from the files.

Two layouts are understood:

* ``alice_dyn``: TTree ``timeframes``, one entry per timeframe; per-timeframe scalars plus five
  groups of jagged branches (clusters ``cl_*``, collisions ``col_*``, MC particles ``mc_*``, TOF
  hits ``tof_*``, TRD tracklets ``trd_*``), the branches of a group sharing one counter
  (``ncl``, ``ncol``, ``nmc``, ``ntof``, ``ntrd``). File-level metadata (schema version, string
  tables) is a JSON ``TObjString`` named ``metadata``.
* ``o2``: O2's ``tpc-native-clusters.root`` layout, TTree ``tpcrec`` whose branch
  ``TPCClusterNative`` (or ``TPCClusterNative_<s>`` per sector, with ``...Size`` branches as
  O2 writes them) holds each timeframe's raw ClusterNative buffer, and
  ``TPCClusterNativeMCTruth`` O2's MC labels (see :mod:`alice_dyn.io.o2_layout`,
  :mod:`alice_dyn.io.o2_mc_truth` and the writer :mod:`alice_dyn.io.o2_writer`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from alice_dyn.tpc.cluster_native import CLUSTER_COUNT_INDEX_BYTES, CLUSTER_NATIVE_DTYPE

#: version of the ``alice_dyn`` layout written by this package; readers refuse newer versions
SCHEMA_VERSION = 1
#: TTree of the alice_dyn layout
TREE_NAME = "timeframes"
#: JSON TObjString with file-level metadata
METADATA_KEY = "metadata"
#: value of ``metadata["format"]``
FORMAT_NAME = "alice_dyn.timeframes"
#: TTree title (ROOT shows it in ``TTree::Print``)
TREE_TITLE = f"alice_dyn timeframes, schema v{SCHEMA_VERSION}"

LAYOUT_ALICE_DYN = "alice_dyn"
LAYOUT_O2 = "o2"

# O2 layout (tpc-native-clusters.root)
O2_TREE_NAME = "tpcrec"
O2_CLUSTERS_BRANCH = "TPCClusterNative"
O2_LABELS_BRANCH = "TPCClusterNativeMCLabels"
#: O2's byte-count branch of a binary branch ``X`` is ``X + O2_SIZE_SUFFIX`` (leaf ``/i``)
O2_SIZE_SUFFIX = "Size"
#: O2's MC truth branch (``_<s>`` per sector), class ``o2::dataformats::IOMCTruthContainerView``
O2_MC_TRUTH_BRANCH = "TPCClusterNativeMCTruth"
O2_MC_TRUTH_CLASS = "o2::dataformats::IOMCTruthContainerView"
#: the project's former uint8-array O2 variant (read only for old files): CRC-32 of buffer then
#: labels; the O2 layout as written now has no checksum branch, as O2's writer has none
O2_CHECKSUM_BRANCH = "TPCClusterNativeCRC32"


def o2_sector_branch(base: str, sector: int | None) -> str:
    """O2's branch name for ``sector`` (``base_<s>``), or ``base`` itself for ``None``."""
    return base if sector is None else f"{base}_{sector}"


@dataclass(frozen=True)
class Column:
    """One branch: ``name`` (field suffix), ``attr`` (attribute in the data model), dtype, doc."""

    name: str
    attr: str
    dtype: np.dtype
    doc: str


@dataclass(frozen=True)
class Group:
    """Jagged branches ``<prefix>_<column>`` sharing the counter ``n<prefix>``.

    ``container`` is the :class:`~alice_dyn.event.timeframe.Timeframe` attribute the group maps
    to. For clusters, columns whose ``attr`` starts with ``records.`` are fields of the
    ClusterNative record array.
    """

    prefix: str
    container: str
    columns: tuple[Column, ...]
    doc: str

    @property
    def counter(self) -> str:
        return f"n{self.prefix}"

    def branch(self, column: Column) -> str:
        return f"{self.prefix}_{column.name}"

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(self.branch(c) for c in self.columns)


def _c(name: str, attr: str, dtype: str | np.dtype, doc: str) -> Column:
    return Column(name, attr, np.dtype(dtype), doc)


#: per-timeframe scalars: branch name -> Column (``attr`` is the TimeframeMeta field it feeds)
SCALARS: tuple[Column, ...] = (
    _c("tf_id", "tf_id", "u4", "timeframe id (O2's TF counter)"),
    _c("first_orbit", "first_orbit", "u4", "first LHC orbit of the timeframe"),
    _c("run_number", "run_number", "i4", "run number"),
    _c("bfield_t", "bfield_t", "f8", "solenoid field, T"),
    _c("system_id", "system", "u1", "index into metadata `systems` (e.g. pp, pbpb)"),
    _c("run_period_id", "run_period", "u2", "index into metadata `run_periods`"),
)
#: per-timeframe CRC-32 (zlib) of all data branches; written always, verified when present
CHECKSUM = _c(
    "checksum",
    "",
    "u4",
    "CRC-32 (zlib) of the entry's little-endian bytes of all branches above and below, "
    "in table order (counters excluded)",
)
#: scalars stored as an index into a string table of the file metadata
STRING_SCALARS = {"system_id": "systems", "run_period_id": "run_periods"}

_CN = CLUSTER_NATIVE_DTYPE
CLUSTERS = Group(
    "cl",
    "clusters",
    (
        _c(
            "timeFlagsPacked",
            "records.timeFlagsPacked",
            _CN["timeFlagsPacked"],
            "time bin x64 (low 24 bits), flags (high 8)",
        ),
        _c("padPacked", "records.padPacked", _CN["padPacked"], "pad x64"),
        _c("sigmaTimePacked", "records.sigmaTimePacked", _CN["sigmaTimePacked"], "time bins x32"),
        _c("sigmaPadPacked", "records.sigmaPadPacked", _CN["sigmaPadPacked"], "pads x32"),
        _c("qMax", "records.qMax", _CN["qMax"], "ADC"),
        _c("qTot", "records.qTot", _CN["qTot"], "ADC"),
        _c("sector", "sector", "u1", "0-35 (A side 0-17, C side 18-35)"),
        _c("row", "row", "u1", "pad row 0-151"),
        _c("mcLabel", "mc_label", "i4", "index into `mc_*`, -1 = noise"),
    ),
    "TPC clusters (O2 ClusterNative fields), ordered by (sector, row)",
)
COLLISIONS = Group(
    "col",
    "collisions",
    (
        _c("time_ns", "time_ns", "f8", "collision time since the TF start, ns"),
        _c("vx_cm", "vx_cm", "f4", "primary vertex x, cm"),
        _c("vy_cm", "vy_cm", "f4", "primary vertex y, cm"),
        _c("vz_cm", "vz_cm", "f4", "primary vertex z, cm"),
        _c("multiplicity", "multiplicity", "i4", "charged primaries generated"),
        _c("t0_meas_ps", "t0_meas_ps", "f8", "measured event time since the TF start, ps"),
        _c("t0_resolution_ps", "t0_resolution_ps", "f4", "its resolution, ps"),
    ),
    "collisions; `ncol` is the number of collisions",
)
PARTICLES = Group(
    "mc",
    "particles",
    (
        _c("pdg", "pdg", "i4", "PDG code"),
        _c("charge", "charge", "i1", "charge, e"),
        _c("collision", "collision", "i4", "index into `col_*`"),
        _c("px_gev", "px_gev", "f4", "momentum at the vertex, GeV/c"),
        _c("py_gev", "py_gev", "f4", "GeV/c"),
        _c("pz_gev", "pz_gev", "f4", "GeV/c"),
        _c("vx_cm", "vx_cm", "f4", "production vertex, cm"),
        _c("vy_cm", "vy_cm", "f4", "cm"),
        _c("vz_cm", "vz_cm", "f4", "cm"),
        _c("reached", "reached", "u1", "REACHED_* bits (TPC 1, TRD 2, TOF 4, looper 8)"),
        _c("n_tpc_clusters", "n_tpc_clusters", "i2", "clusters left in the TPC"),
    ),
    "MC truth of the generated charged particles",
)
TOF = Group(
    "tof",
    "tof",
    (
        _c("x_cm", "x_cm", "f4", "global position of the hit pad, cm"),
        _c("y_cm", "y_cm", "f4", "cm"),
        _c("z_cm", "z_cm", "f4", "cm"),
        _c("time_ps", "time_ps", "f8", "hit time since the TF start, ps"),
        _c("label", "label", "i4", "index into `mc_*`, -1 = noise"),
        _c("mc_length_cm", "mc_length_cm", "f4", "true path length from the vertex, cm"),
    ),
    "TOF hits",
)
TRD = Group(
    "trd",
    "trd",
    (
        _c("layer", "layer", "u1", "layer 0-5"),
        _c("x_cm", "x_cm", "f4", "global position, cm"),
        _c("y_cm", "y_cm", "f4", "cm"),
        _c("z_cm", "z_cm", "f4", "cm"),
        _c("q", "q", "f4", "summed charge (MIP ~ 1)"),
        _c("label", "label", "i4", "index into `mc_*`, -1 = noise"),
    ),
    "TRD tracklets",
)
GROUPS: tuple[Group, ...] = (CLUSTERS, COLLISIONS, PARTICLES, TOF, TRD)


def crc32_of(arrays: Iterable[np.ndarray]) -> int:
    """CRC-32 (zlib) of the little-endian bytes of ``arrays``, concatenated in order."""
    crc = 0
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        crc = zlib.crc32(a, crc)
    return crc


#: meta values given to timeframes read from the O2 layout, which stores clusters only
O2_DEFAULT_META = {
    "first_orbit": 0,
    "run_number": 0,
    "run_period": "",
    "bfield_t": 0.5,
    "system": "",
}


def _type_name(dtype: np.dtype) -> str:
    return np.dtype(dtype).name


def _render_doc() -> str:
    """The Markdown of :data:`SCHEMA_DOC`: title, the two layouts, compression."""
    return "\n".join([*_doc_alice_dyn(), *_doc_o2(), *_doc_compression()])


def _doc_alice_dyn() -> list[str]:
    """Title and the ``alice_dyn`` layout section (one line a list item)."""
    lines = [
        "# alice_dyn ROOT file layout",
        "",
        f"Schema version {SCHEMA_VERSION}. Files are written with uproot as TTrees (never "
        "RNTuple) and read back by uproot and by ROOT itself (TTree, RDataFrame).",
        "",
        "## `alice_dyn` layout",
        "",
        f"TTree `{TREE_NAME}`, **one entry per timeframe**. The branches of a group are jagged "
        "arrays sharing one counter branch (`int32`, the group's length in that timeframe), "
        "so in ROOT `cl_row` is `UChar_t cl_row[ncl]` and `RDataFrame` sees `RVec`s.",
        "",
        "| branch | type | meaning |",
        "|---|---|---|",
    ]
    for c in (*SCALARS, CHECKSUM):
        lines.append(f"| `{c.name}` | {_type_name(c.dtype)} | {c.doc} |")
    for g in GROUPS:
        lines.append(f"| `{g.counter}` | int32 | counter: {g.doc} |")
        for c in g.columns:
            lines.append(f"| `{g.branch(c)}` | {_type_name(c.dtype)}[`{g.counter}`] | {c.doc} |")
    lines += [
        "",
        "Indices are row numbers within the same timeframe: `cl_mcLabel`, `tof_label` and "
        "`trd_label` index the `mc_*` rows (-1 = noise), `mc_collision` indexes the `col_*` rows.",
        "",
        f"File metadata: a `TObjString` named `{METADATA_KEY}` holding JSON: `format` "
        f'(`"{FORMAT_NAME}"`), `schema_version`, `systems` and `run_periods` (the string '
        "tables that `system_id` and `run_period_id` index), `creator`, `compression`. In ROOT: "
        f'`f.Get("{METADATA_KEY}").GetString()`.',
        "",
        "Every timeframe is validated on reading: sector < 36, row < 152, pad within the row's "
        "pads (pad <= n_pads), clusters ordered by (sector, row), labels in [-1, n_mc), "
        "`mc_collision` in [0, ncol), TRD layer <= 5, all floats finite, string ids within the "
        "tables. The `checksum` catches corruption that decompression does not (ROOT stores "
        "baskets that do not compress as raw bytes, and ZSTD frames carry no checksum); it is "
        "optional on reading, for files written by other tools.",
        "",
    ]
    return lines


def _doc_o2() -> list[str]:
    """The ``o2`` layout section: the three ``tpcrec`` variants and the MC truth."""
    return [
        "## `o2` layout (O2's `tpc-native-clusters.root`)",
        "",
        f"TTree `{O2_TREE_NAME}`, one entry per timeframe. The cluster buffer is always "
        f"`ClusterCountIndex` (uint32 [36][152], {CLUSTER_COUNT_INDEX_BYTES} bytes, little "
        "endian) followed by the 12-byte ClusterNative records in (sector, row) order. Three "
        "variants are read (detected from the branches): O2's single-branch and per-sector "
        "modes, and the project's former uint8-array variant.",
        "",
        "**As O2 writes it** (`RootTreeWriter` binary branches, `ClusterNativeHelper::Reader`). "
        'This is also what `simulate --layout o2` and `TimeframeWriter(path, layout="o2")` '
        "write (`data_samples/pp_sample_o2.root`), with PyROOT (optional extra `root`): the "
        "single branch by default, as O2's reco workflow writes it behind the GPU/CA clusterer, "
        "all 36 per-sector branches with `--o2-branches sectors`; MC truth included, nothing "
        "else in the tree (no checksum branch: O2 has none). Compression as set, mapped to "
        "ROOT's (`zstd:5` is what O2 uses).",
        "",
        "**As O2 writes it** (`RootTreeWriter` binary branches, `ClusterNativeHelper::Reader`):",
        "",
        "| branch | type | meaning |",
        "|---|---|---|",
        f"| `{O2_CLUSTERS_BRANCH}` | `std::vector<char>` | single-branch mode: the cluster "
        "buffer of all sectors |",
        f"| `{O2_CLUSTERS_BRANCH}{O2_SIZE_SUFFIX}` | uint32 (leaf `/i`) | its byte count; a "
        "mismatch is a bad timeframe naming both numbers |",
        f"| `{O2_CLUSTERS_BRANCH}_<s>`, `{O2_CLUSTERS_BRANCH}_<s>{O2_SIZE_SUFFIX}` | "
        "`std::vector<char>`, uint32 | per-sector mode (no single branch), for the sectors "
        "present: each buffer has a full index in which only sector s counts clusters; merged "
        "in ascending sector order; an empty buffer means no clusters |",
        f"| `{O2_MC_TRUTH_BRANCH}` (`_<s>`) | `{O2_MC_TRUTH_CLASS}` | MC truth, optional: "
        "members `N1`, `N2` (int) and `part1`..`part10` (`char*`, `[N1]` x9 and `[N2]`; "
        "on disk a flag byte then the bytes), split into sub-branches as O2 writes it (split "
        "level 99) or unsplit; the parts concatenated are a flattened "
        "`ConstMCTruthContainer<MCCompLabel>`: u8 version 1, u8 4, u8 8, u8 0, u32 nHeader, "
        "u32 nTruth, nHeader x u32 first label of each cluster, nTruth x u64 MCCompLabel "
        "(trackID bits 0-30, eventID 31-49, sourceID 50-57, fake bit 63; "
        "0xFFFFFFFFFFFFFFFE = noise, all ones = not set). nHeader must equal the clusters of "
        "the buffer (of sector s per sector) |",
        "",
        "As in O2's reader, a data branch without its Size branch is refused, and the single "
        "branch wins over per-sector ones. `mc_label` of a cluster read from O2's MC truth: the "
        "valid labels (neither noise nor unset) of a timeframe are grouped by (sourceID, "
        "eventID) in ascending order, each group gets a block of max(trackID) + 1 values, and "
        "the cluster's first valid label gives block start + trackID (-1 if none). The "
        "project's writer labels a particle sourceID 0, eventID 0, trackID = its row among the "
        "timeframe's particles (a noise cluster: the noise label), one label per cluster, so "
        "reading gives back the simulation's particle rows. The full label lists come from "
        "`TimeframeReader.iter_with_mc_truth()` or `read_o2_mc_truth(path)` "
        "(`ClusterMCTruth`: offsets + raw words, `labels`, `to_awkward()`, `particle_keys`).",
        "",
        "**The project's former variant** (files written before; still read; "
        '`TimeframeWriter(..., layout="o2", o2_branches="array")` writes it with uproot):',
        "",
        "| branch | type | meaning |",
        "|---|---|---|",
        f"| `{O2_CLUSTERS_BRANCH}` | uint8[`n{O2_CLUSTERS_BRANCH}`] | the cluster buffer |",
        f"| `{O2_LABELS_BRANCH}` | int32[`n{O2_LABELS_BRANCH}`] | MC particle index per "
        "cluster, same order (-1 = noise); optional on reading, missing = all -1 |",
        f"| `{O2_CHECKSUM_BRANCH}` | uint32 | CRC-32 (zlib) of the `{O2_CLUSTERS_BRANCH}` bytes "
        "followed by the label bytes; optional on reading, verified when present |",
        "",
        "Only clusters exist in this layout. Timeframes read from it have empty collisions, "
        "particles, TOF and TRD; `tf_id` is the entry index and the other meta values are "
        "defaults: " + ", ".join(f"`{k}` = {v!r}" for k, v in O2_DEFAULT_META.items()) + ".",
        "",
    ]


def _doc_compression() -> list[str]:
    """The compression section (measured by ``benchmarks/bench_io.py``)."""
    return [
        "## Compression",
        "",
        "Default LZ4 level 1, chosen for read speed. `benchmarks/bench_io.py` (20 synthetic "
        "Pb-Pb-sized timeframes, 5.0 M clusters, 2-core AMD EPYC, files in the page cache, "
        "best of 5):",
        "",
        "| codec | write s | size MB | bytes/cluster | uproot read, M clusters/s | "
        "TimeframeReader, M clusters/s |",
        "|---|---|---|---|---|---|",
        "| ZLIB(1) | 1.65 | 49.9 | 10.0 | 11.3 (1.0x) | 10.3 (1.0x) |",
        "| LZ4(1) | 0.41 | 67.0 | 13.5 | 42.1 (3.7x) | 28.5 (2.8x) |",
        "| ZSTD(1) | 0.42 | 49.7 | 10.0 | 31.8 (2.8x) | 21.0 (2.0x) |",
        "| none | 0.45 | 96.6 | 19.4 | 31.2 (2.8x) | 24.0 (2.3x) |",
        "",
        "LZ4(1) reads fastest at 1.34x the size of ZLIB(1); ZSTD(1) is the choice when size "
        "matters (ZLIB's size, 2.8x its read speed): `TimeframeWriter(path, "
        'compression="zstd:1")`. The reader figure includes building the timeframes, the '
        "checksum and the validation.",
        "",
    ]


#: the schema as Markdown (also in ``docs/io_schema.md``)
SCHEMA_DOC: str = _render_doc()
