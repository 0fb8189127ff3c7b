"""``alice-dyn train``: the PID networks and their baselines, the reuse networks, or the track
network, from the project's own simulation (or a given reconstruction)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from alice_dyn.cli import _options as opt


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the dynamic PID network and its baselines, or the track network",
        description="Simulate (or take) timeframes, reconstruct them with tpc-reco, build the "
        "PID dataset and train the ZTW and SDN early-exit networks, the per-subset MLPs and "
        "LightGBM; writes a model directory (safetensors + JSON). 'train pid' also simulates "
        "the enriched e/mu sample of the SDN network (40 timeframes, whatever --timeframes).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "what",
        choices=["pid", "track", "pid-reuse"],
        help="pid: the PID networks; track: the track network (simulates its pp/Pb-Pb mix, "
        "uses --timeframes, --seed, --epochs and --work-dir as a dataset cache); pid-reuse: "
        "the PID network on the track network's embedding and its control (DIR/reuse, "
        "DIR/reuse_control)",
    )
    p.add_argument("-o", "--output", required=True, help="model directory")
    p.add_argument("--data", default=None, help="reconstruction file (else simulate)")
    p.add_argument("--truth", default=None, help="its simulation file (with --data)")
    p.add_argument("--timeframes", type=opt.positive_int, default=30,
                   help="timeframes to simulate")  # fmt: skip
    p.add_argument("--system", choices=["pp", "pbpb"], default="pbpb")
    p.add_argument(
        "--centrality",
        type=opt.centrality_percent,
        default=(0.0, 0.7),
        metavar="MIN-MAX",
        help="Pb-Pb centrality range, percent (default 0-70)",
    )
    p.add_argument("--collisions-per-tf", type=opt.positive_int, default=2,
                   help="collisions per timeframe")  # fmt: skip
    p.add_argument("--seed", type=opt.non_negative_int, default=101,
                   help="simulation and training seed")  # fmt: skip
    p.add_argument("--epochs", type=opt.positive_int, default=30, help="epochs per training stage")
    p.add_argument("--work-dir", default=None, help="where simulated/reconstructed files go")
    p.set_defaults(func=run)


def _command(default: str) -> str:
    return "alice-dyn " + " ".join(sys.argv[1:]) if sys.argv else default


def run(args: argparse.Namespace) -> int:
    if args.data and not args.truth:
        raise opt.OptionError("--data needs --truth")
    for option, folder in (("-o", args.output), ("--work-dir", args.work_dir)):
        if folder is not None:  # its parent: the folder itself is made once training starts
            opt.writable_dir(str(Path(folder).resolve().parent), option, shown=folder)
    if args.what == "track":
        if args.data:
            raise opt.OptionError("train track simulates its own mix: no --data")
        from alice_dyn.tracknet.train import train_from_simulation

        report = train_from_simulation(
            args.output, timeframes=args.timeframes, seed=args.seed, epochs=args.epochs,
            command=_command("alice-dyn train track"), data_dir=args.work_dir,
        )  # fmt: skip
        print(json.dumps({k: report[k] for k in ("n_train", "n_val", "choice")}, indent=1))
        print(f"model written to {args.output}")
        return 0

    from alice_dyn.pid.data_gen import TrainingSample
    from alice_dyn.pid.train import train_from_simulation
    from alice_dyn.tracknet.network import track_embedding_dim

    reuse = args.what == "pid-reuse"
    sample = TrainingSample(
        data=args.data, truth=args.truth, work_dir=args.work_dir, timeframes=args.timeframes,
        system=args.system, centrality=args.centrality,
        collisions_per_tf=args.collisions_per_tf, seed=args.seed,
    )  # fmt: skip
    report = train_from_simulation(
        args.output,
        sample,
        reuse_embedding_dim=track_embedding_dim() if reuse else 0,
        epochs=args.epochs,
        command=_command("alice-dyn train pid"),
    )
    if reuse:
        print(json.dumps(report, indent=1))
        print(f"models written to {args.output}/reuse and {args.output}/reuse_control")
        return 0
    print(json.dumps({k: report[k] for k in ("n_train", "n_val", "baselines")}, indent=1))
    print(f"model written to {args.output}")
    return 0
