"""Argument checks shared by the kernel families (private)."""

from __future__ import annotations

from typing import Any


def check_tracks(refs: Any, start: Any, n: Any) -> None:
    """Tracks as cluster references: ``start``/``n`` 1-D of one length, inside ``refs``."""
    if start.shape != n.shape or start.ndim != 1:
        raise ValueError(f"start {start.shape} and n {n.shape} must be equal 1-D shapes")
    if start.shape[0] and (int(start.min()) < 0 or int(n.min()) < 0):
        raise ValueError("start and n must be >= 0")
    if start.shape[0] and int((start.astype("int64") + n).max()) > refs.shape[0]:
        raise ValueError("start + n exceeds the number of cluster references")
