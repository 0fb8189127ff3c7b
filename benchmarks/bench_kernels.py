"""Kernel speed: each Numba CPU twin against its NumPy reference on a Pb-Pb-like timeframe.

Run: ``python benchmarks/bench_kernels.py [--repeat 5]``. Simulates one central Pb-Pb
collision (0-10%, about 5e5 clusters), builds MC-truth tracks (clusters of one particle, inner
to outer) and times every kernel family: NumPy reference, Numba CPU twin (all cores numba
uses; compile excluded) and, when CuPy sees a CUDA device, the GPU twin on device-resident
inputs (transfers excluded, synchronised). Times are the best of ``--repeat`` runs. The CPU
twin is timed on one thread (the fair comparison with single-threaded NumPy, and immune to
other load on the machine) and on all of numba's threads; items/s uses the faster of the two.

The cluster transform is also put against a plain memory copy measured in the same run:
``np.copyto`` of as many bytes as the transform reads and writes (12-byte records + sector and
row in, 8 float32 outputs out); "fraction of copy" = copy time / transform time, so 1.0 means
the transform runs as fast as copying its bytes once (a copy also reads and writes each byte:
the kernel moves about half the traffic of that copy).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numba
import numpy as np

from alice_dyn import kernels as K
from alice_dyn.sim import SimConfig, simulate_timeframe
from alice_dyn.tpc import geometry as geo
from alice_dyn.tpc.cluster_native import encode_o2_buffer


def best(fn: Callable, repeat: int, sync: Callable[[], None] = lambda: None) -> float:
    """Best wall time (s) of ``repeat`` calls after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return min(times)


def make_inputs(tf) -> dict:
    cl = tf.clusters
    xyz = K.transform_clusters(cl.records, cl.sector, cl.row)
    lab = cl.mc_label
    order = np.lexsort((np.hypot(xyz.gx, xyz.gy), lab))
    order = order[lab[order] >= 0].astype(np.int32)
    counts = np.bincount(lab[order], minlength=len(tf.particles))
    keep = counts >= 10
    start = (np.cumsum(counts) - counts).astype(np.int32)[keep]
    n = counts[keep].astype(np.int16)
    feats = np.stack([xyz.gx, xyz.gy, xyz.z, xyz.q_tot, xyz.q_max, cl.row.astype(np.float32)], 1)
    norm = 1.0 / geo.ROW_PAD_HEIGHT_CM[cl.row]
    return dict(cl=cl, xyz=xyz, refs=order, start=start, n=n, feats=feats, norm=norm)


def cases(inp: dict, tof) -> list[tuple[str, int, str, Callable, Callable, Callable | None]]:
    """``(name, items, unit, ref, cpu, gpu)``; ``gpu`` builds a device-resident closure."""
    cl, xyz = inp["cl"], inp["xyz"]
    refs, start, n, feats, norm = (inp[k] for k in ("refs", "start", "n", "feats", "norm"))
    buf = encode_o2_buffer(cl.records, cl.sector, cl.row)
    fit = K.fit_helices(refs, start, n, xyz.gx, xyz.gy, xyz.z)
    helix = fit.helix
    ex = K.extrapolate_to_cylinder(helix, 380.0)
    tpos = np.c_[ex[0], ex[1], ex[2]]
    hits = np.c_[tof.x_cm, tof.y_cm, tof.z_cm]
    grid = K.build_grid(cl.sector, cl.row, xyz.y, xyz.z)
    nq = 2000  # the NumPy neighbour reference loops in Python: a subset of queries
    q = slice(0, len(xyz.y), max(1, len(xyz.y) // nq))
    qa = (cl.sector[q], cl.row[q], xyz.y[q], xyz.z[q], 0.5, 2.0)
    nc, nt = len(cl.records), len(n)

    def gpu_case(fn, *arrays):
        """Closure running ``fn(*device_arrays, backend='gpu')``."""
        be = K.get_backend("gpu")
        dev = [be.asarray(a) if isinstance(a, np.ndarray) else a for a in arrays]
        return lambda: fn(*dev, backend=be)

    rec_u8 = cl.records.view(np.uint8)
    return [
        ("transform", nc, "clusters",
         lambda: K.transform_clusters_ref(cl.records, cl.sector, cl.row),
         lambda: K.transform_clusters_cpu(cl.records, cl.sector, cl.row),
         lambda: gpu_case(K.transform_clusters, rec_u8, cl.sector, cl.row)),
        ("transform O2 buffer", nc, "clusters",
         lambda: K.transform_o2_buffer_ref(buf),
         lambda: K.transform_o2_buffer_cpu(buf),
         lambda: gpu_case(K.transform_o2_buffer, buf)),
        ("bin_clusters", nc, "clusters",
         lambda: K.bin_clusters_ref(cl.sector, cl.row, xyz.y),
         lambda: K.bin_clusters_cpu(cl.sector, cl.row, xyz.y),
         lambda: gpu_case(K.bin_clusters, cl.sector, cl.row, xyz.y)),
        ("build_grid", nc, "clusters",
         lambda: K.build_grid_ref(cl.sector, cl.row, xyz.y, xyz.z),
         lambda: K.build_grid_cpu(cl.sector, cl.row, xyz.y, xyz.z),
         lambda: gpu_case(K.build_grid, cl.sector, cl.row, xyz.y, xyz.z)),
        ("neighbours", len(qa[0]), "queries",
         lambda: K.neighbours_ref(cl.sector, cl.row, xyz.y, xyz.z, *qa),
         lambda: K.neighbours(grid, *qa),
         None),
        ("fit_helices", nt, "tracks",
         lambda: K.fit_helices_ref(refs, start, n, xyz.gx, xyz.gy, xyz.z),
         lambda: K.fit_helices_cpu(refs, start, n, xyz.gx, xyz.gy, xyz.z),
         lambda: gpu_case(K.fit_helices, refs, start, n, xyz.gx, xyz.gy, xyz.z)),
        ("truncated_mean", nt, "tracks",
         lambda: K.truncated_mean_tracks_ref(xyz.q_tot, norm, refs, start, n),
         lambda: K.truncated_mean_tracks_cpu(xyz.q_tot, norm, refs, start, n),
         lambda: gpu_case(K.truncated_mean_tracks, xyz.q_tot, norm, refs, start, n)),
        ("extrapolate r=380", nt, "tracks",
         lambda: K.extrapolate_to_cylinder_ref(helix, 380.0),
         lambda: K.extrapolate_to_cylinder_cpu(helix, 380.0),
         lambda: gpu_case(lambda h, backend: K.extrapolate_to_cylinder(h, 380.0, backend=backend),
                          K.Helix(*(K.get_backend("gpu").asarray(a) for a in helix)))),
        ("match_hits (TOF)", nt, "tracks",
         lambda: K.match_hits_ref(tpos, hits, 5.0, 5.0),
         lambda: K.match_hits_cpu(tpos, hits, 5.0, 5.0),
         lambda: gpu_case(lambda a, b, backend: K.match_hits(a, b, 5.0, 5.0, backend=backend),
                          tpos, hits)),
        ("padded_features L=160", nt, "tracks",
         lambda: K.padded_track_features_ref(refs, start, n, feats, 160),
         lambda: K.padded_track_features_cpu(refs, start, n, feats, 160),
         lambda: gpu_case(lambda *a, backend: K.padded_track_features(*a, 160, backend=backend),
                          refs, start, n, feats)),
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    t = time.perf_counter()
    cfg = SimConfig.for_system("pbpb", collisions_per_tf=1, centrality_max=0.1)
    tf = simulate_timeframe(cfg, 0)
    inp = make_inputs(tf)
    print(
        f"Pb-Pb 0-10% timeframe: {len(tf.clusters):,} clusters, {len(inp['n']):,} MC tracks "
        f"(>= 10 clusters), {len(tf.tof):,} TOF hits; simulated in {time.perf_counter() - t:.1f} s"
    )
    print(f"CPU: {os.cpu_count()} cores, numba threads {numba.get_num_threads()}")
    gpu = K.gpu_available()
    if gpu:
        be = K.get_backend("gpu")
        print(f"GPU: {be.device_name()}")
    else:
        print("GPU: none (CuPy with a CUDA device not available): GPU column skipped")

    rows = []
    n_threads = numba.get_num_threads()
    for name, items, unit, ref, cpu, gpu_make in cases(inp, tf.tof):
        t_ref = best(ref, args.repeat)
        numba.set_num_threads(1)
        t_cpu1 = best(cpu, args.repeat)
        numba.set_num_threads(n_threads)
        t_cpu = best(cpu, args.repeat)
        t_gpu = None
        if gpu and gpu_make is not None:
            t_gpu = best(gpu_make(), args.repeat, be.synchronize)
        rows.append((name, items, unit, t_ref, t_cpu1, t_cpu, t_gpu))

    hdr = (
        f"{'kernel':22s} {'items':>8s} {'NumPy ref':>10s} {'Numba 1T':>10s} {'ratio':>6s} "
        f"{'Numba ' + str(n_threads) + 'T':>10s} {'ratio':>6s} {'items/s':>8s} "
        f"{'GPU':>10s} {'items/s':>8s}"
    )
    print("\n" + hdr)
    print("-" * len(hdr))
    for name, items, unit, t_ref, t_cpu1, t_cpu, t_gpu in rows:
        g = f"{t_gpu * 1e3:8.3f}ms {items / t_gpu:8.2g}" if t_gpu else f"{'-':>10s} {'-':>8s}"
        print(
            f"{name:22s} {items:>8,d} {t_ref * 1e3:8.2f}ms {t_cpu1 * 1e3:8.2f}ms "
            f"{t_ref / t_cpu1:5.1f}x {t_cpu * 1e3:8.2f}ms {t_ref / t_cpu:5.1f}x "
            f"{items / min(t_cpu, t_cpu1):8.2g} {g}  ({unit})"
        )

    # transform against a memory copy of the same bytes
    cl = inp["cl"]
    n = len(cl.records)
    n_bytes = n * (12 + 2) + n * 8 * 4
    src = np.ones(n_bytes, np.uint8)
    dst = np.empty_like(src)
    t_copy = best(lambda: np.copyto(dst, src), args.repeat)
    t_tr = next(min(r[4], r[5]) for r in rows if r[0] == "transform")
    print(
        f"\ntransform: {n / t_tr:.3g} clusters/s on the CPU; {n_bytes / 1e6:.1f} MB in+out; "
        f"np.copyto of those bytes {t_copy * 1e3:.2f} ms ({n_bytes / t_copy / 1e9:.1f} GB/s) "
        f"-> transform at {t_copy / t_tr:.2f} of copy speed"
    )
    if gpu:
        xp = be.xp
        dsrc, ddst = xp.ones(n_bytes, np.uint8), xp.empty(n_bytes, np.uint8)
        t_gcopy = best(lambda: xp.copyto(ddst, dsrc), args.repeat, be.synchronize)
        t_gtr = next(r[6] for r in rows if r[0] == "transform")
        print(
            f"GPU transform: {n / t_gtr:.3g} clusters/s; device copy {n_bytes / t_gcopy / 1e9:.0f}"
            f" GB/s -> transform at {t_gcopy / t_gtr:.2f} of copy speed"
        )


if __name__ == "__main__":
    main()
