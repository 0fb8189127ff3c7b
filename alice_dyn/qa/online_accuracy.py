"""Per-timeframe accuracy of the networks' decisions, for the online (replay) report.

Layer: QA. For an AO2D-like output and its simulation, per ``fTfId``: ``(n_correct, n_total)``

* ``pid_accuracy`` (also the headline ``accuracy``): the ``pid-net`` decision against the true
  species, on the tracks the PID evaluation uses (matched, not fake, not a looper leg, e/mu/pi/
  K/p, valid inner momentum);
* ``nsigma_accuracy``: the n-sigma decision on the same tracks (a reference that does not
  depend on the load);
* ``track_accuracy`` (when the file has the ``track-net`` table ``O2tracknet``): the track
  network's good/fake/clone decision against the MC classification of the evaluation.
"""

from __future__ import annotations

import os

import numpy as np

from alice_dyn.io import BadInputError
from alice_dyn.physics.particles import species_index

PID_TABLES = {
    "O2track_iu": ("fFlags",),
    "O2trackextra": ("fTPCInnerParam", "fTPCNClsFound"),
    "O2mctracklabel": ("fMcParticleId", "fMcMask"),
    "O2pid": ("fPidNSigma",),
    "O2pidnet": ("fPidNet",),
}


class NoTruth(LookupError):
    """The inputs carry no MC truth."""


def network_accuracy_per_tf(
    reco: str | os.PathLike[str], truth: str | os.PathLike[str], track_net: bool = False
) -> dict[int, dict[str, tuple[int, int]]]:
    """``{tf_id: {metric: (n_correct, n_total)}}`` (see the module docstring)."""
    from alice_dyn.io.aod import iter_matched
    from alice_dyn.qa.truth import track_classes

    tables = dict(PID_TABLES)
    if track_net:
        tables["O2tracknet"] = ("fTrackNetClass",)
    out: dict[int, dict[str, tuple[int, int]]] = {}
    try:
        matched = iter_matched(reco, truth, tables)
        for r, tf in matched:
            c = r.columns
            mc = c["fMcParticleId"]
            sp = np.where(mc >= 0, species_index(tf.particles.pdg)[np.maximum(mc, 0)], -1)
            keep = (mc >= 0) & ((c["fMcMask"] & 0x8000) == 0) & ((c["fFlags"] & 0x2) == 0)
            keep &= (sp >= 0) & (sp < 5) & (c["fTPCInnerParam"] > 0)
            n = int(keep.sum())
            m = {
                "pid_accuracy": (int(np.sum(c["fPidNet"][keep] == sp[keep])), n),
                "nsigma_accuracy": (int(np.sum(c["fPidNSigma"][keep] == sp[keep])), n),
            }
            m["accuracy"] = m["pid_accuracy"]
            if track_net:
                cls = track_classes(r)
                truth_cls = np.where(cls["fake"], 1, np.where(cls["clone"], 2, 0))
                main = cls["main"]
                ok = int(np.sum(c["fTrackNetClass"][main] == truth_cls[main]))
                m["track_accuracy"] = (ok, int(main.sum()))
            out[r.tf_id] = m
    except BadInputError as err:
        if "no MC truth" in str(err) or "layout holds no MC truth" in str(err):
            raise NoTruth(str(err)) from err
        raise
    return out
