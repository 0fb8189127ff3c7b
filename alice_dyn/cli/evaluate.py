"""``alice-dyn evaluate``: performance of a reconstruction against MC truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alice_dyn.cli import _options as opt


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="performance of a reconstruction against MC truth (tracking, pid)",
        description="Compare an AO2D-like reconstruction file (alice-dyn run tpc-reco) with "
        "the simulation file it came from. JSON keys: docs/evaluation.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "what",
        choices=["tracking", "pid", "pid-net", "track-net"],
        help="what to evaluate (track-net: runs the classical chain and the track network on "
        "the --truth simulation file itself; no RECO file)",
    )
    p.add_argument("reco", nargs="?", default=None, help="reconstruction output (AO2D-like)")
    p.add_argument("--data", default=None, help="same as RECO (for pid-net)")
    p.add_argument("--truth", required=True, help="simulation file with the MC truth")
    p.add_argument("--model", default=None, help="network directory (default: shipped)")
    p.add_argument("--max-tf", type=opt.positive_int, default=None,
                   help="track-net: first N timeframes only")  # fmt: skip
    p.add_argument("--json", dest="json_out", default=None, help="write the results as JSON")
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG plots here")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> str | None:
    """The reconstruction file; one-line errors for missing files and models before work."""
    from alice_dyn.io import BadInputError

    reco = args.reco or args.data
    if reco is None and args.what != "track-net":
        raise opt.OptionError("give the reconstruction file (RECO or --data)")
    if args.what not in ("pid-net", "track-net") and args.model is not None:
        raise opt.OptionError(f"--model only with pid-net or track-net, not {args.what}")
    if args.max_tf is not None and args.what != "track-net":
        raise opt.OptionError(f"--max-tf only with track-net, not {args.what}")
    for path in (reco, args.truth):
        if path is not None and not Path(path).is_file():
            raise BadInputError(path, None, "no such file")
    if args.model is not None and not Path(args.model).is_dir():
        raise opt.OptionError(f"argument --model: {args.model}: no such model directory")
    opt.writable_file(args.json_out, "--json")
    opt.writable_dir(args.plots, "--plots")
    return reco


def run(args: argparse.Namespace) -> int:
    reco = _check(args)
    if args.what == "track-net":
        from alice_dyn.plotting.track_net import make_track_net_plots
        from alice_dyn.tracknet.evaluate import evaluate_track_net, format_track_net

        result = evaluate_track_net(args.truth, args.model, max_tf=args.max_tf)
        text, make_plots = format_track_net(result), make_track_net_plots
    elif args.what == "pid-net":
        from alice_dyn.pid.dataset import dataset_from_reco
        from alice_dyn.pid.evaluate import evaluate_pid_net
        from alice_dyn.pid.evaluate_text import format_pid_net
        from alice_dyn.pid.network import DEFAULT_MODEL_DIR, PRIMARY, load_pid_net
        from alice_dyn.plotting.pid_net import make_pid_net_plots

        load_pid_net(Path(args.model or DEFAULT_MODEL_DIR) / PRIMARY)  # a usable model, first
        result = evaluate_pid_net(dataset_from_reco(reco, args.truth), args.model)
        text, make_plots = format_pid_net(result), make_pid_net_plots
    else:
        from alice_dyn import qa

        tracking = args.what == "tracking"
        result = (qa.evaluate_tracking if tracking else qa.evaluate_pid)(reco, args.truth)
        text = (qa.format_tracking if tracking else qa.format_pid)(result)

        def make_plots(res: dict, outdir):
            from alice_dyn.plotting.pid import make_pid_plots
            from alice_dyn.plotting.tracking import make_tracking_plots

            return (make_tracking_plots if tracking else make_pid_plots)(res, Path(outdir))

    print(text)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    if args.plots:
        for path in make_plots(result, args.plots):
            print(f"plot: {path}")
    return 0
