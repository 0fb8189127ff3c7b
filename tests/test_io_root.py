"""ROOT itself reads what the project wrote (with uproot; O2's layout with ROOT): TTree entries,
jagged branches via RDataFrame, metadata, O2's Size and vector<char> branches."""

import numpy as np
import pytest

from alice_dyn.io import write_timeframes
from alice_dyn.io.schema import (
    METADATA_KEY,
    O2_CLUSTERS_BRANCH,
    O2_LABELS_BRANCH,
    O2_SIZE_SUFFIX,
)
from alice_dyn.tpc.cluster_native import CLUSTER_COUNT_INDEX_BYTES

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def ROOT():
    return pytest.importorskip("ROOT")


@pytest.mark.slow
def test_root_reads_alice_dyn_tree(ROOT, alice_file, timeframes):
    f = ROOT.TFile.Open(alice_file)
    try:
        tree = f.Get("timeframes")
        assert tree.GetEntries() == len(timeframes)
        meta = f.Get(METADATA_KEY)
        assert '"schema_version": 1' in str(meta.GetString())
    finally:
        f.Close()
    df = ROOT.RDataFrame("timeframes", alice_file)
    total = sum(len(tf.clusters) for tf in timeframes)
    assert df.Sum("ncl").GetValue() == total
    rows = df.Take["ROOT::VecOps::RVec<unsigned char>"]("cl_row").GetValue()
    assert [len(r) for r in rows] == [len(tf.clusters) for tf in timeframes]
    np.testing.assert_array_equal(np.asarray(rows[1], dtype=np.uint8), timeframes[1].clusters.row)
    cols = df.AsNumpy(["tf_id", "cl_qTot", "mc_pdg"])
    assert list(cols["tf_id"]) == [tf.meta.tf_id for tf in timeframes]
    for got, tf in zip(cols["cl_qTot"], timeframes, strict=True):
        np.testing.assert_array_equal(np.asarray(got), tf.clusters.records["qTot"])
    for got, tf in zip(cols["mc_pdg"], timeframes, strict=True):
        np.testing.assert_array_equal(np.asarray(got), tf.particles.pdg)
    # a jagged computation in ROOT: clusters in the A side (sectors 0-17)
    a_side = df.Define("na", "Sum(cl_sector < 18)").Sum("na").GetValue()
    assert a_side == sum(int((tf.clusters.sector < 18).sum()) for tf in timeframes)


def test_root_reads_o2_tree(ROOT, o2_file, timeframes):
    """The O2 layout as O2 writes it: ROOT reads the Size leaf and the vector<char> per entry."""
    size = O2_CLUSTERS_BRANCH + O2_SIZE_SUFFIX
    f = ROOT.TFile.Open(o2_file)
    try:
        tree = f.Get("tpcrec")
        assert tree.GetEntries() == len(timeframes)
        assert tree.GetLeaf(size).GetTypeName() == "UInt_t"
        for i, tf in enumerate(timeframes):
            tree.GetEntry(i)
            n_bytes = CLUSTER_COUNT_INDEX_BYTES + 12 * len(tf.clusters)
            assert getattr(tree, size) == n_bytes
            assert getattr(tree, O2_CLUSTERS_BRANCH).size() == n_bytes
    finally:
        f.Close()


def test_root_reads_former_o2_array_variant(ROOT, tmp_path, timeframes):
    path = str(tmp_path / "array.root")
    write_timeframes(path, timeframes, layout="o2", o2_branches="array", flush_timeframes=2)
    f = ROOT.TFile.Open(path)
    try:
        tree = f.Get("tpcrec")
        assert tree.GetEntries() == len(timeframes)
        for i, tf in enumerate(timeframes):
            tree.GetEntry(i)
            n = len(tf.clusters)
            assert getattr(tree, f"n{O2_CLUSTERS_BRANCH}") == CLUSTER_COUNT_INDEX_BYTES + 12 * n
            assert getattr(tree, f"n{O2_LABELS_BRANCH}") == n
    finally:
        f.Close()


@pytest.mark.parametrize("compression", ["zlib:1", "lz4:1", "zstd:1"])
def test_root_decompresses_every_codec(ROOT, tmp_path, timeframes, compression):
    path = str(tmp_path / f"{compression.replace(':', '')}.root")
    write_timeframes(path, timeframes, compression=compression)
    df = ROOT.RDataFrame("timeframes", path)
    assert df.Sum("ncl").GetValue() == sum(len(tf.clusters) for tf in timeframes)
    # (RVec's Sum(v, 0.0) gives odd results for uint16 here, so sum explicitly)
    q_sum = df.Define("s", "double s = 0; for (auto q : cl_qMax) s += q; return s;").Sum("s")
    assert q_sum.GetValue() == sum(int(tf.clusters.records["qMax"].sum()) for tf in timeframes)
