"""Model registry (timm-style): variants register a builder by name; models are created by name.

Layer: nn (infrastructure). A registered builder only sets hyper-parameters and returns an
:class:`~alice_dyn.nn.early_exit.EarlyExitNet`. :func:`create_model` records the name, the
keyword arguments and the builder's module on the model (``model.model_name``,
``model.model_kwargs``, ``model.model_module``) so that :mod:`alice_dyn.nn.model_io` can write
them to ``config.json`` and rebuild the same architecture later without unpickling anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str | None = None) -> Callable[[Callable[..., nn.Module]], Callable]:
    """Decorator registering a model builder under ``name`` (default: the function's name).

    The builder takes keyword hyper-parameters only (all with defaults, so that
    ``create_model(name)`` builds a usable default variant) that are JSON-serialisable.
    """

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _MODELS and _MODELS[key] is not fn:
            raise ValueError(f"model {key!r} is already registered (by {_MODELS[key].__module__})")
        _MODELS[key] = fn
        return fn

    return deco


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(_MODELS)


def is_model(name: str) -> bool:
    """Whether ``name`` is registered."""
    return name in _MODELS


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with hyper-parameters ``kwargs``.

    Raises ``KeyError`` (listing the registered names) for an unknown name and ``TypeError`` if a
    keyword argument is not JSON-serialisable (it could not be written to ``config.json``).
    """
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    try:
        json.dumps(kwargs)
    except TypeError as exc:
        raise TypeError(f"create_model({name!r}): hyper-parameters must be JSON: {exc}") from exc
    fn = _MODELS[name]
    model = fn(**kwargs)
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    model.model_module = fn.__module__
    return model
