"""Kernels: every CPU twin and numba.cuda twin against its NumPy reference; backends; physics.

* CPU twins (Numba) against the references on random and simulated inputs (hypothesis where
  cheap);
* numba.cuda twins against the references under numba's CUDA simulator (``xp=numpy``, small
  inputs; conftest sets ``NUMBA_ENABLE_CUDASIM=1``); on a real GPU with the simulator off they
  run with host arrays;
* ``@pytest.mark.gpu``: the ``gpu`` backend (CuPy + numba.cuda) against the ``cpu`` backend
  on a real device (run with ``NUMBA_ENABLE_CUDASIM=0 pytest -m gpu``);
* the helix fit + extrapolation against the simulation's TOF hits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba.core import config as numba_config

from alice_dyn import kernels as K
from alice_dyn.kernels import _cuda
from alice_dyn.kernels import binning as kb
from alice_dyn.qa.sim_qa import truncated_mean
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc import transform as tr
from alice_dyn.tpc.cluster_native import (
    ClusterNativeFormatError,
    encode_o2_buffer,
    pack_clusters,
    unpack_clusters,
)
from alice_dyn.tpc.geometry import DEFAULT_GAS

# pytest imports numba.core.errors while it reads pyproject's filterwarnings (the
# NumbaPerformanceWarning entry), i.e. before conftest sets NUMBA_ENABLE_CUDASIM=1, so numba read
# the variable as unset. Re-read it: numba.cuda (imported lazily by the kernels, not yet here)
# then starts as the simulator.
numba_config.reload_config()

HYP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _real_gpu() -> bool:
    return K.gpu_available() and not _cuda.cuda_simulator()


needs_numba_cuda = pytest.mark.skipif(
    not _cuda.numba_cuda_available(),
    reason="numba.cuda cannot launch kernels here (no device and the simulator is off)",
)
needs_real_gpu = pytest.mark.skipif(
    not _real_gpu(),
    reason="needs CuPy with a working CUDA device and NUMBA_ENABLE_CUDASIM=0",
)


# ------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------


def random_clusters(rng: np.random.Generator, n: int, sorted_: bool = False):
    """``(records, sector uint8, row uint8)`` of ``n`` random valid clusters."""
    sector = rng.integers(0, geo.N_SECTORS, n).astype(np.uint8)
    row = rng.integers(0, geo.N_ROWS, n).astype(np.uint8)
    if sorted_:
        o = np.lexsort((row, sector))
        sector, row = sector[o], row[o]
    rec = pack_clusters(
        rng.uniform(0, 20000, n),
        rng.uniform(0, geo.ROW_N_PADS[row]),
        rng.uniform(0, 3, n),
        rng.uniform(0, 3, n),
        rng.uniform(0, 1100, n),
        rng.uniform(0, 5000, n),
        rng.integers(0, 16, n),
    )
    return rec, sector, row


def random_tracks(rng: np.random.Generator, n_tracks: int, n_clusters: int, max_n: int = 60):
    """``(refs int32, start int32, n int16)``: tracks over a shuffled subset of clusters."""
    n = rng.integers(0, max_n, n_tracks).astype(np.int16)
    refs = rng.integers(0, max(n_clusters, 1), int(n.sum())).astype(np.int32)
    start = (np.cumsum(n) - n).astype(np.int32)
    perm = rng.permutation(n_tracks)  # tracks need not be stored in order
    return refs, start[perm], n[perm]


def synthetic_helices(rng, n_tracks, noise=0.05, min_n=0, max_n=150):
    """Clusters on random helices through the origin, shuffled in memory.

    Returns ``(refs, start, n, gx, gy, gz, truth)``, truth rows ``(xc, yc, R, tgl, z0, sense)``.
    """
    xs, ys, zs, ns, truth = [], [], [], [], []
    for _ in range(n_tracks):
        r = rng.uniform(100.0, 8000.0)
        phi_d = rng.uniform(-np.pi, np.pi)
        sense = rng.choice([-1, 1])
        xc, yc = -sense * r * np.sin(phi_d), sense * r * np.cos(phi_d)
        m = int(rng.integers(min_n, max_n))
        s = np.sort(rng.uniform(85.0, 250.0, m))
        ph = np.arctan2(-yc, -xc) + sense * s / r
        tgl, z0 = rng.uniform(-1, 1), rng.uniform(-10, 10)
        xs.append(xc + r * np.cos(ph) + rng.normal(0, noise, m))
        ys.append(yc + r * np.sin(ph) + rng.normal(0, noise, m))
        zs.append(z0 + tgl * s + rng.normal(0, noise, m))
        ns.append(m)
        truth.append((xc, yc, r, tgl, z0, sense))
    gx, gy, gz = (np.concatenate(a).astype(np.float32) for a in (xs, ys, zs))
    n = np.array(ns, np.int16)
    start = (np.cumsum(n) - n).astype(np.int32)
    perm = rng.permutation(len(gx))
    refs = np.argsort(perm).astype(np.int32)
    return refs, start, n, gx[perm], gy[perm], gz[perm], np.array(truth)


def assert_tuple_equal(a, b, *, rtol=0.0, atol=0.0, maxulp=None):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
        if maxulp is not None:
            np.testing.assert_array_max_ulp(x, y, maxulp=maxulp)
        elif rtol or atol:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, equal_nan=True)
        else:
            np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def sim_tf():
    """A small simulated pp timeframe (a few hundred clusters per track, noise included)."""
    from alice_dyn.sim import SimConfig, simulate_timeframe

    cfg = SimConfig.for_system("pp", collisions_per_tf=3)
    return simulate_timeframe(cfg, 3)


# ------------------------------------------------------------------------------------------
# backends
# ------------------------------------------------------------------------------------------


def test_backend_registry():
    cpu = K.get_backend("cpu")
    assert cpu.name == "cpu" and cpu.xp is np and not cpu.is_gpu
    assert K.get_backend(cpu) is cpu and K.get_backend(" CPU ") is cpu
    assert set(K.BACKEND_NAMES) == {"auto", "cpu", "gpu"}
    assert K.get_backend("auto").name == ("gpu" if K.gpu_available() else "cpu")
    with pytest.raises(ValueError, match="unknown kernel backend"):
        K.get_backend("tpu")
    a = np.arange(5.0)
    assert cpu.asarray(a) is a and cpu.to_numpy(a) is a


@pytest.mark.skipif(K.gpu_available(), reason="a GPU is available here")
def test_gpu_backend_unavailable_has_install_hint():
    with pytest.raises(K.BackendUnavailableError, match=r"alice-dyn\[gpu\]|CUDA device"):
        K.get_backend("gpu")
    with pytest.raises(K.BackendUnavailableError):
        K.transform_clusters_gpu(*random_clusters(np.random.default_rng(0), 3))


def test_to_torch_shares_memory():
    cpu = K.get_backend("cpu")
    for a in (
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.zeros(7, np.bool_),
        np.arange(10.0)[::2],
        np.zeros((0, 3), np.float32),
    ):
        t = cpu.to_torch(a)
        assert tuple(t.shape) == a.shape
        assert np.shares_memory(t.numpy(), a) or a.size == 0
    rng = np.random.default_rng(1)
    refs, start, n = random_tracks(rng, 20, 100)
    feats, mask = K.padded_track_features(refs, start, n, rng.normal(size=(100, 4)), 16)
    tf, tm = cpu.to_torch(feats), cpu.to_torch(mask)
    assert np.shares_memory(tf.numpy(), feats) and np.shares_memory(tm.numpy(), mask)
    tf[0, 0, 0] = 123.0  # writes go through
    assert feats[0, 0, 0] == 123.0


# ------------------------------------------------------------------------------------------
# cluster transform
# ------------------------------------------------------------------------------------------


def test_transform_reference_matches_tpc_transform():
    rec, sector, row = random_clusters(np.random.default_rng(2), 500)
    ref = K.transform_clusters_ref(rec, sector, row, 17.5)
    u = unpack_clusters(rec)
    gx, gy, gz = tr.pad_time_to_global(sector, row, u.pad, u.time, 17.5, DEFAULT_GAS)
    _, y, _ = tr.pad_time_to_local(sector, row, u.pad, u.time, 17.5, DEFAULT_GAS)
    np.testing.assert_array_equal(ref.pad, u.pad)
    np.testing.assert_array_equal(ref.time, u.time)
    np.testing.assert_array_equal(ref.q_tot, u.q_tot)
    np.testing.assert_array_equal(ref.q_max, u.q_max)
    for a, b in ((ref.gx, gx), (ref.gy, gy), (ref.z, gz), (ref.y, y)):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b.astype(np.float32))


@HYP
@given(
    n=st.integers(0, 400),
    seed=st.integers(0, 2**31),
    t0=st.floats(-100, 1e4),
    vdrift=st.floats(2.4, 2.8),
)
def test_transform_cpu_equals_reference(n, seed, t0, vdrift):
    gas = DEFAULT_GAS.replace(drift_velocity_cm_us=vdrift, t0_time_bins=3.25)
    rec, sector, row = random_clusters(np.random.default_rng(seed), n)
    ref = K.transform_clusters_ref(rec, sector, row, t0, gas)
    assert_tuple_equal(K.transform_clusters_cpu(rec, sector, row, t0, gas), ref, maxulp=1)
    assert_tuple_equal(K.transform_clusters(rec, sector, row, t0, gas), ref, maxulp=1)


def test_transform_cpu_on_simulated_timeframe(sim_tf):
    cl = sim_tf.clusters
    ref = K.transform_clusters_ref(cl.records, cl.sector, cl.row, 0.0)
    assert_tuple_equal(K.transform_clusters_cpu(cl.records, cl.sector, cl.row, 0.0), ref, maxulp=1)


def test_transform_record_forms_and_out():
    rec, sector, row = random_clusters(np.random.default_rng(3), 50)
    ref = K.transform_clusters_ref(rec, sector, row)
    for form in (rec, rec.view(np.uint8), rec.view(np.uint8).view(np.uint32).reshape(-1, 3)):
        assert_tuple_equal(K.transform_clusters_cpu(form, sector, row), ref, maxulp=1)
    gx = np.full(50, np.nan, np.float32)
    res = K.transform_clusters(rec, sector, row, out={"gx": gx})
    assert res.gx is gx and np.array_equal(gx, ref.gx)
    with pytest.raises(ValueError, match="unknown transform output"):
        K.transform_clusters(rec, sector, row, out={"x": gx})
    with pytest.raises(ValueError, match="float32"):
        K.transform_clusters(rec, sector, row, out={"gx": np.zeros(50)})
    with pytest.raises(ClusterNativeFormatError):
        K.transform_clusters(rec.view(np.uint8)[:-1], sector, row)
    with pytest.raises(ValueError, match="sector"):
        K.transform_clusters(rec, sector[:-1], row)


@HYP
@given(n=st.integers(0, 300), seed=st.integers(0, 2**31), t0=st.floats(0, 1e3))
def test_transform_o2_buffer_cpu_equals_reference(n, seed, t0):
    rec, sector, row = random_clusters(np.random.default_rng(seed), n)
    buf = encode_o2_buffer(rec, sector, row)
    ref, s_ref, r_ref = K.transform_o2_buffer_ref(buf, t0)
    out, s, r = K.transform_o2_buffer_cpu(buf, t0)
    assert_tuple_equal(out, ref, maxulp=1)
    assert np.array_equal(s, s_ref) and np.array_equal(r, r_ref) and s.dtype == np.uint8
    out2, _, _ = K.transform_o2_buffer(bytes(buf), t0)
    assert_tuple_equal(out2, ref, maxulp=1)


def test_transform_o2_buffer_errors():
    rec, sector, row = random_clusters(np.random.default_rng(4), 10)
    buf = encode_o2_buffer(rec, sector, row)
    with pytest.raises(ClusterNativeFormatError, match="shorter"):
        K.transform_o2_buffer(buf[:100])
    with pytest.raises(ClusterNativeFormatError, match="whole number"):
        K.transform_o2_buffer(buf[:-5])
    with pytest.raises(ClusterNativeFormatError, match="counts 10 clusters"):
        K.transform_o2_buffer(buf[:-12])


# ------------------------------------------------------------------------------------------
# binning and grid
# ------------------------------------------------------------------------------------------


@HYP
@given(
    n=st.integers(0, 500),
    seed=st.integers(0, 2**31),
    n_sec=st.integers(1, 36),
    quant=st.sampled_from([0.0, 0.5]),
)
def test_bin_clusters_cpu_equals_reference(n, seed, n_sec, quant):
    rng = np.random.default_rng(seed)
    sector = rng.integers(0, n_sec, n).astype(np.uint8)
    row = rng.integers(0, 152, n).astype(np.uint8)
    y = rng.uniform(-40, 40, n).astype(np.float32)
    if quant:
        y = np.round(y / quant) * quant  # many ties in y: order must stay stable
    order, start = K.bin_clusters_cpu(sector, row, y)
    o_ref, s_ref = K.bin_clusters_ref(sector, row, y)
    assert order.dtype == np.int32 and start.shape == (36 * 152 + 1,)
    assert np.array_equal(order, o_ref) and np.array_equal(start, s_ref)


def test_bin_clusters_on_simulated_timeframe(sim_tf):
    cl = sim_tf.clusters
    y = K.transform_clusters(cl.records, cl.sector, cl.row).y
    order, start = K.bin_clusters(cl.sector, cl.row, y)
    o_ref, s_ref = K.bin_clusters_ref(cl.sector, cl.row, y)
    assert np.array_equal(order, o_ref) and np.array_equal(start, s_ref)
    key = cl.sector.astype(int) * 152 + cl.row
    assert np.all(np.diff(key[order]) >= 0)
    b = int(key[0])
    assert np.all(np.diff(y[order[start[b] : start[b + 1]]]) >= 0)
    with pytest.raises(ValueError, match="row"):
        K.bin_clusters(cl.sector, np.full(len(cl.row), 152), y)


@HYP
@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 2**31),
    n_y=st.integers(1, 20),
    n_z=st.integers(1, 40),
    wy=st.floats(0, 30),
    wz=st.floats(0, 200),
)
def test_grid_and_neighbours_equal_reference(n, seed, n_y, n_z, wy, wz):
    rng = np.random.default_rng(seed)
    sector = rng.integers(0, 2, n).astype(np.uint8)
    row = rng.integers(0, 3, n).astype(np.uint8)
    y = rng.uniform(-45, 45, n).astype(np.float32)  # a few beyond the row edges
    z = rng.uniform(-260, 260, n).astype(np.float32)
    g = K.build_grid_cpu(sector, row, y, z, n_y, n_z)
    g_ref = K.build_grid_ref(sector, row, y, z, n_y, n_z)
    assert_tuple_equal(g[:4], g_ref[:4])
    assert g.cell_start.shape == (36 * 152 * n_y * n_z + 1,)
    n_q = 40
    qs = rng.integers(0, 2, n_q).astype(np.uint8)
    qr = rng.integers(0, 3, n_q).astype(np.uint8)
    qy, qz = rng.uniform(-45, 45, n_q), rng.uniform(-260, 260, n_q)
    off, idx = K.neighbours(g, qs, qr, qy, qz, wy, wz)
    off_ref, idx_ref = K.neighbours_ref(sector, row, y, z, qs, qr, qy, qz, wy, wz)
    assert np.array_equal(off, off_ref) and np.array_equal(idx, idx_ref)


def test_neighbours_per_query_windows():
    rng = np.random.default_rng(5)
    n = 200
    sector, row = np.zeros(n, np.uint8), np.full(n, 7, np.uint8)
    y, z = rng.uniform(-10, 10, n), rng.uniform(-50, 50, n)
    g = K.build_grid(sector, row, y, z)
    wy = rng.uniform(0, 3, n)
    off, idx = K.neighbours(g, sector, row, y, z, wy, 5.0)
    off_ref, idx_ref = K.neighbours_ref(sector, row, y, z, sector, row, y, z, wy, 5.0)
    assert np.array_equal(off, off_ref) and np.array_equal(idx, idx_ref)
    assert all(i in idx[off[i] : off[i + 1]] for i in range(n))  # each finds itself
    with pytest.raises(ValueError, match=">= 0"):
        K.neighbours(g, sector, row, y, z, -1.0, 5.0)


# ------------------------------------------------------------------------------------------
# helix fit
# ------------------------------------------------------------------------------------------


def test_helix_fit_cpu_equals_reference_and_truth():
    rng = np.random.default_rng(6)
    refs, start, n, gx, gy, gz, truth = synthetic_helices(rng, 80, min_n=0)
    ref = K.fit_helices_ref(refs, start, n, gx, gy, gz)
    cpu = K.fit_helices_cpu(refs, start, n, gx, gy, gz)
    assert_tuple_equal(cpu, ref, rtol=1e-9, atol=1e-9)
    assert cpu.sense.dtype == np.int8
    bad = n < 3
    assert np.all(np.isnan(cpu.r[bad])) and np.all(cpu.sense[bad] == 0)
    good = n >= 40
    assert np.array_equal(cpu.sense[good], truth[good, 5])
    assert np.median(np.abs(cpu.r[good] / truth[good, 2] - 1)) < 0.03
    assert np.median(np.abs(cpu.tgl[good] - truth[good, 3])) < 1e-3
    assert np.median(np.abs(cpu.z0[good] - truth[good, 4])) < 0.05


def test_helix_fit_exact_and_degenerate():
    # noise-free helices are recovered to rounding; collinear clusters fail cleanly
    rng = np.random.default_rng(7)
    refs, start, n, gx, gy, gz, truth = synthetic_helices(rng, 20, noise=0.0, min_n=10)
    f = K.fit_helices(refs, start, n, gx.astype(np.float64), gy.astype(np.float64), gz)
    np.testing.assert_allclose(f.r, truth[:, 2], rtol=1e-4)
    np.testing.assert_allclose(f.tgl, truth[:, 3], atol=1e-4)
    line = np.arange(10.0) * 10 + 90
    f = K.fit_helices(np.arange(10), [0], [10], line, 0.5 * line, line)
    assert np.isnan(f.r[0]) and f.sense[0] == 0
    with pytest.raises(ValueError, match="exceeds"):
        K.fit_helices(np.arange(10), [5], [10], line, line, line)


# ------------------------------------------------------------------------------------------
# dE/dx
# ------------------------------------------------------------------------------------------


@HYP
@given(seed=st.integers(0, 2**31), n_tracks=st.integers(0, 60), max_n=st.integers(1, 200))
def test_truncated_mean_cpu_equals_reference(seed, n_tracks, max_n):
    rng = np.random.default_rng(seed)
    n_cl = 500
    q = rng.gamma(3.0, 30.0, n_cl).astype(np.float32)
    norm = rng.uniform(0.5, 1.5, n_cl)
    refs, start, n = random_tracks(rng, n_tracks, n_cl, max_n)
    ref = K.truncated_mean_tracks_ref(q, norm, refs, start, n)
    np.testing.assert_allclose(K.truncated_mean_tracks_cpu(q, norm, refs, start, n), ref, 1e-12)
    for t in range(n_tracks):  # the reference is qa.truncated_mean per track
        c = refs[start[t] : start[t] + n[t]]
        exp = truncated_mean(q[c].astype(np.float64) * norm[c])
        np.testing.assert_allclose(ref[t], exp, rtol=1e-12, equal_nan=True)


def test_truncated_mean_fractions_and_cap():
    q = np.arange(1.0, 101.0)
    refs, start, n = np.arange(100), np.array([0, 0, 0]), np.array([100, 1, 0])
    res = K.truncated_mean_tracks(q, np.ones(100), refs, start, n, 0.1, 0.5)
    assert res[0] == pytest.approx(np.mean(np.arange(11.0, 51.0)))
    assert np.isnan(res[1]) and np.isnan(res[2])
    capped = K.truncated_mean_tracks_ref(q, np.ones(100), refs, start, n, 0.1, 0.5, 40)
    assert capped[0] == pytest.approx(np.mean(np.arange(5.0, 21.0)))


# ------------------------------------------------------------------------------------------
# extrapolation and matching
# ------------------------------------------------------------------------------------------


def random_params(rng, n):
    return dict(
        x=rng.uniform(80, 90, n),
        alpha=rng.uniform(-np.pi, np.pi, n),
        y=rng.uniform(-10, 10, n),
        z=rng.uniform(-50, 50, n),
        snp=rng.uniform(-0.8, 0.8, n),
        tgl=rng.uniform(-1, 1, n),
        q2pt=rng.uniform(-6, 6, n),
    )


def test_helix_from_track_params_follows_track_model():
    # the helix must pass through the point the Kalman propagator reaches, with its snp
    from alice_dyn.reco.track_model import propagate

    rng = np.random.default_rng(8)
    prm = random_params(rng, 50)
    prm["snp"] = rng.uniform(-0.3, 0.3, 50)
    prm["q2pt"] = rng.uniform(-2, 2, 50)
    h = K.helix_from_track_params(**prm, bfield_t=0.5)
    x0, y0, _ = K.helix_at(h, np.zeros(50))
    ca, sa = np.cos(prm["alpha"]), np.sin(prm["alpha"])
    np.testing.assert_allclose(x0, prm["x"] * ca - prm["y"] * sa, atol=1e-9)
    np.testing.assert_allclose(y0, prm["x"] * sa + prm["y"] * ca, atol=1e-9)
    for i in range(50):
        p = np.array([prm[k][i] for k in ("y", "z", "snp", "tgl", "q2pt")])
        assert propagate(prm["x"][i], p, np.eye(5), prm["x"][i] + 20.0, 0.5)
        # find the helix point at local x + 20 in the same frame
        s = np.linspace(0, 60, 60001)
        hx, hy, hz = K.helix_at(K.Helix(*(np.full(1, f[i]) for f in h)), s)
        lx = hx * ca[i] + hy * sa[i]
        k = np.argmin(np.abs(lx - (prm["x"][i] + 20.0)))
        ly = -hx[k] * sa[i] + hy[k] * ca[i]
        assert ly == pytest.approx(p[0], abs=2e-3) and hz[k] == pytest.approx(p[1], abs=2e-3)


def test_extrapolation_cpu_equals_reference_and_geometry():
    rng = np.random.default_rng(9)
    h = K.helix_from_track_params(**random_params(rng, 400), bfield_t=0.5)
    ref = K.extrapolate_to_cylinder_ref(h, 380.0)
    cpu = K.extrapolate_to_cylinder_cpu(h, 380.0)
    assert_tuple_equal(cpu, ref, rtol=1e-12, atol=1e-9)
    gx, gy, gz, length, ok = cpu
    assert 0 < ok.sum() < len(ok)  # soft tracks curl up before 380 cm
    np.testing.assert_allclose(np.hypot(gx[ok], gy[ok]), 380.0, rtol=1e-12)
    assert np.all(np.isnan(gx[~ok]))
    s = length / np.sqrt(1.0 + h.tgl**2)
    hx, _, hz = K.helix_at(h, s)
    np.testing.assert_allclose(hx[ok], gx[ok], atol=1e-8)
    np.testing.assert_allclose(hz[ok], gz[ok], atol=1e-8)
    # outward: slightly further along, the radius grows; no earlier outward crossing
    hx2, hy2, _ = K.helix_at(h, s + 1e-3)
    assert np.all(np.hypot(hx2, hy2)[ok] > 380.0)
    # stiff tracks: path close to the straight line
    stiff = np.abs(h.r) > 1e4
    assert np.all(ok[stiff])


def test_extrapolation_from_inside_and_outside():
    # a circle through the origin: reference inside reaches the cylinder; a reference already
    # outside, moving outward, gets the outward crossing of the next turn
    h = K.Helix(*(np.array([v]) for v in (0.0, 300.0, 300.0, 1, -np.pi / 2, 0.5, 0.0)))
    gx, gy, _, length, ok = K.extrapolate_to_cylinder(h, 380.0)
    assert ok[0] and np.hypot(gx[0], gy[0]) == pytest.approx(380.0)
    beta = np.arccos((300**2 + 300**2 - 380**2) / (2 * 300 * 300))
    assert length[0] == pytest.approx(300 * beta * np.sqrt(1.25))
    small = K.Helix(*(np.array([v]) for v in (0.0, 100.0, 100.0, 1, -np.pi / 2, 0.0, 0.0)))
    assert not K.extrapolate_to_cylinder(small, 380.0)[4][0]


@HYP
@given(seed=st.integers(0, 2**31), n_hit=st.integers(0, 300), w=st.floats(0.1, 50))
def test_match_hits_cpu_equals_reference(seed, n_hit, w):
    rng = np.random.default_rng(seed)
    n_tr = 100
    ph_t = rng.uniform(-np.pi, np.pi, n_tr)
    ph_t[:5] = [np.pi, -np.pi, np.pi - 1e-4, -np.pi + 1e-4, 0.0]  # the phi seam
    tp = np.c_[380 * np.cos(ph_t), 380 * np.sin(ph_t), rng.uniform(-300, 300, n_tr)]
    tp[5] = np.nan
    ph_h = rng.uniform(-np.pi, np.pi, n_hit)
    hp = np.c_[380 * np.cos(ph_h), 380 * np.sin(ph_h), rng.uniform(-300, 300, n_hit)]
    if n_hit > 10:
        hp[:10] = tp[:10] + rng.normal(0, 1, (10, 3))
        hp[:10, :2] *= 380.0 / np.hypot(hp[:10, 0], hp[:10, 1])[:, None]
    ref = K.match_hits_ref(tp, hp, w, 2 * w)
    assert np.array_equal(K.match_hits_cpu(tp, hp, w, 2 * w), ref)
    assert ref[5] == -1


def test_match_hits_window_and_ties():
    tp = np.array([[380.0, 0.0, 0.0], [-380.0, 1e-3, 0.0]])
    hp = np.array([[380.0, 2.0, 0.0], [380.0, -2.0, 0.0], [-380.0, -1.0, 0.5], [0, 380, 0]])
    # track 0: two hits at equal distance -> the lower index; track 1 across the seam
    assert K.match_hits(tp, hp, 3.0, 3.0).tolist() == [0, 2]
    assert K.match_hits(tp, hp, 1.0, 3.0).tolist() == [-1, -1]


# ------------------------------------------------------------------------------------------
# feature assembly
# ------------------------------------------------------------------------------------------


@HYP
@given(seed=st.integers(0, 2**31), n_tracks=st.integers(0, 50), max_len=st.integers(1, 80))
def test_padded_features_cpu_equals_reference(seed, n_tracks, max_len):
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(300, 5))
    refs, start, n = random_tracks(rng, n_tracks, 300, 100)
    ref = K.padded_track_features_ref(refs, start, n, feats, max_len)
    cpu = K.padded_track_features_cpu(refs, start, n, feats, max_len)
    assert_tuple_equal(cpu, ref)
    assert cpu[0].dtype == np.float32 and cpu[1].dtype == np.bool_
    for t in range(n_tracks):  # first max_len clusters, in reference order, zero padding
        m = min(int(n[t]), max_len)
        np.testing.assert_array_equal(
            cpu[0][t, :m], feats[refs[start[t] : start[t] + m]].astype(np.float32)
        )
        assert not cpu[0][t, m:].any() and cpu[1][t, :m].all() and not cpu[1][t, m:].any()


# ------------------------------------------------------------------------------------------
# numba.cuda twins (CUDA simulator here; host arrays)
# ------------------------------------------------------------------------------------------


@needs_numba_cuda
def test_cuda_transform_equals_reference():
    rec, sector, row = random_clusters(np.random.default_rng(10), 150)
    ref = K.transform_clusters_ref(rec, sector, row, 12.0)
    out = K.transform_clusters_gpu(rec.view(np.uint8), sector, row, 12.0, xp=np)
    assert_tuple_equal(out, ref, maxulp=1)
    rec, sector, row = random_clusters(np.random.default_rng(11), 120, sorted_=True)
    buf = encode_o2_buffer(rec, sector, row)
    ref, s_ref, r_ref = K.transform_o2_buffer_ref(buf, 5.0)
    out, s, r = K.transform_o2_buffer_gpu(buf, 5.0, xp=np)
    assert_tuple_equal(out, ref, maxulp=1)
    assert np.array_equal(s, s_ref) and np.array_equal(r, r_ref)


@needs_numba_cuda
def test_cuda_binning_equals_reference():
    rng = np.random.default_rng(12)
    n = 150
    sector = rng.integers(0, 3, n).astype(np.uint8)
    row = rng.integers(0, 4, n).astype(np.uint8)
    y = np.round(rng.uniform(-20, 20, n)).astype(np.float32)  # ties
    z = rng.uniform(-250, 250, n).astype(np.float32)
    ref = K.bin_clusters_ref(sector, row, y)
    assert_tuple_equal(kb.bin_clusters_gpu(sector, row, y, xp=np), ref)
    g = K.build_grid_gpu(sector, row, y, z, 2, 3, xp=np)
    assert_tuple_equal(g[:4], K.build_grid_ref(sector, row, y, z, 2, 3)[:4])


@needs_numba_cuda
def test_cuda_helix_fit_equals_reference():
    refs, start, n, gx, gy, gz, _ = synthetic_helices(np.random.default_rng(13), 30, max_n=40)
    ref = K.fit_helices_ref(refs, start, n, gx, gy, gz)
    gpu = K.fit_helices_gpu(refs, start, n, gx, gy, gz, xp=np)
    assert_tuple_equal(gpu, ref, rtol=1e-9, atol=1e-9)


@needs_numba_cuda
def test_cuda_dedx_equals_reference_and_caps():
    rng = np.random.default_rng(14)
    q, norm = rng.gamma(3.0, 30.0, 700), rng.uniform(0.5, 1.5, 700)
    refs, start, n = random_tracks(rng, 30, 700, 120)
    n[0], start[0] = 600, 0  # a looper beyond the 512-cluster cap
    refs = np.concatenate([refs, rng.integers(0, 700, 600).astype(np.int32)])
    ref = K.truncated_mean_tracks_ref(q, norm, refs, start, n, max_clusters=K.GPU_MAX_CLUSTERS)
    gpu = K.truncated_mean_tracks_gpu(q, norm, refs, start, n, xp=np)
    np.testing.assert_allclose(gpu, ref, rtol=1e-12)
    assert gpu[0] != pytest.approx(K.truncated_mean_tracks_ref(q, norm, refs, start, n)[0])


@needs_numba_cuda
def test_cuda_matching_equals_reference():
    rng = np.random.default_rng(15)
    h = K.helix_from_track_params(**random_params(rng, 60), bfield_t=0.5)
    ref = K.extrapolate_to_cylinder_ref(h, 380.0)
    assert_tuple_equal(K.extrapolate_to_cylinder_gpu(h, 380.0, xp=np), ref, rtol=1e-12, atol=1e-9)
    tp = np.c_[ref[0], ref[1], ref[2]]
    hp = tp[ref[4]][::2] + rng.normal(0, 1.0, (len(tp[ref[4]][::2]), 3))
    m_ref = K.match_hits_ref(tp, hp, 3.0, 3.0)
    assert np.array_equal(K.match_hits_gpu(tp, hp, 3.0, 3.0, xp=np), m_ref)


@needs_numba_cuda
def test_cuda_features_equal_reference():
    rng = np.random.default_rng(16)
    feats = rng.normal(size=(100, 3)).astype(np.float32)
    refs, start, n = random_tracks(rng, 8, 100, 20)
    ref = K.padded_track_features_ref(refs, start, n, feats, 12)
    assert_tuple_equal(K.padded_track_features_gpu(refs, start, n, feats, 12, xp=np), ref)


# Compiles every numba.cuda kernel for the real CUDA target (sm_90 PTX) in a subprocess with
# the simulator off: catches what the simulator cannot (typing and lowering on the device), on
# machines without a GPU. Device functions ask for the current device's compute capability;
# with no driver, a pretend sm_90 device answers.
PTX_CHECK = """
import types
import numba.cuda.dispatcher as disp
from numba import cuda, types as T
from alice_dyn.kernels import binning, dedx, features, helix, matching, transform

disp.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
f4, f8, i2, i4, i8 = T.float32, T.float64, T.int16, T.int32, T.int64
u1, u4, b1, s1 = T.uint8, T.uint32, T.boolean, T.int8
def A(t, nd=1):
    return T.Array(t, nd, "C")
tr, bk, mk = transform._cuda_kernels(), binning._cuda_kernels(), matching._cuda_kernels()
tabs, outs = (A(f8),) * 6, (A(f4),) * 8
sigs = [
    (tr[0], (A(u4, 2), A(u1), A(u1), f8, f8, f8, *tabs, *outs)),
    (tr[1], (A(u4, 2), A(i8), f8, f8, f8, *tabs, A(u1), A(u1), *outs)),
    (bk[0], (A(u1), A(u1), i8, A(i4))),
    (bk[1], (A(u1), A(u1), A(f4), A(f4), i8, i8, f8, A(f8), i8, A(i4))),
    (bk[2], (A(i4), A(i4))),
    (bk[3], (A(i4), A(i4), A(i4), A(i4))),
    (bk[4], (A(i4), A(i4), A(i4), A(f4), b1)),
    (helix._cuda_kernels(), (A(i4), A(i4), A(i2), *(A(f4),) * 3, *(A(f8),) * 6, A(s1), A(f8))),
    (dedx._cuda_kernels(), (A(f4), A(f8), A(i4), A(i4), A(i2), f8, f8, A(f8))),
    (mk[0], (*(A(f8),) * 3, A(s1), *(A(f8),) * 3, f8, *(A(f8),) * 4, A(b1))),
    (mk[1], (*(A(f8),) * 5, f8, f8, A(i4))),
    (features._cuda_kernels(), (A(i4), A(i4), A(i2), A(f8, 2), A(f4, 3), A(b1, 2))),
]
for k, sig in sigs:
    ptx, _ = cuda.compile_ptx(k.py_func, sig, cc=(9, 0))
    assert ".entry" in ptx
print("compiled", len(sigs))
"""


def test_cuda_kernels_compile_to_ptx():
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    probe = "from numba import cuda; cuda.compile_ptx(lambda a: None, '(float32[:],)', cc=(9, 0))"
    if subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode:
        pytest.skip("numba cannot compile PTX here (no NVVM)")
    res = subprocess.run(
        [sys.executable, "-W", "error", "-c", PTX_CHECK], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0 and "compiled 12" in res.stdout, res.stdout + res.stderr[-3000:]


# ------------------------------------------------------------------------------------------
# real GPU: gpu backend against cpu backend
# ------------------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_real_gpu
def test_gpu_backend_equals_cpu_backend(sim_tf):
    gpu, cpu = K.get_backend("gpu"), K.get_backend("cpu")
    cl = sim_tf.clusters
    a = K.transform_clusters(cl.records, cl.sector, cl.row, 3.0, backend=cpu)
    b = K.transform_clusters(cl.records, cl.sector, cl.row, 3.0, backend=gpu)
    assert_tuple_equal(tuple(gpu.to_numpy(x) for x in b), a, maxulp=1)
    buf = encode_o2_buffer(cl.records, cl.sector, cl.row)
    (a2, sa, ra), (b2, sb, rb) = (K.transform_o2_buffer(buf, backend=be) for be in (cpu, gpu))
    assert_tuple_equal(tuple(gpu.to_numpy(x) for x in b2), a2, maxulp=1)
    assert np.array_equal(gpu.to_numpy(sb), sa) and np.array_equal(gpu.to_numpy(rb), ra)
    o_c = K.bin_clusters(cl.sector, cl.row, a.y, backend=cpu)
    o_g = K.bin_clusters(cl.sector, cl.row, a.y, backend=gpu)
    assert_tuple_equal(tuple(gpu.to_numpy(x) for x in o_g), o_c)
    g_c = K.build_grid(cl.sector, cl.row, a.y, a.z, backend=cpu)
    g_g = K.build_grid(cl.sector, cl.row, a.y, a.z, backend=gpu)
    assert_tuple_equal(tuple(gpu.to_numpy(x) for x in g_g[:4]), g_c[:4])

    rng = np.random.default_rng(17)
    refs, start, n, gx, gy, gz, _ = synthetic_helices(rng, 2000)
    f_c = K.fit_helices(refs, start, n, gx, gy, gz, backend=cpu)
    f_g = K.fit_helices(refs, start, n, gx, gy, gz, backend=gpu)
    assert_tuple_equal(tuple(gpu.to_numpy(x) for x in f_g), f_c, rtol=1e-9, atol=1e-9)
    e_c = K.extrapolate_to_cylinder(f_c.helix, 380.0, backend=cpu)
    e_g = K.extrapolate_to_cylinder(f_c.helix, 380.0, backend=gpu)
    assert_tuple_equal(tuple(gpu.to_numpy(x) for x in e_g), e_c, rtol=1e-9, atol=1e-7)
    tp = np.c_[e_c[0], e_c[1], e_c[2]]
    hp = tp[e_c[4]] + rng.normal(0, 2.0, (int(e_c[4].sum()), 3))
    m_c = K.match_hits(tp, hp, 3.0, 3.0, backend=cpu)
    m_g = gpu.to_numpy(K.match_hits(tp, hp, 3.0, 3.0, backend=gpu))
    assert np.mean(m_c == m_g) > 0.999  # atan2 may differ in the last bit at window edges
    q = rng.gamma(3.0, 30.0, len(gx))
    d_c = K.truncated_mean_tracks(q, np.ones_like(q), refs, start, n, backend=cpu)
    d_g = K.truncated_mean_tracks(q, np.ones_like(q), refs, start, n, backend=gpu)
    np.testing.assert_allclose(gpu.to_numpy(d_g), d_c, rtol=1e-12)
    feats = rng.normal(size=(len(gx), 4))
    p_c = K.padded_track_features(refs, start, n, feats, 64, backend=cpu)
    p_g = K.padded_track_features(refs, start, n, feats, 64, backend=gpu)
    assert_tuple_equal(tuple(gpu.to_numpy(x) for x in p_g), p_c)
    t = gpu.to_torch(p_g[0])  # zero-copy CUDA tensor
    assert t.is_cuda and t.data_ptr() == p_g[0].data.ptr


# ------------------------------------------------------------------------------------------
# physics: fit + extrapolation against the simulation's TOF hits
# ------------------------------------------------------------------------------------------


def test_helix_extrapolation_reaches_tof_hits():
    from alice_dyn.sim import SimConfig, simulate_particle_gun

    cfg = SimConfig.for_system("pp")
    rng = np.random.default_rng(18)
    n = 16
    pt = rng.uniform(3.0, 10.0, n)
    phi, eta = rng.uniform(-np.pi, np.pi, n), rng.uniform(-0.7, 0.7, n)
    p = np.c_[pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)]
    tf = simulate_particle_gun(cfg, np.full(n, 2), p, rng.choice([-1, 1], n), time_ns=4000.0)
    cl = tf.clusters
    t0_bins = tf.collisions.time_ns[0] / (geo.TIME_BIN_BC * geo.BUNCH_SPACING_NS)
    xyz = K.transform_clusters(cl.records, cl.sector, cl.row, t0_bins)
    np.testing.assert_allclose(
        xyz.z, tr.time_to_z(cl.sector, xyz.time, t0_bins).astype(np.float32), atol=1e-4
    )
    # tracks from MC labels: clusters inner to outer
    lab = cl.mc_label
    order = np.lexsort((np.hypot(xyz.gx, xyz.gy), lab))
    order = order[lab[order] >= 0].astype(np.int32)
    counts = np.bincount(lab[order], minlength=n)
    start = (np.cumsum(counts) - counts).astype(np.int32)
    fit = K.fit_helices(order, start, counts, xyz.gx, xyz.gy, xyz.z)
    charge = tf.particles.charge.astype(float)
    good = counts >= 60
    assert good.sum() >= n // 2
    # positive tracks in a positive field turn clockwise
    assert np.array_equal(fit.sense[good], np.where(charge[good] > 0, -1, 1))
    pt_fit = fit.r * 0.299792458e-2 * cfg.bfield_t
    assert np.all(np.abs(pt_fit[good] / pt[good] - 1.0) < 0.15)
    np.testing.assert_allclose(fit.tgl[good], np.sinh(eta[good]), atol=0.01)
    gx, gy, gz, length, ok = K.extrapolate_to_cylinder(fit.helix, cfg.tof_radius_cm)
    tof = tf.tof
    sel = good[tof.label]
    assert sel.sum() >= 4
    lab_t = tof.label[sel]
    assert ok[lab_t].all()
    d_rphi = np.hypot(gx[lab_t] - tof.x_cm[sel], gy[lab_t] - tof.y_cm[sel])
    assert np.all(d_rphi < 4.0), d_rphi  # pad size 2.5 cm + scattering in the TRD
    assert np.all(np.abs(gz[lab_t] - tof.z_cm[sel]) < 4.0)
    np.testing.assert_allclose(length[lab_t], tof.mc_length_cm[sel], rtol=0.01)
    # and the matcher finds each particle's own hit
    m = K.match_hits(np.c_[gx, gy, gz], np.c_[tof.x_cm, tof.y_cm, tof.z_cm], 5.0, 5.0)
    assert np.array_equal(tof.label[m[lab_t]], lab_t)
