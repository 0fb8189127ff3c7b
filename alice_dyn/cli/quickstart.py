"""``alice-dyn quickstart``: the main job on the shipped sample.

Inspect and summarise the shipped pp sample; simulate fresh Pb-Pb timeframes, write, read back
and compare; run the ``tpc-reco`` workflow on the sample and print its performance."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from alice_dyn.cli import _options as opt
from alice_dyn.cli.inspect import format_summary, summarize_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="the main job on the shipped sample (simulate -> ROOT -> read back -> summary; "
        "reconstruction workflow -> performance)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sample", default=None,
                   help="sample to summarise and reconstruct (default: the shipped pp "
                   "sample)")  # fmt: skip
    p.add_argument("--out-dir", default="out", help="where the freshly simulated file goes")
    p.add_argument("--timeframes", type=opt.positive_int, default=2,
                   help="timeframes to simulate afresh (>= 1)")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alice_dyn.io import TimeframeWriter, open_timeframes
    from alice_dyn.io.inspect import format_inspection, inspect_file
    from alice_dyn.io.testing import assert_timeframes_equal
    from alice_dyn.resources import default_sample
    from alice_dyn.sim import SimConfig, simulate_timeframe

    sample = str(args.sample or default_sample())
    opt.writable_dir(args.out_dir, "--out-dir")
    print(f"== 1. shipped sample: {sample}")
    print(format_inspection(inspect_file(sample)))
    print(format_summary(summarize_file(sample)))

    out = Path(args.out_dir) / "quickstart_pbpb.root"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = SimConfig.for_system("pbpb", seed=2026, collisions_per_tf=1)
    print(f"\n== 2. simulate {args.timeframes} Pb-Pb timeframes -> {out} -> read back")
    t0 = time.perf_counter()
    made = []
    with TimeframeWriter(out) as writer:
        for tf_id in tqdm(range(args.timeframes), desc="simulate", unit="TF", disable=None):
            tf = simulate_timeframe(cfg, tf_id)
            writer.write(tf)
            made.append(tf)
    t_sim = time.perf_counter() - t0
    n_cl = sum(len(tf.clusters) for tf in made)
    with open_timeframes(out) as reader:
        for original, back in zip(made, reader, strict=True):
            assert_timeframes_equal(original, back)
    print(f"simulated and wrote {n_cl} clusters in {t_sim:.1f} s; read back identical")
    print(format_summary(summarize_file(out)))

    from alice_dyn import qa
    from alice_dyn.framework.executable import report, run_specs
    from alice_dyn.framework.workflows import load_workflow

    reco = Path(args.out_dir) / "quickstart_reco.root"
    print(f"\n== 3. reconstruction workflow tpc-reco on {sample} -> {reco}")
    specs = load_workflow("tpc-reco").define_workflow([sample], str(reco))
    rc = report(run_specs(specs), None, prog="alice-dyn quickstart")
    if rc:
        return rc
    print(f"\n== 4. performance against MC truth (alice-dyn evaluate tracking|pid {reco} ...)")
    print(qa.format_tracking(qa.evaluate_tracking(reco, sample)))
    print(qa.format_pid(qa.evaluate_pid(reco, sample)))
    return 0
