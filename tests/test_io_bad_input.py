"""Every kind of bad input raises BadInputError naming the file, the timeframe and the problem."""

import json
import logging
import os
import re
import shutil

import awkward as ak
import numpy as np
import pytest
import uproot

from alice_dyn.io import (
    BadInputError,
    BadTimeframeWarning,
    TimeframeReader,
    TimeframeWriter,
    inspect_file,
    read_timeframes,
    write_timeframes,
)
from alice_dyn.io.schema import METADATA_KEY, O2_CLUSTERS_BRANCH, O2_LABELS_BRANCH, TREE_NAME
from alice_dyn.io.testing import assert_timeframes_equal
from alice_dyn.tpc.cluster_native import CLUSTER_COUNT_INDEX_BYTES
from alice_dyn.tpc.geometry import ROW_N_PADS


def assert_bad(path, tf, problem, **reader_kwargs) -> BadInputError:
    """Reading ``path`` raises BadInputError for entry ``tf`` with ``problem`` (a regex)."""
    path = os.fspath(path)
    with pytest.raises(BadInputError) as info:
        read_timeframes(path, **reader_kwargs)
    err = info.value
    message = str(err)
    assert err.path == path and message.startswith(path)
    assert err.tf == tf
    if tf is not None:
        assert f"timeframe {tf}" in message
    assert re.search(problem, err.problem), err.problem
    assert err.problem in message
    return err


def rewrite(src, dst, edit, *, drop=("checksum",), metadata=True):
    """Copy an alice_dyn file with uproot, letting ``edit(arrays)`` change the branch dict."""
    with uproot.open(src) as f:
        tree = f[TREE_NAME]
        names = [n for n in tree.keys() if not n.startswith("n") and n not in drop]
        arrays = tree.arrays(names, library="ak", how=dict)
        meta = str(f[METADATA_KEY])
    edit(arrays)
    with uproot.recreate(dst) as f:
        types = {
            k: v.type.content if v.ndim > 1 else v.type.content.primitive for k, v in arrays.items()
        }
        t = f.mktree(TREE_NAME, types)
        t.extend(arrays)
        if metadata:
            f[METADATA_KEY] = meta if metadata is True else metadata(meta)
    return os.fspath(dst)


# --- file level ---------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    assert_bad(tmp_path / "nope.root", None, "no such file", skip_bad=True)


@pytest.mark.parametrize("content", [b"", b"hello, this is text\n" * 10, b"roo"])
def test_not_a_root_file(tmp_path, content):
    path = tmp_path / "text.root"
    path.write_bytes(content)
    assert_bad(path, None, "not a ROOT file", skip_bad=True)


def test_truncated_file(tmp_path, alice_file):
    path = tmp_path / "half.root"
    shutil.copy(alice_file, path)
    os.truncate(path, os.path.getsize(path) // 2)
    assert_bad(
        path, None, r"truncated file: \d+ bytes on disk, the ROOT header says \d+", skip_bad=True
    )
    with pytest.raises(BadInputError, match="truncated"):
        inspect_file(path)


def test_missing_tree(tmp_path):
    path = tmp_path / "other.root"
    with uproot.recreate(path) as f:
        f.mktree("events", {"x": np.int32}).extend({"x": np.arange(3, dtype=np.int32)})
    err = assert_bad(path, None, "missing TTree: neither 'timeframes'.*nor 'tpcrec'", skip_bad=True)
    assert "events" in err.problem


def test_missing_branches_are_named(tmp_path, alice_file):
    path = rewrite(alice_file, tmp_path / "m.root", lambda a: [a.pop("cl_row"), a.pop("mc_pdg")])
    assert_bad(path, None, r"lacks branches: cl_row, mc_pdg$", skip_bad=True)


def test_wrong_jagged_dtype(tmp_path, alice_file):
    def edit(a):
        a["cl_row"] = ak.values_astype(a["cl_row"], np.float32)

    path = rewrite(alice_file, tmp_path / "w.root", edit)
    assert_bad(
        path, None, r"cl_row is float32\[\] \(jagged\), the schema needs uint8\[\] \(jagged\)"
    )


def test_wrong_scalar_dtype(tmp_path, alice_file):
    def edit(a):
        a["tf_id"] = ak.values_astype(a["tf_id"], np.float64)

    path = rewrite(alice_file, tmp_path / "w.root", edit)
    assert_bad(path, None, r"tf_id is float64, the schema needs uint32")


def test_missing_metadata(tmp_path, alice_file):
    path = rewrite(alice_file, tmp_path / "nometa.root", lambda a: None, metadata=False)
    assert_bad(path, None, "missing or unreadable 'metadata'")


def test_newer_schema_version(tmp_path, alice_file):
    def newer(meta):
        d = json.loads(meta)
        d["schema_version"] = 99
        return json.dumps(d)

    path = rewrite(alice_file, tmp_path / "v99.root", lambda a: None, metadata=newer)
    assert_bad(path, None, "schema version 99")


def test_files_without_checksum_still_read(tmp_path, alice_file, timeframes):
    path = rewrite(alice_file, tmp_path / "nocrc.root", lambda a: None)
    for a, b in zip(timeframes, read_timeframes(path), strict=True):
        assert_timeframes_equal(a, b)


def test_string_id_out_of_table(tmp_path, alice_file):
    def edit(a):
        system = ak.to_numpy(a["system_id"]).copy()
        system[2] = 7
        a["system_id"] = ak.Array(system)

    path = rewrite(alice_file, tmp_path / "s.root", edit)
    assert_bad(path, 2, r"system_id 7 is not in the metadata table 'systems' of 2 strings")


# --- corruption ---------------------------------------------------------------------------------
def _corrupt_basket(src, dst, branch: str, k: int) -> tuple[int, int]:
    """Flip bytes inside basket ``k`` of ``branch``; returns the basket's entry range."""
    shutil.copy(src, dst)
    with uproot.open(src) as f:
        b = f[TREE_NAME][branch]
        seek = int(b.member("fBasketSeek")[k])
        size = int(b.member("fBasketBytes")[k])
        entries = (int(b.entry_offsets[k]), int(b.entry_offsets[k + 1]))
    with open(dst, "r+b") as fh:
        fh.seek(seek + size - 40)
        chunk = bytearray(fh.read(16))
        fh.seek(seek + size - 40)
        fh.write(bytes(x ^ 0xFF for x in chunk))
    return entries


@pytest.mark.parametrize("compression", ["lz4:1", "zlib:1", "zstd:1", None])
def test_corrupted_basket_names_the_timeframe(tmp_path, make_tfs, compression):
    tfs = make_tfs(6, with_empty=False)
    good = tmp_path / "good.root"
    write_timeframes(good, tfs, compression=compression, flush_timeframes=2)
    path = tmp_path / "bad.root"
    first, stop = _corrupt_basket(good, path, "cl_timeFlagsPacked", 1)
    assert (first, stop) == (2, 4)
    # a compressed basket fails to decompress as a whole (both its timeframes are lost); in a
    # raw basket (compression None) only the timeframe whose bytes changed fails its checksum
    expected = [3] if compression is None else [2, 3]
    with pytest.raises(BadInputError) as info:
        read_timeframes(path)
    assert info.value.tf == expected[0]
    assert re.search("cannot read: |checksum mismatch", info.value.problem)
    with pytest.warns(BadTimeframeWarning) as record:
        with TimeframeReader(path, skip_bad=True) as reader:
            back = list(reader)
    assert reader.n_skipped == len(expected) == len(record)
    assert [e for e, _ in reader.skipped] == expected
    kept = [i for i in range(6) if i not in expected]
    assert [tf.meta.tf_id for tf in back] == [100 + i for i in kept]
    for i, b in zip(kept, back, strict=True):
        assert_timeframes_equal(tfs[i], b)


def test_bytes_overwritten_in_the_middle(tmp_path, make_tfs):
    good = tmp_path / "good.root"
    write_timeframes(good, make_tfs(6, with_empty=False), flush_timeframes=2)
    path = tmp_path / "middle.root"
    shutil.copy(good, path)
    with open(path, "r+b") as fh:
        fh.seek(os.path.getsize(path) // 2)
        fh.write(bytes(range(256)) * 2)
    with pytest.raises(BadInputError, match=r"middle\.root: timeframe \d"):
        read_timeframes(path)
    with pytest.warns(BadTimeframeWarning):
        with TimeframeReader(path, skip_bad=True) as reader:
            n = len(list(reader))
    assert reader.n_skipped >= 1 and n + reader.n_skipped == 6


# --- values out of range (alice_dyn layout) -----------------------------------------------------
def _set(part, name, index, value):
    def mutate(tf):
        arr = getattr(getattr(tf, part), name)
        assert len(arr) > abs(index), f"fixture has no {part}.{name} to spoil"
        arr[index] = value

    return mutate


def _pad_beyond(tf):
    c = tf.clusters
    c.records["padPacked"][0] = (ROW_N_PADS[c.row[0]] + 1) * 64


def _unsorted(tf):
    c = tf.clusters
    c.sector[:] = c.sector[::-1].copy()


def _label_too_big(tf):
    tf.clusters.mc_label[3] = len(tf.particles)


def _tof_label_too_big(tf):
    tf.tof.label[0] = len(tf.particles) + 5


BAD_VALUES = {
    "sector>=36": (_set("clusters", "sector", -1, 36), r"1 clusters with sector out of range 0-35"),
    "row>=152": (_set("clusters", "row", -1, 152), r"row out of range 0-151 .*row 152"),
    "pad beyond row": (_pad_beyond, r"pad beyond the row's pads"),
    "not sorted": (_unsorted, r"clusters not in \(sector, row\) order"),
    "mc label >= n": (_label_too_big, r"cluster MC labels out of range \[-1, \d+\)"),
    "mc label < -1": (_set("clusters", "mc_label", 0, -2), r"cluster MC labels .*value -2"),
    "tof label": (_tof_label_too_big, r"TOF labels out of range"),
    "trd label": (_set("trd", "label", 0, -3), r"TRD labels out of range"),
    "trd layer": (_set("trd", "layer", 0, 6), r"TRD tracklets with layer out of range 0-5"),
    "collision index": (_set("particles", "collision", 0, 9), r"collision index out of range"),
    "nan vertex": (
        _set("collisions", "vz_cm", 0, np.nan),
        r"non-finite values in collisions.vz_cm",
    ),
    "inf tof time": (_set("tof", "time_ps", -1, np.inf), r"non-finite values in tof.time_ps"),
    "nan trd q": (_set("trd", "q", 0, np.nan), r"non-finite values in trd.q"),
}


def _write_with_bad(tmp_path, make_tfs, mutate, bad=(1,), layout="alice_dyn", n=3):
    tfs = make_tfs(n, with_empty=False)
    for i in bad:
        mutate(tfs[i])
    path = tmp_path / f"bad_{layout}.root"
    extra = {"o2_branches": "array"} if layout == "o2" else {}  # bad values: uproot variant
    write_timeframes(path, tfs, layout=layout, validate=False, flush_timeframes=2, **extra)
    return path, tfs


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_out_of_range_values(tmp_path, make_tfs, case):
    mutate, problem = BAD_VALUES[case]
    path, _ = _write_with_bad(tmp_path, make_tfs, mutate)
    err = assert_bad(path, 1, problem)
    assert err.tf_id == 101 and "timeframe 1 (tf_id 101)" in str(err)


def test_nonfinite_bfield(tmp_path, make_tfs):
    def mutate(tf):
        tf.meta.bfield_t = float("nan")

    path, _ = _write_with_bad(tmp_path, make_tfs, mutate)
    assert_bad(path, 1, "non-finite bfield_t")


@pytest.mark.parametrize("case", ["sector>=36", "pad beyond row", "mc label < -1"])
def test_writer_refuses_bad_timeframes(tmp_path, make_tfs, case):
    mutate, problem = BAD_VALUES[case]
    tfs = make_tfs(2, with_empty=False)
    mutate(tfs[1])
    path = tmp_path / "w.root"
    with TimeframeWriter(path) as writer:
        writer.write(tfs[0])
        with pytest.raises(BadInputError, match="refusing to write") as info:
            writer.write(tfs[1])
        assert info.value.tf == 1 and re.search(problem, info.value.problem)
    assert len(read_timeframes(path)) == 1  # what was accepted stays readable


def test_writer_refuses_values_that_do_not_fit(tmp_path, make_tfs):
    tf = make_tfs(1, with_empty=False)[0]
    tf.meta.tf_id = -1
    with TimeframeWriter(tmp_path / "w.root") as writer:
        with pytest.raises(BadInputError, match=r"meta.tf_id values -1..-1 do not fit uint32"):
            writer.write(tf)


# --- skip_bad -----------------------------------------------------------------------------------
def test_skip_bad_counts_warns_and_logs(tmp_path, make_tfs, caplog):
    mutate, _ = BAD_VALUES["trd layer"]
    path, _ = _write_with_bad(tmp_path, make_tfs, mutate, bad=(1, 3), n=5)
    caplog.set_level(logging.WARNING, logger="alice_dyn.io")
    with pytest.warns(BadTimeframeWarning, match=r"timeframe \d \(tf_id 10\d\): .*TRD") as rec:
        with TimeframeReader(path, skip_bad=True, step=2) as reader:
            back = list(reader)
    assert len(rec) == 2
    assert (reader.n_read, reader.n_skipped) == (3, 2)
    assert [e for e, _ in reader.skipped] == [1, 3]
    assert all("layer out of range" in p for _, p in reader.skipped)
    assert [tf.meta.tf_id for tf in back] == [100, 102, 104]
    assert len([r for r in caplog.records if "skipping bad timeframe" in r.message]) == 2
    # without skip_bad the good timeframe before the bad one is still delivered, then it raises
    seen = []
    with pytest.raises(BadInputError, match="timeframe 1"):
        with TimeframeReader(path) as reader:
            seen.extend(reader)
    assert [tf.meta.tf_id for tf in seen] == [100]


# --- O2 layout ----------------------------------------------------------------------------------
def _write_o2(path, buffers, labels=None, buffer_type=np.uint8):
    with uproot.recreate(path) as f:
        data = {O2_CLUSTERS_BRANCH: ak.values_astype(ak.Array(buffers), buffer_type)}
        if labels is not None:
            data[O2_LABELS_BRANCH] = ak.values_astype(ak.Array(labels), np.int32)
        f.mktree("tpcrec", {k: v.type.content for k, v in data.items()}).extend(data)
    return os.fspath(path)


@pytest.fixture(scope="module")
def o2_array_file(tmp_path_factory, timeframes) -> str:
    """The fixture timeframes in the project's former uint8-array variant of the O2 layout."""
    path = str(tmp_path_factory.mktemp("io") / "o2_array.root")
    write_timeframes(path, timeframes, layout="o2", o2_branches="array", flush_timeframes=2)
    return path


def _o2_buffers(o2_array_file):
    with uproot.open(o2_array_file) as f:
        t = f["tpcrec"]
        return (
            [np.asarray(b) for b in t[O2_CLUSTERS_BRANCH].array(library="np")],
            [np.asarray(b) for b in t[O2_LABELS_BRANCH].array(library="np")],
        )


def test_o2_count_index_disagrees_with_records(tmp_path, o2_array_file):
    buffers, labels = _o2_buffers(o2_array_file)
    bad = buffers[2].copy()
    index = bad[:CLUSTER_COUNT_INDEX_BYTES].view("<u4")
    index[5] += 3
    path = _write_o2(tmp_path / "o2.root", [buffers[0], buffers[1], bad], labels[:3])
    assert_bad(path, 2, r"ClusterCountIndex counts \d+ clusters but the buffer holds \d+")


def test_o2_partial_record(tmp_path, o2_array_file):
    buffers, _ = _o2_buffers(o2_array_file)
    path = _write_o2(tmp_path / "o2.root", [buffers[0], buffers[1][:-5]])
    assert_bad(path, 1, "not a whole number of 12-byte ClusterNative records")


def test_o2_short_buffer(tmp_path):
    path = _write_o2(tmp_path / "o2.root", [np.zeros(100, np.uint8)])
    assert_bad(path, 0, "shorter than the 21888-byte ClusterCountIndex")


def test_o2_labels_disagree_with_clusters(tmp_path, o2_array_file):
    buffers, labels = _o2_buffers(o2_array_file)
    path = _write_o2(tmp_path / "o2.root", buffers[:2], [labels[0], labels[1][:-1]])
    assert_bad(path, 1, rf"{O2_LABELS_BRANCH} has \d+ labels but {O2_CLUSTERS_BRANCH} holds \d+")


def test_o2_without_labels_reads_noise_labels(tmp_path, o2_array_file, timeframes):
    buffers, _ = _o2_buffers(o2_array_file)
    back = read_timeframes(_write_o2(tmp_path / "o2.root", buffers))
    assert [len(tf.clusters) for tf in back] == [len(tf.clusters) for tf in timeframes]
    assert all((tf.clusters.mc_label == -1).all() for tf in back)


def test_o2_wrong_buffer_type(tmp_path, o2_array_file):
    buffers, _ = _o2_buffers(o2_array_file)
    path = _write_o2(tmp_path / "o2.root", buffers[:1], buffer_type=np.float32)
    assert_bad(path, None, rf"{O2_CLUSTERS_BRANCH} is float32\[\] \(jagged\)")


def test_o2_out_of_range_pad_and_label(tmp_path, make_tfs):
    path, _ = _write_with_bad(tmp_path, make_tfs, _pad_beyond, layout="o2")
    assert_bad(path, 1, "pad beyond the row's pads")
    mutate, _ = BAD_VALUES["mc label < -1"]
    path, _ = _write_with_bad(tmp_path, make_tfs, mutate, layout="o2")
    assert_bad(path, 1, r"cluster MC labels out of range >= -1")


def test_o2_corrupted_payload_caught_by_checksum(tmp_path, make_tfs):
    tfs = make_tfs(3, with_empty=False)
    good = tmp_path / "good.root"
    write_timeframes(
        good, tfs, layout="o2", o2_branches="array", compression=None, flush_timeframes=1
    )
    path = tmp_path / "bad.root"
    shutil.copy(good, path)
    with uproot.open(good) as f:
        b = f["tpcrec"][O2_CLUSTERS_BRANCH]
        seek, size = int(b.member("fBasketSeek")[1]), int(b.member("fBasketBytes")[1])
    with open(path, "r+b") as fh:  # a record's bytes: the buffer stays well formed
        fh.seek(seek + size - 100)
        fh.write(b"\x00\x00")
    assert_bad(path, 1, "checksum mismatch")
