"""Copy timeframes: reader -> writer of O2's ClusterNative buffers, MC labels and TOF/TRD hits.

Run: ``alice-dyn run tpc-copy -i data_samples/pp_sample.root -o copy.root``.
"""

from alice_dyn.stages import aod_writer_spec, tpc_cluster_reader_spec

WRITTEN = (
    "clusters:TPC/CLUSTERNATIVE;labels:TPC/CLNATIVEMCLBL;tof:TOF/CLUSTERS;trd:TRD/TRACKLETS;"
    "mcparticles:MC/MCTRACKS;tfmeta:GLO/TFMETA"
)


def define_workflow(inputs: list[str], output: str) -> list:
    return [tpc_cluster_reader_spec(inputs), aod_writer_spec(output, inputs=WRITTEN)]
