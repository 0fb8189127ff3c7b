"""``alice-dyn simulate``: simulate timeframes and write them to a ROOT file."""

from __future__ import annotations

import argparse
import os
import time

from tqdm import tqdm

from alice_dyn.cli import _options as opt


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate timeframes and write them to a ROOT file",
        description="Simulate timeframes (collisions, TPC clusters, TRD, TOF, MC truth) and "
        "write them to a ROOT file, one TTree entry per timeframe.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, help="output ROOT file")
    p.add_argument("--timeframes", type=opt.positive_int, default=4, help="number of timeframes")
    p.add_argument(
        "--collisions-per-tf",
        type=opt.non_negative_int,
        default=None,
        help="collisions per timeframe (default: 8 for pp, 2 for pbpb)",
    )
    p.add_argument("--system", choices=["pp", "pbpb"], default="pp", help="collision system")
    p.add_argument("--seed", type=opt.non_negative_int, default=1,
                   help="random seed (same seed, same file)")  # fmt: skip
    p.add_argument("--bfield", type=opt.bfield, default=0.5,
                   help="solenoid field, T (0.5 nominal, 0.2 low field; either sign)")  # fmt: skip
    p.add_argument("--first-tf", type=opt.non_negative_int, default=0,
                   help="id of the first timeframe")  # fmt: skip
    p.add_argument(
        "--layout",
        choices=["alice_dyn", "o2"],
        default="alice_dyn",
        help="alice_dyn: everything; o2: O2's tpc-native-clusters.root (tpcrec: "
        "TPCClusterNative buffers + Size + MC truth), written with ROOT (pip install "
        "'alice-dyn[root]')",
    )
    p.add_argument(
        "--o2-branches",
        choices=["single", "sectors"],
        default="single",
        help="with --layout o2: one TPCClusterNative branch (O2's default) or 36 "
        "TPCClusterNative_<s> branches",
    )
    p.add_argument(
        "--compression",
        type=opt.compression,
        default=None,
        help="e.g. lz4:1 (default, fastest to read), zlib:1, zstd:1, none",
    )
    p.add_argument("--run-period", default="SIM", help="run period name stored in the file")
    p.add_argument(
        "--centrality",
        type=opt.centrality_percent,
        default=None,
        metavar="MIN-MAX",
        help="Pb-Pb centrality range in percent (default 0-90; pbpb only)",
    )
    p.add_argument(
        "--noise-fraction",
        type=opt.float_in(0.0, 10.0),
        default=None,
        help="noise clusters per signal cluster, 0-10 (default from the preset)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alice_dyn.io import DEFAULT_COMPRESSION, TimeframeWriter
    from alice_dyn.io.o2_writer import require_root
    from alice_dyn.sim import SimConfig, simulate_timeframe

    if args.layout == "o2":
        require_root()  # RootMissingError (exit 2) before anything is simulated or written

    changes: dict = {"seed": args.seed, "bfield_t": args.bfield, "run_period": args.run_period}
    if args.collisions_per_tf is not None:
        changes["collisions_per_tf"] = args.collisions_per_tf
    if args.noise_fraction is not None:
        changes["noise_fraction"] = args.noise_fraction
    if args.centrality is not None:
        if args.system != "pbpb":
            raise opt.OptionError(
                f"argument --centrality: only with --system pbpb, not {args.system}"
            )
        changes["centrality_min"], changes["centrality_max"] = args.centrality
    cfg = SimConfig.for_system(args.system, **changes)
    try:
        cfg.validate()
    except ValueError as exc:
        raise opt.OptionError(str(exc)) from None
    compression = args.compression or DEFAULT_COMPRESSION
    opt.writable_file(args.output, "-o")
    n_cl = 0
    t0 = time.perf_counter()
    writer_options = {"o2_branches": args.o2_branches} if args.layout == "o2" else {}
    with TimeframeWriter(
        args.output, layout=args.layout, compression=compression, **writer_options
    ) as writer:
        bar = tqdm(range(args.first_tf, args.first_tf + args.timeframes), desc="simulate",
                   unit="TF", disable=None)  # fmt: skip
        for tf_id in bar:
            tf = simulate_timeframe(cfg, tf_id)
            writer.write(tf)
            n_cl += len(tf.clusters)
            bar.set_postfix(clusters=n_cl)
    dt = time.perf_counter() - t0
    size = os.path.getsize(args.output)
    print(
        f"wrote {args.timeframes} timeframes, {n_cl} clusters ({args.system}, seed {args.seed}, "
        f"B = {args.bfield} T) to {args.output}: {size / 1e6:.2f} MB in {dt:.1f} s"
    )
    return 0
