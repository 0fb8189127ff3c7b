"""Write -> read round trips of both layouts, chunking, ranges and laziness."""

import os
import tempfile
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alice_dyn.io import (
    TimeframeReader,
    TimeframeWriter,
    open_timeframes,
    read_timeframe,
    read_timeframes,
    write_timeframes,
)
from alice_dyn.io.schema import O2_DEFAULT_META
from alice_dyn.io.testing import assert_timeframes_equal, empty_timeframe, synthetic_timeframe


def test_alice_dyn_round_trip_field_by_field(alice_file, timeframes):
    with open_timeframes(alice_file) as reader:
        assert reader.layout == "alice_dyn"
        assert len(reader) == len(timeframes)
        back = list(reader)
        assert (reader.n_read, reader.n_skipped, reader.skipped) == (len(timeframes), 0, [])
    assert len(back) == len(timeframes)
    for a, b in zip(timeframes, back, strict=True):
        assert_timeframes_equal(a, b)
    assert back[-1].meta.tf_id == 104 and len(back[-1].clusters) == 0


def test_o2_round_trip_clusters(o2_file, timeframes):
    back = read_timeframes(o2_file)
    assert len(back) == len(timeframes)
    for entry, (a, b) in enumerate(zip(timeframes, back, strict=True)):
        for name in ("records", "sector", "row", "mc_label"):
            x, y = getattr(a.clusters, name), getattr(b.clusters, name)
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
        assert b.meta.tf_id == entry
        assert b.meta.bfield_t == O2_DEFAULT_META["bfield_t"]
        for part in (b.collisions, b.particles, b.tof, b.trd):
            assert len(part) == 0
            part.check_lengths()


@pytest.mark.parametrize("step", [1, 2, 3, 100, None, "1 kB"])
def test_step_smaller_than_file(alice_file, timeframes, step):
    with TimeframeReader(alice_file, step=step) as reader:
        ranges = reader.chunk_ranges()
        if isinstance(step, int):
            assert all(b - a <= step for a, b in ranges)
        if step is None:  # follows the writer's baskets of two timeframes
            assert ranges == [(0, 2), (2, 4), (4, 5)]
        back = list(reader)
    for a, b in zip(timeframes, back, strict=True):
        assert_timeframes_equal(a, b)


def test_entry_range_and_read_timeframe(alice_file, timeframes):
    with TimeframeReader(alice_file, entry_start=1, entry_stop=-1, step=2) as reader:
        assert len(reader) == 3
        ids = [tf.meta.tf_id for tf in reader]
    assert ids == [101, 102, 103]
    assert_timeframes_equal(read_timeframe(alice_file, 2), timeframes[2])
    assert_timeframes_equal(read_timeframe(alice_file, -1), timeframes[-1])
    with pytest.raises(IndexError, match="out of range"):
        read_timeframe(alice_file, 5)


def test_reading_is_lazy_one_chunk_at_a_time(alice_file, monkeypatch):
    reads = []
    original = TimeframeReader._read

    def spy(self, start, stop):
        reads.append((start, stop))
        return original(self, start, stop)

    monkeypatch.setattr(TimeframeReader, "_read", spy)
    with TimeframeReader(alice_file, step=2) as reader:
        it = iter(reader)
        next(it)
        assert reads == [(0, 2)]  # nothing beyond the first chunk read yet
        rest = list(it)
    assert len(rest) == 4
    assert reads == [(0, 2), (2, 4), (4, 5)]


def test_only_empty_timeframes(tmp_path):
    path = tmp_path / "empty.root"
    tfs = [empty_timeframe(7), empty_timeframe(8, system="pbpb")]
    for layout in ("alice_dyn", "o2"):
        write_timeframes(path, tfs, layout=layout)
        back = read_timeframes(path)
        assert [len(tf.clusters) for tf in back] == [0, 0]
        if layout == "alice_dyn":
            for a, b in zip(tfs, back, strict=True):
                assert_timeframes_equal(a, b)


def test_file_with_no_timeframes(tmp_path):
    path = tmp_path / "none.root"
    with TimeframeWriter(path):
        pass
    with open_timeframes(path) as reader:
        assert len(reader) == 0
        assert list(reader) == []


@pytest.mark.parametrize("compression", ["zlib:1", "lz4:1", "zstd:1", None])
def test_compressions_round_trip(tmp_path, make_tfs, compression):
    tfs = make_tfs(3)
    path = tmp_path / "c.root"
    with TimeframeWriter(path, compression=compression, flush_clusters=1000) as writer:
        writer.write_many(tfs)
        assert writer.n_written == 3
    for a, b in zip(tfs, read_timeframes(path), strict=True):
        assert_timeframes_equal(a, b)


def test_writer_flushes_by_clusters_and_keeps_memory_bounded(tmp_path, make_tfs):
    tfs = make_tfs(4, with_empty=False)
    path = tmp_path / "f.root"
    with TimeframeWriter(path, flush_timeframes=100, flush_clusters=1) as writer:
        for tf in tfs:
            writer.write(tf)
            assert writer._buffer == []  # flushed right away
    with TimeframeReader(path) as reader:
        assert reader.chunk_ranges() == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_writer_casts_model_dtypes(tmp_path, make_tfs):
    tf = make_tfs(1, with_empty=False)[0]
    tf.clusters.mc_label = tf.clusters.mc_label.astype(np.int64)
    tf.particles.collision = tf.particles.collision.astype(np.int64)
    path = tmp_path / "cast.root"
    write_timeframes(path, [tf])
    back = read_timeframe(path, 0)
    assert back.clusters.mc_label.dtype == np.int32
    assert_timeframes_equal(tf, back, check_dtype=False)


def test_strings_added_after_first_flush_are_kept(tmp_path, make_tfs):
    tfs = make_tfs(3, with_empty=False)
    tfs[2].meta.run_period = "LHC25xy"
    tfs[2].meta.system = "OO"
    path = tmp_path / "s.root"
    write_timeframes(path, tfs, flush_timeframes=1)
    back = read_timeframes(path)
    assert [tf.meta.system for tf in back] == [tf.meta.system for tf in tfs]
    assert back[2].meta.run_period == "LHC25xy"
    with open_timeframes(path) as reader:
        assert reader.metadata["systems"] == ["pp", "pbpb", "OO"]


def test_closed_reader_is_not_a_bad_file(alice_file):
    reader = TimeframeReader(alice_file, skip_bad=True)
    reader.close()
    with pytest.raises(ValueError, match="closed TimeframeReader"):
        list(reader)
    assert reader.n_skipped == 0


@settings(max_examples=15, deadline=None)
@given(
    sizes=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 6)), min_size=1, max_size=6),
    step=st.one_of(st.none(), st.integers(1, 4)),
    flush=st.integers(1, 4),
    layout=st.sampled_from(["alice_dyn", "o2"]),
)
def test_round_trip_property(sizes, step, flush, layout):
    tfs = [
        synthetic_timeframe(i, tf_id=i, n_collisions=n_col, particles_per_collision=n_part)
        for i, (n_col, n_part) in enumerate(sizes)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "p.root")
        write_timeframes(path, tfs, layout=layout, flush_timeframes=flush)
        with TimeframeReader(path, step=step) as reader:
            back = list(reader)
    assert len(back) == len(tfs)
    for a, b in zip(tfs, back, strict=True):
        if layout == "alice_dyn":
            assert_timeframes_equal(a, b)
        else:
            np.testing.assert_array_equal(a.clusters.records, b.clusters.records)
            np.testing.assert_array_equal(a.clusters.mc_label, b.clusters.mc_label)


def test_default_chunks_are_capped_for_foreign_files(alice_file, monkeypatch):
    import alice_dyn.io.reader as reader_module

    monkeypatch.setattr(reader_module, "MAX_CHUNK", "1 kB")  # smaller than one timeframe
    with TimeframeReader(alice_file) as reader:
        assert reader.chunk_ranges() == [(i, i + 1) for i in range(5)]
        assert len(list(reader)) == 5


def test_memory_does_not_grow_with_the_file(tmp_path):
    tf = synthetic_timeframe(0, n_collisions=6, particles_per_collision=30)

    def peak_reading(n: int) -> int:
        path = tmp_path / f"m{n}.root"
        write_timeframes(path, [tf] * n, flush_timeframes=2)
        tracemalloc.start()
        try:
            with TimeframeReader(path) as reader:
                assert sum(1 for _ in reader) == n
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_reading(4)  # warm-up: first-use caches of uproot and awkward
    small, large = peak_reading(8), peak_reading(64)
    assert large < 1.5 * small + 1_000_000, (small, large)
