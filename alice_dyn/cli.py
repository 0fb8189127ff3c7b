"""The ``alice-dyn`` command line: simulate, inspect, summarise, and the quickstart job.

Layer: user interface; it only wires the package's layers together. Options are kebab-case
with visible defaults (``alice-dyn COMMAND --help``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from alice_dyn import __version__

DATA_SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
DEFAULT_SAMPLE = DATA_SAMPLES / "pp_sample.root"


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate timeframes and write them to a ROOT file",
        description="Simulate timeframes (collisions, TPC clusters, TRD, TOF, MC truth) and "
        "write them to a ROOT file, one TTree entry per timeframe.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, help="output ROOT file")
    p.add_argument("--timeframes", type=int, default=4, help="number of timeframes")
    p.add_argument(
        "--collisions-per-tf",
        type=int,
        default=None,
        help="collisions per timeframe (default: 8 for pp, 2 for pbpb)",
    )
    p.add_argument("--system", choices=["pp", "pbpb"], default="pp", help="collision system")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same file)")
    p.add_argument("--bfield", type=float, default=0.5, help="solenoid field, T (0.5 or 0.2)")
    p.add_argument("--first-tf", type=int, default=0, help="id of the first timeframe")
    p.add_argument(
        "--layout",
        choices=["alice_dyn", "o2"],
        default="alice_dyn",
        help="alice_dyn: everything; o2: tpcrec/TPCClusterNative buffers only",
    )
    p.add_argument(
        "--compression",
        default=None,
        help="e.g. lz4:1 (default, fastest to read), zlib:1, zstd:1, none",
    )
    p.add_argument("--run-period", default="SIM", help="run period name stored in the file")
    p.add_argument(
        "--centrality",
        default=None,
        metavar="MIN-MAX",
        help="Pb-Pb centrality range in percent (default 0-90)",
    )
    p.add_argument(
        "--noise-fraction",
        type=float,
        default=None,
        help="noise clusters per signal cluster (default from the preset)",
    )
    p.set_defaults(func=cmd_simulate)  # fmt: skip


def cmd_simulate(args: argparse.Namespace) -> int:
    from alice_dyn.io import DEFAULT_COMPRESSION, TimeframeWriter
    from alice_dyn.sim import SimConfig, simulate_timeframe

    changes: dict = {"seed": args.seed, "bfield_t": args.bfield, "run_period": args.run_period}
    if args.collisions_per_tf is not None:
        changes["collisions_per_tf"] = args.collisions_per_tf
    if args.noise_fraction is not None:
        changes["noise_fraction"] = args.noise_fraction
    if args.centrality is not None:
        try:
            lo, hi = (float(v) / 100.0 for v in args.centrality.split("-"))
        except ValueError:
            raise SystemExit(
                f"alice-dyn simulate: --centrality {args.centrality!r}: use MIN-MAX"
            ) from None
        changes["centrality_min"], changes["centrality_max"] = lo, hi
    cfg = SimConfig.for_system(args.system, **changes)
    try:
        cfg.validate()
    except ValueError as exc:
        raise SystemExit(f"alice-dyn simulate: {exc}") from exc
    if args.timeframes < 1:
        raise SystemExit("alice-dyn simulate: --timeframes must be >= 1")
    compression = args.compression or DEFAULT_COMPRESSION
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    n_cl = 0
    t0 = time.perf_counter()
    with TimeframeWriter(args.output, layout=args.layout, compression=compression) as writer:
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


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="print what a ROOT file holds",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    p.add_argument("file", help="ROOT file (alice_dyn or O2 layout)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    from alice_dyn.io import format_inspection, inspect_file

    info = inspect_file(args.file)
    print(json.dumps(info, indent=2, default=str) if args.json else format_inspection(info))
    return 0


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="read a file back and print its physics summary",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("file", help="ROOT file written by alice-dyn simulate")
    p.add_argument("--skip-bad", action="store_true", help="skip (and count) bad timeframes")
    p.add_argument("--json", dest="json_out", default=None, help="also write the summary here")
    p.set_defaults(func=cmd_summary)


def summarize_file(path: str | os.PathLike[str], skip_bad: bool = False) -> dict:
    """Read ``path`` timeframe by timeframe; return the physics summary and read throughput."""
    from alice_dyn.io import open_timeframes
    from alice_dyn.qa import SimSummary

    summary = SimSummary()
    t0 = time.perf_counter()
    with open_timeframes(path, skip_bad=skip_bad) as reader:
        for tf in tqdm(reader, total=len(reader), desc="read", unit="TF", disable=None):
            summary.add(tf)
        skipped = list(reader.skipped)
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


def cmd_summary(args: argparse.Namespace) -> int:
    s = summarize_file(args.file, skip_bad=args.skip_bad)
    print(format_summary(s))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(s, indent=2))
    return 0


def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="the main job on the shipped sample (simulate -> ROOT -> read back -> summary; "
        "reconstruction workflow -> performance)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sample", default=str(DEFAULT_SAMPLE), help="shipped sample to summarise")
    p.add_argument("--out-dir", default="out", help="where the freshly simulated file goes")
    p.add_argument("--timeframes", type=int, default=2, help="timeframes to simulate afresh")
    p.set_defaults(func=cmd_quickstart)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from alice_dyn.io import TimeframeWriter, open_timeframes
    from alice_dyn.io.inspect import format_inspection, inspect_file
    from alice_dyn.io.testing import assert_timeframes_equal
    from alice_dyn.sim import SimConfig, simulate_timeframe

    print(f"== 1. shipped sample: {args.sample}")
    print(format_inspection(inspect_file(args.sample)))
    print(format_summary(summarize_file(args.sample)))

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
    print(f"\n== 3. reconstruction workflow tpc-reco on {args.sample} -> {reco}")
    specs = load_workflow("tpc-reco").define_workflow([args.sample], str(reco))
    rc = report(run_specs(specs), None)
    if rc:
        return rc
    print(f"\n== 4. performance against MC truth (alice-dyn evaluate tracking|pid {reco} ...)")
    print(qa.format_tracking(qa.evaluate_tracking(reco, args.sample)))
    print(qa.format_pid(qa.evaluate_pid(reco, args.sample)))
    return 0


def _add_workflows(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("workflows", help="list the workflows that 'alice-dyn run' knows")
    p.set_defaults(func=cmd_workflows)


def cmd_workflows(args: argparse.Namespace) -> int:
    from alice_dyn.framework.workflows import available_workflows, describe, load_workflow

    found = available_workflows()
    if not found:
        print("no workflow found (search path: $ALICE_DYN_WORKFLOWS, ./workflows, repo workflows/)")
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
    p.add_argument("--max-tf", type=int, default=None, help="stop after this many timeframes")
    p.add_argument("--metrics-json", default=None, metavar="FILE", help="write metrics as JSON")
    p.add_argument("--print-config", action="store_true", help="print the configuration")
    p.add_argument("--queue-depth", type=int, default=4, help="timeframes in flight per lane")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="abort after S s")
    o = p.add_argument_group(
        "online replay",
        "replay the input at a rate with a latency budget, twice (static, then adaptive "
        "configuration of the workflow: its online_modes()), and report latency and accuracy "
        "(JSON keys: docs/online_report.md); the static run writes OUTPUT with '.static' "
        "before the suffix",
    )
    o.add_argument("--online", action="store_true", help="online replay, adaptive vs static")
    o.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="base arrival rate of timeframes, Hz")  # fmt: skip
    o.add_argument("--burst", action="append", default=[], metavar="Fx:Ds[@Ss]",
                   help="rate x F for D s from S s after the first timeframe (default S = 5 s); "
                   "repeatable, e.g. 4x:10s@5s")  # fmt: skip
    o.add_argument("--budget-ms", type=float, default=None, metavar="MS",
                   help="end-to-end latency budget per timeframe, ms")  # fmt: skip
    o.add_argument("--warmup-tf", type=int, default=1, metavar="N",
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
    p.set_defaults(func=cmd_run)


def _count_timeframes(inputs: Sequence[str]) -> int | None:
    """Timeframes in the input files when they are alice_dyn/O2 ROOT files (else ``None``)."""
    try:
        from alice_dyn.io import open_timeframes

        total = 0
        for path in inputs:
            with open_timeframes(path) as reader:
                total += len(reader)
        return total
    except Exception:  # not ROOT timeframe files: the replay length stays unknown
        return None


def cmd_run_online(args: argparse.Namespace, module) -> int:
    """``alice-dyn run --online``: static then adaptive replay, report, plots."""
    from alice_dyn.framework.executable import parse_pipeline, report
    from alice_dyn.framework.online import ReplaySchedule, parse_burst
    from alice_dyn.framework.online_report import (
        format_online_report,
        json_safe,
        make_online_plots,
        run_online_comparison,
        static_output,
    )
    from alice_dyn.framework.spec import SpecError

    if args.rate is None:
        raise SpecError("--online needs --rate HZ")
    try:
        schedule = ReplaySchedule(args.rate, [parse_burst(b) for b in args.burst])
        if args.budget_ms is not None and not (0 < args.budget_ms < float("inf")):
            raise ValueError(f"--budget-ms must be a positive number, not {args.budget_ms!r}")
        if args.warmup_tf < 0:
            raise ValueError(f"--warmup-tf must be >= 0, not {args.warmup_tf}")
        if args.interleaved and args.side_by_side:
            raise ValueError("--interleaved and --side-by-side exclude each other")
        if args.interleaved and args.runner != "inline":
            raise ValueError("--interleaved needs the inline runner")
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    doc, summaries = run_online_comparison(
        module, args.workflow, list(args.inputs), args.output, schedule, args.budget_ms,
        config_key_values=args.config_key_values, config_files=args.config_file,
        runner=args.runner, pipeline=parse_pipeline(args.pipeline),
        forwarding_policy=args.forwarding_policy, max_timeframes=args.max_tf,
        n_timeframes=_count_timeframes(args.inputs), queue_depth=args.queue_depth,
        timeout_s=args.timeout, progress=None, warmup_timeframes=args.warmup_tf,
        side_by_side=args.side_by_side, interleaved=args.interleaved,
    )  # fmt: skip
    rc = 0
    for mode, summary in summaries.items():
        print(f"\n== {mode} run")
        metrics = args.metrics_json
        if metrics and mode == "static":
            metrics = static_output(metrics)
        extra = {"workflow": args.workflow, "inputs": args.inputs, "online_mode": mode}
        rc = max(rc, report(summary, metrics, extra))
    print()
    print(format_online_report(doc))
    if args.report_json:
        Path(args.report_json).resolve().parent.mkdir(parents=True, exist_ok=True)
        Path(args.report_json).write_text(json.dumps(json_safe(doc), indent=1))
        print(f"report: {args.report_json}")
    if args.report_plots:
        for path in make_online_plots(doc, args.report_plots):
            print(f"plot: {path}")
    return rc


def cmd_run(args: argparse.Namespace) -> int:
    from alice_dyn.framework.executable import parse_pipeline, report, run_specs
    from alice_dyn.framework.spec import SpecError
    from alice_dyn.framework.workflows import load_workflow

    online_only = {
        "--rate": args.rate is not None,
        "--burst": bool(args.burst),
        "--budget-ms": args.budget_ms is not None,
        "--report-json": args.report_json is not None,
        "--report-plots": args.report_plots is not None,
        "--side-by-side": args.side_by_side,
        "--interleaved": args.interleaved,
    }
    if not args.online and any(online_only.values()):
        given = [k for k, v in online_only.items() if v]
        raise SpecError(f"{', '.join(given)} only with --online")
    module = load_workflow(args.workflow)
    if args.online:
        return cmd_run_online(args, module)
    Path(args.output).resolve().parent.mkdir(parents=True, exist_ok=True)
    specs = module.define_workflow(list(args.inputs), args.output)
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
    return report(summary, args.metrics_json, {"workflow": args.workflow, "inputs": args.inputs})


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--max-tf", type=int, default=None, help="track-net: first N timeframes only")
    p.add_argument("--json", dest="json_out", default=None, help="write the results as JSON")
    p.add_argument("--plots", default=None, metavar="DIR", help="write PNG plots here")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    reco = args.reco or args.data
    if reco is None and args.what != "track-net":
        raise SystemExit("alice-dyn evaluate: give the reconstruction file (RECO or --data)")
    if args.what == "track-net":
        from alice_dyn.tracknet.evaluate import (
            evaluate_track_net,
            format_track_net,
            make_track_net_plots,
        )

        result = evaluate_track_net(args.truth, args.model, max_tf=args.max_tf)
        text, make_plots = format_track_net(result), make_track_net_plots
    elif args.what == "pid-net":
        from alice_dyn.pid.dataset import dataset_from_reco
        from alice_dyn.pid.evaluate import evaluate_pid_net, format_pid_net, make_pid_net_plots

        result = evaluate_pid_net(dataset_from_reco(reco, args.truth), args.model)
        text, make_plots = format_pid_net(result), make_pid_net_plots
    else:
        from alice_dyn import qa

        tracking = args.what == "tracking"
        result = (qa.evaluate_tracking if tracking else qa.evaluate_pid)(reco, args.truth)
        text = (qa.format_tracking if tracking else qa.format_pid)(result)

        def make_plots(res: dict, outdir):
            from alice_dyn.qa import plots

            fn = plots.make_tracking_plots if tracking else plots.make_pid_plots
            return fn(res, Path(outdir))

    print(text)
    if args.json_out:
        Path(args.json_out).resolve().parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    if args.plots:
        for path in make_plots(result, args.plots):
            print(f"plot: {path}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the dynamic PID network and its baselines, or the track network",
        description="Simulate (or take) timeframes, reconstruct them with tpc-reco, build the "
        "PID dataset and train the ZTW and SDN early-exit networks, the per-subset MLPs and "
        "LightGBM; writes a model directory (safetensors + JSON).",
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
    p.add_argument("--timeframes", type=int, default=30, help="timeframes to simulate")
    p.add_argument("--system", choices=["pp", "pbpb"], default="pbpb")
    p.add_argument("--centrality", default="0-70", help="Pb-Pb centrality range, percent")
    p.add_argument("--collisions-per-tf", type=int, default=2, help="collisions per timeframe")
    p.add_argument("--seed", type=int, default=101, help="simulation and training seed")
    p.add_argument("--epochs", type=int, default=30, help="epochs per training stage")
    p.add_argument("--work-dir", default=None, help="where simulated/reconstructed files go")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    import tempfile

    if args.what == "track":
        from alice_dyn.tracknet.train import train_from_simulation

        command = "alice-dyn " + " ".join(sys.argv[1:]) if sys.argv else "alice-dyn train track"
        report = train_from_simulation(
            args.output, timeframes=args.timeframes, seed=args.seed, epochs=args.epochs,
            command=command, data_dir=args.work_dir,
        )  # fmt: skip
        print(json.dumps({k: report[k] for k in ("n_train", "n_val", "choice")}, indent=1))
        print(f"model written to {args.output}")
        return 0

    from alice_dyn.pid.data_gen import make_pid_dataset
    from alice_dyn.pid.dataset import dataset_from_reco
    from alice_dyn.pid.train import train_all

    command = "alice-dyn " + " ".join(sys.argv[1:]) if sys.argv else "alice-dyn train pid"
    # pid-reuse: the PID network on the track network's embedding (and its control)
    emb_dim = track_embedding_dim() if args.what == "pid-reuse" else 0
    if args.data:
        if not args.truth:
            raise SystemExit("alice-dyn train: --data needs --truth")
        data = dataset_from_reco(args.data, args.truth, embedding_dim=emb_dim)
    else:
        lo, hi = (float(v) / 100.0 for v in args.centrality.split("-"))
        work = args.work_dir or tempfile.mkdtemp(prefix="alice_dyn_pid_")
        data = make_pid_dataset(work, args.timeframes, system=args.system, seed=args.seed,
                                centrality_min=lo, centrality_max=hi,
                                collisions_per_tf=args.collisions_per_tf,
                                embedding_dim=emb_dim)  # fmt: skip
    print(
        f"PID dataset: {len(data)} tracks, classes {np.bincount(data.labels, minlength=5).tolist()}"
    )
    enriched = None
    if args.what == "pid" and not args.data:
        # electrons and muons from an enriched simulation for the SDN network (pid.train)
        from alice_dyn.pid.data_gen import make_enriched_dataset

        enriched = make_enriched_dataset(
            Path(work) / "enriched", seed=args.seed, system=args.system, centrality_min=lo,
            centrality_max=hi, collisions_per_tf=args.collisions_per_tf,
        )  # fmt: skip
        print(f"enriched dataset: {len(enriched)} tracks, classes "
              f"{np.bincount(enriched.labels, minlength=5).tolist()}")  # fmt: skip
    if args.what == "pid-reuse":
        from alice_dyn.pid.reuse import train_reuse_all

        report = train_reuse_all(data, args.output, seed=args.seed, epochs=args.epochs,
                                 command=command)  # fmt: skip
        print(json.dumps(report, indent=1))
        print(f"models written to {args.output}/reuse and {args.output}/reuse_control")
        return 0
    report = train_all(
        data, args.output, seed=args.seed, epochs=args.epochs, command=command, enriched=enriched
    )
    print(json.dumps({k: report[k] for k in ("n_train", "n_val", "baselines")}, indent=1))
    print(f"model written to {args.output}")
    return 0


def track_embedding_dim() -> int:
    """Width of the shipped track network's embedding (what ``track-net`` passes on)."""
    from alice_dyn.nn.model_io import read_config
    from alice_dyn.tracknet.network import DEFAULT_MODEL_DIR

    return int(read_config(DEFAULT_MODEL_DIR)["model"]["kwargs"]["d"])


def _add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="remake a calibration from the simulation (dedx)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("what", choices=["dedx"], help="what to calibrate")
    p.add_argument("-o", "--output", required=True, help="output JSON file")
    p.add_argument("--seed", type=int, default=1, help="random seed of the particle guns")
    p.add_argument("--per-point", type=int, default=60, help="tracks per momentum point")
    p.add_argument("--bfield", type=float, default=0.5, help="solenoid field, T")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from alice_dyn.reco.dedx_calibration import measure_calibration

    d = measure_calibration(seed=args.seed, n_per_point=args.per_point, bfield_t=args.bfield)
    Path(args.output).write_text(json.dumps(d, indent=1))
    print(
        f"dE/dx calibration: MIP scale {d['mip_scale']:.4f}, dip coefficient "
        f"{d['tgl_coefficient']:.4f}, {len(d['log10_bg'])} points -> {args.output}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alice-dyn",
        description="alice_dyn: dynamic neural networks for ALICE O2-style TPC reconstruction.",
    )
    parser.add_argument("--version", action="version", version=f"alice-dyn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_simulate(sub)
    _add_inspect(sub)
    _add_summary(sub)
    _add_quickstart(sub)
    _add_workflows(sub)
    _add_run(sub)
    _add_evaluate(sub)
    _add_train(sub)
    _add_calibrate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``alice-dyn``; bad input, workflow or configuration ends with a one-line
    error and exit code 2; a processor failing during a run with exit code 1."""
    from alice_dyn.framework.errors import UsageError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"alice-dyn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
