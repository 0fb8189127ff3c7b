"""Online ``tpc-reco`` under a 4x burst: adaptive against static networks, with the burst's
load set inside the window where the target can exist.

The issue's target (adaptive p99 within the budget where the static run misses it) can only
hold while the burst's arrival rate lies between what the static chain and the adaptive chain
at their cheapest exits can process: below, the static run keeps up too; above, no controller
that drops nothing can. Where that window lies depends on the machine's speed of the moment
(this shared 2-core machine moves by 10-25% within minutes), so each run here

1. measures it: 40 timeframes of both configurations, interleaved, all arriving at once
   (``--interleaved`` at 1 kHz, with the budget: every timeframe waits, so the adaptive run
   takes the exits it takes in a burst); the capacity of each is 1000 / its mean ms per
   timeframe (the first five left out);
2. puts the burst's rate at the geometric middle of the window (for a burst of ``D`` s and a
   budget ``B``, a run misses the budget when ``rate > capacity x (1 + B/D)``), the base rate a
   quarter of it;
3. replays the whole input interleaved (``alice-dyn run tpc-reco --online --interleaved``)
   and prints both runs' p50/p99, the accuracy loss, whether each run kept up in the burst
   (its time per timeframe there below the interval between arrivals: the report's
   ``keeps_up_in_bursts``) and whether the target was met.

Run: ``python benchmarks/bench_online.py --input pp300.root --runs 3`` (input made by
``alice-dyn simulate -o pp300.root --timeframes 300 --system pp --seed 777``; without
``--input`` that file is simulated into the work directory first). About 100 s per run.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from alice_dyn.framework.online import Burst, ReplaySchedule
from alice_dyn.framework.workflows import load_workflow
from alice_dyn.online import MODES, RunSettings, json_safe, run_online_comparison

CALIBRATION_RATE_HZ = 1000.0
CALIBRATION_TF = 40
#: timeframes of the calibration left out of the mean (the first ones fill the queue)
CALIBRATION_SKIP = 5


def yes_no(report: dict, mode: str) -> str:
    """Whether ``mode`` kept up with the burst (its time per timeframe below the interval)."""
    keeps = (report.get("keeps_up_in_bursts") or {}).get(mode)
    return "?" if keeps is None else "yes" if keeps else "no"


def burst_window(cap_static: float, cap_adaptive: float, budget_ms: float, burst_s: float):
    """Burst rates (Hz) between which the static run misses the budget and the adaptive one
    keeps it: each run's capacity (timeframes/s) times ``1 + budget / burst duration``."""
    stretch = 1.0 + budget_ms / 1e3 / burst_s
    return cap_static * stretch, cap_adaptive * stretch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default=None, help="pp timeframes (default: simulated)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--budget-ms", type=float, default=300.0)
    ap.add_argument("--burst-factor", type=float, default=4.0)
    ap.add_argument("--burst-s", type=float, default=10.0)
    ap.add_argument("--burst-start-s", type=float, default=5.0)
    ap.add_argument("--workdir", default=None, help="reports and outputs (default: temporary)")
    args = ap.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="alice_dyn_bench_online_"))
    work.mkdir(parents=True, exist_ok=True)
    inp = args.input
    if inp is None:
        inp = str(work / "pp300.root")
        if not Path(inp).exists():
            subprocess.run(
                [sys.executable, "-m", "alice_dyn.cli", "simulate", "-o", inp,
                 "--timeframes", "300", "--system", "pp", "--seed", "777"],
                check=True,
            )  # fmt: skip
    module = load_workflow("tpc-reco")
    print(f"input {inp}; budget {args.budget_ms:g} ms; burst {args.burst_factor:g}x for "
          f"{args.burst_s:g} s at {args.burst_start_s:g} s; interleaved on one core")  # fmt: skip
    header = (
        f"{'run':>3} {'cap s/a TF/s':>13} {'lever':>6} {'window Hz':>12} {'rate Hz':>8} "
        f"{'static p50/p99 ms':>18} {'adaptive p50/p99 ms':>20} {'p99 a/s':>8} "
        f"{'loss pp':>8} {'in/out s,a':>16} {'keeps up s/a':>12} target"
    )
    print(header)
    results = []
    for k in range(args.runs):
        cal, _ = run_online_comparison(
            module, "tpc-reco", [inp], str(work / f"cal_{k}.root"),
            ReplaySchedule(CALIBRATION_RATE_HZ), args.budget_ms,
            settings=RunSettings(max_timeframes=CALIBRATION_TF),
            interleaved=True,
        )  # fmt: skip
        took = {m: [r["service_ms"] for r in cal[m]["per_timeframe"]] for m in MODES}
        cap = {m: 1e3 / float(np.mean(took[m][CALIBRATION_SKIP:])) for m in MODES}
        lo, hi = burst_window(cap["static"], cap["adaptive"], args.budget_ms, args.burst_s)
        burst_rate = math.sqrt(lo * hi)
        rate = burst_rate / args.burst_factor
        schedule = ReplaySchedule(
            rate, [Burst(args.burst_factor, args.burst_s, args.burst_start_s)]
        )
        rep, _ = run_online_comparison(
            module, "tpc-reco", [inp], str(work / f"reco_{k}.root"), schedule, args.budget_ms,
            interleaved=True,
        )  # fmt: skip
        rep["calibration"] = {"capacity_tf_per_s": cap, "burst_window_hz": [lo, hi]}
        (work / f"report_{k}.json").write_text(json.dumps(json_safe(rep), indent=1))
        s, a = rep["static"], rep["adaptive"]
        results.append(rep)
        print(
            f"{k:>3} {cap['static']:6.1f}/{cap['adaptive']:<6.1f} "
            f"{cap['adaptive'] / cap['static']:6.3f} {lo:5.1f}-{hi:<6.1f} {rate:8.2f} "
            f"{s['p50_latency_ms']:8.0f}/{s['p99_latency_ms']:<9.0f} "
            f"{a['p50_latency_ms']:9.0f}/{a['p99_latency_ms']:<10.0f} "
            f"{a['p99_latency_ms'] / s['p99_latency_ms']:8.2f} {rep['accuracy_loss_pp']:8.2f} "
            f"{s['timeframes_in']}/{s['timeframes_out']},{a['timeframes_in']}/"
            f"{a['timeframes_out']:<4} {yes_no(rep, 'static'):>6}/{yes_no(rep, 'adaptive'):<5} "
            f"{'met' if rep['target_met'] else 'missed'}",
            flush=True,
        )
    met = sum(r["target_met"] for r in results)
    lower = sum(r["adaptive"]["p99_latency_ms"] < r["static"]["p99_latency_ms"] for r in results)
    window = [r for r in results if r["keeps_up_in_bursts"] == {"static": False, "adaptive": True}]
    print(f"target met in {met} of {len(results)} runs; adaptive p99 below static p99 in "
          f"{lower} of {len(results)}; bursts inside the window (static over its capacity, "
          f"adaptive within): {len(window)}, target met in "
          f"{sum(r['target_met'] for r in window)} of them; reports in {work}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
