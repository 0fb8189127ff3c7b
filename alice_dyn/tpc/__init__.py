"""TPC data model: geometry tables, the ClusterNative record and coordinate transforms."""

from alice_dyn.tpc import cluster_native, geometry, transform
from alice_dyn.tpc.cluster_native import (
    CLUSTER_NATIVE_DTYPE,
    ClusterNativeFormatError,
    cluster_count_index,
    decode_o2_buffer,
    encode_o2_buffer,
    pack_clusters,
    unpack_clusters,
)
from alice_dyn.tpc.geometry import DEFAULT_GAS, TPCGasParam

__all__ = [
    "CLUSTER_NATIVE_DTYPE",
    "DEFAULT_GAS",
    "ClusterNativeFormatError",
    "TPCGasParam",
    "cluster_count_index",
    "cluster_native",
    "decode_o2_buffer",
    "encode_o2_buffer",
    "geometry",
    "pack_clusters",
    "transform",
    "unpack_clusters",
]
