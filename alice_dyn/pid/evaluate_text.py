"""Terminal text of ``alice-dyn evaluate pid-net`` (the result of
:func:`alice_dyn.pid.evaluate.evaluate_pid_net`).

Layer: PID (presentation, text only).
"""

from __future__ import annotations


def worse_bins(eq: dict) -> list[str]:
    """The compared bins where the network is less pure than n-sigma, one line each."""
    lines = []
    for name, v in eq.items():
        for b in v["bins"]:
            if b.get("compared") and b["diff"] < 0:
                lines.append(
                    f"{name} {b['p_lo']:g}-{b['p_hi']:g} GeV/c: n_true {b['n_true']}, "
                    f"efficiency {b['efficiency']:.3f}, purity {b['purity']:.4f} +- "
                    f"{b['purity_err']:.4f} vs n-sigma {b['purity_nsigma']:.4f} +- "
                    f"{b['purity_nsigma_err']:.4f} (diff {b['diff']:+.4f}, sigma "
                    f"{b['diff_err']:.4f} binomial, {b['diff_err_bootstrap']:.4f} bootstrap)"
                )
    return lines


def format_pid_net(r: dict) -> str:
    """The result of :func:`~alice_dyn.pid.evaluate.evaluate_pid_net` for the terminal."""
    lines = [
        f"PID network on {r['n_tracks']} held-out tracks ({r['model']})",
        f"  accuracy, network without exits   {100 * r['accuracy_full']:.2f}%  "
        f"(macro-F1 {r['macro_f1_full']:.3f})",
        f"  dynamic network ({r['primary_method'].upper()}), full depth "
        f"{100 * r['accuracy_primary_full']:.2f}%",
        f"  accuracy at <= 35% of the FLOPs   {100 * (r['accuracy_at_35pct_flops'] or 0):.2f}%  "
        f"({r['delta_pp_at_35pct_flops']:+.2f} pp)",
        f"  n-sigma / subset MLPs / LightGBM  {100 * r['nsigma_accuracy']:.2f}% / "
        f"{100 * r['subset_mlp_accuracy']:.2f}% / "
        + (f"{100 * r['gbdt_accuracy']:.2f}%" if r["gbdt_accuracy"] is not None else "-"),
        f"  {r['primary_method'].upper()} accuracy at 25/50/75/100% FLOPs: "
        + " / ".join(f"{100 * v:.2f}%" if v is not None else "-" for v in r["at_flops"].values()),
        "  budgets (requested -> held-out FLOPs fraction, accuracy):",
    ]
    for b in r["budgets"].values():
        lines.append(
            f"    {b['requested_fraction']:.2f} -> {b['held_out_fraction']:.3f} "
            f"({100 * b['relative_error']:+.1f}%), {100 * b['accuracy']:.2f}%"
        )
    eq = r.get("per_species_at_nsigma_efficiency", {})
    if eq:
        lines.append("  p bins where the network is at least as pure as n-sigma at its efficiency:")
        lines.append(
            "    "
            + ", ".join(
                f"{s} {v['n_bins_network_as_pure']}/{v['n_bins_compared']} "
                f"({v.get('n_bins_within_stat_error', '-')}/"
                f"{v.get('n_bins_within_bootstrap_error', '-')} within 1 sigma binomial/"
                f"bootstrap, {v.get('n_bins_not_compared', '-')} not compared)"
                for s, v in eq.items()
            )
        )
        lines.extend("    less pure: " + w for w in worse_bins(eq))
    inc = r.get("incremental")
    if inc:
        lines.append(
            f"  TOF/TRD arriving later ({inc['n_tracks']} tracks): TPC-only "
            f"{100 * inc['accuracy_first_pass']:.2f}% -> updated from the cache "
            f"{100 * inc['accuracy_updated']:.2f}% (full recompute "
            f"{100 * inc['accuracy_full_recompute']:.2f}%) at {100 * inc['flops_ratio']:.0f}% "
            f"of the FLOPs, {100 * inc['wall_ratio']:.0f}% of the wall time"
        )
        if "accuracy_updated_mismatch" in inc:
            lines.append(
                f"    with the TOF-mismatch hypothesis: updated "
                f"{100 * inc['accuracy_updated_mismatch']:.2f}% (second update for "
                f"{100 * inc['fraction_second_update']:.1f}% of the tracks), full recompute "
                f"{100 * inc['accuracy_full_recompute_mismatch']:.2f}%"
            )
    lines.append("  per detector subset: n, network, dynamic(50%), subset MLP")
    for s, v in r["per_subset"].items():
        if v["n"]:
            lines.append(
                f"    {s:<12} {v['n']:>6}  {100 * v['accuracy']:.2f}%  "
                f"{100 * v['accuracy_dynamic_50']:.2f}%  {100 * v['accuracy_subset_mlp']:.2f}%"
            )
    return "\n".join(lines)


__all__ = ["format_pid_net", "worse_bins"]
