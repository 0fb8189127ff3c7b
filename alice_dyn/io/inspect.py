"""Summaries of timeframe files for ``alice-dyn inspect FILE``.

Layer: I/O. :func:`inspect_file` reads only the TTree metadata and the small counter / scalar
branches (never the cluster payload when counters exist), so it is quick on large files;
:func:`format_inspection` renders its result as plain text.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from uproot.compression import Compression

from alice_dyn.io.errors import BadInputError
from alice_dyn.io.o2_layout import O2_MODE_ARRAY, plan_o2_layout
from alice_dyn.io.reader import check_branches, detect_layout, open_root, read_metadata
from alice_dyn.io.schema import (
    CLUSTERS,
    COLLISIONS,
    LAYOUT_ALICE_DYN,
    O2_CLUSTERS_BRANCH,
    O2_TREE_NAME,
    PARTICLES,
    TOF,
    TRD,
    TREE_NAME,
)
from alice_dyn.tpc.cluster_native import CLUSTER_COUNT_INDEX_BYTES, CLUSTER_NATIVE_DTYPE

#: counter of a future track group; counted if present
TRACKS_COUNTER = "ntrk"


def _sum_counter(tree, name: str) -> int | None:
    if name not in tree.keys(recursive=False):
        return None
    return int(np.sum(tree[name].array(library="np"), dtype=np.int64))


def _sum_lengths(tree, name: str) -> int:
    """Total number of items of a jagged branch (reads it chunk by chunk)."""
    total = 0
    for arrays in tree.iterate([name], step_size="100 MB", library="np", how=dict):
        total += sum(len(a) for a in arrays[name])
    return total


def inspect_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a timeframe file: layout, counts, branches, compression, size.

    Returns a dict with ``path``, ``file_size_bytes``, ``layout``, ``tree``, ``n_timeframes``,
    ``n_clusters``, ``n_collisions``, ``n_mc_particles``, ``n_tof_hits``, ``n_trd_tracklets``,
    ``n_tracks`` (``None`` where the layout does not store them), ``tf_id_range``,
    ``compression`` (file default), ``metadata``, ``branches`` (list of dicts with ``name``,
    ``type`` (ROOT type), ``compressed_bytes``, ``uncompressed_bytes``) and ``problems``
    (schema mismatches; the reader would refuse the file). Raises :class:`BadInputError` for a
    file that is missing, not ROOT, truncated or has no timeframe tree.
    """
    p = os.fspath(path)
    with open_root(p) as f:
        layout = detect_layout(f, p)
        tree_name = TREE_NAME if layout == LAYOUT_ALICE_DYN else O2_TREE_NAME
        try:
            tree = f[tree_name]
            problems: list[str] = []
            try:
                check_branches(tree, layout, p)
            except BadInputError as exc:
                problems.append(exc.problem)
            out: dict[str, Any] = {
                "path": p,
                "file_size_bytes": os.path.getsize(p),
                "layout": layout,
                "tree": tree_name,
                "n_timeframes": int(tree.num_entries),
                "compression": str(Compression.from_code(f.file.fCompress)),
            }
            if layout == LAYOUT_ALICE_DYN:
                out["n_clusters"] = _sum_counter(tree, CLUSTERS.counter)
                out["n_collisions"] = _sum_counter(tree, COLLISIONS.counter)
                out["n_mc_particles"] = _sum_counter(tree, PARTICLES.counter)
                out["n_tof_hits"] = _sum_counter(tree, TOF.counter)
                out["n_trd_tracklets"] = _sum_counter(tree, TRD.counter)
                out["n_tracks"] = _sum_counter(tree, TRACKS_COUNTER)
                keys = tree.keys(recursive=False)
                ids = tree["tf_id"].array(library="np") if "tf_id" in keys else np.empty(0)
                out["tf_id_range"] = (int(ids.min()), int(ids.max())) if ids.size else None
                try:
                    out["metadata"] = read_metadata(f, p)
                except BadInputError as exc:
                    out["metadata"] = None
                    problems.append(exc.problem)
            else:
                out["n_clusters"] = _o2_cluster_count(tree, p, out["n_timeframes"])
                for key in ("n_collisions", "n_mc_particles", "n_tof_hits", "n_trd_tracklets"):
                    out[key] = None
                out["n_tracks"] = None
                out["tf_id_range"] = (0, out["n_timeframes"] - 1) if out["n_timeframes"] else None
                out["metadata"] = None
            out["branches"] = [
                {
                    "name": b.name,
                    "type": b.typename,
                    "compressed_bytes": int(b.compressed_bytes),
                    "uncompressed_bytes": int(b.uncompressed_bytes),
                }
                for b in tree.values(recursive=False)
            ]
            out["problems"] = problems
        except BadInputError:
            raise
        except Exception as exc:
            raise BadInputError(p, None, f"cannot inspect: {type(exc).__name__}: {exc}") from exc
    return out


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def format_inspection(d: dict[str, Any]) -> str:
    """Plain-text rendering of :func:`inspect_file`'s result."""
    lines = [
        f"file          {d['path']}",
        f"size          {_size(d['file_size_bytes'])} ({d['file_size_bytes']} bytes)",
        f"layout        {d['layout']} (TTree {d['tree']!r})",
        f"compression   {d['compression']}",
        f"timeframes    {d['n_timeframes']}"
        + (f" (tf_id {d['tf_id_range'][0]}..{d['tf_id_range'][1]})" if d["tf_id_range"] else ""),
    ]
    for key, label in (
        ("n_clusters", "clusters"),
        ("n_collisions", "collisions"),
        ("n_mc_particles", "MC particles"),
        ("n_tof_hits", "TOF hits"),
        ("n_trd_tracklets", "TRD tracklets"),
        ("n_tracks", "tracks"),
    ):
        value = d.get(key)
        lines.append(f"{label:<14}{'-' if value is None else value}")
    meta = d.get("metadata")
    if meta:
        lines.append(
            f"schema        v{meta.get('schema_version')}, systems {meta.get('systems')}, "
            f"run periods {meta.get('run_periods')}"
        )
        lines.append(f"creator       {meta.get('creator')}")
    branches = d.get("branches", [])
    if branches:
        width = max(len(b["name"]) for b in branches)
        tw = max(len(b["type"]) for b in branches)
        lines += ["", f"{'branch':<{width}}  {'type':<{tw}}  {'compressed':>10}  {'ratio':>6}"]
        for b in branches:
            ratio = b["uncompressed_bytes"] / b["compressed_bytes"] if b["compressed_bytes"] else 0
            lines.append(
                f"{b['name']:<{width}}  {b['type']:<{tw}}  {_size(b['compressed_bytes']):>10}"
                f"  {ratio:>6.2f}"
            )
    for problem in d.get("problems", []):
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


def _o2_cluster_count(tree, path: str, n_timeframes: int) -> int:
    """Clusters in O2's ``tpcrec`` tree: from O2's ``Size`` branches (single or per sector; a
    buffer no larger than the count index holds none), or the project's array counter."""
    plan = plan_o2_layout(tree, path)
    record = CLUSTER_NATIVE_DTYPE.itemsize
    if plan.mode == O2_MODE_ARRAY:
        n_bytes = _sum_counter(tree, f"n{O2_CLUSTERS_BRANCH}")
        if n_bytes is None:
            n_bytes = _sum_lengths(tree, O2_CLUSTERS_BRANCH)
        return ((n_bytes or 0) - CLUSTER_COUNT_INDEX_BYTES * n_timeframes) // record
    total = 0
    for _, size_branch in plan.data.values():
        sizes = tree[size_branch].array(library="np").astype(np.int64)
        total += int(np.maximum(sizes - CLUSTER_COUNT_INDEX_BYTES, 0).sum()) // record
    return total
