"""Pre-processing kernels: cluster transform, binning, helix fit, dE/dx, matching, features.

Layer: kernels (between the data model of ``tpc``/``event`` and the reconstruction of
``reco``/``nn``). Every kernel exists three times, side by side in one module per family:

* ``<name>_ref``: the NumPy reference — the specification the twins are tested against;
* ``<name>_cpu``: the Numba CPU twin (``parallel=True`` / ``prange`` where it pays);
* ``<name>_gpu``: the numba.cuda twin, operating on CuPy (any ``__cuda_array_interface__``)
  arrays; its ``xp`` argument (default CuPy) also lets it run under numba's CUDA simulator;

and ``<name>(..., backend="cpu" | "gpu" | "auto")`` dispatches between the twins (see
:mod:`alice_dyn.kernels.backends`: ``get_backend``, ``Backend.to_torch`` for zero-copy hand-off
to PyTorch). Families: :mod:`~.transform`, :mod:`~.binning`, :mod:`~.helix`, :mod:`~.dedx`,
:mod:`~.matching`, :mod:`~.features`.
"""

from alice_dyn.kernels.backends import (
    BACKEND_NAMES,
    DEFAULT_KERNEL_BACKEND,
    GPU_INSTALL_HINT,
    Backend,
    BackendUnavailableError,
    get_backend,
    gpu_available,
)
from alice_dyn.kernels.binning import (
    ClusterGrid,
    bin_clusters,
    bin_clusters_cpu,
    bin_clusters_gpu,
    bin_clusters_ref,
    build_grid,
    build_grid_cpu,
    build_grid_gpu,
    build_grid_ref,
    neighbours,
    neighbours_ref,
)
from alice_dyn.kernels.dedx import (
    GPU_MAX_CLUSTERS,
    truncated_mean_tracks,
    truncated_mean_tracks_cpu,
    truncated_mean_tracks_gpu,
    truncated_mean_tracks_ref,
)
from alice_dyn.kernels.features import (
    padded_track_features,
    padded_track_features_cpu,
    padded_track_features_gpu,
    padded_track_features_ref,
)
from alice_dyn.kernels.helix import (
    Helix,
    HelixFit,
    fit_helices,
    fit_helices_cpu,
    fit_helices_gpu,
    fit_helices_ref,
)
from alice_dyn.kernels.matching import (
    extrapolate_to_cylinder,
    extrapolate_to_cylinder_cpu,
    extrapolate_to_cylinder_gpu,
    extrapolate_to_cylinder_ref,
    helix_at,
    helix_from_track_params,
    match_hits,
    match_hits_cpu,
    match_hits_gpu,
    match_hits_ref,
)
from alice_dyn.kernels.transform import (
    TransformedClusters,
    transform_clusters,
    transform_clusters_cpu,
    transform_clusters_gpu,
    transform_clusters_ref,
    transform_o2_buffer,
    transform_o2_buffer_cpu,
    transform_o2_buffer_gpu,
    transform_o2_buffer_ref,
)

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_KERNEL_BACKEND",
    "GPU_INSTALL_HINT",
    "GPU_MAX_CLUSTERS",
    "Backend",
    "BackendUnavailableError",
    "ClusterGrid",
    "Helix",
    "HelixFit",
    "TransformedClusters",
    "bin_clusters",
    "bin_clusters_cpu",
    "bin_clusters_gpu",
    "bin_clusters_ref",
    "build_grid",
    "build_grid_cpu",
    "build_grid_gpu",
    "build_grid_ref",
    "extrapolate_to_cylinder",
    "extrapolate_to_cylinder_cpu",
    "extrapolate_to_cylinder_gpu",
    "extrapolate_to_cylinder_ref",
    "fit_helices",
    "fit_helices_cpu",
    "fit_helices_gpu",
    "fit_helices_ref",
    "get_backend",
    "gpu_available",
    "helix_at",
    "helix_from_track_params",
    "match_hits",
    "match_hits_cpu",
    "match_hits_gpu",
    "match_hits_ref",
    "neighbours",
    "neighbours_ref",
    "padded_track_features",
    "padded_track_features_cpu",
    "padded_track_features_gpu",
    "padded_track_features_ref",
    "transform_clusters",
    "transform_clusters_cpu",
    "transform_clusters_gpu",
    "transform_clusters_ref",
    "transform_o2_buffer",
    "transform_o2_buffer_cpu",
    "transform_o2_buffer_gpu",
    "transform_o2_buffer_ref",
    "truncated_mean_tracks",
    "truncated_mean_tracks_cpu",
    "truncated_mean_tracks_gpu",
    "truncated_mean_tracks_ref",
]
