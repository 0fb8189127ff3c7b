"""``alice-dyn inspect`` and ``alice-dyn summary``: what a ROOT file holds, read back."""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

from tqdm import tqdm


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="print what a ROOT file holds",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    p.add_argument("file", help="ROOT file (alice_dyn or O2 layout)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run_inspect)

    p = sub.add_parser(
        "summary",
        help="read a file back and print its physics summary",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("file", help="ROOT file written by alice-dyn simulate")
    p.add_argument("--skip-bad", action="store_true", help="skip (and count) bad timeframes")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary here")
    p.set_defaults(func=run_summary)


def run_inspect(args: argparse.Namespace) -> int:
    from alice_dyn.io import format_inspection, inspect_file

    info = inspect_file(args.file)
    print(json.dumps(info, indent=2, default=str) if args.json else format_inspection(info))
    return 0


def summarize_file(path: str | os.PathLike[str], skip_bad: bool = False) -> dict:
    """Read ``path`` timeframe by timeframe; return the physics summary and read throughput.
    Bad timeframes skipped with ``skip_bad`` are listed in ``skipped_timeframes`` (and not
    warned about one by one: the caller says it once)."""
    from alice_dyn.io import open_timeframes
    from alice_dyn.io.errors import BadTimeframeWarning
    from alice_dyn.io.reader import logger as reader_logger
    from alice_dyn.qa import SimSummary

    summary = SimSummary()
    t0 = time.perf_counter()
    level = reader_logger.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadTimeframeWarning)
        reader_logger.setLevel("ERROR")  # each skip is listed in the summary instead
        try:
            with open_timeframes(path, skip_bad=skip_bad) as reader:
                for tf in tqdm(reader, total=len(reader), desc="read", unit="TF", disable=None):
                    summary.add(tf)
                skipped = list(reader.skipped)
        finally:
            reader_logger.setLevel(level)
    dt = time.perf_counter() - t0
    out = summary.result()
    out["file"] = os.fspath(path)
    out["read_seconds"] = dt
    out["read_clusters_per_s"] = out["clusters"] / dt if dt > 0 else float("nan")
    out["skipped_timeframes"] = [{"entry": e, "problem": p} for e, p in skipped]
    return out


def format_summary(s: dict) -> str:
    """Plain-text rendering of :func:`summarize_file`'s result."""
    species = ", ".join(f"{k} {v}" for k, v in s["species"].items())
    lines = [
        f"file                      {s['file']}",
        f"timeframes / collisions   {s['timeframes']} / {s['collisions']}",
        f"MC particles              {s['mc_particles']}  ({species})",
        f"TPC clusters              {s['clusters']}  "
        f"(noise {100 * s['noise_cluster_fraction']:.2f}%)",
        f"TOF hits / TRD tracklets  {s['tof_hits']} / {s['trd_tracklets']}",
        f"|eta|<0.9 with TPC        {s['tpc_particles_eta09']}: "
        f"{100 * s['fraction_with_tof']:.1f}% with TOF, "
        f"{100 * s['fraction_with_trd']:.1f}% with TRD",
        f"loopers                   {s['loopers']}",
        f"dE/dx MIP resolution      {100 * s['dedx_mip_resolution']:.2f}% "
        f"(truncated mean 2/128-77/128, {s['mip_pions_for_dedx']} pions 0.4-0.6 GeV/c)",
        f"read throughput           {s['read_clusters_per_s']:.3e} clusters/s",
    ]
    if s["skipped_timeframes"]:
        lines.append(f"skipped bad timeframes    {len(s['skipped_timeframes'])}")
        lines += [f"  entry {d['entry']}: {d['problem']}" for d in s["skipped_timeframes"]]
    return "\n".join(lines)


def run_summary(args: argparse.Namespace) -> int:
    import sys

    from alice_dyn.cli import _options as opt

    opt.writable_file(args.json_out, "--json")
    s = summarize_file(args.file, skip_bad=args.skip_bad)
    print(format_summary(s))
    if s["skipped_timeframes"]:
        n = len(s["skipped_timeframes"])
        print(f"alice-dyn summary: warning: skipped {n} bad timeframe{'s' * (n != 1)} of "
              f"{args.file} (listed above)", file=sys.stderr)  # fmt: skip
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(s, indent=2))
    return 0
