"""The schema matches the data model and its documentation; inspection; small helpers."""

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import uproot

from alice_dyn.event.timeframe import TimeframeMeta
from alice_dyn.io import (
    SCHEMA_DOC,
    BadInputError,
    format_inspection,
    inspect_file,
    parse_compression,
    timeframe_problems,
)
from alice_dyn.io.schema import CLUSTERS, GROUPS, SCALARS, crc32_of
from alice_dyn.tpc.cluster_native import CLUSTER_NATIVE_DTYPE

DOC = Path(__file__).resolve().parents[1] / "docs" / "io_schema.md"


def test_schema_covers_every_field_of_the_data_model(timeframes):
    tf = timeframes[0]
    assert {c.attr for c in SCALARS} == {f.name for f in dataclasses.fields(TimeframeMeta)}
    for g in GROUPS:
        model = set(getattr(tf, g.container).columns())
        attrs = {c.attr.split(".")[0] for c in g.columns}
        assert attrs == model, g.prefix
    record_fields = [c.attr.removeprefix("records.") for c in CLUSTERS.columns[:6]]
    assert record_fields == list(CLUSTER_NATIVE_DTYPE.names)
    for c in CLUSTERS.columns[:6]:
        assert c.dtype == CLUSTER_NATIVE_DTYPE[c.attr.removeprefix("records.")]


def test_docs_file_is_the_schema_doc():
    assert DOC.read_text() == SCHEMA_DOC, "regenerate docs/io_schema.md from SCHEMA_DOC"


def test_written_branches_follow_the_schema(alice_file):
    with uproot.open(alice_file) as f:
        tree = f["timeframes"]
        for g in GROUPS:
            for name in g.branches:
                assert tree[name].count_branch.name == g.counter
        assert tree.title.startswith("alice_dyn timeframes, schema v1")
        assert f.classnames()["metadata;1"] == "TObjString"


def test_fixture_timeframes_are_valid(timeframes):
    for tf in timeframes:
        assert timeframe_problems(tf) == []


def test_inspect_alice_dyn(alice_file, timeframes):
    d = inspect_file(alice_file)
    assert d["layout"] == "alice_dyn" and d["n_timeframes"] == 5
    assert d["n_clusters"] == sum(len(tf.clusters) for tf in timeframes)
    assert d["n_mc_particles"] == sum(len(tf.particles) for tf in timeframes)
    assert d["n_tof_hits"] == sum(len(tf.tof) for tf in timeframes)
    assert d["n_trd_tracklets"] == sum(len(tf.trd) for tf in timeframes)
    assert d["n_collisions"] == sum(len(tf.collisions) for tf in timeframes)
    assert d["n_tracks"] is None and d["problems"] == []
    assert d["compression"] == "LZ4(1)" and d["tf_id_range"] == (100, 104)
    names = {b["name"]: b for b in d["branches"]}
    assert names["cl_row"]["type"] == "uint8_t[]" and names["ncl"]["type"] == "int32_t"
    text = format_inspection(d)
    assert "layout        alice_dyn" in text and f"clusters      {d['n_clusters']}" in text
    assert "cl_timeFlagsPacked" in text


def test_inspect_o2(o2_file, timeframes):
    d = inspect_file(o2_file)
    assert d["layout"] == "o2" and d["n_timeframes"] == 5
    assert d["n_clusters"] == sum(len(tf.clusters) for tf in timeframes)
    assert d["n_mc_particles"] is None
    assert "TPCClusterNative" in format_inspection(d)


def test_inspect_missing_file(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        inspect_file(tmp_path / "x.root")


def test_bad_input_error_message_and_pickle():
    err = BadInputError("a.root", 3, "row out of range", tf_id=17)
    assert str(err) == "a.root: timeframe 3 (tf_id 17): row out of range"
    assert str(BadInputError("a.root", 3, "bad", tf_id=3)) == "a.root: timeframe 3: bad"
    assert str(BadInputError("a.root", None, "not a ROOT file")) == "a.root: not a ROOT file"
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.tf, back.problem, back.tf_id) == ("a.root", 3, "row out of range", 17)


def test_parse_compression():
    assert parse_compression("lz4") == uproot.LZ4(1)
    assert parse_compression("ZSTD:3") == uproot.ZSTD(3)
    assert parse_compression("none") is None and parse_compression(None) is None
    assert parse_compression(uproot.ZLIB(4)) == uproot.ZLIB(4)
    with pytest.raises(ValueError, match="unknown compression"):
        parse_compression("brotli")


def test_crc32_is_byte_order_independent():
    a = np.arange(10, dtype="<u4")
    assert crc32_of([a]) == crc32_of([a.astype(">u4")]) == crc32_of([a.view(np.uint8)])
