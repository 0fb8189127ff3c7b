"""Simulation speed: clusters per second of whole timeframes on one core.

Run: ``python benchmarks/bench_sim.py [--timeframes N]``. Pins numba to one thread, warms up
the JIT, then times ``simulate_timeframe`` end to end (generation, transport with TPC/TRD/TOF
response, noise, sorting, merging and ClusterNative packing) for pp and Pb-Pb timeframes.
The issue's target is >= 1e6 clusters/s on one core.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

from alice_dyn.sim import SimConfig, simulate_timeframe


def bench(cfg: SimConfig, n_tf: int) -> tuple[int, float, float]:
    """(clusters, wall seconds, CPU seconds of this process) for ``n_tf`` timeframes."""
    n_cl, wall, cpu = 0, 0.0, 0.0
    for tf_id in range(n_tf):
        t0, c0 = time.perf_counter(), time.process_time()
        tf = simulate_timeframe(cfg, 1000 + tf_id)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        n_cl += len(tf.clusters)
    return n_cl, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeframes", type=int, default=4)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    simulate_timeframe(SimConfig.for_system("pp", collisions_per_tf=1), 0)  # JIT warm-up
    print(
        f"{'system':<28} {'clusters':>10} {'wall s':>8} {'cpu s':>8} {'clusters/s (wall)':>18} "
        f"{'clusters/s (cpu)':>17}"
    )
    for name, cfg in [
        ("pp (8 collisions/TF)", SimConfig.for_system("pp")),
        ("Pb-Pb 0-90% (2 coll./TF)", SimConfig.for_system("pbpb")),
        (
            "Pb-Pb 0-10% (1 coll./TF)",
            SimConfig.for_system("pbpb", collisions_per_tf=1, centrality_max=0.1),
        ),
    ]:
        n_cl, wall, cpu = bench(cfg, args.timeframes)
        print(
            f"{name:<28} {n_cl:>10d} {wall:>8.3f} {cpu:>8.3f} {n_cl / wall:>18.3e} "
            f"{n_cl / cpu:>17.3e}"
        )


if __name__ == "__main__":
    main()
