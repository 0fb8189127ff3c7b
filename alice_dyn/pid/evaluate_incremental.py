"""``incremental`` of ``alice-dyn evaluate pid-net``: the cached update when TOF/TRD arrive later.

Layer: PID (evaluation). For the tracks with TOF or TRD: the first (TPC-only) pass, the update of
its cached state (:mod:`alice_dyn.pid.incremental`) and the full recompute, their accuracies,
FLOPs and single-thread wall time. Keys in the docstring of :mod:`alice_dyn.pid.evaluate`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alice_dyn.pid.dataset import PIDDataset
from alice_dyn.pid.network import predict


def evaluate_incremental(
    model, scaler, model_dir: Path, data: PIDDataset, policy=None, posterior=None
) -> dict:
    """The ``incremental`` keys of :mod:`alice_dyn.pid.evaluate` for ``model`` (its
    ``scaler``, ``model_dir`` holding ``incremental/``) on the tracks of ``data`` with TOF or
    TRD; ``policy``: the first pass's exit policy for ``accuracy_updated_dynamic_50``;
    ``posterior``: the network's TOF-mismatch hypothesis, for the ``*_mismatch`` keys."""
    import torch

    from alice_dyn.nn import measure_wall_time
    from alice_dyn.pid import incremental as inc

    upd = inc.load_incremental(model_dir / "incremental")
    late = data.masks["tof"] | data.masks["trd"]
    sub = data.take(np.flatnonzero(late))
    y = sub.labels
    x = scaler.tensors(sub)
    first = inc.first_pass(model, x)
    with torch.no_grad():
        full = model(x, mode="one", exit=model.num_exits - 1)
    out = {
        "n_tracks": len(sub),
        "accuracy_first_pass": float(np.mean(first.outputs.argmax(1).numpy() == y)),
        "accuracy_updated": float(np.mean(inc.update(upd, first, x).argmax(1).numpy() == y)),
        "accuracy_full_recompute": float(np.mean(full.argmax(1).numpy() == y)),
    }
    if posterior is not None:
        p_upd, second = inc.update_with_mismatch(upd, first, x, sub, posterior)
        p_full = predict(model, scaler, sub, mismatch=posterior)[0]
        out.update(
            accuracy_updated_mismatch=float(np.mean(p_upd.argmax(1) == y)),
            accuracy_full_recompute_mismatch=float(np.mean(p_full.argmax(1) == y)),
            fraction_second_update=float(np.mean(second)),
        )
    if policy is not None:
        dyn = inc.first_pass(model, x, policy)
        acc = np.mean(inc.update(upd, dyn, x).argmax(1).numpy() == y)
        out["accuracy_updated_dynamic_50"] = float(acc)
    cost = inc.update_cost(model, upd, x)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            t_upd = measure_wall_time(lambda: inc.update(upd, first, x), repeats=7)
            t_full = measure_wall_time(
                lambda: model(x, mode="one", exit=model.num_exits - 1), repeats=7
            )
    finally:
        torch.set_num_threads(n_threads)
    out.update(
        update_flops=cost["update_flops"],
        full_pass_flops=cost["full_pass_flops"],
        flops_ratio=cost["ratio"],
        wall_ratio=t_upd["median_s"] / t_full["median_s"],
    )
    return out


__all__ = ["evaluate_incremental"]
