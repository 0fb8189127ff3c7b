"""Reading AO2D-like reconstruction files, and matching them to their simulation timeframes.

Layer: I/O. A reconstruction file written by ``alice-dyn run tpc-reco`` (``docs/aod_schema.md``)
holds one ``DF_<n>`` folder per timeframe with one tree per table (``O2track_iu``,
``O2trackextra``, ``O2mctracklabel``, ...); ``DF_<n>/O2tfmeta`` ``fTfId`` is the simulation's
``tf_id`` and ``O2mctracklabel`` ``fMcParticleId`` a row of that timeframe's ``mc_*``
(``docs/io_schema.md``). Every problem is one :class:`BadInputError` naming the file, the
``DF_<n>`` (with its ``fTfId`` when known) and the problem.

Typical use::

    tables = {"O2track_iu": ("fSigned1Pt",), "O2mctracklabel": ("fMcParticleId",)}
    for reco, tf in iter_matched("AO2D.root", "sim.root", tables):
        reco["fSigned1Pt"], tf.particles  # one DF_<n> and its simulated timeframe
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.io.errors import BadInputError
from alice_dyn.io.reader import open_root, open_timeframes
from alice_dyn.io.schema import LAYOUT_ALICE_DYN

_DF_RE = re.compile(r"^DF_(\d+)$")


@dataclass
class RecoTimeframe:
    """The track columns of one ``DF_<n>`` (every column one row per track)."""

    df: int  # n of DF_<n>
    tf_id: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]


def df_folders(f, path: str) -> list[int]:
    """The ``n`` of every ``DF_<n>`` folder of the open file ``f`` (``path``: for messages),
    sorted; :class:`BadInputError` when there is none."""
    try:
        keys = f.keys(recursive=False, cycle=False)
    except Exception as exc:
        raise BadInputError(path, None, f"cannot list the file: {exc}") from exc
    dfs = sorted(int(m.group(1)) for k in keys if (m := _DF_RE.match(k)))
    if not dfs:
        raise BadInputError(path, None, "no DF_<n> folders: not a reconstruction (AO2D) file")
    return dfs


def read_table(
    f, path: str, df: int, table: str, names: Sequence[str], tf_id: int | None = None
) -> dict[str, np.ndarray]:
    """Columns ``names`` of ``DF_<df>/<table>`` as NumPy arrays (one row per table row)."""
    try:
        tree = f[f"DF_{df}/{table}"]
    except Exception:
        raise BadInputError(path, df, f"no table {table}", tf_id=tf_id) from None
    missing = [n for n in names if n not in tree.keys()]
    if missing:
        raise BadInputError(path, df, f"{table} lacks columns {missing}", tf_id=tf_id)
    try:
        arrays = tree.arrays(list(names), library="np")
    except Exception as exc:
        raise BadInputError(
            path, df, f"cannot read {table}: {type(exc).__name__}: {exc}", tf_id=tf_id
        ) from exc
    return {n: np.asarray(arrays[n]) for n in names}


def read_tf_id(f, path: str, df: int) -> int:
    """``fTfId`` of ``DF_<df>`` (its ``O2tfmeta`` must have exactly one row)."""
    cols = read_table(f, path, df, "O2tfmeta", ("fTfId",))
    if len(cols["fTfId"]) != 1:
        raise BadInputError(path, df, f"O2tfmeta has {len(cols['fTfId'])} rows, expected 1")
    return int(cols["fTfId"][0])


def _truth_tf_ids(truth_path: str) -> np.ndarray:
    """``tf_id`` of every entry of the simulation file, in entry order (int64)."""
    truth = open_root(truth_path)
    try:
        return np.asarray(truth["timeframes"]["tf_id"].array(library="np"), np.int64)
    except Exception as exc:
        raise BadInputError(truth_path, None, f"cannot read tf_id: {exc}") from exc
    finally:
        truth.close()


def _entries_wanted(
    df_tf: Mapping[int, int], truth_ids: np.ndarray, reco_path: str, truth_path: str
) -> dict[int, list[int]]:
    """Truth entry -> the ``DF_<n>`` numbers of that timeframe; every ``fTfId`` must be the
    ``tf_id`` of exactly one truth entry."""
    entry_of: dict[int, list[int]] = {}
    for entry, tf_id in enumerate(truth_ids.tolist()):
        entry_of.setdefault(tf_id, []).append(entry)
    wanted: dict[int, list[int]] = {}
    for df, tf_id in df_tf.items():
        entries = entry_of.get(tf_id, [])
        if not entries:
            problem = f"fTfId {tf_id} has no timeframe in the truth file {truth_path}"
            raise BadInputError(reco_path, df, problem, tf_id=tf_id)
        if len(entries) > 1:
            problem = f"fTfId {tf_id} is ambiguous: entries {entries} of {truth_path}"
            raise BadInputError(reco_path, df, problem, tf_id=tf_id)
        wanted.setdefault(entries[0], []).append(df)
    return wanted


def iter_matched(
    reco_path: str | os.PathLike[str],
    truth_path: str | os.PathLike[str],
    tables: Mapping[str, Sequence[str]],
) -> Iterator[tuple[RecoTimeframe, Timeframe]]:
    """Yield ``(reco, truth)`` per RECO timeframe, streaming both files in the truth's order.

    ``tables``: table -> the columns read from it (tables of one ``DF_<n>`` must agree in
    rows). Every RECO ``fTfId`` must exist exactly once in the truth file and every
    ``fMcParticleId`` must be a row of that timeframe's MC particles (or -1): otherwise
    :class:`BadInputError` naming the RECO file, its ``DF_<n>`` and the ``fTfId``. Truth
    timeframes without a RECO counterpart are skipped (a RECO file may cover part of a
    simulation).
    """
    reco_path, truth_path = os.fspath(reco_path), os.fspath(truth_path)
    reco = open_root(reco_path)
    try:
        df_tf = {df: read_tf_id(reco, reco_path, df) for df in df_folders(reco, reco_path)}
        with open_timeframes(truth_path) as reader:
            if reader.layout != LAYOUT_ALICE_DYN:
                raise BadInputError(
                    truth_path, None, f"{reader.layout} layout holds no MC truth (mc_* branches)"
                )
            wanted = _entries_wanted(df_tf, _truth_tf_ids(truth_path), reco_path, truth_path)
            reader.entry_start = min(wanted)
            reader.entry_stop = max(wanted) + 1
            for entry, tf in enumerate(reader, start=reader.entry_start):
                for df in wanted.get(entry, ()):
                    yield read_reco(reco, reco_path, df, df_tf[df], tables, tf, truth_path), tf
    finally:
        reco.close()


def read_reco(
    f,
    path: str,
    df: int,
    tf_id: int,
    tables: Mapping[str, Sequence[str]],
    tf: Timeframe,
    truth_path: str,
) -> RecoTimeframe:
    """The ``tables`` of ``DF_<df>`` as one :class:`RecoTimeframe`; ``fMcParticleId`` (when
    read) as int64, checked against the MC particles of ``tf``."""
    cols: dict[str, np.ndarray] = {}
    n_rows: dict[str, int] = {}
    for table, names in tables.items():
        t = read_table(f, path, df, table, names, tf_id)
        n_rows[table] = len(next(iter(t.values())))
        cols.update(t)
    if len(set(n_rows.values())) > 1:
        raise BadInputError(path, df, f"track tables differ in rows: {n_rows}", tf_id=tf_id)
    if "fMcParticleId" in cols:
        label = cols["fMcParticleId"].astype(np.int64)
        n_mc = len(tf.particles)
        bad = (label < -1) | (label >= n_mc)
        if bad.any():
            raise BadInputError(
                path,
                df,
                f"fMcParticleId {int(label[bad][0])} out of range: the truth timeframe "
                f"(tf_id {tf_id}) in {truth_path} has {n_mc} MC particles",
                tf_id=tf_id,
            )
        cols["fMcParticleId"] = label
    return RecoTimeframe(df, tf_id, cols)


__all__ = ["RecoTimeframe", "df_folders", "iter_matched", "read_reco", "read_table", "read_tf_id"]
