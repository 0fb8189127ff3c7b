"""``alice-dyn run`` and ``alice-dyn workflows``: run a workflow over ROOT files, offline or
replayed online (static against adaptive configuration)."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from alice_dyn.cli import _options as opt


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("workflows", help="list the workflows that 'alice-dyn run' knows")
    p.set_defaults(func=run_workflows)
    _add_run(sub)


def run_workflows(args: argparse.Namespace) -> int:
    from alice_dyn.framework.workflows import (
        available_workflows,
        describe,
        load_workflow,
        search_path,
    )

    found = available_workflows()
    if not found:
        folders = ", ".join(str(d) for d in search_path()) or "none exists"
        print(f"no workflow found (searched $ALICE_DYN_WORKFLOWS, ./workflows and the shipped "
              f"workflows: {folders})")  # fmt: skip
    for name, path in found.items():
        print(f"{name:<24} {describe(load_workflow(str(path)))}  [{path}]")
    return 0


def _add_run(sub: argparse._SubParsersAction) -> None:
    from alice_dyn.framework.executable import RUNNERS
    from alice_dyn.framework.topology import FORWARDING_POLICIES

    p = sub.add_parser(
        "run",
        help="run a workflow over ROOT files",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("workflow", help="workflow name (see 'alice-dyn workflows') or .py path")
    p.add_argument("-i", "--inputs", nargs="+", required=True, help="input ROOT file(s)")
    p.add_argument("-o", "--output", required=True, help="output ROOT file")
    p.add_argument("--runner", choices=RUNNERS, default="inline", help="how to run")
    p.add_argument("--configKeyValues", dest="config_key_values", action="append", default=[],
                   metavar="'Group.key=value;...'", help="configurable parameters")  # fmt: skip
    p.add_argument("--configFile", dest="config_file", action="append", default=[],
                   metavar="INI", help="INI file with [Group] sections")  # fmt: skip
    p.add_argument("--pipeline", action="append", default=[], metavar="name:N",
                   help="parallel lanes of a processor (multiprocess runner)")  # fmt: skip
    p.add_argument("--forwarding-policy", choices=FORWARDING_POLICIES, default="dangling")
    p.add_argument("--disable", action="append", default=[], metavar="PROCESSOR",
                   help="leave out an optional processor of the workflow (its OPTIONAL list, "
                   "e.g. pid-net in tpc-reco), as O2 workflows' --disable-* options; "
                   "repeatable; offline runs")  # fmt: skip
    p.add_argument("--max-tf", type=opt.positive_int, default=None,
                   help="stop after this many timeframes (>= 1)")  # fmt: skip
    p.add_argument("--metrics-json", default=None, metavar="FILE", help="write metrics as JSON")
    p.add_argument("--print-config", action="store_true", help="print the configuration")
    p.add_argument("--queue-depth", type=opt.positive_int, default=4,
                   help="timeframes in flight per lane")  # fmt: skip
    p.add_argument("--timeout", type=opt.positive_float, default=None, metavar="S",
                   help="abort after S s")  # fmt: skip
    o = p.add_argument_group(
        "online replay",
        "replay the input at a rate with a latency budget, twice (static, then adaptive "
        "configuration of the workflow: its online_modes()), and report latency and accuracy "
        "(JSON keys: docs/online_report.md); the static run writes OUTPUT with '.static' "
        "before the suffix",
    )
    o.add_argument("--online", action="store_true", help="online replay, adaptive vs static")
    o.add_argument("--rate", type=opt.positive_float, default=None, metavar="HZ",
                   help="base arrival rate of timeframes, Hz")  # fmt: skip
    o.add_argument("--burst", action="append", default=[], metavar="Fx:Ds[@Ss]",
                   help="rate x F for D s from S s after the first timeframe (default S = 5 s); "
                   "repeatable, e.g. 4x:10s@5s")  # fmt: skip
    o.add_argument("--budget-ms", type=opt.positive_float, default=None, metavar="MS",
                   help="end-to-end latency budget per timeframe, ms")  # fmt: skip
    o.add_argument("--warmup-tf", type=opt.non_negative_int, default=1, metavar="N",
                   help="untimed timeframes per configuration first (JIT, caches)")  # fmt: skip
    o.add_argument("--side-by-side", action="store_true",
                   help="run the static and adaptive replays at the same time, each in its own "
                   "process on its own CPU core (needs 2 cores; both see the same machine "
                   "conditions)")  # fmt: skip
    o.add_argument("--interleaved", action="store_true",
                   help="run the static and adaptive replays in one process on one core, one "
                   "timeframe of each in turn, each on its own replay clock (its own work in "
                   "real time, the other's not counted, waits skipped): both see the machine "
                   "of the same second (inline runner)")  # fmt: skip
    o.add_argument("--report-json", default=None, metavar="FILE", help="write the report here")
    o.add_argument("--report-plots", default=None, metavar="DIR", help="write PNG plots here")
    p.set_defaults(func=run)


def check_inputs(inputs: Sequence[str]) -> None:
    """Every input exists and is a readable file (one line and exit 2 otherwise), before any
    work starts; what a file must hold is the workflow's reader's to check."""
    from alice_dyn.io import BadInputError

    for path in inputs:
        if not Path(path).exists():
            raise BadInputError(path, None, "no such file")
        if not Path(path).is_file():
            raise BadInputError(path, None, "not a file")


def count_timeframes(inputs: Sequence[str]) -> int | None:
    """Timeframes in the input files when they are alice_dyn/O2 ROOT files (else ``None``:
    the replay length stays unknown)."""
    from alice_dyn.io import open_timeframes

    total = 0
    try:
        for path in inputs:
            with open_timeframes(path) as reader:
                total += len(reader)
    except Exception:  # not ROOT timeframe files (e.g. a toy workflow's inputs)
        return None
    return total


def _check_online_options(args: argparse.Namespace) -> None:
    online_only = {
        "--rate": args.rate is not None,
        "--burst": bool(args.burst),
        "--budget-ms": args.budget_ms is not None,
        "--report-json": args.report_json is not None,
        "--report-plots": args.report_plots is not None,
        "--side-by-side": args.side_by_side,
        "--interleaved": args.interleaved,
    }
    if args.online and args.disable:
        raise opt.OptionError("--disable only offline (the online modes run the whole workflow)")
    if not args.online and any(online_only.values()):
        given = [k for k, v in online_only.items() if v]
        raise opt.OptionError(f"{', '.join(given)} only with --online")
    if not args.online:
        return
    if args.rate is None:
        raise opt.OptionError("--online needs --rate HZ")
    if args.interleaved and args.side_by_side:
        raise opt.OptionError("--interleaved and --side-by-side exclude each other")
    if args.interleaved and args.runner != "inline":
        raise opt.OptionError("--interleaved needs the inline runner")


def run(args: argparse.Namespace) -> int:
    from alice_dyn.framework.executable import parse_pipeline, report, run_specs
    from alice_dyn.framework.workflows import load_workflow

    _check_online_options(args)
    check_inputs(args.inputs)
    opt.writable_file(args.output, "-o")
    opt.writable_file(args.metrics_json, "--metrics-json")
    opt.writable_file(args.report_json, "--report-json")
    opt.writable_dir(args.report_plots, "--report-plots")
    module = load_workflow(args.workflow)
    if args.online:
        return run_online(args, module, count_timeframes(args.inputs))
    specs = module.define_workflow(
        list(args.inputs), args.output, **_workflow_options(args, module)
    )
    summary = run_specs(
        specs,
        runner=args.runner,
        config_key_values=args.config_key_values,
        config_files=args.config_file,
        pipeline=parse_pipeline(args.pipeline),
        forwarding_policy=args.forwarding_policy,
        max_timeframes=args.max_tf,
        print_config=args.print_config,
        queue_depth=args.queue_depth,
        timeout_s=args.timeout,
    )
    extra = {"workflow": args.workflow, "inputs": args.inputs}
    return report(summary, args.metrics_json, extra, prog="alice-dyn run")


def _workflow_options(args: argparse.Namespace, module) -> dict:
    """Keyword options of the workflow's ``define_workflow`` given on the command line."""
    if not args.disable:
        return {}
    optional = tuple(getattr(module, "OPTIONAL", ()))
    if "disable" not in inspect.signature(module.define_workflow).parameters or not optional:
        raise opt.OptionError(f"--disable: workflow {args.workflow} has no optional processors")
    unknown = sorted(set(args.disable) - set(optional))
    if unknown:
        raise opt.OptionError(
            f"--disable {', '.join(unknown)}: not an optional processor of {args.workflow} "
            f"(optional: {', '.join(optional)})"
        )
    return {"disable": tuple(args.disable)}


def _warn_late_bursts(schedule, n_replayed: int) -> None:
    """A burst that starts after the last arrival changes nothing: say so."""
    if n_replayed < 1:
        return
    last_s = float(schedule.arrival_times(n_replayed)[-1])
    for b in schedule.bursts:
        if b.start_s > last_s:
            print(
                f"alice-dyn run: warning: the burst {b.factor:g}x from {b.start_s:g} s starts "
                f"after the last of the {n_replayed} timeframes arrives ({last_s:.2f} s at "
                f"{schedule.rate_hz:g} Hz): it changes nothing",
                file=sys.stderr,
            )


def run_online(args: argparse.Namespace, module, n_timeframes: int | None) -> int:
    """``alice-dyn run --online``: static then adaptive replay, report, plots."""
    from alice_dyn.framework.executable import parse_pipeline, report
    from alice_dyn.framework.online import ReplaySchedule, parse_burst
    from alice_dyn.online import (
        RunSettings,
        format_online_report,
        json_safe,
        run_online_comparison,
        static_output,
    )

    try:
        schedule = ReplaySchedule(args.rate, [parse_burst(b) for b in args.burst])
    except ValueError as exc:
        raise opt.OptionError(str(exc)) from None
    if n_timeframes is not None:
        n_replayed = n_timeframes if args.max_tf is None else min(n_timeframes, args.max_tf)
        _warn_late_bursts(schedule, n_replayed)
    settings = RunSettings(
        config_files=tuple(args.config_file), runner=args.runner,
        pipeline=parse_pipeline(args.pipeline), forwarding_policy=args.forwarding_policy,
        max_timeframes=args.max_tf, queue_depth=args.queue_depth, timeout_s=args.timeout,
    )  # fmt: skip
    doc, summaries = run_online_comparison(
        module, args.workflow, list(args.inputs), args.output, schedule, args.budget_ms,
        config_key_values=args.config_key_values, settings=settings, n_timeframes=n_timeframes,
        progress=None, warmup_timeframes=args.warmup_tf, side_by_side=args.side_by_side,
        interleaved=args.interleaved,
    )  # fmt: skip
    rc = 0
    for mode, summary in summaries.items():
        print(f"\n== {mode} run")
        metrics = args.metrics_json
        if metrics and mode == "static":
            metrics = static_output(metrics)
        extra = {"workflow": args.workflow, "inputs": args.inputs, "online_mode": mode}
        rc = max(rc, report(summary, metrics, extra, prog="alice-dyn run"))
    print()
    print(format_online_report(doc))
    if args.report_json:
        Path(args.report_json).resolve().parent.mkdir(parents=True, exist_ok=True)
        Path(args.report_json).write_text(json.dumps(json_safe(doc), indent=1))
        print(f"report: {args.report_json}")
    if args.report_plots:
        from alice_dyn.plotting.online import make_online_plots

        for path in make_online_plots(doc, args.report_plots):
            print(f"plot: {path}")
    return rc
