"""Speed of the dynamic PID network on the CPU, measured side by side in one run.

Run: ``python benchmarks/bench_pid_net.py [--timeframes N]``. Makes held-out tracks with the
project's chain (simulate Pb-Pb -> tpc-reco -> PID dataset, seed 303), loads the shipped
model (its primary dynamic network) and prints:

* batch 4096: wall time of the full network (every track to the last exit) vs batched dynamic
  inference with compaction at the threshold that keeps the full network's accuracy, and the
  FLOPs fraction (the speed-up at equal accuracy);
* tracks/s of batched dynamic inference vs a batch-size-1 loop over the same tracks (how
  O2Physics runs its PID models today);
* TOF/TRD arriving after a first, TPC-only pass: the update from the cached embeddings
  (:mod:`alice_dyn.pid.incremental`) vs recomputing the full network, wall time and FLOPs,
  and the accuracy of both on the tracks that have TOF or TRD.
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch

from alice_dyn.nn import ConfidencePolicy, measure_wall_time, run_dynamic
from alice_dyn.pid import incremental as inc
from alice_dyn.pid.data_gen import make_pid_dataset
from alice_dyn.pid.network import DEFAULT_MODEL_DIR, PRIMARY, load_pid_net

LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


def timed(fn, repeats: int = 5) -> tuple[object, float]:
    """``fn``'s output (from a warm-up call) and its best wall time (s) of ``repeats``."""
    out = fn()
    return out, measure_wall_time(fn, repeats=repeats, warmup=0)["min_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeframes", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as work:
        ds = make_pid_dataset(
            work, args.timeframes, system="pbpb", seed=303, collisions_per_tf=2, centrality_max=0.7
        )
    model, scaler, _ = load_pid_net(DEFAULT_MODEL_DIR / PRIMARY)
    n = min(4096, len(ds))
    sub = ds.take(np.arange(n))
    x = scaler.tensors(sub)
    y = torch.as_tensor(sub.labels)
    full_policy = ConfidencePolicy(2.0)  # nobody leaves early
    with torch.no_grad():
        res_full, t_full = timed(lambda: run_dynamic(model, x, full_policy))
        acc_full = float((res_full.predictions == y).float().mean())
        chosen = None
        for q in LEVELS:  # lowest threshold keeping the full network's accuracy
            r = run_dynamic(model, x, ConfidencePolicy(q))
            if float((r.predictions == y).float().mean()) >= acc_full:
                chosen = q
                break
        chosen = chosen or LEVELS[-1]
        res_dyn, t_dyn = timed(lambda: run_dynamic(model, x, ConfidencePolicy(chosen)))
        acc_dyn = float((res_dyn.predictions == y).float().mean())
        n1 = min(400, n)

        def loop():
            for i in range(n1):
                one = {k: v[i : i + 1] for k, v in x.items()}
                run_dynamic(model, one, ConfidencePolicy(chosen))

        _, t_loop = timed(loop, repeats=2)
    print(f"{n} held-out Pb-Pb tracks, {args.threads} thread(s), shipped {PRIMARY.upper()} model")
    print(f"{'':<34} {'ms':>9} {'accuracy':>9} {'FLOPs frac':>11}")
    print(
        f"{'full network, batch ' + str(n):<34} {t_full * 1e3:>9.2f} "
        f"{100 * acc_full:>8.2f}% {1.0:>11.3f}"
    )
    print(
        f"{'dynamic (q=' + str(chosen) + '), batch ' + str(n):<34} {t_dyn * 1e3:>9.2f} "
        f"{100 * acc_dyn:>8.2f}% {res_dyn.flops_fraction:>11.3f}"
    )
    print(
        f"wall-time speed-up at equal accuracy: {t_full / t_dyn:.2f}x "
        f"(FLOPs {1 / res_dyn.flops_fraction:.2f}x fewer)"
    )
    rate_batch = n / t_dyn
    rate_loop = n1 / t_loop
    print(
        f"tracks/s: batched dynamic {rate_batch:.3e}, batch-size-1 loop {rate_loop:.3e} "
        f"-> {rate_batch / rate_loop:.0f}x"
    )
    # incremental update when TOF/TRD arrive after the TPC-only pass
    upd = inc.load_incremental(DEFAULT_MODEL_DIR / "incremental")
    late = ds.masks["tof"] | ds.masks["trd"]
    lsub = ds.take(np.flatnonzero(late)[:4096])
    xl = scaler.tensors(lsub)
    yl = torch.as_tensor(lsub.labels)
    with torch.no_grad():
        first = inc.first_pass(model, xl)
        p_upd, t_upd = timed(lambda: inc.update(upd, first, xl))
        out_full, t_rec = timed(lambda: model(xl, mode="one", exit=model.num_exits - 1))
    cost = inc.update_cost(model, upd, xl)
    acc_upd = float((p_upd.argmax(1) == yl).float().mean())
    acc_rec = float((out_full.argmax(1) == yl).float().mean())
    acc_first = float((first.predictions == yl).float().mean())
    print(
        f"TOF/TRD arriving later, {len(lsub)} tracks: update from the cache {t_upd * 1e3:.2f} ms "
        f"vs full recompute {t_rec * 1e3:.2f} ms -> {100 * t_upd / t_rec:.0f}% of the wall time, "
        f"{100 * cost['ratio']:.0f}% of the FLOPs; accuracy TPC-only {100 * acc_first:.2f}%, "
        f"updated {100 * acc_upd:.2f}%, recomputed {100 * acc_rec:.2f}%"
    )


if __name__ == "__main__":
    main()
