"""O2 ClusterNative records and the per-timeframe buffer (alice_dyn.tpc.cluster_native)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from alice_dyn.tpc import cluster_native as cn
from alice_dyn.tpc.cluster_native import (
    CLUSTER_NATIVE_DTYPE,
    ClusterNativeFormatError,
    cluster_count_index,
    decode_o2_buffer,
    encode_o2_buffer,
    pack_clusters,
    sector_row_from_index,
    unpack_clusters,
)

INDEX_BYTES = 36 * 152 * 4
MAX_TIME = (2**24 - 1) / 64
MAX_PAD = 65535 / 64
MAX_SIGMA = 255 / 32
MAX_Q = 65535

#: (field, upper end of the representable range, half a fixed-point step)
FIELDS = [
    ("time", MAX_TIME, 1 / 128),
    ("pad", MAX_PAD, 1 / 128),
    ("sigma_time", MAX_SIGMA, 1 / 64),
    ("sigma_pad", MAX_SIGMA, 1 / 64),
    ("q_max", MAX_Q, 0.5),
    ("q_tot", MAX_Q, 0.5),
]
FIELD_NAMES = [f for f, _, _ in FIELDS]


def _pack(n: int, flags=0, **values) -> np.ndarray:
    """pack_clusters with every field zero unless given."""
    args = {f: np.asarray(values.get(f, np.zeros(n)), dtype=np.float64) for f in FIELD_NAMES}
    return pack_clusters(**args, flags=flags)


def _random_records(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=12 * n, dtype=np.uint8).view(CLUSTER_NATIVE_DTYPE)


# --- record layout -----------------------------------------------------------------------------


def test_dtype_layout():
    dt = CLUSTER_NATIVE_DTYPE
    assert dt.itemsize == 12
    assert dt.names == (
        "timeFlagsPacked",
        "padPacked",
        "sigmaTimePacked",
        "sigmaPadPacked",
        "qMax",
        "qTot",
    )
    offsets = {name: dt.fields[name][1] for name in dt.names}
    assert offsets == {
        "timeFlagsPacked": 0,
        "padPacked": 4,
        "sigmaTimePacked": 6,
        "sigmaPadPacked": 7,
        "qMax": 8,
        "qTot": 10,
    }
    kinds = {name: dt.fields[name][0].str for name in dt.names}
    assert kinds == {
        "timeFlagsPacked": "<u4",
        "padPacked": "<u2",
        "sigmaTimePacked": "|u1",
        "sigmaPadPacked": "|u1",
        "qMax": "<u2",
        "qTot": "<u2",
    }
    assert cn.CLUSTER_COUNT_INDEX_BYTES == INDEX_BYTES == 21_888
    assert (cn.FLAG_SPLIT_PAD, cn.FLAG_SPLIT_TIME, cn.FLAG_EDGE, cn.FLAG_SINGLE) == (1, 2, 4, 8)


def test_hand_computed_record_bytes():
    rec = pack_clusters(
        time=np.array([1.5]),
        pad=np.array([10.25]),
        sigma_time=np.array([0.5]),
        sigma_pad=np.array([1.0]),
        q_max=np.array([100.0]),
        q_tot=np.array([1234.0]),
        flags=cn.FLAG_EDGE,
    )
    assert rec.dtype == CLUSTER_NATIVE_DTYPE and rec.shape == (1,)
    assert int(rec["timeFlagsPacked"][0]) == 96 | (0x04 << 24)
    assert int(rec["padPacked"][0]) == 656
    assert int(rec["sigmaTimePacked"][0]) == 16
    assert int(rec["sigmaPadPacked"][0]) == 32
    assert int(rec["qMax"][0]) == 100 and int(rec["qTot"][0]) == 1234
    expected = struct.pack("<IHBBHH", 96 | (0x04 << 24), 656, 16, 32, 100, 1234)
    assert rec.tobytes() == expected
    assert rec.tobytes() == bytes.fromhex("60000004900210206400d204")


def test_unpack_hand_computed_record():
    raw = struct.pack(
        "<IHBBHH", 96 | ((cn.FLAG_SPLIT_PAD | cn.FLAG_SINGLE) << 24), 656, 16, 32, 7, 9
    )
    u = unpack_clusters(np.frombuffer(raw, dtype=CLUSTER_NATIVE_DTYPE))
    assert len(u) == 1
    assert u.time.dtype == np.float32 and u.flags.dtype == np.uint8
    assert (u.time[0], u.pad[0], u.sigma_time[0], u.sigma_pad[0]) == (1.5, 10.25, 0.5, 1.0)
    assert (u.q_max[0], u.q_tot[0]) == (7.0, 9.0)
    assert int(u.flags[0]) == 0x9


def test_unpack_rejects_other_dtypes():
    with pytest.raises(ClusterNativeFormatError):
        unpack_clusters(np.zeros(3, dtype=np.uint32))
    with pytest.raises(ClusterNativeFormatError):
        unpack_clusters(np.zeros(3, dtype=CLUSTER_NATIVE_DTYPE.newbyteorder(">")))


# --- pack / unpack -----------------------------------------------------------------------------


@st.composite
def in_range_clusters(draw):
    n = draw(st.integers(1, 20))
    cols = {f: draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, hi))) for f, hi, _ in FIELDS}
    flags = draw(hnp.arrays(np.uint8, n))
    return cols, flags


@settings(max_examples=200, deadline=None)
@given(in_range_clusters())
def test_pack_unpack_round_trip(data):
    cols, flags = data
    u = unpack_clusters(pack_clusters(**cols, flags=flags))
    for f, _, half_step in FIELDS:
        got = getattr(u, f).astype(np.float64)
        assert np.all(np.abs(got - cols[f]) <= half_step * (1 + 1e-12)), f
    np.testing.assert_array_equal(u.flags, flags)


@settings(max_examples=200, deadline=None)
@given(
    time=hnp.arrays(np.float64, 8, elements=st.floats(0.0, MAX_TIME)),
    flags=hnp.arrays(np.uint8, 8),
)
def test_flags_in_high_byte_independent_of_time(time, flags):
    with_flags = _pack(8, flags=flags, time=time)
    without = _pack(8, time=time)
    tf = with_flags["timeFlagsPacked"]
    np.testing.assert_array_equal(tf >> 24, flags)
    np.testing.assert_array_equal(tf & 0x00FFFFFF, without["timeFlagsPacked"])
    assert (without["timeFlagsPacked"] >> 24 == 0).all()
    np.testing.assert_array_equal(unpack_clusters(with_flags).time, unpack_clusters(without).time)


def test_flags_scalar_broadcast_and_masked_to_8_bits():
    recs = _pack(3, flags=cn.FLAG_EDGE | cn.FLAG_SPLIT_TIME, time=[1.0, 2.0, 3.0])
    assert unpack_clusters(recs).flags.tolist() == [6, 6, 6]
    recs = _pack(2, flags=np.array([0x1FF, 0x100]), time=[1.0, 1.0])
    assert unpack_clusters(recs).flags.tolist() == [0xFF, 0x00]
    assert (recs["timeFlagsPacked"] & 0xFFFFFF).tolist() == [64, 64]


def test_rounding_to_nearest_step():
    recs = _pack(4, time=[0.0, 1 / 64, 0.007, 0.009], pad=[0.0, 1 / 64, 1.0, 2.99])
    assert recs["timeFlagsPacked"].tolist() == [0, 1, 0, 1]
    assert recs["padPacked"].tolist() == [0, 1, 64, 191]


@pytest.mark.parametrize(
    "field,packed_field,max_packed,max_value",
    [
        ("time", "timeFlagsPacked", 0xFFFFFF, MAX_TIME),
        ("pad", "padPacked", 0xFFFF, MAX_PAD),
        ("sigma_time", "sigmaTimePacked", 0xFF, MAX_SIGMA),
        ("sigma_pad", "sigmaPadPacked", 0xFF, MAX_SIGMA),
        ("q_max", "qMax", 0xFFFF, MAX_Q),
        ("q_tot", "qTot", 0xFFFF, MAX_Q),
    ],
)
def test_clamping(field, packed_field, max_packed, max_value):
    values = np.array([-1e30, -np.inf, -1.0, -1e-3, max_value + 1.0, 1e30, np.inf])
    recs = _pack(values.size, **{field: values})
    assert recs[packed_field].tolist() == [0, 0, 0, 0, max_packed, max_packed, max_packed]
    got = getattr(unpack_clusters(recs), field)
    assert got.tolist() == [0.0] * 4 + [pytest.approx(max_value)] * 3
    assert got[-1] == np.float32(max_value)
    # clamping never spills into the other fields (time never reaches the flag bits)
    others = [n for n in CLUSTER_NATIVE_DTYPE.names if n != packed_field]
    for name in others:
        assert (recs[name] == 0).all(), name


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FIELDS), st.floats(-1e300, 1e300) | st.sampled_from([-np.inf, np.inf]))
def test_clamping_property(field_spec, value):
    field, hi, half_step = field_spec
    got = float(getattr(unpack_clusters(_pack(1, **{field: [value]})), field)[0])
    assert 0.0 <= got <= hi
    expected = min(max(value, 0.0), hi)
    assert abs(got - expected) <= half_step * (1 + 1e-12)


def test_clamping_huge_finite_values_without_warning():
    recs = _pack(1, time=[1.7e308], pad=[1.7e308], sigma_time=[1.7e308], sigma_pad=[1.7e308])
    assert int(recs["timeFlagsPacked"][0]) == 0xFFFFFF
    assert int(recs["padPacked"][0]) == 0xFFFF


def test_nan_packs_as_zero():
    """Documented here: NaN in any field packs to 0 (like a negative value), without warnings."""
    nan = np.full(2, np.nan)
    recs = pack_clusters(nan, nan, nan, nan, nan, nan, flags=cn.FLAG_SINGLE)
    for name in ("padPacked", "sigmaTimePacked", "sigmaPadPacked", "qMax", "qTot"):
        assert (recs[name] == 0).all(), name
    assert (recs["timeFlagsPacked"] == cn.FLAG_SINGLE << 24).all()
    u = unpack_clusters(recs)
    assert (u.time == 0).all() and (u.pad == 0).all() and (u.q_tot == 0).all()
    assert (u.flags == cn.FLAG_SINGLE).all()
    # a NaN in one record does not touch its neighbours
    recs = _pack(3, pad=[1.0, np.nan, 2.0])
    assert recs["padPacked"].tolist() == [64, 0, 128]


def test_pack_empty():
    recs = _pack(0)
    assert recs.shape == (0,) and recs.dtype == CLUSTER_NATIVE_DTYPE
    assert len(unpack_clusters(recs)) == 0


# --- ClusterCountIndex -------------------------------------------------------------------------


def test_cluster_count_index_counts():
    sector = np.array([0, 0, 0, 35, 17, 18, 0])
    row = np.array([5, 5, 6, 151, 0, 0, 5])
    index = cluster_count_index(sector, row)
    assert index.shape == (36, 152) and index.dtype == np.uint32
    assert int(index.sum()) == 7
    assert index[0, 5] == 3 and index[0, 6] == 1 and index[35, 151] == 1
    assert index[17, 0] == 1 and index[18, 0] == 1
    expected = np.zeros((36, 152), dtype=np.uint32)
    np.add.at(expected, (sector, row), 1)
    np.testing.assert_array_equal(index, expected)
    assert (cluster_count_index(np.array([], int), np.array([], int)) == 0).all()


@pytest.mark.parametrize(
    "sector,row,match",
    [([36], [0], "sector"), ([-1], [0], "sector"), ([0], [152], "row"), ([0], [-1], "row")],
)
def test_cluster_count_index_out_of_range(sector, row, match):
    with pytest.raises(ClusterNativeFormatError, match=match):
        cluster_count_index(np.array(sector), np.array(row))


def test_sector_row_from_index():
    index = np.zeros((36, 152), dtype=np.uint32)
    index[0, 5] = 2
    index[3, 0] = 1
    index[35, 151] = 1
    index[17, 100] = 3
    sector, row = sector_row_from_index(index)
    assert sector.dtype == np.uint8 and row.dtype == np.uint8
    assert sector.tolist() == [0, 0, 3, 17, 17, 17, 35]
    assert row.tolist() == [5, 5, 0, 100, 100, 100, 151]
    s0, r0 = sector_row_from_index(np.zeros((36, 152), dtype=np.uint32))
    assert s0.size == 0 and r0.size == 0


@settings(max_examples=100, deadline=None)
@given(
    sector=hnp.arrays(np.int64, st.integers(0, 50), elements=st.integers(0, 35)),
    seed=st.integers(0, 2**32 - 1),
)
def test_index_expands_to_sorted_sector_row(sector, seed):
    row = np.random.default_rng(seed).integers(0, 152, sector.size)
    s, r = sector_row_from_index(cluster_count_index(sector, row))
    order = np.lexsort((row, sector))
    np.testing.assert_array_equal(s, sector[order])
    np.testing.assert_array_equal(r, row[order])


# --- O2 buffer ---------------------------------------------------------------------------------


def test_encode_layout():
    rng = np.random.default_rng(5)
    n = 9
    records = _random_records(rng, n)
    sector = np.array([3, 0, 3, 35, 0, 3, 0, 18, 3])
    row = np.array([7, 2, 7, 151, 2, 1, 150, 0, 7])
    buf = encode_o2_buffer(records, sector, row)
    assert buf.dtype == np.uint8 and buf.shape == (21_888 + 12 * n,)
    index = cluster_count_index(sector, row)
    assert buf[:INDEX_BYTES].tobytes() == index.astype("<u4").tobytes()
    # the count of (sector 0, row 2) is the uint32 at byte offset 4 * (0 * 152 + 2)
    assert struct.unpack_from("<I", buf.tobytes(), 4 * 2)[0] == 2
    assert struct.unpack_from("<I", buf.tobytes(), 4 * (3 * 152 + 7))[0] == 3
    # records by (sector, row), equal keys kept in input order (stable)
    order = [1, 4, 6, 5, 0, 2, 8, 7, 3]
    assert buf[INDEX_BYTES:].tobytes() == records[order].tobytes()
    for k in range(n):
        assert buf[INDEX_BYTES + 12 * k : INDEX_BYTES + 12 * (k + 1)].tobytes() == (
            records[order[k]].tobytes()
        )


def test_encode_empty():
    buf = encode_o2_buffer(np.empty(0, CLUSTER_NATIVE_DTYPE), np.array([], int), np.array([], int))
    assert buf.shape == (21_888,) and not buf.any()
    index, records = decode_o2_buffer(buf)
    assert records.shape == (0,) and not index.any()


def test_encode_errors():
    recs = _random_records(np.random.default_rng(0), 2)
    with pytest.raises(ClusterNativeFormatError, match="differ in length"):
        encode_o2_buffer(recs, np.array([0, 1, 2]), np.array([0, 1]))
    with pytest.raises(ClusterNativeFormatError):
        encode_o2_buffer(recs.view(np.uint8), np.array([0]), np.array([0]))
    with pytest.raises(ClusterNativeFormatError, match="sector"):
        encode_o2_buffer(recs, np.array([0, 36]), np.array([0, 1]))


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 40),
    n_keys=st.integers(1, 36 * 152),
    seed=st.integers(0, 2**32 - 1),
    as_bytes=st.booleans(),
)
def test_encode_decode_round_trip(n, n_keys, seed, as_bytes):
    rng = np.random.default_rng(seed)
    records = _random_records(rng, n)
    keys = rng.integers(0, n_keys, n)  # few keys -> many clusters share a (sector, row)
    sector, row = keys % 36, (keys * 7) % 152
    buf = encode_o2_buffer(records, sector, row)
    assert buf.size == 21_888 + 12 * n
    index, decoded = decode_o2_buffer(buf.tobytes() if as_bytes else buf)
    assert index.shape == (36, 152)
    assert decoded.dtype == CLUSTER_NATIVE_DTYPE and decoded.shape == (n,)
    np.testing.assert_array_equal(index, cluster_count_index(sector, row))
    order = np.argsort(sector * 152 + row, kind="stable")
    assert decoded.tobytes() == records[order].tobytes()
    s, r = sector_row_from_index(index)
    np.testing.assert_array_equal(s, sector[order])
    np.testing.assert_array_equal(r, row[order])
    # the decoded records unpack to the same values as the originals
    a, b = unpack_clusters(decoded), unpack_clusters(records[order])
    for f in [*FIELD_NAMES, "flags"]:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_decode_too_short():
    with pytest.raises(ClusterNativeFormatError, match=r"100 bytes.*21888"):
        decode_o2_buffer(bytes(100))
    with pytest.raises(ClusterNativeFormatError, match=r"21887 bytes.*21888"):
        decode_o2_buffer(np.zeros(21_887, dtype=np.uint8))
    with pytest.raises(ClusterNativeFormatError, match=r"\b0 bytes"):
        decode_o2_buffer(b"")


@pytest.mark.parametrize("extra", [1, 11, 13, 25])
def test_decode_partial_record(extra):
    buf = np.zeros(21_888 + extra, dtype=np.uint8)
    with pytest.raises(ClusterNativeFormatError, match=rf"\b{extra} bytes.*12-byte"):
        decode_o2_buffer(buf)


def test_decode_count_mismatch():
    rng = np.random.default_rng(1)
    buf = encode_o2_buffer(_random_records(rng, 3), np.array([0, 1, 2]), np.array([0, 0, 0]))
    # one record dropped: the index still counts 3
    with pytest.raises(ClusterNativeFormatError, match=r"counts 3 clusters.*holds 2"):
        decode_o2_buffer(buf[:-12])
    # one record too many
    with pytest.raises(ClusterNativeFormatError, match=r"counts 3 clusters.*holds 4"):
        decode_o2_buffer(np.concatenate([buf, buf[-12:]]))
    # a corrupted count
    bad = buf.copy()
    bad[:4] = np.frombuffer(struct.pack("<I", 1000), dtype=np.uint8)
    with pytest.raises(ClusterNativeFormatError, match=r"counts 1002 clusters.*holds 3"):
        decode_o2_buffer(bad)
    # every count at the uint32 maximum must not wrap around to a plausible total
    huge = np.full(21_888, 0xFF, dtype=np.uint8)
    with pytest.raises(ClusterNativeFormatError, match=r"holds 0"):
        decode_o2_buffer(huge)
