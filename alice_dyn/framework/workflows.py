"""Find and load workflow definitions (Python modules exposing ``define_workflow``).

Layer: framework. A workflow module is like O2's ``defineDataProcessing``: a function
``define_workflow(inputs, output) -> list[DataProcessorSpec]`` listing stages in order with
their options. Modules are looked up by name (``tpc-clusters`` -> ``tpc_clusters.py``) in the
folders of ``$ALICE_DYN_WORKFLOWS`` (``:``-separated), ``./workflows`` and the repository's
``workflows/``, or given as a path.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from alice_dyn.framework.spec import SpecError

REPO_WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def search_path() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("ALICE_DYN_WORKFLOWS", "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "workflows", REPO_WORKFLOWS]
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen and r.is_dir():
            seen.add(r)
            out.append(r)
    return out


def available_workflows() -> dict[str, Path]:
    """Workflow name -> file, over the search path (first found wins)."""
    found: dict[str, Path] = {}
    for d in search_path():
        for f in sorted(d.glob("*.py")):
            if f.name.startswith("_"):
                continue
            found.setdefault(f.stem.replace("_", "-"), f)
    return found


def load_workflow(name_or_path: str) -> ModuleType:
    """Import a workflow module by name or path; it must define ``define_workflow``."""
    path = Path(name_or_path)
    if not (path.suffix == ".py" and path.exists()):
        known = available_workflows()
        key = name_or_path.replace("_", "-")
        if key not in known:
            raise SpecError(
                f"unknown workflow {name_or_path!r}; available: {sorted(known) or 'none'}"
            )
        path = known[key]
    spec = importlib.util.spec_from_file_location(f"alice_dyn_workflow_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot load workflow file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "define_workflow", None)):
        raise SpecError(f"workflow {path} defines no define_workflow(inputs, output) function")
    return module


def describe(module: ModuleType) -> str:
    """First line of the module docstring."""
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
