"""Compression benchmark of the alice_dyn ROOT layout: write time, size and read throughput.

Layer: benchmark (standalone: ``python benchmarks/bench_io.py [--n-tf 20] [--repeat 3]``).
The same synthetic Pb-Pb-sized timeframes are written once per codec (ZLIB(1), LZ4(1), ZSTD(1),
and uncompressed for reference); reads are repeated round-robin over the codecs so every codec
sees the same machine state, and the best time of each is kept. Two read figures:

* ``raw``: uproot decompression + deserialisation of all branches (``tree.arrays`` per basket);
* ``reader``: the full :class:`~alice_dyn.io.TimeframeReader` (adds building Timeframe objects,
  the CRC-32 check and the validation of every timeframe).

Files are read from the page cache (just written), so the numbers measure CPU, not the disk.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

import numpy as np
import uproot

from alice_dyn.io import TimeframeReader, TimeframeWriter
from alice_dyn.io.schema import TREE_NAME
from alice_dyn.io.testing import synthetic_timeframe

CODECS = ("zlib:1", "lz4:1", "zstd:1", "none")


def make_timeframes(n_tf: int, particles: int, seed: int = 7) -> list:
    """``n_tf`` synthetic timeframes of about ``60 * particles`` clusters each."""
    return [
        synthetic_timeframe(
            seed + i, tf_id=i, n_collisions=8, particles_per_collision=particles // 8, system="pbpb"
        )
        for i in range(n_tf)
    ]


def read_raw(path: str) -> int:
    """Decompress and deserialise every branch, basket-aligned chunks; returns the clusters."""
    n = 0
    with uproot.open(path, array_cache=None) as f:
        tree = f[TREE_NAME]
        offsets = tree.common_entry_offsets()
        for start, stop in itertools.pairwise(offsets):
            arrays = tree.arrays(entry_start=start, entry_stop=stop, library="ak", how=dict)
            n += int(np.sum(arrays["ncl"]))
    return n


def read_reader(path: str) -> int:
    """Iterate the validated TimeframeReader; returns the clusters."""
    with TimeframeReader(path) as reader:
        return sum(len(tf.clusters) for tf in reader)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-tf", type=int, default=20, help="timeframes (default 20)")
    ap.add_argument("--particles", type=int, default=3200, help="particles per TF (~60 cl each)")
    ap.add_argument("--repeat", type=int, default=3, help="read repetitions, best kept")
    ap.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    tfs = make_timeframes(args.n_tf, args.particles)
    n_clusters = sum(len(tf.clusters) for tf in tfs)
    print(
        f"{args.n_tf} timeframes, {n_clusters:,} clusters ({n_clusters / args.n_tf:,.0f} per TF), "
        f"generated in {time.perf_counter() - t0:.1f} s"
    )

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results: dict[str, dict[str, float]] = {}
        for codec in CODECS:
            path = os.path.join(tmp, f"{codec.replace(':', '')}.root")
            t = time.perf_counter()
            with TimeframeWriter(path, compression=codec) as writer:
                writer.write_many(tfs)
            results[codec] = {
                "path": path,
                "write_s": time.perf_counter() - t,
                "size": os.path.getsize(path),
                "raw_s": float("inf"),
                "reader_s": float("inf"),
            }
        for _ in range(args.repeat):
            for codec in CODECS:  # round-robin: side by side under the same conditions
                r = results[codec]
                t = time.perf_counter()
                assert read_raw(r["path"]) == n_clusters
                r["raw_s"] = min(r["raw_s"], time.perf_counter() - t)
                t = time.perf_counter()
                assert read_reader(r["path"]) == n_clusters
                r["reader_s"] = min(r["reader_s"], time.perf_counter() - t)

    ref = results["zlib:1"]
    header = (
        f"{'codec':<8} {'write s':>8} {'size MB':>8} {'B/cl':>6} {'size/zlib':>9} "
        f"{'raw Mcl/s':>10} {'reader Mcl/s':>12} {'raw/zlib':>9} {'reader/zlib':>11}"
    )
    print(header)
    print("-" * len(header))
    for codec, r in results.items():
        raw = n_clusters / r["raw_s"] / 1e6
        full = n_clusters / r["reader_s"] / 1e6
        print(
            f"{codec:<8} {r['write_s']:>8.2f} {r['size'] / 1e6:>8.1f} "
            f"{r['size'] / n_clusters:>6.1f} {r['size'] / ref['size']:>9.2f} "
            f"{raw:>10.2f} {full:>12.2f} {ref['raw_s'] / r['raw_s']:>9.2f} "
            f"{ref['reader_s'] / r['reader_s']:>11.2f}"
        )
    print("(Mcl/s = million clusters per second; raw = uproot only, reader = TimeframeReader)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
