"""Training and evaluation data of the track network: a mix of pp and Pb-Pb timeframes.

Layer: tracknet. Timeframe ``i`` is simulated with the setting ``MIX[i % len(MIX)]``
(:data:`MIX`: pp; Pb-Pb 50-90%, 10-50%, 0-10% with two collisions per timeframe; and three
pile-up settings, 0-5% x 6, 0-10% x 8 and 0-30% x 4 collisions at 500 kHz, where tracks of
overlapping collisions make most of the fakes), with the simulation seed
``1000 * seed + i % len(MIX)`` and ``tf_id = first_tf + i``: deterministic, and a different
``seed`` gives independent data.

``python -m alice_dyn.tracknet.data_gen -o FILE --timeframes N --seed S`` writes such a mix to
a simulation file (e.g. the held-out file of ``alice-dyn evaluate track-net``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.framework.errors import UsageError
from alice_dyn.sim import SimConfig, simulate_timeframe
from alice_dyn.tracknet.dataset import TrackDataset, dataset_from_timeframe

#: (name, system, SimConfig changes)
MIX: tuple[tuple[str, str, dict], ...] = (
    ("pp", "pp", {}),
    ("pbpb_50_90", "pbpb", dict(centrality_min=0.5, centrality_max=0.9, collisions_per_tf=2)),
    ("pbpb_10_50", "pbpb", dict(centrality_min=0.1, centrality_max=0.5, collisions_per_tf=2)),
    ("pbpb_0_10", "pbpb", dict(centrality_min=0.0, centrality_max=0.1, collisions_per_tf=2)),
    (
        "pbpb_0_5_pileup",
        "pbpb",
        dict(centrality_min=0.0, centrality_max=0.05, collisions_per_tf=6,
             interaction_rate_khz=500.0),
    ),
    (
        "pbpb_0_10_pileup8",
        "pbpb",
        dict(centrality_min=0.0, centrality_max=0.1, collisions_per_tf=8,
             interaction_rate_khz=500.0),
    ),
    (
        "pbpb_0_30_pileup",
        "pbpb",
        dict(centrality_min=0.0, centrality_max=0.3, collisions_per_tf=4,
             interaction_rate_khz=500.0),
    ),
)  # fmt: skip


Mix = Sequence[tuple[str, str, dict]]


def mix_config(i: int, seed: int, mix: Mix = MIX) -> tuple[int, SimConfig]:
    """``(mix index, SimConfig)`` of timeframe number ``i`` of a mix with ``seed``."""
    k = i % len(mix)
    _, system, changes = mix[k]
    return k, SimConfig.for_system(system, seed=1000 * seed + k, **changes)


def mix_timeframes(
    n: int, seed: int, first_tf: int = 0, mix: Mix = MIX
) -> Iterator[tuple[int, Timeframe]]:
    """Yield ``(mix index, timeframe)`` for ``n`` timeframes of the mix."""
    for i in range(n):
        k, cfg = mix_config(i, seed, mix)
        yield k, simulate_timeframe(cfg, first_tf + i)


ROLES = ("train", "train", "train", "train", "val", "calib")


def role_of(i: int, roles: Sequence[str] = ROLES, mix: Mix = MIX) -> str:
    """The dataset timeframe ``i`` of a mix goes to (:func:`make_datasets`)."""
    return roles[(i // len(mix) + i % len(mix)) % len(roles)]


def check_timeframes(n: int, roles: Sequence[str] = ROLES, mix: Mix = MIX) -> None:
    """A one-line :class:`~alice_dyn.framework.errors.UsageError` when ``n`` timeframes leave a
    role of ``roles`` without a timeframe (training, validation and calibration need one each),
    naming the smallest ``n`` that feeds them all."""
    need = set(roles)
    got = {role_of(i, roles, mix) for i in range(n)}
    if got >= need:
        return
    k = n
    while {role_of(i, roles, mix) for i in range(k)} < need:
        k += 1
    missing = ", ".join(sorted(need - got))
    raise UsageError(
        f"{n} timeframes leave no timeframe for {missing}: the track network needs at least "
        f"{k} (--timeframes)"
    )


def make_datasets(
    n: int,
    seed: int,
    *,
    roles: Sequence[str] = ROLES,
    keep_common: int = 3000,
    progress: bool = True,
    mix: Mix = MIX,
) -> dict[str, TrackDataset]:
    """Simulate ``n`` timeframes and split them by whole timeframes into datasets.

    Timeframe ``i`` (setting ``k = i % len(mix)`` of cycle ``c = i // len(mix)``) goes to
    ``roles[(c + k) % len(roles)]``: with the default roles, over six cycles every setting
    gives four timeframes to training, one to validation and one to calibration, and fewer
    cycles still feed every role. Training timeframes keep all fakes and main-track clones and about
    ``keep_common`` of their good tracks and looper legs (class balance, memory); validation
    and calibration keep every track (natural composition).
    """
    parts: dict[str, list[TrackDataset]] = {r: [] for r in roles}
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for i, (k, tf) in enumerate(mix_timeframes(n, seed, mix=mix)):
        role = role_of(i, roles, mix)
        ds = dataset_from_timeframe(
            tf, source=k, keep_common=keep_common if role == "train" else None, rng=rng
        )
        parts[role].append(ds)
        if progress:
            counts = np.bincount(ds.labels, minlength=3).tolist()
            print(
                f"[tracknet data] TF {i} {mix[k][0]:<17s} -> {role:<5s} {len(ds):6d} tracks "
                f"(good/fake/clone {counts}), {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    return {r: TrackDataset.concatenate(p) for r, p in parts.items() if p}


def write_mix_file(path: str | Path, n: int, seed: int, first_tf: int = 0, mix: Mix = MIX) -> int:
    """Write ``n`` timeframes of the mix to the simulation file ``path``; returns clusters."""
    from alice_dyn.io import TimeframeWriter

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    n_cl = 0
    with TimeframeWriter(path) as writer:
        for _, tf in mix_timeframes(n, seed, first_tf, mix):
            writer.write(tf)
            n_cl += len(tf.clusters)
    return n_cl


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m alice_dyn.tracknet.data_gen -o FILE --timeframes N --seed S``."""
    p = argparse.ArgumentParser(
        prog="python -m alice_dyn.tracknet.data_gen",
        description="Write timeframes of the track-network mix (pp, Pb-Pb, pile-up) to a file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-o", "--output", required=True, help="simulation ROOT file")
    p.add_argument("--timeframes", type=int, default=12, help="timeframes (cycles of the mix)")
    p.add_argument("--seed", type=int, default=2027, help="seed (differs from training's)")
    p.add_argument("--first-tf", type=int, default=0, help="id of the first timeframe")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    n_cl = write_mix_file(a.output, a.timeframes, a.seed, a.first_tf)
    print(f"wrote {a.timeframes} timeframes ({n_cl} clusters) to {a.output} in "
          f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
