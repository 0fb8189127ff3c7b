"""O2-style executables: common options, ``|`` composition through workflow JSON, running.

Layer: framework. Every stage executable calls :func:`run_executable` with a function that
defines its processors. As in O2:

* when stdout is a pipe and ``--run`` is absent, the executable prints its workflow as JSON
  (keys ``workflow``, ``metadata``, ``command``) and exits;
* when stdin carries such JSON, the upstream processors are merged in by name (no
  duplicates), so the last executable of ``a | b | c`` holds the whole topology and runs it.

Processors travel as their spec factory (``"module:function"`` + keyword arguments) and are
rebuilt on the other side, with their completion policy (``completion_policy``). Global
options (``--configKeyValues``, ``--pipeline``, ...) of all executables are merged, upstream
first.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import stat
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alice_dyn.framework.config import ConfigStore
from alice_dyn.framework.errors import UsageError
from alice_dyn.framework.metrics import format_metrics, write_metrics_json
from alice_dyn.framework.online import OnlineOptions
from alice_dyn.framework.runtime import RunSummary
from alice_dyn.framework.spec import DataProcessorSpec, SpecError, check_completion_policy
from alice_dyn.framework.topology import FORWARDING_POLICIES, Topology, build_topology

RUNNERS = ("inline", "multiprocess")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options every executable accepts (O2's names where O2 has them)."""
    g = parser.add_argument_group("workflow options")
    g.add_argument(
        "-b",
        "--batch",
        action="store_true",
        help="batch mode (no GUI; accepted for O2 compatibility)",
    )
    g.add_argument("--run", action="store_true", help="run even when stdout is a pipe")
    g.add_argument(
        "--configKeyValues",
        dest="config_key_values",
        action="append",
        default=[],
        metavar="'Group.key=value;...'",
        help="set configurable parameters (no spaces around '=')",
    )
    g.add_argument("--configFile", "--config-file", dest="config_file", action="append", default=[],
                   metavar="INI", help="INI file with [Group] sections")  # fmt: skip
    g.add_argument("--pipeline", action="append", default=[], metavar="name:N[,name:N]",
                   help="run N parallel lanes of a processor (multiprocess runner)")  # fmt: skip
    g.add_argument("--forwarding-policy", choices=FORWARDING_POLICIES, default=None,
                   help="dangling outputs: to a dummy sink (dangling, default), every output also "
                   "to the sink (all), or refuse them (none)")  # fmt: skip
    g.add_argument(
        "--runner", choices=RUNNERS, default=None, help="inline (default) or multiprocess"
    )
    g.add_argument("--metrics-json", default=None, metavar="FILE", help="write metrics as JSON")
    g.add_argument("--queue-depth", type=int, default=4,
                   help="timeframes in flight per lane (multiprocess backpressure)")  # fmt: skip
    g.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="abort a multiprocess run after S seconds")  # fmt: skip
    g.add_argument("--print-config", action="store_true", help="print the effective configuration")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_pipeline(values: Sequence[str]) -> dict[str, int]:
    """``["name:2,other:3"]`` -> ``{"name": 2, "other": 3}``."""
    lanes: dict[str, int] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            name, _, n = item.partition(":")
            try:
                k = int(n)
            except ValueError:
                raise SpecError(f"--pipeline {item!r}: expected name:N") from None
            if k < 1:
                raise SpecError(f"--pipeline {item!r}: N must be >= 1")
            lanes[name.strip()] = k
    return lanes


def spec_to_json(spec: DataProcessorSpec) -> dict[str, Any]:
    if not spec.factory:
        raise SpecError(
            f"processor {spec.name!r} has no factory ('module:function'): it cannot be piped"
        )
    return {
        "name": spec.name,
        "factory": spec.factory,
        "kwargs": spec.factory_kwargs,
        "inputs": [str(i) for i in spec.inputs],
        "outputs": [str(o) for o in spec.outputs],
        "labels": list(spec.labels),
        "completion_policy": spec.completion_policy,
    }


def spec_from_json(d: dict[str, Any]) -> DataProcessorSpec:
    """Rebuild a processor from its JSON description (imports its factory)."""
    try:
        module, _, func = d["factory"].partition(":")
        factory = getattr(importlib.import_module(module), func)
    except (KeyError, ImportError, AttributeError, ValueError) as exc:
        raise SpecError(
            f"workflow JSON: cannot rebuild processor {d.get('name')!r}: {exc}"
        ) from exc
    spec = factory(**d.get("kwargs", {}))
    if spec.name != d["name"]:
        raise SpecError(
            f"workflow JSON: factory {d['factory']} made {spec.name!r}, not {d['name']!r}"
        )
    if "completion_policy" in d:  # as the upstream executable ran it (absent: the factory's)
        spec.completion_policy = check_completion_policy(
            d["completion_policy"], f"workflow JSON: processor {spec.name!r}"
        )
    return spec


def read_upstream(stream=None) -> dict[str, Any] | None:
    """Workflow JSON piped in on stdin, or ``None`` (a terminal, nothing, or no stdin)."""
    stream = sys.stdin if stream is None else stream
    try:
        if stream is None or stream.isatty():
            return None
        text = stream.read()
    except (OSError, ValueError, AttributeError):
        return None  # no readable stdin (closed, or captured by a test runner)
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"stdin does not carry workflow JSON: {exc}") from exc
    if not isinstance(doc, dict) or "workflow" not in doc:
        raise SpecError("stdin JSON has no 'workflow' key")
    return doc


def stdout_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def merge_documents(
    upstream: dict[str, Any] | None,
    specs: Sequence[DataProcessorSpec],
    metadata: dict,
    command: str,
) -> dict[str, Any]:
    """Upstream workflow + this executable's processors (by name, no duplicates)."""
    workflow = list(upstream["workflow"]) if upstream else []
    names = {p["name"] for p in workflow}
    for spec in specs:
        if spec.name in names:
            continue  # already defined upstream: O2 keeps one processor per name
        workflow.append(spec_to_json(spec))
        names.add(spec.name)
    meta = list(upstream.get("metadata", [])) if upstream else []
    meta.append(metadata)
    cmd = f"{upstream['command']} | {command}" if upstream and upstream.get("command") else command
    return {"workflow": workflow, "metadata": meta, "command": cmd}


def configure_specs(
    specs: Sequence[DataProcessorSpec],
    config_key_values: Sequence[str] = (),
    config_files: Sequence[str] = (),
    forwarding_policy: str = "dangling",
) -> tuple[Topology, ConfigStore]:
    """The topology of ``specs`` and its configuration: defaults, then the INI files, then
    ``config_key_values``."""
    topology = build_topology(specs, forwarding_policy)
    store = ConfigStore(list(dict.fromkeys(g for s in specs for g in s.config_groups)))
    for path in config_files:
        store.apply_ini(path)
    for text in config_key_values:
        store.apply_key_values(text)
    return topology, store


def run_specs(
    specs: Sequence[DataProcessorSpec],
    *,
    runner: str = "inline",
    config_key_values: Sequence[str] = (),
    config_files: Sequence[str] = (),
    pipeline: dict[str, int] | None = None,
    forwarding_policy: str = "dangling",
    max_timeframes: int | None = None,
    progress: bool | None = None,
    print_config: bool = False,
    keep_sink: bool = False,
    queue_depth: int = 4,
    timeout_s: float | None = None,
    online: OnlineOptions | None = None,
) -> RunSummary:
    """Build the topology of ``specs``, configure it (INI files, then ``config_key_values``) and
    run it with ``runner``; in online (replay) mode when ``online`` is given."""
    topology, store = configure_specs(specs, config_key_values, config_files, forwarding_policy)
    if print_config:
        print(store.format() if store.groups else "(no configurable parameters in this workflow)")
    lanes = pipeline or {}
    unknown = set(lanes) - set(topology.by_name)
    if unknown:
        raise SpecError(f"--pipeline names unknown processor(s) {sorted(unknown)}")
    if runner == "inline":
        if any(n > 1 for n in lanes.values()):
            raise SpecError("--pipeline lanes need the multiprocess runner (--runner multiprocess)")
        from alice_dyn.framework.runner_inline import run_inline

        return run_inline(
            topology, store, max_timeframes=max_timeframes, progress=progress, keep_sink=keep_sink,
            online=online,
        )  # fmt: skip
    if runner == "multiprocess":
        from alice_dyn.framework.runner_mp import run_multiprocess

        return run_multiprocess(
            topology, store, pipeline=lanes, max_timeframes=max_timeframes, progress=progress,
            keep_sink=keep_sink, queue_depth=queue_depth, timeout_s=timeout_s, online=online,
        )  # fmt: skip
    raise SpecError(f"unknown runner {runner!r}; use one of {RUNNERS}")


def report(
    summary: RunSummary,
    metrics_json: str | None,
    extra: dict | None = None,
    *,
    prog: str | None = None,
) -> int:
    """Print the metrics table and summary, write the JSON; returns the exit code: 0 ok, 1 a
    processor failed, 2 a processor was given bad input or settings (a task raised a
    :class:`~alice_dyn.framework.errors.UsageError`: then one line ``PROG: error: MESSAGE``,
    naming the file, timeframe and problem, instead of the table)."""
    if metrics_json:
        write_metrics_json(
            metrics_json, summary.metrics, {"run": summary.as_dict(), **(extra or {})}
        )
    err = summary.error
    if err is not None and err.usage_message is not None:
        print(f"{prog + ': ' if prog else ''}error: {err.usage_message}", file=sys.stderr)
        return 2
    print(format_metrics(summary.metrics))
    print(summary.format())
    if err is not None:
        print(f"error: {err}", file=sys.stderr)
    return 0 if summary.ok else 1


def run_document(doc: dict[str, Any], args: argparse.Namespace) -> int:
    """Run a merged workflow document with the merged global options."""
    specs = [spec_from_json(p) for p in doc["workflow"]]
    meta = doc.get("metadata", [])
    ckv = [t for m in meta for t in m.get("configKeyValues", [])]
    ini = [t for m in meta for t in m.get("configFile", [])]
    lanes: dict[str, int] = {}
    for m in meta:
        lanes.update(m.get("pipeline", {}))
    last = meta[-1] if meta else {}
    summary = run_specs(
        specs,
        runner=last.get("runner") or "inline",
        config_key_values=ckv,
        config_files=ini,
        pipeline=lanes,
        forwarding_policy=last.get("forwarding_policy") or "dangling",
        progress=False if args.no_progress else None,
        print_config=args.print_config,
        queue_depth=args.queue_depth,
        timeout_s=args.timeout,
    )
    prog = (doc.get("metadata") or [{}])[-1].get("executable")
    return report(summary, args.metrics_json, {"command": doc.get("command")}, prog=prog)


def run_executable(
    prog: str,
    define: Callable[[argparse.Namespace], list[DataProcessorSpec]],
    add_options: Callable[[argparse.ArgumentParser], None] | None,
    argv: Sequence[str] | None = None,
) -> int:
    """Entry point of a stage executable: options, JSON piping, merge, run.

    Exit codes: 0 success, 1 a processor failed (message names it and the timeframe),
    2 bad workflow, configuration or input (one-line message).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog=prog, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_common_options(parser)
    if add_options:
        add_options(parser)
    args = parser.parse_args(argv)
    try:
        upstream = read_upstream()
        own = define(args)
        metadata = {
            "executable": prog,
            "configKeyValues": args.config_key_values,
            "configFile": [str(Path(p).resolve()) for p in args.config_file],
            "pipeline": parse_pipeline(args.pipeline),
            "forwarding_policy": args.forwarding_policy,
            "runner": args.runner,
        }
        command = " ".join([prog, *argv])
        doc = merge_documents(upstream, own, metadata, command)
        if stdout_is_pipe() and not args.run:
            json.dump(doc, sys.stdout)
            sys.stdout.write("\n")
            return 0
        return run_document(doc, args)
    except UsageError as exc:  # bad workflow, configuration or input file: one line
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
