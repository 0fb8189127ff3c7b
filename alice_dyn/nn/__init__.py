"""alice_dyn.nn: dynamic-depth (early-exit) networks, physics-free.

Layer: nn. Modules, from the bottom up (each imports only those above it in this list):

* :mod:`~alice_dyn.nn.objectives` — what the exit outputs mean: classification, Gaussian
  regression, both (``ClassificationObjective``, ``GaussianObjective``,
  ``ClassGaussianObjective``);
* :mod:`~alice_dyn.nn.base` — the input type, batch helpers (``take``, ``batch_size``) and
  ``ExitModel``, the network as policies, FLOPs counting and inference see it;
* :mod:`~alice_dyn.nn.policies` — confidence, entropy, uncertainty, patience (PABEE);
* :mod:`~alice_dyn.nn.flops` — analytic FLOPs per exit, FlopCounterMode cross-check, wall time;
* :mod:`~alice_dyn.nn.inference` — batched per-sample exits with compaction (``run_dynamic``);
* :mod:`~alice_dyn.nn.early_exit` — :class:`EarlyExitNet` (``stem -> blocks``, exit heads after
  chosen blocks, modes ``all|one|dynamic``, ``forward_intermediates``, ``exit_submodel``), SDN
  and ZTW-cascading heads, Gaussian regression heads, multi-task (class + Gaussian) heads, the
  ZTW geometric ensemble;
* :mod:`~alice_dyn.nn.mlp` — the residual-MLP family (``LinearStem``, ``GroupStem`` for dicts
  of feature groups with presence masks, ``ResidualMLPBlock``) and its registered variants;
* :mod:`~alice_dyn.nn.budget` — thresholds for a FLOPs fraction, run-time ``BudgetController``;
* :mod:`~alice_dyn.nn.training` — joint training and ZTW's staged recipe;
* :mod:`~alice_dyn.nn.model_io` — safetensors + JSON model files; ``_registry`` — models by name;
* :mod:`~alice_dyn.nn.testing` — toy data.
"""

from alice_dyn.nn import mlp as _mlp  # noqa: F401  (registers the residual-MLP variants)
from alice_dyn.nn._registry import create_model, list_models, register_model
from alice_dyn.nn.base import ExitModel, Inputs, batch_size, take
from alice_dyn.nn.budget import (
    BudgetController,
    DeadlineGovernor,
    TabulatedCalibrator,
    ThresholdCalibrator,
    calibrate_thresholds,
)
from alice_dyn.nn.early_exit import (
    ClassGaussianHead,
    EarlyExitNet,
    ExitHead,
    ExitSubmodel,
    GaussianHead,
    GeometricEnsemble,
)
from alice_dyn.nn.flops import (
    FlopsReport,
    count_flops,
    flop_counter_total,
    measure_wall_time,
    module_flops,
)
from alice_dyn.nn.inference import ExitResult, run_dynamic, select_exits
from alice_dyn.nn.mlp import GroupStem, LinearStem, ResidualMLPBlock, build_early_exit_mlp
from alice_dyn.nn.model_io import (
    ModelFileError,
    dataset_hash,
    load_model,
    provenance,
    read_config,
    save_model,
)
from alice_dyn.nn.objectives import (
    ClassGaussianObjective,
    ClassificationObjective,
    GaussianObjective,
    Objective,
    make_objective,
)
from alice_dyn.nn.policies import (
    ConfidencePolicy,
    EntropyPolicy,
    ExitPolicy,
    PatiencePolicy,
    ThresholdPolicy,
    UncertaintyPolicy,
    make_policy,
    policy_from_json,
)
from alice_dyn.nn.training import (
    exit_metrics,
    train_backbone,
    train_ensemble,
    train_heads,
    train_joint,
)

__all__ = [
    "BudgetController",
    "ClassGaussianHead",
    "ClassGaussianObjective",
    "ClassificationObjective",
    "ConfidencePolicy",
    "DeadlineGovernor",
    "EarlyExitNet",
    "EntropyPolicy",
    "ExitHead",
    "ExitModel",
    "ExitPolicy",
    "ExitResult",
    "ExitSubmodel",
    "FlopsReport",
    "GaussianHead",
    "GaussianObjective",
    "GeometricEnsemble",
    "GroupStem",
    "Inputs",
    "LinearStem",
    "ModelFileError",
    "Objective",
    "PatiencePolicy",
    "ResidualMLPBlock",
    "TabulatedCalibrator",
    "ThresholdCalibrator",
    "ThresholdPolicy",
    "UncertaintyPolicy",
    "batch_size",
    "build_early_exit_mlp",
    "calibrate_thresholds",
    "count_flops",
    "create_model",
    "dataset_hash",
    "exit_metrics",
    "flop_counter_total",
    "list_models",
    "load_model",
    "make_objective",
    "make_policy",
    "measure_wall_time",
    "module_flops",
    "policy_from_json",
    "provenance",
    "read_config",
    "register_model",
    "run_dynamic",
    "save_model",
    "select_exits",
    "take",
    "train_backbone",
    "train_ensemble",
    "train_heads",
    "train_joint",
]
