"""Find and load workflow definitions (Python modules exposing ``define_workflow``).

Layer: framework. A workflow module is like O2's ``defineDataProcessing``: a function
``define_workflow(inputs, output) -> list[DataProcessorSpec]`` listing stages in order with
their options. Modules are looked up by name (``tpc-clusters`` -> ``tpc_clusters.py``) in the
folders of ``$ALICE_DYN_WORKFLOWS`` (``os.pathsep``-separated), ``./workflows`` and the shipped
workflows (:func:`alice_dyn.resources.workflows_dir`: the top-level ``workflows/`` of a source
tree, its copy inside an installed wheel), or given as a path. The first folder holding a name
wins. A loaded module is named after its resolved path (``alice_dyn_workflow_<stem>_<hash>``),
so two files of the same name in different folders never share a module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from alice_dyn.framework.spec import SpecError
from alice_dyn.resources import MissingResourceError, workflows_dir


def search_path() -> list[Path]:
    """Existing workflow folders, in lookup order, resolved and without duplicates."""
    dirs = [Path(p) for p in os.environ.get("ALICE_DYN_WORKFLOWS", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "workflows")
    try:
        dirs.append(workflows_dir())
    except MissingResourceError:  # a broken install still finds $ALICE_DYN_WORKFLOWS, ./workflows
        pass
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
    path = path.resolve()
    spec = importlib.util.spec_from_file_location(module_name(path), path)
    if spec is None or spec.loader is None:
        raise SpecError(f"cannot load workflow file {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered like an import (dataclasses and pickling look modules up by name); the name is
    # unique per file, so a user's tpc_reco.py never replaces the shipped one.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    if not callable(getattr(module, "define_workflow", None)):
        raise SpecError(f"workflow {path} defines no define_workflow(inputs, output) function")
    return module


def module_name(path: Path) -> str:
    """Module name of the workflow file ``path``: its stem and a hash of its resolved path."""
    resolved = Path(path).resolve()
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:10]
    return f"alice_dyn_workflow_{resolved.stem}_{digest}"


def describe(module: ModuleType) -> str:
    """First line of the module docstring."""
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
