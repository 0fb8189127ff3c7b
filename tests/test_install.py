"""A wheel of the repository, installed in a fresh virtual environment, runs the quickstart.

The wheel is built offline from a copy of the source tree (``pip wheel --no-deps
--no-build-isolation`` with the setuptools of this environment). The fresh environment sees this
environment's dependencies through a ``.pth`` file that lists its site-packages folders; a path
added that way has its own ``.pth`` files ignored, so the editable install of ``alice_dyn`` here
(an import hook started by a ``.pth`` file) stays invisible and the wheel's copy is imported.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted(p.name for p in (ROOT / "workflows").glob("*.py"))
SAMPLES = sorted(p.name for p in (ROOT / "data_samples").glob("*.root"))
# Not copied into the build tree: environments, caches, build outputs.
_IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "out"
)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a clean copy of the source tree (no stale ``build/`` of the repo)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_IGNORED)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", str(tmp / "dist"), str(src)])  # fmt: skip
    (whl,) = (tmp / "dist").glob("alice_dyn-*.whl")
    return whl


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory, wheel) -> tuple[Path, dict[str, str]]:
    """(bin folder, environment) of a new venv holding the wheel and this venv's dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    purelib = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
    )
    (purelib / "_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
          "--no-index", str(wheel)])  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("ALICE_DYN_WORKFLOWS", None)
    env.pop("NUMBA_ENABLE_CUDASIM", None)  # set by conftest.py; a user has no such setting
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return venv / "bin", env


def test_wheel_ships_workflows_samples_and_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"alice_dyn/workflows/{w}" for w in WORKFLOWS} <= names
    assert {f"alice_dyn/data_samples/{s}" for s in SAMPLES} <= names
    assert "alice_dyn/data_samples/make_samples.sh" in names
    packages = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "alice_dyn").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert packages <= names, f"packages missing from the wheel: {sorted(packages - names)}"


def test_installed_wheel_runs_quickstart_outside_the_repository(fresh_env, tmp_path):
    bindir, env = fresh_env
    where = _run(
        [str(bindir / "python"), "-c",
         "import alice_dyn, alice_dyn.resources as r; "
         "print(alice_dyn.__file__); print(r.workflows_dir()); print(r.default_sample())"],
        cwd=tmp_path, env=env,
    ).stdout.split()  # fmt: skip
    venv = bindir.parent.resolve()
    assert all(Path(p).resolve().is_relative_to(venv) for p in where), where  # not the repo's
    listed = _run([str(bindir / "alice-dyn"), "workflows"], cwd=tmp_path, env=env).stdout
    assert "tpc-reco" in listed and str(ROOT) not in listed
    out = tmp_path / "OUT"
    res = _run(
        [str(bindir / "alice-dyn"), "quickstart", "--timeframes", "1", "--out-dir", str(out)],
        cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert (out / "quickstart_reco.root").is_file(), res.stdout
