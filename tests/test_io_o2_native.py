"""O2's own native-cluster files: std::vector<char> + Size branches, per sector, MC truth.

The files are built here with PyROOT as O2's ``RootTreeWriter`` builds them, independently of
the project's writer: ``TPCClusterNative[_<s>]`` is a ``std::vector<char>`` object branch with a
``<name>Size`` branch (leaf ``/i``), ``TPCClusterNativeMCTruth[_<s>]`` an
``o2::dataformats::IOMCTruthContainerView`` object branch (split, as ``TTree::Branch`` does).
Without O2's dictionary the view class is declared to cling with O2's members (``int N1, N2``,
``const char* part1..part10 //[N1]/[N2]``, transient ``mIsView``) and the same split rule;
``test_view_streamer_matches_o2`` checks the streamer ROOT stores against O2's header.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import uproot

from alice_dyn.io import BadInputError, BadTimeframeWarning, read_timeframes, write_timeframes
from alice_dyn.io.o2_mc_truth import (
    MC_LABEL_NOISE,
    ClusterMCTruth,
    MCTruthFormatError,
    decode_flat_mc_truth,
    decode_labels,
    encode_labels,
    flatten_mc_truth,
)
from alice_dyn.io.reader import TimeframeReader, read_o2_mc_truth
from alice_dyn.io.schema import (
    O2_CLUSTERS_BRANCH,
    O2_MC_TRUTH_BRANCH,
    O2_MC_TRUTH_CLASS,
    O2_SIZE_SUFFIX,
    O2_TREE_NAME,
    o2_sector_branch,
)
from alice_dyn.sim import SimConfig, simulate_timeframe
from alice_dyn.tpc.cluster_native import CLUSTER_NATIVE_DTYPE
from alice_dyn.tpc.geometry import N_ROWS, N_SECTORS, ROW_N_PADS

_VIEW_CLASS_DECL = """
#include <vector>
namespace o2 { namespace dataformats {
class IOMCTruthContainerView {
 public:
  IOMCTruthContainerView() = default;
  IOMCTruthContainerView(std::vector<char> const& input) { adopt(input.data(), input.size()); }
  void adopt(const char* p, size_t n) {
    mIsView = true;
    const auto delta = n / N;
    N1 = delta;
    N2 = n - (N - 1) * delta;
    part1 = p; part2 = p + delta; part3 = p + 2 * delta; part4 = p + 3 * delta;
    part5 = p + 4 * delta; part6 = p + 5 * delta; part7 = p + 6 * delta;
    part8 = p + 7 * delta; part9 = p + 8 * delta; part10 = p + 9 * delta;
  }
 private:
  static constexpr int N = 10;
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
_VIEW_HELPERS_DECL = """
#include <vector>
#include <cstring>
void alice_dyn_test_copy(const std::vector<char>& v, unsigned char* out) {
  std::memcpy(out, v.data(), v.size());
}
void alice_dyn_test_assign(std::vector<char>& v, const unsigned char* p, size_t n) {
  v.assign(reinterpret_cast<const char*>(p), reinterpret_cast<const char*>(p) + n);
}
using alice_dyn_view_t = o2::dataformats::IOMCTruthContainerView;
void alice_dyn_test_adopt(alice_dyn_view_t& view, const std::vector<char>& v) {
  view.adopt(v.data(), v.size());
}
"""


@pytest.fixture(scope="module")
def ROOT():
    root = pytest.importorskip("ROOT")
    # the project's writer may have declared the class already (same members, same version)
    if not root.TClass.GetClass(O2_MC_TRUTH_CLASS):
        root.gInterpreter.Declare(_VIEW_CLASS_DECL)
    if not hasattr(root, "alice_dyn_test_assign"):
        root.gInterpreter.Declare(_VIEW_HELPERS_DECL)
    return root


# --- building O2 files ---------------------------------------------------------------------------
def _clusters(rng, n: int, sectors) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` valid clusters in ``sectors``, sorted by (sector, row): records, sector, row."""
    sector = np.sort(rng.choice(np.asarray(sectors), n)).astype(np.int64)
    row = rng.integers(0, N_ROWS, n)
    order = np.lexsort((row, sector))
    sector, row = sector[order], row[order]
    rec = np.zeros(n, CLUSTER_NATIVE_DTYPE)
    rec["timeFlagsPacked"] = rng.integers(0, 5000 * 64, n)
    rec["padPacked"] = (rng.random(n) * (ROW_N_PADS[row] - 1) * 64).astype(np.uint16)
    rec["sigmaTimePacked"] = 40
    rec["sigmaPadPacked"] = 30
    rec["qMax"] = rng.integers(10, 500, n)
    rec["qTot"] = rec["qMax"] * 3
    return rec, sector, row


def _buffer(records: np.ndarray, sector: np.ndarray, row: np.ndarray) -> np.ndarray:
    """O2's buffer built by hand: uint32 [36][152] counts, then the records (sorted input)."""
    index = np.zeros((N_SECTORS, N_ROWS), "<u4")
    np.add.at(index, (sector, row), 1)
    return np.concatenate([index.view(np.uint8).ravel(), records.view(np.uint8)])


def _labels(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and MCCompLabel words: 1-3 labels per cluster, some noise, some clusters none."""
    counts = rng.integers(0, 4, n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    m = int(offsets[-1])
    raw = encode_labels(rng.integers(0, 50, m), rng.integers(0, 3, m), rng.integers(0, 2, m))
    raw[rng.random(m) < 0.2] = MC_LABEL_NOISE
    return offsets, raw


def _write(
    ROOT,
    path,
    entries,
    *,
    per_sector=False,
    mc=True,
    size_delta=None,
    no_size=(),
    whole=None,
    flat_for=None,
    split=99,
    no_mc=(),
):
    """Write ``entries`` (list of (records, sector, row, offsets, raw)) as O2 does.

    ``size_delta`` = (entry, sector key, delta) falsifies one Size value; ``no_size`` names data
    branches written without their Size branch; sector ``whole`` gets all clusters (bad);
    ``flat_for`` maps (entry, key) to MC-truth bytes written instead of the right ones;
    ``split`` is the MC-truth branch's split level (O2: 99, the TTree::Branch default);
    ``no_mc`` lists sector keys written without MC truth.
    """
    keys = sorted({int(s) for e in entries for s in e[1]}) if per_sector else [None]
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree(O2_TREE_NAME, O2_TREE_NAME)
    data, sizes, views, flats = {}, {}, {}, {}
    for key in keys:
        name = o2_sector_branch(O2_CLUSTERS_BRANCH, key)
        data[key] = ROOT.std.vector("char")()
        tree.Branch(name, data[key])
        sizes[key] = np.zeros(1, np.uint32)
        if name not in no_size:
            tree.Branch(name + O2_SIZE_SUFFIX, sizes[key], f"{name}{O2_SIZE_SUFFIX}/i")
        if mc and key not in no_mc:
            flats[key] = ROOT.std.vector("char")()
            views[key] = ROOT.o2.dataformats.IOMCTruthContainerView()
            tree.Branch(o2_sector_branch(O2_MC_TRUTH_BRANCH, key), views[key], 32000, split)
    for i, (rec, sector, row, offsets, raw) in enumerate(entries):
        for key in keys:
            sel = np.ones(rec.size, bool) if key in (None, whole) else sector == key
            buf = _buffer(rec[sel], sector[sel], row[sel])
            ROOT.alice_dyn_test_assign(data[key], buf, buf.size)
            sizes[key][0] = buf.size
            if size_delta is not None and size_delta[:2] == (i, key):
                sizes[key][0] += size_delta[2]
            if key in views:
                cl = np.flatnonzero(sel)
                counts = np.diff(offsets)[cl]
                sub_off = np.zeros(cl.size + 1, np.int64)
                np.cumsum(counts, out=sub_off[1:])
                sub_raw = np.concatenate([raw[offsets[c] : offsets[c + 1]] for c in cl] or [[]])
                flat = flatten_mc_truth(sub_off, sub_raw.astype(np.uint64))
                flat = (flat_for or {}).get((i, key), flat)
                ROOT.alice_dyn_test_assign(flats[key], flat, flat.size)
                ROOT.alice_dyn_test_adopt(views[key], flats[key])
        tree.Fill()
    tree.Write()
    f.Close()
    return str(path)


def _entries(seed: int, n_tf: int, sectors) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_tf):
        n = 0 if i == n_tf - 1 > 0 else int(rng.integers(20, 60))
        rec, sector, row = _clusters(rng, n, sectors)
        out.append((rec, sector, row, *_labels(rng, n)))
    return out


def _check(tfs, entries) -> None:
    assert len(tfs) == len(entries)
    for tf, (rec, sector, row, _, _) in zip(tfs, entries, strict=True):
        np.testing.assert_array_equal(tf.clusters.records, rec)
        np.testing.assert_array_equal(tf.clusters.sector, sector)
        np.testing.assert_array_equal(tf.clusters.row, row)


def _check_truth(truths, entries) -> None:
    for truth, (_, _, _, offsets, raw) in zip(truths, entries, strict=True):
        np.testing.assert_array_equal(truth.counts, np.diff(offsets))
        np.testing.assert_array_equal(truth.raw, raw)


def _expected_mc_label(offsets, raw) -> np.ndarray:
    """The documented mapping, computed the slow way: per-(source, event) blocks of trackIDs."""
    valid = (raw != MC_LABEL_NOISE) & (raw != np.uint64(0xFFFF_FFFF_FFFF_FFFF))
    size: dict[int, int] = {}
    for w in raw[valid]:
        ev, track = (int(w) & ((1 << 58) - 1)) >> 31, int(w) & ((1 << 31) - 1)
        size[ev] = max(size.get(ev, 0), track + 1)
    start, total = {}, 0
    for ev in sorted(size):
        start[ev], total = total, total + size[ev]
    out = []
    for c in range(offsets.size - 1):
        words = [int(w) for w in raw[offsets[c] : offsets[c + 1]] if w != MC_LABEL_NOISE]
        out.append(start[(words[0] & ((1 << 58) - 1)) >> 31] + (words[0] & ((1 << 31) - 1))
                   if words else -1)  # fmt: skip
    return np.array(out, np.int32)


# --- the two O2 modes ----------------------------------------------------------------------------
@pytest.mark.root
def test_single_branch_with_mc_truth(ROOT, tmp_path):
    entries = _entries(1, 3, range(N_SECTORS))
    path = _write(ROOT, tmp_path / "single.root", entries)
    with TimeframeReader(path) as reader:
        assert reader.layout == "o2"
        pairs = list(reader.iter_with_mc_truth())
    tfs = [tf for tf, _ in pairs]
    _check(tfs, entries)
    _check_truth([t for _, t in pairs], entries)
    for tf, truth, (_, _, _, offsets, raw) in zip(tfs, [t for _, t in pairs], entries, strict=True):
        np.testing.assert_array_equal(tf.clusters.mc_label, _expected_mc_label(offsets, raw))
        first = tf.clusters.mc_label >= 0
        if first.any():  # mc_label - its block start is the trackID of a label of the cluster
            c = int(np.flatnonzero(first)[0])
            lab = decode_labels(truth.raw[truth.offsets[c] : truth.offsets[c + 1]])
            assert tf.clusters.mc_label[c] - lab["track_id"][~lab["noise"]][0] >= 0
        jag = truth.to_awkward()
        assert len(jag) == len(tf.clusters)
    # several labels on one cluster, noise among them
    assert (np.diff(entries[0][3]) >= 2).any() and (entries[0][4] == MC_LABEL_NOISE).any()


@pytest.mark.root
def test_per_sector_branches_merge_in_sector_row_order(ROOT, tmp_path):
    sectors = [3, 17, 18, 35]
    entries = _entries(2, 3, sectors)
    path = _write(ROOT, tmp_path / "sectors.root", entries, per_sector=True)
    tfs = read_timeframes(path)
    _check(tfs, entries)
    _check(read_timeframes(path, step=1), entries)
    _check_truth(read_o2_mc_truth(path, step=2), entries)
    for tf, (_, _, _, offsets, raw) in zip(tfs, entries, strict=True):
        np.testing.assert_array_equal(tf.clusters.mc_label, _expected_mc_label(offsets, raw))
    from alice_dyn.io import inspect_file

    info = inspect_file(path)  # counted from O2's Size branches
    assert info["n_clusters"] == sum(len(tf.clusters) for tf in tfs)
    single = _write(ROOT, tmp_path / "single.root", entries)
    assert inspect_file(single)["n_clusters"] == info["n_clusters"]


@pytest.mark.root
def test_unsplit_mc_truth_branch(ROOT, tmp_path):
    entries = _entries(9, 2, [2, 30])
    path = _write(ROOT, tmp_path / "unsplit.root", entries, per_sector=True, split=0)
    _check_truth(read_o2_mc_truth(path), entries)


@pytest.mark.root
def test_without_mc_truth_labels_are_noise(ROOT, tmp_path):
    entries = _entries(3, 2, [0, 5])
    path = _write(ROOT, tmp_path / "nomc.root", entries, per_sector=True, mc=False)
    tfs = read_timeframes(path)
    _check(tfs, entries)
    assert all((tf.clusters.mc_label == -1).all() for tf in tfs)
    assert read_o2_mc_truth(path) == [None, None]


@pytest.mark.root
def test_size_mismatch_is_one_line(ROOT, tmp_path):
    entries = _entries(4, 3, [7])
    path = _write(ROOT, tmp_path / "size.root", entries, size_delta=(1, None, 12))
    with pytest.raises(BadInputError) as info:
        read_timeframes(path)
    err = info.value
    assert err.tf == 1 and "\n" not in str(err) and str(err).startswith(path)
    n = len(entries[1][0]) * 12 + N_SECTORS * N_ROWS * 4
    assert f"{O2_CLUSTERS_BRANCH}Size says {n + 12} bytes" in err.problem
    assert f"holds {n} bytes" in err.problem
    # skip_bad keeps the others
    with pytest.warns(BadTimeframeWarning, match="timeframe 1"):
        assert len(read_timeframes(path, skip_bad=True)) == 2


@pytest.mark.root
def test_missing_size_branch_is_refused(ROOT, tmp_path):
    entries = _entries(5, 1, [1, 2])
    name = o2_sector_branch(O2_CLUSTERS_BRANCH, 2)
    path = _write(ROOT, tmp_path / "nosize.root", entries, per_sector=True, no_size=(name,))
    with pytest.raises(BadInputError) as info:
        read_timeframes(path)
    assert info.value.tf is None
    assert f"data branch {name!r} has no '{name}Size' branch" in info.value.problem
    path = _write(ROOT, tmp_path / "nosize1.root", entries, no_size=(O2_CLUSTERS_BRANCH,))
    with pytest.raises(BadInputError, match="has no 'TPCClusterNativeSize' branch"):
        read_timeframes(path)


@pytest.mark.root
def test_per_sector_buffer_with_other_sector_counts(ROOT, tmp_path):
    entries = _entries(6, 1, [4, 9])
    n9 = int((entries[0][1] == 9).sum())
    path = _write(ROOT, tmp_path / "other.root", entries, per_sector=True, mc=False, whole=4)
    with pytest.raises(BadInputError) as info:
        read_timeframes(path)
    assert info.value.tf == 0
    name = o2_sector_branch(O2_CLUSTERS_BRANCH, 4)
    assert f"{name} counts {n9} clusters in sector 9, not its own" in info.value.problem


@pytest.mark.root
def test_mc_truth_for_some_sectors_only_is_refused(ROOT, tmp_path):
    path = _write(
        ROOT, tmp_path / "somemc.root", _entries(10, 1, [6, 8]), per_sector=True, no_mc=(8,)
    )
    with pytest.raises(BadInputError, match=r"_<s> missing for sectors 8$"):
        read_timeframes(path)


@pytest.mark.root
def test_mc_truth_branch_of_another_type_is_refused(ROOT, tmp_path):
    path = str(tmp_path / "badtype.root")
    f = ROOT.TFile(path, "RECREATE")
    tree = ROOT.TTree(O2_TREE_NAME, O2_TREE_NAME)
    data, size, x = ROOT.std.vector("char")(), np.zeros(1, np.uint32), np.zeros(1, np.float32)
    tree.Branch(O2_CLUSTERS_BRANCH, data)
    tree.Branch(O2_CLUSTERS_BRANCH + O2_SIZE_SUFFIX, size, "s/i")
    tree.Branch(O2_MC_TRUTH_BRANCH, x, "x/F")
    tree.Fill()
    tree.Write()
    f.Close()
    with pytest.raises(BadInputError, match="cannot be read as an IOMCTruthContainerView"):
        read_timeframes(path)


@pytest.mark.root
def test_view_streamer_matches_o2(ROOT, tmp_path):
    """The declared class is stored as O2's: split N1, N2, part1-10 with counts N1/N2."""

    path = _write(ROOT, tmp_path / "view.root", _entries(7, 1, [0]))
    with uproot.open(path) as f:
        info = f.file.streamers[O2_MC_TRUTH_CLASS]
        elements = next(iter(info.values())).elements
        members = [(e.member("fName"), e.member("fTypeName")) for e in elements]
        counts = [e.member("fCountName") for e in elements if "Pointer" in type(e).__name__]
        subs = [b.name for b in f[O2_TREE_NAME][O2_MC_TRUTH_BRANCH].branches]
    parts = [f"part{i}" for i in range(1, 11)]
    assert members == [("N1", "int"), ("N2", "int")] + [(p, "const char*") for p in parts]
    assert counts == ["N1"] * 9 + ["N2"]
    assert subs == ["N1", "N2", *parts]


@pytest.mark.root
def test_bad_mc_truth_header_is_one_line(ROOT, tmp_path):
    entries = _entries(8, 2, [0, 1])
    rec, _, _, offsets, raw = entries[0]
    # nHeader != clusters: drop the last cluster's header entry
    short = flatten_mc_truth(offsets[:-1], raw[: offsets[-2]])
    path = _write(ROOT, tmp_path / "badmc.root", entries, flat_for={(0, None): short})
    with pytest.raises(BadInputError) as info:
        read_timeframes(path)
    assert info.value.tf == 0
    assert f"{O2_MC_TRUTH_BRANCH}: MC truth indexes {rec.size - 1} clusters" in info.value.problem


def test_project_former_array_variant_still_reads(tmp_path, timeframes):
    path = str(tmp_path / "array.root")
    write_timeframes(path, timeframes, layout="o2", o2_branches="array")
    with uproot.open(path) as f:
        assert f[O2_TREE_NAME][O2_CLUSTERS_BRANCH].typename == "uint8_t[]"
    back = read_timeframes(path)
    assert [len(tf.clusters) for tf in back] == [len(tf.clusters) for tf in timeframes]
    for a, b in zip(timeframes, back, strict=True):
        np.testing.assert_array_equal(a.clusters.mc_label, b.clusters.mc_label)
    assert read_o2_mc_truth(path) == [None] * len(timeframes)


# --- the project's writer of O2's layout -------------------------------------------------------
@pytest.fixture(scope="module")
def sim_tfs() -> list:
    """Two simulated pp timeframes (some particles leave no cluster)."""
    cfg = SimConfig.for_system("pp", seed=3, collisions_per_tf=4)
    return [simulate_timeframe(cfg, i) for i in range(2)]


def _sorted_clusters(tf):
    order = np.lexsort((tf.clusters.row, tf.clusters.sector))
    return tf.clusters.records[order], tf.clusters.mc_label[order]


@pytest.mark.root
@pytest.mark.parametrize("mode", ["single", "sectors"])
def test_written_file_is_what_o2_reader_expects(ROOT, tmp_path, sim_tfs, mode):
    path = str(tmp_path / f"{mode}.root")
    write_timeframes(path, sim_tfs, layout="o2", o2_branches=mode, compression="zstd:5")
    keys = [None] if mode == "single" else list(range(N_SECTORS))
    f = ROOT.TFile.Open(path)
    try:
        assert f.GetCompressionSettings() == 505  # ZSTD level 5, as O2 writes
        tree = f.Get(O2_TREE_NAME)
        assert tree.GetEntries() == len(sim_tfs)
        names = {b.GetName() for b in tree.GetListOfBranches()}
        data = [o2_sector_branch(O2_CLUSTERS_BRANCH, k) for k in keys]
        mc = [o2_sector_branch(O2_MC_TRUTH_BRANCH, k) for k in keys]
        assert names == {*data, *(d + O2_SIZE_SUFFIX for d in data), *mc}  # nothing else
        for d, m in zip(data, mc, strict=True):
            assert tree.GetBranch(d).GetClassName() == "vector<char>"
            assert tree.GetBranch(m).GetClassName() == O2_MC_TRUTH_CLASS
            assert tree.GetLeaf(d + O2_SIZE_SUFFIX).GetTypeName() == "UInt_t"
            assert tree.GetBranch(d + O2_SIZE_SUFFIX).GetTitle() == f"{d}{O2_SIZE_SUFFIX}/i"
        for i, tf in enumerate(sim_tfs):
            tree.GetEntry(i)
            n_total = 0
            for k, d in zip(keys, data, strict=True):
                vec = getattr(tree, d)
                buf = np.empty(vec.size(), np.uint8)
                ROOT.alice_dyn_test_copy(vec, buf)
                size = int(getattr(tree, d + O2_SIZE_SUFFIX))
                assert buf.size == size
                counts = buf[: N_SECTORS * N_ROWS * 4].view("<u4").reshape(N_SECTORS, N_ROWS)
                assert size == N_SECTORS * N_ROWS * 4 + 12 * int(counts.sum())
                if k is not None:
                    assert counts.sum() == counts[k].sum()
                n_total += int(counts.sum())
            assert n_total == len(tf.clusters)
    finally:
        f.Close()
    pairs = list(TimeframeReader(path).iter_with_mc_truth())
    for tf, (back, truth) in zip(sim_tfs, pairs, strict=True):
        records, labels = _sorted_clusters(tf)
        assert back.clusters.records.tobytes() == records.tobytes()
        np.testing.assert_array_equal(back.clusters.mc_label, labels)
        assert (truth.counts == 1).all()  # one label per cluster
        lab = truth.labels
        assert (lab["noise"] == (labels == -1)).all()
        assert (lab["event_id"][~lab["noise"]] == 0).all()
        assert (lab["source_id"][~lab["noise"]] == 0).all()


@pytest.mark.root
def test_round_trip_keeps_particle_rows_when_particles_leave_no_cluster(tmp_path, sim_tfs):
    tf = sim_tfs[0]
    labels = tf.clusters.mc_label
    hit = np.zeros(len(tf.particles), bool)
    hit[labels[labels >= 0]] = True
    assert not hit[: labels.max()].all()  # a dense index over labels present would differ
    path = str(tmp_path / "rows.root")
    write_timeframes(path, [tf], layout="o2")
    back = read_timeframes(path)[0]
    np.testing.assert_array_equal(back.clusters.mc_label, _sorted_clusters(tf)[1])


def test_missing_root_is_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    from alice_dyn.cli import main
    from alice_dyn.framework.errors import UsageError
    from alice_dyn.io.o2_writer import RootMissingError

    monkeypatch.setitem(sys.modules, "ROOT", None)  # import ROOT raises ImportError
    out = tmp_path / "o2.root"
    with pytest.raises(RootMissingError, match=r"pip install 'alice-dyn\[root\]'") as info:
        write_timeframes(out, [], layout="o2")
    assert isinstance(info.value, UsageError) and not out.exists()
    calls = []
    monkeypatch.setattr("alice_dyn.sim.simulate_timeframe", lambda *a: calls.append(a))
    assert main(["simulate", "-o", str(out), "--timeframes", "1", "--layout", "o2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "alice-dyn[root]" in err and "ROOT" in err
    assert not out.exists() and not calls


# --- the flat container, on bytes built from O2's layout -----------------------------------------
def _flat(n_head: int, index, raw, head=(1, 4, 8, 0)) -> bytes:
    return (
        bytes(head)
        + np.array([n_head, len(raw)], "<u4").tobytes()
        + np.asarray(index, "<u4").tobytes()
        + np.asarray(raw, "<u8").tobytes()
    )


def test_flat_container_decodes_by_hand():
    words = [
        (5 | (2 << 31) | (1 << 50)),  # track 5, event 2, source 1
        int(MC_LABEL_NOISE),
        7 | (1 << 63),  # track 7, fake
        5 | (2 << 31) | (1 << 50),
    ]
    truth = decode_flat_mc_truth(_flat(3, [0, 2, 2], words), 3)
    assert truth.counts.tolist() == [2, 0, 2]
    lab = truth.labels
    assert lab["track_id"][[0, 2, 3]].tolist() == [5, 7, 5]
    assert lab["event_id"][0] == 2 and lab["source_id"][0] == 1 and not lab["fake"][0]
    assert lab["noise"].tolist() == [False, True, False, False]
    assert lab["fake"][2]
    # blocks by (source, event): (0, 0) holds tracks 0-7 -> 0..7, (1, 2) starts at 8
    assert truth.mc_label().tolist() == [13, -1, 7]  # cluster 2: first valid is the fake 7
    assert truth.particle_keys.tolist() == [(0, 0, 7), (1, 2, 5)]


@pytest.mark.parametrize(
    ("flat", "n", "match"),
    [
        (_flat(1, [0], [1], head=(2, 4, 8, 0)), 1, "version 2"),
        (_flat(1, [0], [1], head=(1, 4, 16, 0)), 1, "element sizes 4/16"),
        (_flat(2, [0, 0], [1]), 1, "indexes 2 clusters but the timeframe has 1"),
        (_flat(2, [0, 5], [1]), 2, "cluster 1 .5. is out of range"),
        (_flat(2, [0, 1], [1, 2])[:-3], 2, "needs"),
        (b"\x01\x04", 1, "shorter than its 12-byte header"),
        (b"", 3, "empty MC truth for 3 clusters"),
    ],
)
def test_flat_container_errors(flat, n, match):
    with pytest.raises(MCTruthFormatError, match=match) as info:
        decode_flat_mc_truth(flat, n)
    assert "\n" not in str(info.value)


def test_concatenate_and_empty():
    a = ClusterMCTruth(np.array([0, 1, 3]), np.array([1, 2, 3], np.uint64))
    b = ClusterMCTruth.empty(2)
    c = ClusterMCTruth.concatenate([a, b, a])
    assert c.counts.tolist() == [1, 2, 0, 0, 1, 2]
    assert c.raw.tolist() == [1, 2, 3, 1, 2, 3]
    assert len(decode_flat_mc_truth(flatten_mc_truth(c.offsets, c.raw), 6)) == 6
