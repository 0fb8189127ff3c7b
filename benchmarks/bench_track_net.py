"""Speed of the dynamic track network on the CPU: batched dynamic vs full, side by side.

Run: ``python benchmarks/bench_track_net.py [--timeframes N] [--model DIR] [--threads T]``.
Simulates held-out timeframes of the track-network mix (seed 404; by default a Pb-Pb 0-10%
and a pile-up timeframe), runs the classical chain, builds the inputs and, for every variant
of the model directory (default: the shipped one), prints for one batch of up to 8192 tracks:
wall time and average FLOPs per track of the full network (every track to the last exit) and
of batched dynamic inference with compaction at the calibrated 25/50/75% budgets, and the
ratios dynamic / full of both. Also: the feature assembly (kernel) time for the same tracks,
and the stage's whole path per timeframe (inputs + network) with the cluster features built
up front ("eager") against built chunk by chunk for the tracks still in the batch ("lazy",
what ``track-net`` does), as ratios to the eager full network.
Wall times: best of 5 runs after a warm-up.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from alice_dyn.nn import ConfidencePolicy, measure_wall_time, run_dynamic, take
from alice_dyn.tracknet.data_gen import MIX, mix_config
from alice_dyn.tracknet.dataset import classical_chain
from alice_dyn.tracknet.features import TrackInputs, track_inputs
from alice_dyn.tracknet.network import DEFAULT_MODEL_DIR, load_track_net
from alice_dyn.tracknet.train import variant_dirs


def timed(fn, repeats: int = 5) -> tuple[object, float]:
    """``fn``'s output (from a warm-up call) and its best wall time (s) of ``repeats``."""
    out = fn()
    return out, measure_wall_time(fn, repeats=repeats, warmup=0)["min_s"]


def main() -> None:
    from alice_dyn.sim import simulate_timeframe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="pbpb_0_10,pbpb_0_5_pileup",
                    help="mix settings to simulate, one timeframe each")  # fmt: skip
    ap.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8192)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [m[0] for m in MIX]
    parts, chains, t_feat, n_feat = [], [], 0.0, 0
    for i, name in enumerate(args.settings.split(",")):
        _, cfg = mix_config(names.index(name), 404)
        tf = simulate_timeframe(cfg, 1000 + i)
        c = classical_chain(tf)
        chains.append(c)
        inp, dt = timed(
            lambda c=c: track_inputs(c.tracks, c.refs, c.clusters, c.bfield_t), repeats=2
        )
        parts.append(inp)
        t_feat += dt
        n_feat += len(inp)
    inputs = TrackInputs.concatenate(parts)
    n = min(args.batch, len(inputs))
    inputs = inputs.take(np.random.default_rng(0).permutation(len(inputs))[:n])
    print(f"{n} held-out tracks ({args.settings}), {args.threads} thread(s), model {args.model}")
    print(f"feature assembly (classical output -> inputs): {1e6 * t_feat / n_feat:.1f} us/track")
    head = f"{'variant':<12} {'setting':<10} {'ms':>9} {'kFLOPs/track':>13} {'time ratio':>11} "
    print(head + f"{'FLOPs ratio':>12} {'tracks/s':>10}")
    for v, path in variant_dirs(args.model).items():
        model, scaler, cfg = load_track_net(path)
        x = take(scaler.tensors(inputs), torch.arange(n))
        with torch.no_grad():
            full, t_full = timed(lambda m=model, x=x: run_dynamic(m, x, ConfidencePolicy(2.0)))
            rows = [("full", full, t_full)]
            for key, b in cfg["thresholds"].items():
                pol = ConfidencePolicy(b["thresholds"])
                res, t = timed(lambda m=model, x=x, pol=pol: run_dynamic(m, x, pol))
                rows.append((f"dyn {key}%", res, t))
        for name, res, t in rows:
            print(
                f"{v:<12} {name:<10} {1e3 * t:>9.2f} {res.mean_flops / 1e3:>13.1f} "
                f"{t / t_full:>11.3f} {res.mean_flops / full.mean_flops:>12.3f} {n / t:>10.3e}"
            )

    stage_path(args.model, chains)


def stage_path(model_dir: str, chains: list) -> None:
    """Inputs + network per timeframe, eager vs lazy cluster features, shipped variant."""
    model, scaler, cfg = load_track_net(model_dir)
    n = sum(len(c.tracks) for c in chains)

    def run(pol: ConfidencePolicy, lazy: bool) -> float:
        def once() -> None:
            for c in chains:
                x = track_inputs(c.tracks, c.refs, c.clusters, c.bfield_t, lazy_clusters=lazy)
                run_dynamic(model, scaler.tensors(x), pol)

        with torch.no_grad():
            return timed(once)[1]

    print(f"\nstage path, inputs + network ({cfg['variant']}, {n} tracks in {len(chains)} TFs)")
    print(f"{'budget':<8} {'eager ms':>9} {'lazy ms':>9} {'eager ratio':>12} {'lazy ratio':>11}")
    full = ConfidencePolicy(2.0)
    budgets = [("full", full)] + [
        (k, ConfidencePolicy(b["thresholds"])) for k, b in cfg["thresholds"].items()
    ]
    t_ref = run(full, False)
    for name, pol in budgets:
        te, tl = run(pol, False), run(pol, True)
        ratios = f"{te / t_ref:>12.3f} {tl / t_ref:>11.3f}"
        print(f"{name:<8} {1e3 * te:>9.2f} {1e3 * tl:>9.2f} {ratios}")


if __name__ == "__main__":
    main()
