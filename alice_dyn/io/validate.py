"""Consistency checks of one :class:`~alice_dyn.event.timeframe.Timeframe`.

Layer: I/O. The writer runs these before writing and the reader after reading every timeframe,
so a file never yields a silently wrong timeframe. Checks are vectorised NumPy over the
timeframe's columns; each failing check gives one line naming the count and the first offender.
"""

from __future__ import annotations

import numpy as np

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.tpc.cluster_native import CLUSTER_NATIVE_DTYPE, SCALE_PAD_PACKED
from alice_dyn.tpc.geometry import N_ROWS, N_SECTORS, ROW_N_PADS

N_TRD_LAYERS = 6


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _label_problems(name: str, labels: np.ndarray, n_particles: int | None) -> list[str]:
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    bad = labels < -1
    if n_particles is not None:
        bad |= labels >= n_particles
    if not bad.any():
        return []
    i = _first(bad)
    limit = f"[-1, {n_particles})" if n_particles is not None else ">= -1"
    return [
        f"{int(bad.sum())} {name} out of range {limit} (first: index {i}, value {int(labels[i])})"
    ]


def cluster_problems(
    records: np.ndarray,
    sector: np.ndarray,
    row: np.ndarray,
    mc_label: np.ndarray,
    n_particles: int | None,
) -> list[str]:
    """Problems of ``(n,)`` cluster columns: ranges, pad within row, (sector, row) order, labels.

    ``n_particles=None`` skips the upper bound of the labels (O2 layout: no MC particles).
    """
    problems: list[str] = []
    if records.dtype != CLUSTER_NATIVE_DTYPE:
        return [f"cluster records have dtype {records.dtype}, not ClusterNative"]
    if records.size == 0:
        return problems
    sector = np.asarray(sector).astype(np.int64)
    row = np.asarray(row).astype(np.int64)
    bad_s = (sector < 0) | (sector >= N_SECTORS)
    if bad_s.any():
        i = _first(bad_s)
        problems.append(
            f"{int(bad_s.sum())} clusters with sector out of range 0-{N_SECTORS - 1} "
            f"(first: cluster {i}, sector {sector[i]})"
        )
    bad_r = (row < 0) | (row >= N_ROWS)
    if bad_r.any():
        i = _first(bad_r)
        problems.append(
            f"{int(bad_r.sum())} clusters with row out of range 0-{N_ROWS - 1} "
            f"(first: cluster {i}, row {row[i]})"
        )
    if not (bad_s.any() or bad_r.any()):
        pad_packed = records["padPacked"].astype(np.int64)
        bad_p = pad_packed > ROW_N_PADS[row].astype(np.int64) * int(SCALE_PAD_PACKED)
        if bad_p.any():
            i = _first(bad_p)
            problems.append(
                f"{int(bad_p.sum())} clusters with pad beyond the row's pads (first: cluster {i},"
                f" sector {sector[i]} row {row[i]}: pad {pad_packed[i] / SCALE_PAD_PACKED:g} >"
                f" {ROW_N_PADS[row[i]]} pads)"
            )
        key = sector * N_ROWS + row
        bad_o = np.diff(key) < 0
        if bad_o.any():
            i = _first(bad_o) + 1
            problems.append(
                f"clusters not in (sector, row) order (first: cluster {i}, sector {sector[i]} "
                f"row {row[i]} after sector {sector[i - 1]} row {row[i - 1]})"
            )
    problems += _label_problems("cluster MC labels", mc_label, n_particles)
    return problems


def _nonfinite_problems(tf: Timeframe) -> list[str]:
    problems = []
    if not np.isfinite(tf.meta.bfield_t):
        problems.append(f"non-finite bfield_t {tf.meta.bfield_t}")
    for part_name in ("collisions", "particles", "tof", "trd"):
        part = getattr(tf, part_name)
        for col, values in part.columns().items():
            values = np.asarray(values)
            if values.dtype.kind == "f":
                bad = ~np.isfinite(values)
                if bad.any():
                    i = _first(bad)
                    problems.append(
                        f"{int(bad.sum())} non-finite values in {part_name}.{col} "
                        f"(first: index {i}, value {values[i]})"
                    )
    return problems


def timeframe_problems(tf: Timeframe, *, n_particles_known: bool = True) -> list[str]:
    """Everything wrong with ``tf``, one line per failing check; empty when valid.

    With ``n_particles_known=False`` (O2 layout) labels are only checked against -1.
    """
    problems: list[str] = []
    for part_name in ("clusters", "collisions", "particles", "tof", "trd"):
        try:
            getattr(tf, part_name).check_lengths()
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        return problems
    n_part = len(tf.particles) if n_particles_known else None
    c = tf.clusters
    problems += cluster_problems(c.records, c.sector, c.row, c.mc_label, n_part)
    if len(tf.particles):
        coll = np.asarray(tf.particles.collision)
        bad = (coll < 0) | (coll >= len(tf.collisions))
        if bad.any():
            i = _first(bad)
            problems.append(
                f"{int(bad.sum())} MC particles with collision index out of range "
                f"[0, {len(tf.collisions)}) (first: particle {i}, value {int(coll[i])})"
            )
    problems += _label_problems("TOF labels", tf.tof.label, n_part)
    problems += _label_problems("TRD labels", tf.trd.label, n_part)
    if len(tf.trd):
        layer = np.asarray(tf.trd.layer).astype(np.int64)
        bad = (layer < 0) | (layer >= N_TRD_LAYERS)
        if bad.any():
            i = _first(bad)
            problems.append(
                f"{int(bad.sum())} TRD tracklets with layer out of range 0-{N_TRD_LAYERS - 1} "
                f"(first: tracklet {i}, layer {layer[i]})"
            )
    problems += _nonfinite_problems(tf)
    return problems
