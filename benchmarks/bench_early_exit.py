"""Early-exit networks on the CPU: FLOPs fraction and wall-time speed-up of compacted dynamic
inference vs the full network at equal accuracy, and batched vs batch-size-1 throughput.

Run: ``python benchmarks/bench_early_exit.py [--methods sdn,ztw] [--threads N]`` (< 2 min on
two cores). Toy problem (:func:`alice_dyn.nn.testing.toy_classification`): 5 classes, 20
features, half easy samples (Gaussian blobs), half hard ones (spiral arms). A residual MLP
(d=128, 8 blocks, an exit after each) is trained quickly (SDN: joint; ZTW: backbone, heads,
ensemble). The operating point is the smallest FLOPs fraction (calibrated on the validation
set) whose validation accuracy is at least the full network's; on the test set the accuracy
should then stay within 0.3 pp of it. "Full network" is the plain backbone: stem, 8 blocks,
last head of the same trained model (without the internal heads), timed the same way.
"""

from __future__ import annotations

import argparse
import time

import torch

from alice_dyn import nn as ee
from alice_dyn.nn.testing import toy_classification

BATCH = 4096


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).double().mean())


def train(method: str, data: dict, threads: int) -> ee.EarlyExitNet:
    torch.manual_seed(0)
    model = ee.create_model(f"{method}_mlp", d=128, depth=8)
    kw = dict(batch_size=256, lr=2e-3, seed=0, threads=threads, patience=3)
    x, y = data["train"]
    t0 = time.perf_counter()
    if method == "sdn":
        ee.train_joint(model, (x, y), epochs=12, **kw)
    else:
        ee.train_backbone(model, (x, y), epochs=12, **kw)
        ee.train_heads(model, (x, y), epochs=6, distill_temperature=2.0, **kw)
        ee.train_ensemble(model, (x, y), epochs=6, batch_size=512, seed=0, threads=threads)
    print(f"[{method}] trained in {time.perf_counter() - t0:.1f} s")
    return model.eval()


def operating_point(model, full, xv, yv) -> ee.ThresholdPolicy:
    with torch.no_grad():
        acc_full = accuracy(full(xv)[0].argmax(-1), yv)
    cal = ee.ThresholdCalibrator(model, xv)
    lo, _ = cal.reachable
    frac = max(lo, 0.15)
    while frac < 1.2:
        p = cal.policy_at(cal.level_for(frac))
        if accuracy(ee.run_dynamic(model, xv, p).predictions, yv) >= acc_full:
            return p
        frac += 0.025
    return cal.policy_at(cal.level_for(1.2))


def backbone(model: ee.EarlyExitNet) -> ee.EarlyExitNet:
    """The plain network: stem, every block, the last head (not cascading in either method)."""
    return ee.EarlyExitNet(
        model.stem,
        list(model.blocks),
        [model.heads[-1]],
        exit_after=[model.num_blocks - 1],
        objective=model.objective,
    ).eval()


def bench(method: str, data: dict, threads: int) -> dict:
    model = train(method, data, threads)
    full = backbone(model).forward_all
    xv, yv = data["val"]
    xt, yt = data["test"]
    policy = operating_point(model, full, xv, yv)
    batches = [(xt[s : s + BATCH], yt[s : s + BATCH]) for s in range(0, len(yt), BATCH)]

    with torch.no_grad():
        acc_full = accuracy(torch.cat([full(xb)[0].argmax(-1) for xb, _ in batches]), yt)
    results = [ee.run_dynamic(model, xb, policy) for xb, _ in batches]
    acc_dyn = accuracy(torch.cat([r.predictions for r in results]), yt)
    frac = float(torch.cat([r.flops for r in results]).mean()) / results[0].full_flops

    def run_full():
        with torch.no_grad():
            for xb, _ in batches:
                full(xb)

    def run_dyn():
        for xb, _ in batches:
            ee.run_dynamic(model, xb, policy)

    n = len(yt)
    # interleaved, so that a change of load on a shared machine hits both alike
    t_full, t_dyn = [], []
    for _ in range(7):
        t_full.append(ee.measure_wall_time(run_full, repeats=1)["median_s"])
        t_dyn.append(ee.measure_wall_time(run_dyn, repeats=1)["median_s"])
    t_full, t_dyn = sorted(t_full)[3], sorted(t_dyn)[3]
    n1 = 400
    x1 = [xt[i : i + 1] for i in range(n1)]

    def run_one():
        for xi in x1:
            ee.run_dynamic(model, xi, policy)

    t_one = ee.measure_wall_time(run_one, repeats=3)["median_s"]
    return {
        "method": method,
        "acc_full": acc_full,
        "acc_dyn": acc_dyn,
        "flops_fraction": frac,
        "speedup": t_full / t_dyn,
        "full_per_s": n / t_full,
        "dyn_per_s": n / t_dyn,
        "one_per_s": n1 / t_one,
        "exits": torch.bincount(
            torch.cat([r.exit_index for r in results]), minlength=model.num_exits
        ).tolist(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="sdn,ztw", help="comma-separated: sdn, ztw")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = {}
    for name, n, seed in (("train", 20000, 1), ("val", 4 * BATCH, 2), ("test", 4 * BATCH, 3)):
        x, y, _ = toy_classification(n, seed=seed)
        data[name] = (x, y)
    rows = [bench(method, data, args.threads) for method in args.methods.split(",")]
    print(
        f"\nbatch {BATCH}, {args.threads} thread(s), test {4 * BATCH} samples; "
        f"'full' = stem + 8 blocks + last head of the same model"
    )
    hdr = (
        f"{'method':6} {'acc full':>9} {'acc dyn':>8} {'d acc pp':>8} {'FLOPs frac':>10} "
        f"{'1/frac':>7} {'wall speed-up':>13} {'full /s':>10} {'dyn /s':>10} {'dyn b=1 /s':>10} "
        f"{'b4096/b1':>8}"
    )
    print(hdr)
    for r in rows:
        print(
            f"{r['method']:6} {100 * r['acc_full']:8.2f}% {100 * r['acc_dyn']:7.2f}% "
            f"{100 * (r['acc_dyn'] - r['acc_full']):+8.2f} {r['flops_fraction']:10.3f} "
            f"{1 / r['flops_fraction']:7.2f} {r['speedup']:12.2f}x {r['full_per_s']:10.0f} "
            f"{r['dyn_per_s']:10.0f} {r['one_per_s']:10.0f} {r['dyn_per_s'] / r['one_per_s']:7.0f}x"
        )
        print(f"       samples per exit: {r['exits']}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
