"""Track network core: the per-cluster feature kernel (twins against the NumPy reference),
the multi-task objective/head of alice_dyn.nn, the two architectures (FLOPs from the layers vs
FlopCounterMode, compaction vs reference, embeddings, save/load). Fast: synthetic inputs."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from alice_dyn.kernels import _cuda
from alice_dyn.kernels import track_features as tfk
from alice_dyn.nn import (
    ClassGaussianObjective,
    ConfidencePolicy,
    EntropyPolicy,
    PatiencePolicy,
    UncertaintyPolicy,
    count_flops,
    exit_metrics,
    flop_counter_total,
    load_model,
    run_dynamic,
    save_model,
)
from alice_dyn.nn.inference import select_exits
from alice_dyn.tpc import geometry as geo
from alice_dyn.tracknet.network import (
    CHUNKS,
    build,
    example_inputs,
    load_track_predictor,
    track_embedding_dim,
)


def synthetic_candidates(rng: np.random.Generator, n_tracks: int = 12):
    """Tracks with clusters near their helices, one per row (like the tracker), shuffled."""
    cl, refs, start, n, par = [], [], [], [], []
    n_cl = 0
    for t in range(n_tracks):
        sec = int(rng.integers(0, geo.N_SECTORS))
        alpha = float(geo.SECTOR_ALPHA_RAD[sec])
        rows = np.sort(rng.choice(geo.N_ROWS, int(rng.integers(0, 60)), replace=False))
        q2pt = float(rng.choice([-1, 1]) * rng.uniform(0.05, 5.0))
        if t == 0:
            q2pt = 0.0  # a straight track
        x0 = float(geo.ROW_X_CM[rows[0]]) if len(rows) else 85.0
        snp, tgl = rng.uniform(-0.4, 0.4), rng.uniform(-1, 1)
        y0, z0 = rng.uniform(-5, 5), rng.uniform(-100, 100)
        par.append((x0, alpha, y0, z0, snp, tgl, q2pt))
        x = geo.ROW_X_CM[rows]
        ly = y0 + (x - x0) * snp + rng.normal(0, 0.5, len(rows))
        gz = z0 + (x - x0) * tgl + rng.normal(0, 0.5, len(rows))
        s_cl = (sec + rng.integers(-1, 2, len(rows))) % geo.N_SECTORS  # some crossings
        ca, sa = math.cos(alpha), math.sin(alpha)
        gx, gy = x * ca - ly * sa, x * sa + ly * ca
        q = rng.uniform(0, 300, (len(rows), 2))
        for k in range(len(rows)):
            cl.append((gx[k], gy[k], gz[k], q[k, 0], q[k, 1], s_cl[k], rows[k]))
        start.append(n_cl)
        n.append(len(rows))
        refs.extend(range(n_cl, n_cl + len(rows)))
        n_cl += len(rows)
    cl = np.array(cl, dtype=np.float64).reshape(-1, 7)
    perm = rng.permutation(len(cl))
    inv = np.argsort(perm)
    cl = cl[perm]
    refs = inv[np.array(refs, np.int64)].astype(np.int32)
    return (
        refs,
        np.array(start, np.int32),
        np.array(n, np.int16),
        np.array(par, np.float64).reshape(-1, 7),
        np.ascontiguousarray(cl[:, :5]),
        cl[:, 5].astype(np.uint8),
        cl[:, 6].astype(np.uint8),
    )


def test_track_feature_twins_equal_reference():
    args = synthetic_candidates(np.random.default_rng(3))
    ref, mask = tfk.track_cluster_features_ref(*args, 0.5)
    assert ref.shape == (12, 152, tfk.N_CLUSTER_FEATURES) and mask.sum() == args[2].sum()
    assert np.all(ref[~mask] == 0) and np.all(np.isfinite(ref))
    cpu, cpu_mask = tfk.track_cluster_features_cpu(*args, 0.5)
    assert np.array_equal(cpu_mask, mask)
    np.testing.assert_allclose(cpu, ref, rtol=1e-6, atol=1e-6)
    if _cuda.numba_cuda_available():
        gpu, gpu_mask = tfk.track_cluster_features_gpu(*args, 0.5, xp=np)
        assert np.array_equal(gpu_mask, mask)
        np.testing.assert_allclose(gpu, ref, rtol=1e-6, atol=1e-6)


def test_track_feature_row_ranges_are_slices_of_all_rows():
    """A row range gives the slice of the full output in every twin (the gap of a chunk's
    first cluster still counts from the track's previous cluster), for a track subset too."""
    args = synthetic_candidates(np.random.default_rng(5))
    full, full_mask = tfk.track_cluster_features_ref(*args, 0.5)
    assert full_mask.any(1).all()
    twins = [tfk.track_cluster_features_ref, tfk.track_cluster_features_cpu]
    if _cuda.numba_cuda_available():
        twins.append(functools.partial(tfk.track_cluster_features_gpu, xp=np))
    sub = np.array([7, 2, 9])
    refs, start, n, par, *rest = args
    for lo, hi in ((114, 152), (76, 114), (0, 38), (40, 41)):
        for fn in twins:
            f, m = fn(*args, 0.5, (lo, hi))
            assert f.shape == (12, hi - lo, tfk.N_CLUSTER_FEATURES)
            assert np.array_equal(m, full_mask[:, lo:hi])
            np.testing.assert_allclose(f, full[:, lo:hi], rtol=1e-6, atol=1e-6)
            fs, ms = fn(refs, start[sub], n[sub], par[sub], *rest, 0.5, (lo, hi))
            assert np.array_equal(ms, full_mask[sub, lo:hi])
            np.testing.assert_allclose(fs, full[sub, lo:hi], rtol=1e-6, atol=1e-6)
    for bad in ((0, 0), (-1, 5), (100, 153)):
        with pytest.raises(ValueError, match="rows"):
            tfk.track_cluster_features_cpu(*args, 0.5, bad)


def test_track_features_on_a_helix_have_small_residuals():
    """Clusters exactly on the track's helix: residuals 0, path grows, crossing flags."""
    from alice_dyn.kernels.matching import helix_at, helix_from_track_params

    alpha = float(geo.SECTOR_ALPHA_RAD[0])
    par = np.array([[85.0, alpha, 1.0, 5.0, 0.1, 0.5, 2.0]])
    h = helix_from_track_params(*par[0], bfield_t=0.5)
    s = np.linspace(0.0, 60.0, 20)
    gx, gy, gz = helix_at(h, s)
    rows = np.arange(20, dtype=np.uint8) * 2
    xyzq = np.column_stack([gx, gy, gz, np.full(20, 100.0), np.full(20, 20.0)])
    f, m = tfk.track_cluster_features_ref(
        np.arange(20, dtype=np.int32), np.array([0], np.int32), np.array([20], np.int16), par,
        xyzq, np.zeros(20, np.uint8), rows, 0.5,
    )  # fmt: skip
    names = tfk.CLUSTER_FEATURES
    sl = f[0, rows]
    assert m[0, rows].all() and m.sum() == 20
    assert np.abs(sl[:, names.index("res_t")]).max() < 1e-6
    assert np.abs(sl[:, names.index("res_z")]).max() < 1e-6
    np.testing.assert_allclose(sl[:, names.index("path")], s / 100.0, atol=1e-6)
    assert np.all(sl[:, names.index("crossed")] == 0)
    np.testing.assert_allclose(sl[1:, names.index("gap")], 0.1, atol=1e-7)


PTX_CHECK = """
import types
import numba.cuda.dispatcher as disp
from numba import types as T, cuda
from alice_dyn.kernels import track_features
disp.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
A = lambda t, nd=1: T.Array(t, nd, "C")
k = track_features._cuda_kernels()
sig = (A(T.int32), A(T.int32), A(T.int32), A(T.float64, 2), A(T.float64, 2), A(T.uint8),
       A(T.uint8), T.float64, A(T.float64), T.int64, T.int64, A(T.float32, 3), A(T.boolean, 2))
ptx, _ = cuda.compile_ptx(k.py_func, sig, cc=(9, 0))
assert ".entry" in ptx
print("compiled")
"""


def test_track_feature_cuda_kernel_compiles_to_ptx():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    probe = "from numba import cuda; cuda.compile_ptx(lambda a: None, '(float32[:],)', cc=(9, 0))"
    if subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode:
        pytest.skip("numba cannot compile PTX here (no NVVM)")
    res = subprocess.run(
        [sys.executable, "-W", "error", "-c", PTX_CHECK], env=env, capture_output=True, text=True
    )
    assert res.returncode == 0 and "compiled" in res.stdout, res.stdout + res.stderr[-3000:]


# ---------------------------------------------------------------------------- nn multi-task


def test_class_gaussian_objective_loss_and_policies_read_the_class_part():
    obj = ClassGaussianObjective(3, 2, class_weights=[1.0, 2.0, 1.0], exit_targets=(0,))
    out = torch.tensor([[5.0, 0.0, 0.0, 0.1, -0.2, 0.0, 0.0], [0.0, 0.1, 0.0, 1.0, 2.0, 2.0, -2.0]])
    tgt = torch.tensor([[0.0, 0.1, float("nan")], [1.0, float("nan"), float("nan")]])
    loss = obj.loss(out, tgt)
    ce = torch.nn.functional.cross_entropy(
        out[:, :3], torch.tensor([0, 1]), weight=torch.tensor([1.0, 2.0, 1.0])
    )
    nll = 0.5 * (0.0 + (0.1 - 0.1) ** 2)  # the only finite target
    assert torch.isclose(loss, ce + nll)
    assert obj.predict(out).tolist() == [0, 1]
    conf = ConfidencePolicy(0.0).score(out, obj)
    assert torch.allclose(conf, torch.softmax(out[:, :3], -1).amax(-1))
    ent = EntropyPolicy(0.0).score(out, obj)
    p = torch.softmax(out[:, :3], -1)
    assert torch.allclose(ent, -(p * p.log()).sum(-1))
    unc = UncertaintyPolicy(1.0).score(out, obj)  # sigma of target 0 only
    assert torch.allclose(unc, torch.exp(0.5 * out[:, 5]))
    mask, _ = PatiencePolicy(1).decide(0, out, obj, PatiencePolicy(1).start(2, "cpu"))
    assert mask.shape == (2,)


@pytest.mark.parametrize("variant", ["depth", "progressive"])
def test_flops_from_layers_match_flop_counter_and_exits_save(variant):
    model = build(variant, d=32, dc=16)
    model.eval()
    x = example_inputs(8, torch.Generator().manual_seed(1))
    rep = count_flops(model, x)
    assert rep.uncounted == ()
    counted = flop_counter_total(lambda: model.forward_all(x))
    assert math.isclose(rep.total_matmul * 8, counted, rel_tol=1e-9)
    assert all(a < b for a, b in zip(rep.exit_flops, rep.exit_flops[1:], strict=False))
    # the per-cluster encoders are in the count: 152 slots x (11*16 + 16*16) MACs at least
    enc = 152 * 2 * (11 * 16 + 16 * 16)
    assert rep.exit_flops[-1] > enc
    if variant == "progressive":
        # exit 0 reads only the outer chunk of rows
        lo, hi = CHUNKS[0]
        assert rep.exit_flops[0] < 0.4 * rep.full_flops
        assert rep.exit_flops[0] > (hi - lo) * 2 * (11 * 16 + 16 * 16)
    else:
        assert rep.exit_flops[0] > enc


@pytest.mark.parametrize("variant", ["depth", "progressive"])
def test_compacted_inference_equals_reference_and_returns_embeddings(variant, tmp_path):
    torch.manual_seed(0)
    model = build(variant, d=32, dc=16)
    model.eval()
    x = example_inputs(40, torch.Generator().manual_seed(2))
    for policy in (ConfidencePolicy(0.4), EntropyPolicy(0.9), UncertaintyPolicy(1.2)):
        res = run_dynamic(model, x, policy, keep_embedding=True)
        ref, idx = select_exits(model.forward_all(x), policy, model.objective)
        assert torch.equal(res.exit_index, idx)
        assert torch.allclose(res.outputs, ref, atol=1e-5)
        assert res.embedding.shape == (40, 32) and res.embedding.dtype == torch.float32
        # the embedding of a track is the h at its exit
        hs = [model.embedding(h) for h in model.forward_intermediates(x)]
        for i in range(model.num_exits):
            sel = idx == i
            assert torch.allclose(res.embedding[sel], hs[i][sel], atol=1e-5)
    save_model(model, tmp_path / "m")
    back, _ = load_model(tmp_path / "m")
    assert type(back).__name__ == "TrackNet" and back.variant == variant
    assert back.embedding_dim == 32 and track_embedding_dim(tmp_path / "m") == 32
    for a, b in zip(back.forward_all(x), model.forward_all(x), strict=True):
        assert torch.allclose(a, b)
    y = torch.cat([torch.randint(0, 3, (40, 1)).float(), torch.randn(40, 5)], 1)
    m = exit_metrics(model, x, y)
    assert len(m) == model.num_exits and {"accuracy", "rmse", "sigma", "loss"} <= set(m[0])


def test_track_predictor_is_the_one_view_of_the_shipped_model():
    """The stage's façade: the embedding width it reports is the one config.json gives without
    loading weights (what the CLI and the PID reuse network read), and it matches the model."""
    net = load_track_predictor()
    assert net.embedding_dim == track_embedding_dim() == net.model.embedding_dim == 64
    x = net.model.example_inputs(3, torch.Generator().manual_seed(0))
    res = run_dynamic(net.model, x, ConfidencePolicy(2.0), keep_embedding=True)
    assert res.embedding.shape == (3, net.embedding_dim)
