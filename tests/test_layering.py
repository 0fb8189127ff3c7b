"""The package's layers import one way (docs/development.md, STYLE.md):

``physics, tpc, event -> sim, io, kernels -> reco, nn -> qa, pid, tracknet, calib -> stages ->
workflows, online, cli``; ``framework`` (the DPL mirror) and ``nn`` know no physics; ``plotting``
draws result dicts and reads nothing else. Every import counts, module-level or inside a
function: a lazy import is a dependency too.
"""

import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "alice_dyn"

LOW = {"physics", "tpc", "event"}
#: package -> the alice_dyn packages it may import (itself always)
ALLOWED: dict[str, set[str]] = {
    "physics": set(),
    "tpc": {"physics"},
    "event": {"physics", "tpc"},
    "framework": {"resources"},
    "resources": {"framework"},
    "nn": set(),
    "sim": LOW,
    "io": LOW | {"framework"},
    "kernels": LOW,
    "reco": LOW | {"kernels"},
    "qa": LOW | {"io", "kernels", "reco"},
    "pid": LOW | {"io", "kernels", "reco", "nn", "sim", "framework"},
    "tracknet": LOW | {"io", "kernels", "reco", "nn", "sim", "framework"},
    "calib": LOW | {"io", "kernels", "reco", "sim"},
    "stages": LOW | {"io", "kernels", "reco", "nn", "pid", "tracknet", "framework"},
    "plotting": {"physics"},
    "online": {"framework", "plotting"},
}
#: the only modules a package may use of an otherwise forbidden neighbour: the framework's
#: error base class (io's BadInputError subclasses it) and where shipped files are
NARROW = {
    ("io", "framework"): {"alice_dyn.framework.errors"},
    ("resources", "framework"): {"alice_dyn.framework.errors"},
    ("framework", "resources"): {"alice_dyn.resources"},
}
#: top-level folders of the repository: what they may import
TOP_LEVEL = {
    "workflows": {"framework", "stages", "qa"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``alice_dyn.*`` module ``path`` imports (absolute and relative, at any depth)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                found.add(f"{base}.{a.name}")  # a submodule or a name in ``base``
            found.add(base)
    return {m for m in found if m == "alice_dyn" or m.startswith("alice_dyn.")}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _existing(module: str) -> str:
    """The longest prefix of ``module`` that is a module file or package of alice_dyn."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        p = ROOT.joinpath(*parts[:k])
        if p.with_suffix(".py").is_file() or (p / "__init__.py").is_file():
            return ".".join(parts[:k])
    return module


def _violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mod = _module_name(path)
        pkg = _package_of(mod)
        if pkg is None or pkg in ("cli", "__main__") or (path.parent == PACKAGE and pkg == "cli"):
            continue
        if pkg not in ALLOWED:
            if (PACKAGE / pkg).is_dir() or (PACKAGE / f"{pkg}.py").is_file():
                if pkg not in ("cli", "__init__"):
                    bad.append(f"{mod}: package {pkg!r} has no layer in ALLOWED")
            continue
        for target in sorted(_imports(path)):
            tpkg = _package_of(_existing(target))
            if tpkg is None or tpkg == pkg or tpkg == "__init__":
                continue
            if tpkg not in ALLOWED[pkg]:
                bad.append(f"{mod} imports {target} ({pkg} -> {tpkg} is not allowed)")
            elif (pkg, tpkg) in NARROW and _existing(target) not in NARROW[(pkg, tpkg)]:
                bad.append(f"{mod} imports {target} (only {sorted(NARROW[(pkg, tpkg)])})")
    for folder, allowed in TOP_LEVEL.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            for target in sorted(_imports(path)):
                tpkg = _package_of(_existing(target))
                if tpkg is not None and tpkg not in allowed:
                    bad.append(f"{folder}/{path.name} imports {target} (not in {sorted(allowed)})")
    return bad


def test_imports_flow_one_way():
    assert _violations() == []


def _cycles(package: str) -> list[tuple[str, ...]]:
    """Import cycles between the modules of one package (any import depth)."""
    mods = {_module_name(p): p for p in (PACKAGE / package).rglob("*.py")}
    mods.pop(f"alice_dyn.{package}", None)  # the __init__ re-exporting the modules: its face
    graph = {m: {_existing(t) for t in _imports(p)} & set(mods) - {m} for m, p in mods.items()}
    found = []
    for a, b in itertools.combinations(sorted(graph), 2):
        if _reaches(graph, a, b) and _reaches(graph, b, a):
            found.append((a, b))
    return found


def _reaches(graph: dict[str, set[str]], src: str, dst: str) -> bool:
    seen, todo = set(), [src]
    while todo:
        m = todo.pop()
        if m == dst:
            return True
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return False


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_cycles_inside_a_package(package):
    """Modules of a package import each other one way (an ``__init__`` that re-exports
    its modules is the package's face and is left out)."""
    assert _cycles(package) == []
