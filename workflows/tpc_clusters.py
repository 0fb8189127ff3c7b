"""TPC clusters to global coordinates: reader -> transform -> AO2D-like writer.

Run: ``alice-dyn run tpc-clusters -i data_samples/pp_sample.root -o clusters.root``.
"""

from alice_dyn.stages import aod_writer_spec, tpc_cluster_reader_spec, tpc_cluster_transform_spec


def define_workflow(inputs: list[str], output: str) -> list:
    return [
        tpc_cluster_reader_spec(inputs),
        tpc_cluster_transform_spec(),
        aod_writer_spec(output, inputs="clusters:TPC/CLUSTERGLOBAL;tfmeta:GLO/TFMETA"),
    ]
