"""PID with and without the track network's embedding, measured side by side in one run.

Run: ``python benchmarks/bench_pid_reuse.py [--timeframes N] [--data DIR]``. Makes held-out
Pb-Pb tracks with the project's chain, keeping the track network's embedding (simulate ->
tpc-reco with track-net -> PID dataset, seed 303; or reads ``DIR/pid.npz`` made that way) and
prints, for the shipped standalone PID network (six blocks), the network reusing the embedding
(``DIR/reuse``) and its control (the same depth without the embedding): accuracy, FLOPs per
track and wall time at batch 4096 (one thread), and the ratios reuse / standalone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from alice_dyn.pid import reuse
from alice_dyn.pid.data_gen import make_pid_dataset
from alice_dyn.pid.dataset import PIDDataset
from alice_dyn.pid.network import DEFAULT_MODEL_DIR, PRIMARY, load_pid_net
from alice_dyn.tracknet.network import track_embedding_dim


def wall(model, x, repeats: int = 7) -> float:
    with torch.no_grad():
        model(x, mode="one", exit=model.num_exits - 1)
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x, mode="one", exit=model.num_exits - 1)
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeframes", type=int, default=6)
    ap.add_argument("--data", default=None, help="directory with pid.npz (with embeddings)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.data:
        ds = PIDDataset.load(Path(args.data) / "pid.npz")
    else:
        with tempfile.TemporaryDirectory() as work:
            ds = make_pid_dataset(
                work, args.timeframes, system="pbpb", seed=303, collisions_per_tf=2,
                centrality_max=0.7, embedding_dim=track_embedding_dim(),
            )  # fmt: skip
    nets = {
        "standalone": load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)[:2],
        "reuse": reuse.load_reuse(DEFAULT_MODEL_DIR / "reuse")[:2],
        "control": reuse.load_reuse(DEFAULT_MODEL_DIR / "reuse_control")[:2],
    }
    cmp_ = reuse.compare_reuse(ds, nets["standalone"], nets["reuse"], nets["control"])
    sub = ds.take(np.arange(min(4096, len(ds))))
    times = {k: wall(m, sc.tensors(sub)) for k, (m, sc) in nets.items()}
    print(f"{len(ds)} held-out Pb-Pb tracks (wall time: batch {len(sub)}, 1 thread)")
    print(f"{'':<12} {'accuracy':>9} {'FLOPs/track':>12} {'ms':>8}")
    for k in nets:
        r = cmp_[k]
        print(f"{k:<12} {100 * r['accuracy']:>8.2f}% {r['flops_per_track']:>12.0f} "
              f"{1e3 * times[k]:>8.2f}")  # fmt: skip
    print(
        f"reuse / standalone: FLOPs {1 - cmp_['flops_saving']:.2f}, wall time "
        f"{times['reuse'] / times['standalone']:.2f}, accuracy {cmp_['accuracy_delta_pp']:+.2f} pp "
        f"({cmp_['accuracy_delta_vs_control_pp']:+.2f} pp vs the control without the embedding)"
    )


if __name__ == "__main__":
    main()
