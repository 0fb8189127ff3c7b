"""Model files: ``model.safetensors`` (weights) + ``config.json`` (everything else). No pickle.

Layer: nn. ``config.json``::

    {
      "format": "alice_dyn.nn/1",
      "model": {"name": "ztw_mlp", "kwargs": {...}, "module": "alice_dyn.nn.mlp"},
      "weights": {"file": "model.safetensors", "sha256": "..."},
      "thresholds": {"policy": "confidence", "thresholds": [...]},   # if given
      "feature_scaling": {...},                                      # if given
      "provenance": {"seed": 0, "command": "...", "dataset_hash": "...", "date": "...",
                     "metrics": {...}, "torch": "2.13.0", ...},
      ...                                                            # any other extra_json keys
    }

:func:`load_model` rebuilds the architecture with
:func:`~alice_dyn.nn._registry.create_model` and loads the weights strictly. If the name is not
registered yet, the builder's module (recorded at save time; only modules inside ``alice_dyn``)
is imported first, so a model family registered elsewhere in the package loads by itself.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from alice_dyn.nn._registry import create_model, is_model

FORMAT = "alice_dyn.nn/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class ModelFileError(ValueError):
    """A model directory that cannot be loaded: no ``config.json``, another format, a missing
    or altered weights file, a builder outside ``alice_dyn``. ``path``: the file or folder;
    ``problem``: what is wrong; the message is ``"PATH: PROBLEM"``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dataset_hash(*arrays: Any) -> str:
    """SHA-256 over the bytes, shapes and dtypes of tensors/arrays (dicts: sorted by key)."""
    h = hashlib.sha256()

    def feed(a: Any) -> None:
        if isinstance(a, dict):
            for k in sorted(a):
                h.update(str(k).encode())
                feed(a[k])
            return
        arr = a.detach().cpu().contiguous().numpy() if isinstance(a, torch.Tensor) else a
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())

    for a in arrays:
        feed(a)
    return h.hexdigest()


def provenance(
    *,
    seed: int | None = None,
    command: str | None = None,
    dataset_hash: str | None = None,
    metrics: dict | None = None,
    **extra: Any,
) -> dict:
    """Provenance block for ``extra_json["provenance"]`` (date in UTC, torch version added)."""
    d = {
        "seed": seed,
        "command": command,
        "dataset_hash": dataset_hash,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "metrics": metrics or {},
        "torch": torch.__version__.split("+")[0],
    }
    d.update(extra)
    return d


def save_model(
    model: torch.nn.Module,
    directory: str | Path,
    config: dict | None = None,
    extra_json: dict | None = None,
) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created).

    Args:
        config: ``{"name": ..., "kwargs": {...}}`` of a registered model; default what
            :func:`create_model` recorded on ``model``.
        extra_json: further top-level keys: ``thresholds`` (e.g. ``policy.to_json()``),
            ``feature_scaling``, ``provenance`` (see :func:`provenance`), ``metrics``, ...
    Returns the directory.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if config is None:
        if not hasattr(model, "model_name"):
            raise ValueError("model was not made by create_model: pass config={'name', 'kwargs'}")
        config = {"name": model.model_name, "kwargs": model.model_kwargs}
    name, kwargs = config["name"], dict(config.get("kwargs", {}))
    module = config.get("module", getattr(model, "model_module", None))
    extra = dict(extra_json or {})
    reserved = {"format", "model", "weights"} & set(extra)
    if reserved:
        raise ValueError(f"extra_json may not set {sorted(reserved)}")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(d / WEIGHTS), metadata={"format": FORMAT})
    doc = {
        "format": FORMAT,
        "model": {"name": name, "kwargs": kwargs, "module": module},
        "weights": {"file": WEIGHTS, "sha256": _sha256(d / WEIGHTS)},
        **extra,
    }
    (d / CONFIG).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return d


def read_config(directory: str | Path) -> dict:
    """The ``config.json`` of a saved model (:class:`ModelFileError` when there is none or it is
    not one)."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise ModelFileError(directory, f"no {CONFIG}: not a saved model directory")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(path, f"cannot read it ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else None
        raise ModelFileError(directory, f"not an {FORMAT} model (format {fmt!r})")
    return doc


def load_model(
    directory: str | Path, *, map_location: str | torch.device = "cpu", verify: bool = True
) -> tuple[torch.nn.Module, dict]:
    """Rebuild and load a model saved by :func:`save_model`; returns ``(model, config)``.

    The model is in ``eval()`` mode. ``verify`` checks the weights' SHA-256 against the config.
    Loading is strict: missing or unexpected tensors raise.
    """
    d = Path(directory)
    doc = read_config(d)
    spec = doc["model"]
    name = spec["name"]
    if not is_model(name) and spec.get("module"):
        mod = str(spec["module"])
        if mod.split(".")[0] != "alice_dyn":
            raise ModelFileError(d, f"refusing to import {mod!r} (only alice_dyn modules)")
        importlib.import_module(mod)
    model = create_model(name, **spec.get("kwargs", {}))
    wfile = d / doc["weights"]["file"]
    if not wfile.is_file():
        raise ModelFileError(wfile, f"the weights file of {d / CONFIG} is missing")
    if verify and _sha256(wfile) != doc["weights"]["sha256"]:
        raise ModelFileError(wfile, "SHA-256 differs from config.json (corrupted or replaced)")
    state = load_file(str(wfile), device=str(map_location))
    model.load_state_dict(state, strict=True)
    model.to(map_location)
    model.eval()
    return model, doc
