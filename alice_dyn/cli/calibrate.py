"""``alice-dyn calibrate dedx``: remake the dE/dx calibration from particle guns."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from alice_dyn.cli import _options as opt


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="remake a calibration from the simulation (dedx)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("what", choices=["dedx"], help="what to calibrate")
    p.add_argument("-o", "--output", required=True, help="output JSON file")
    p.add_argument("--seed", type=opt.non_negative_int, default=1,
                   help="random seed of the particle guns")  # fmt: skip
    p.add_argument(
        "--per-point",
        type=opt.int_at_least(20, 100_000),
        default=60,
        help="tracks per momentum point (>= 20: a point needs 10 good tracks)",
    )
    p.add_argument("--bfield", type=opt.bfield, default=0.5, help="solenoid field, T")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from alice_dyn.calib.dedx import measure_calibration

    opt.writable_file(args.output, "-o")
    d = measure_calibration(seed=args.seed, n_per_point=args.per_point, bfield_t=args.bfield)
    Path(args.output).write_text(json.dumps(d, indent=1))
    print(
        f"dE/dx calibration: MIP scale {d['mip_scale']:.4f}, dip coefficient "
        f"{d['tgl_coefficient']:.4f}, {len(d['log10_bg'])} points -> {args.output}"
    )
    return 0
