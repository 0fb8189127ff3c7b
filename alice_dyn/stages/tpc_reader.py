"""``tpc-cluster-reader``: ROOT timeframe files -> TPC/CLUSTERNATIVE (+ MC, TOF, TRD, FT0).

Layer: stages. A source: each ``run`` reads the next timeframe (lazily, chunk by chunk, through
:class:`alice_dyn.io.TimeframeReader`) and sends O2's ClusterNative buffer and the other
detectors' data; after the last timeframe of the last file it signals end of stream. Files
in O2's layout give empty MC/TOF/TRD/FT0 messages, so the topology is the same.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence

import numpy as np

from alice_dyn.event.timeframe import Timeframe
from alice_dyn.framework.context import InitContext, ProcessingContext
from alice_dyn.framework.executable import run_executable
from alice_dyn.framework.spec import ConfigParamSpec, DataProcessorSpec, OutputSpec
from alice_dyn.framework.task import Task
from alice_dyn.io import open_timeframes
from alice_dyn.stages import data_types as dt
from alice_dyn.tpc.cluster_native import encode_o2_buffer, o2_buffer_size

NAME = "tpc-cluster-reader"
OPTIONS = (
    ConfigParamSpec("infile", str, "", "input ROOT file(s), comma-separated"),
    ConfigParamSpec("max-tf", int, -1, "read at most this many timeframes (-1: all)"),
    ConfigParamSpec("skip-bad", bool, False, "skip (warn, count) bad timeframes"),
)


def _columns(part) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v) for k, v in part.columns().items()}


class TPCClusterReaderTask(Task):
    """Reads timeframes file after file and sends one set of messages per timeframe."""

    def init(self, ic: InitContext) -> None:
        files = [f.strip() for f in str(ic.option("infile")).split(",") if f.strip()]
        if not files:
            raise ValueError("no input file: give --infile FILE[,FILE...]")
        self.files = files
        self.max_tf = int(ic.option("max-tf"))
        self.skip_bad = bool(ic.option("skip-bad"))
        self.n_sent = 0
        self.n_skipped = 0
        self._it = self._timeframes()

    def _timeframes(self) -> Iterator[Timeframe]:
        for path in self.files:
            with open_timeframes(path, skip_bad=self.skip_bad) as reader:
                yield from reader
                self.n_skipped += reader.n_skipped

    def run(self, pc: ProcessingContext) -> None:
        if 0 <= self.max_tf <= self.n_sent:
            pc.end_of_stream()
            return
        tf = next(self._it, None)
        if tf is None:
            pc.end_of_stream()
            return
        pc.tf_id = tf.meta.tf_id
        cl = tf.clusters
        buf = pc.outputs.make(dt.CLUSTER_NATIVE, o2_buffer_size(len(cl)), np.uint8)
        encode_o2_buffer(cl.records, cl.sector, cl.row, out=buf)
        pc.outputs.snapshot(dt.CLUSTER_NATIVE_MC, np.ascontiguousarray(cl.mc_label))
        col = tf.collisions
        pc.outputs.snapshot(
            dt.FT0_RECPOINTS,
            {"time_ps": col.t0_meas_ps, "resolution_ps": col.t0_resolution_ps},
        )
        pc.outputs.snapshot(dt.MC_COLLISIONS, _columns(col))
        pc.outputs.snapshot(dt.MC_TRACKS, _columns(tf.particles))
        pc.outputs.snapshot(dt.TOF_CLUSTERS, _columns(tf.tof))
        pc.outputs.snapshot(dt.TRD_TRACKLETS, _columns(tf.trd))
        pc.outputs.snapshot(
            dt.TF_META,
            {
                "tf_id": tf.meta.tf_id,
                "first_orbit": tf.meta.first_orbit,
                "run_number": tf.meta.run_number,
                "run_period": tf.meta.run_period,
                "bfield_t": tf.meta.bfield_t,
                "system": tf.meta.system,
            },
        )
        self.n_sent += 1


def tpc_cluster_reader_spec(
    infile: str | Sequence[str] = "", max_tf: int = -1, skip_bad: bool = False
) -> DataProcessorSpec:
    """The reader processor for ``infile`` (a path, a comma-separated list or a list)."""
    files = infile if isinstance(infile, str) else ",".join(map(str, infile))
    return DataProcessorSpec(
        name=NAME,
        outputs=[
            OutputSpec(d.origin, d.description, d.subspec)
            for d in (
                dt.CLUSTER_NATIVE,
                dt.CLUSTER_NATIVE_MC,
                dt.FT0_RECPOINTS,
                dt.MC_COLLISIONS,
                dt.MC_TRACKS,
                dt.TOF_CLUSTERS,
                dt.TRD_TRACKLETS,
                dt.TF_META,
            )
        ],
        algorithm=TPCClusterReaderTask,
        options=OPTIONS,
        option_values={"infile": files, "max-tf": max_tf, "skip-bad": skip_bad},
        labels=("reader",),
        factory=f"{__name__}:tpc_cluster_reader_spec",
        factory_kwargs={"infile": files, "max_tf": max_tf, "skip_bad": skip_bad},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``alice-dyn-tpc-reader``: the reader as an O2-style executable."""

    def define(args) -> list[DataProcessorSpec]:
        return [tpc_cluster_reader_spec(args.infile, args.max_tf, args.skip_bad)]

    def add_options(parser) -> None:
        parser.add_argument("--infile", required=True, help="input ROOT file(s), comma-separated")
        parser.add_argument(
            "--max-tf", type=int, default=-1, help="at most this many TFs (-1: all)"
        )
        parser.add_argument("--skip-bad", action="store_true", help="skip and count bad TFs")

    return run_executable("alice-dyn-tpc-reader", define, add_options, argv)


if __name__ == "__main__":
    sys.exit(main())
