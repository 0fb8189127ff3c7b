"""Write O2's ``tpc-native-clusters.root`` exactly as O2's ``RootTreeWriter`` does (needs ROOT).

Layer: I/O. What O2 writes (``Detectors/TPC/workflow/src/RecoWorkflow.cxx``, the
``tpc-native-cluster-writer`` spec built with ``MakeRootTreeWriterSpec``; ``RootTreeWriter.h``):
TTree ``tpcrec``, one entry per timeframe, with

* ``TPCClusterNative``: the cluster buffer (``ClusterCountIndex`` ``uint32 [36][152]`` then the
  12-byte ClusterNative records in (sector, row) order) as a ``std::vector<char>`` object branch
  (a ``const char*`` binary branch of ``RootTreeWriter``), plus ``TPCClusterNativeSize`` (leaf
  ``/i``) holding its byte count;
* ``TPCClusterNativeMCTruth``: class ``o2::dataformats::IOMCTruthContainerView``, the flattened
  ``ConstMCTruthContainer<MCCompLabel>`` cut in ten parts (``fillLabels`` adopts the label
  buffer into the view and fills the branch; ``TTree::Branch`` default split level 99).

O2 writes that **single branch** when the clusters come from the GPU (CA) clusterer or from
decompression (``singleBranch = (caClusterer || decompressTPC) && !SendClustersPerSector``),
which is how Run 3 reconstruction produces them; that is the default here (``mode="single"``).
Otherwise O2 writes one branch per configured sector, ``TPCClusterNative_<s>`` +
``TPCClusterNative_<s>Size`` and ``TPCClusterNativeMCTruth_<s>``, each buffer with a full
``[36][152]`` index in which only sector ``s`` counts clusters: ``mode="sectors"`` writes that
for all 36 sectors. Nothing else goes into the tree: O2 has no checksum branch, so the project's
CRC-32 is not written (integrity rests on the ``Size`` branch, the index-versus-size check of
the reader, and ROOT's own basket checksums of the compressed payload).

MC labels (one per cluster, from the simulation): the project's ``mc_label`` is the row of the
particle in the timeframe's particle table, which plays the role of O2's kinematics of *one*
MC event. So a particle's ``MCCompLabel`` is ``trackID = mc_label`` (its row among the
timeframe's particles), ``eventID = 0``, ``sourceID = 0``, fake flag off; a noise cluster
(``mc_label == -1``) gets O2's noise label ``0xFFFFFFFFFFFFFFFE``. Every cluster carries exactly
one label. The collision of a particle is not in its label (O2's layout has no collision or
particle table; it is in the alice_dyn layout's ``particles.collision``). Why not
``eventID = collision``: the reader would need the particle count of every collision to turn
``(event, track)`` back into a row, which the file does not carry; with one event per timeframe
the reader's per-event decoding (:meth:`~alice_dyn.io.o2_mc_truth.ClusterMCTruth.mc_label`)
gives back the simulation's row exactly.

ROOT is an optional dependency (``pip install 'alice-dyn[root]'``); without it
:func:`require_root` raises :class:`RootMissingError` (a one-line ``UsageError``). The view class
is declared to cling with O2's members when no dictionary knows it (O2's
``IOMCTruthContainerView.h``: ``int N1, N2; const char* part1..part10 //[N1] .. //[N2]``, class
version 1).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.framework.errors import UsageError
from alice_dyn.io.o2_layout import o2_entry
from alice_dyn.io.o2_mc_truth import MC_LABEL_NOISE, encode_labels, flatten_mc_truth
from alice_dyn.io.schema import (
    O2_CLUSTERS_BRANCH,
    O2_MC_TRUTH_BRANCH,
    O2_MC_TRUTH_CLASS,
    O2_SIZE_SUFFIX,
    O2_TREE_NAME,
    o2_sector_branch,
)
from alice_dyn.tpc.geometry import N_SECTORS

O2_WRITE_SINGLE = "single"
O2_WRITE_SECTORS = "sectors"
O2_WRITE_MODES = (O2_WRITE_SINGLE, O2_WRITE_SECTORS)
#: what to install for this writer
ROOT_HINT = "pip install 'alice-dyn[root]' (the PyPI 'root' package, ROOT >= 6.30)"
#: ROOT's compression algorithm numbers (ROOT::RCompressionSetting::EAlgorithm)
_ROOT_ALGORITHMS = {"ZLIB": 1, "LZMA": 2, "LZ4": 4, "ZSTD": 5}

_VIEW_CLASS_DECL = """
#include <cstddef>
namespace o2 { namespace dataformats {
class IOMCTruthContainerView {
 public:
  IOMCTruthContainerView() = default;
  void adopt(const char* p, size_t n) {
    const size_t d = n / 10;
    N1 = (int)d;
    N2 = (int)(n - 9 * d);
    part1 = p; part2 = p + d; part3 = p + 2 * d; part4 = p + 3 * d; part5 = p + 4 * d;
    part6 = p + 5 * d; part7 = p + 6 * d; part8 = p + 7 * d; part9 = p + 8 * d;
    part10 = p + 9 * d;
    mIsView = true;
  }
 private:
  int N1 = 0;
  int N2 = 0;
  const char* part1 = nullptr;  //[N1]
  const char* part2 = nullptr;  //[N1]
  const char* part3 = nullptr;  //[N1]
  const char* part4 = nullptr;  //[N1]
  const char* part5 = nullptr;  //[N1]
  const char* part6 = nullptr;  //[N1]
  const char* part7 = nullptr;  //[N1]
  const char* part8 = nullptr;  //[N1]
  const char* part9 = nullptr;  //[N1]
  const char* part10 = nullptr; //[N2]
  bool mIsView = false; //!
  ClassDefNV(IOMCTruthContainerView, 1);
};
}}
"""

_HELPERS_DECL = """
#include <vector>
void alice_dyn_o2w_assign(std::vector<char>& v, const unsigned char* p, size_t n) {
  v.assign(reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(p) + n);
}
void alice_dyn_o2w_adopt(o2::dataformats::IOMCTruthContainerView& view,
                         const std::vector<char>& v) {
  view.adopt(v.data(), v.size());
}
"""


class RootMissingError(UsageError):
    """O2's layout is asked for but ROOT (PyROOT) cannot be imported; one line with the fix."""


def require_root():
    """Import and return PyROOT, or raise :class:`RootMissingError` naming what to install."""
    try:
        with warnings.catch_warnings():  # the PyPI build's "alpha stage" notice
            warnings.simplefilter("ignore", UserWarning)
            import ROOT
    except ImportError as exc:
        raise RootMissingError(
            f"writing O2's layout (--layout o2) needs ROOT, which cannot be imported ({exc}): "
            f"{ROOT_HINT}"
        ) from None
    return ROOT


def declare_view_class(ROOT) -> None:
    """Make ``o2::dataformats::IOMCTruthContainerView`` and the fill helpers known to cling."""
    if not ROOT.TClass.GetClass(O2_MC_TRUTH_CLASS):
        ROOT.gInterpreter.Declare(_VIEW_CLASS_DECL)
    if not hasattr(ROOT, "alice_dyn_o2w_assign"):
        ROOT.gInterpreter.Declare(_HELPERS_DECL)


def root_compression(compression) -> int:
    """ROOT's compression setting (``100 * algorithm + level``) of an uproot compression object.

    ``None`` -> 0 (uncompressed); ZLIB 1, LZMA 2, LZ4 4, ZSTD 5 as ROOT numbers them.
    """
    if compression is None:
        return 0
    name = type(compression).__name__.upper()
    if name not in _ROOT_ALGORITHMS:
        raise ValueError(f"compression {compression!r} has no ROOT equivalent")
    return 100 * _ROOT_ALGORITHMS[name] + int(compression.level)


def mc_labels_of(mc_label: np.ndarray) -> np.ndarray:
    """MCCompLabel words ``(n,)`` uint64 of project labels ``(n,)`` (see the module docstring)."""
    mc_label = np.asarray(mc_label, dtype=np.int64)
    words = encode_labels(np.maximum(mc_label, 0), 0, 0)
    words[mc_label < 0] = MC_LABEL_NOISE
    return words


def o2_native_entry(tf: Timeframe, sector: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(cluster buffer, flat MC truth)`` uint8 of one timeframe, or of one ``sector`` of it.

    The buffer is :func:`~alice_dyn.io.o2_layout.o2_entry`'s, ``(21888 + 12 n,)``, clusters in
    (sector, row) order; the MC truth is the flattened container with one label per cluster in
    the same order.
    """
    buffer, labels = o2_entry(tf, sector)
    words = mc_labels_of(labels)
    flat = flatten_mc_truth(np.arange(words.size + 1, dtype=np.int64), words)
    return buffer, flat


class O2NativeClusterWriter:
    """PyROOT writer of ``tpcrec`` as O2 writes it; one :meth:`write` per timeframe.

    Args:
        path: output file (recreated).
        compression: uproot compression object or ``None``; mapped by :func:`root_compression`.
        mode: ``"single"`` (O2's default, ``TPCClusterNative``) or ``"sectors"``
            (``TPCClusterNative_<s>`` for s = 0..35).
        mc_truth: write the ``TPCClusterNativeMCTruth`` branch(es) (O2 with MC propagation).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compression=None,
        mode: str = O2_WRITE_SINGLE,
        mc_truth: bool = True,
    ) -> None:
        if mode not in O2_WRITE_MODES:
            raise ValueError(f"unknown O2 branch mode {mode!r}; use one of {O2_WRITE_MODES}")
        ROOT = require_root()
        declare_view_class(ROOT)
        self._ROOT = ROOT
        self.path = os.fspath(path)
        self.mode = mode
        self._keys: list[int | None] = [None] if mode == O2_WRITE_SINGLE else list(range(N_SECTORS))
        self._file = ROOT.TFile(self.path, "RECREATE", "", root_compression(compression))
        if self._file.IsZombie():
            raise OSError(f"{self.path}: ROOT cannot create the file")
        self._tree = ROOT.TTree(O2_TREE_NAME, O2_TREE_NAME)
        self._tree.SetDirectory(self._file)
        self._data, self._size, self._flat, self._view = {}, {}, {}, {}
        for key in self._keys:
            name = o2_sector_branch(O2_CLUSTERS_BRANCH, key)
            # as RootTreeWriter::createBranch: the Size branch (leaf list "<name>Size/i"), then
            # the data branch (TTree::Branch defaults)
            self._size[key] = np.zeros(1, np.uint32)
            size = name + O2_SIZE_SUFFIX
            self._tree.Branch(size, self._size[key], f"{size}/i")
            self._data[key] = ROOT.std.vector("char")()
            self._tree.Branch(name, self._data[key])
            if mc_truth:
                self._flat[key] = ROOT.std.vector("char")()
                self._view[key] = ROOT.o2.dataformats.IOMCTruthContainerView()
                self._tree.Branch(o2_sector_branch(O2_MC_TRUTH_BRANCH, key), self._view[key])
        self.closed = False

    def write(self, tf: Timeframe) -> None:
        """Fill one entry with the clusters (and MC truth) of ``tf``."""
        R = self._ROOT
        for key in self._keys:
            buffer, flat = o2_native_entry(tf, key)
            R.alice_dyn_o2w_assign(self._data[key], buffer, buffer.size)
            self._size[key][0] = buffer.size
            if key in self._view:
                R.alice_dyn_o2w_assign(self._flat[key], flat, flat.size)
                R.alice_dyn_o2w_adopt(self._view[key], self._flat[key])
        self._tree.Fill()

    def close(self) -> None:
        """Write the tree and close the file (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._file.cd()
        self._tree.Write()
        self._file.Close()
