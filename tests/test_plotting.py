"""The plotting package (alice_dyn.plotting): one style, no pyplot, every figure written.

The tracking and PID figures are drawn from real evaluation results in test_evaluate.py; here
the network figures are drawn from small hand-made results with the keys they read.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from alice_dyn.plotting.pid_net import make_pid_net_plots
from alice_dyn.plotting.track_net import make_track_net_plots

PLOTTING = Path(__file__).resolve().parent.parent / "alice_dyn" / "plotting"
P_BINS = (0.2, 0.5, 1.0, 5.0)
PT_BINS = (0.1, 1.0, 10.0)


def _assert_png(paths: list[Path], names: set[str]) -> None:
    assert {p.name for p in paths} == names
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_no_pyplot_state():
    """Figures are Figure objects on an Agg canvas: no module imports pyplot."""
    for path in PLOTTING.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"import matplotlib\.pyplot|from matplotlib import pyplot", text)
        assert "plt." not in text, path.name


def test_pid_net_plots(tmp_path):
    rows = [
        {"p_lo": lo, "p_hi": hi, "efficiency": 0.9, "purity": None, "efficiency_nsigma": 0.8,
         "purity_nsigma": 0.7}
        for lo, hi in itertools.pairwise(P_BINS)
    ]  # fmt: skip
    curve = [{"method": m, "flops_fraction": f, "accuracy": 0.9 + 0.05 * f}
             for m in ("sdn", "ztw") for f in (0.2, 0.5, 1.0)]  # fmt: skip
    r = {
        "curve": curve,
        "accuracy_full": 0.95,
        "nsigma_accuracy": 0.88,
        "per_species_vs_p": {s: rows for s in ("e", "mu", "pi", "K", "p")},
    }
    paths = make_pid_net_plots(r, tmp_path / "pid_net")
    _assert_png(paths, {"pid_net_accuracy_vs_flops.png", "pid_net_efficiency_purity_vs_p.png"})


@pytest.mark.parametrize("sigma", [0.01, None])
def test_track_net_plots(tmp_path, sigma):
    vs_pt = [{"pt_lo": lo, "pt_hi": hi, "sigma_core": sigma}
             for lo, hi in itertools.pairwise(PT_BINS)]  # fmt: skip
    res = {"sigma_core": sigma, "vs_pt": vs_pt}
    points = [
        {"flops_mean": f, "reject_fake": {"99": {"fake_rejection": 0.5}},
         "reject_bad": {"99": {"clone_rejection": None}}, "q2pt_resolution": res}
        for f in (2e4, 5e4, 1e5)
    ]  # fmt: skip
    r = {
        "classical": {
            "cuts": {"99": {"fake_rejection": 0.3, "clone_rejection": 0.2}},
            "q2pt_resolution": res,
        },
        "variants": {"progressive": {"points": points}, "depth": {"points": points}},
    }
    paths = make_track_net_plots(r, tmp_path / "track_net")
    _assert_png(paths, {"track_net_vs_flops.png", "track_net_resolution_vs_pt.png"})
