"""Where the shipped workflows and data samples are: the one place that knows.

Layer: package resources (below the framework: imports nothing from ``alice_dyn`` except
``alice_dyn.framework.errors``, so the framework may import it without importing physics).

The user-facing folders are the repository's top-level ``workflows/`` and ``data_samples/``.
In the source tree ``alice_dyn/workflows`` and ``alice_dyn/data_samples`` are symbolic links to
them, so an editable install (``pip install -e .``) sees the files users edit; a wheel carries
real copies at the same place inside the package (``pyproject.toml`` ships them as package
data). Both are found with :func:`importlib.resources.files`.

Assumption: the package is installed as real files (a site-packages folder or a source tree),
not imported from a zip archive, so a resource is a plain :class:`~pathlib.Path` that other
programs (ROOT, uproot, subprocesses) can open. A zipped install raises
:class:`MissingResourceError` naming the problem.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from alice_dyn.framework.errors import UsageError

#: The sample that the quickstart and ``alice-dyn summary`` use when given none.
DEFAULT_SAMPLE_NAME = "pp_sample.root"


class MissingResourceError(UsageError):
    """A shipped resource (sample or folder) is not where the installation should have it."""


def _shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` (``workflows`` or ``data_samples``) as a resolved path."""
    root = files("alice_dyn")
    if not isinstance(root, Path):
        raise MissingResourceError(
            f"alice_dyn is not installed as plain files ({root!r}); shipped {name}/ need a "
            "regular install (pip install alice-dyn)"
        )
    folder = root / name
    if folder.is_dir():
        return folder.resolve()
    # A source checkout without the symlink (e.g. git with core.symlinks=false): the top-level
    # folder next to the package.
    top = root.parent / name
    if top.is_dir() and (root.parent / "pyproject.toml").is_file():
        return top.resolve()
    raise MissingResourceError(f"shipped folder {name}/ not found: looked in {folder} and {top}")


def workflows_dir() -> Path:
    """The folder of the shipped workflow modules (``tpc_reco.py``, ...)."""
    return _shipped_dir("workflows")


def data_samples_dir() -> Path:
    """The folder of the shipped data samples (``pp_sample.root``, ...)."""
    return _shipped_dir("data_samples")


def available_samples() -> list[str]:
    """File names of the shipped ``.root`` samples, sorted."""
    return sorted(p.name for p in data_samples_dir().glob("*.root"))


def data_sample(name: str = DEFAULT_SAMPLE_NAME) -> Path:
    """Path of the shipped sample ``name`` (e.g. ``"pbpb_sample.root"``).

    Raises :class:`MissingResourceError` (a :class:`UsageError`: one line, exit code 2 at the
    command line) naming the sample, the folder looked in and the samples that are there.
    """
    folder = data_samples_dir()
    path = folder / name
    if Path(name).name != name or not path.is_file():
        raise MissingResourceError(
            f"shipped sample {name!r} not found in {folder}; "
            f"available: {', '.join(available_samples()) or 'none'}"
        )
    return path


def default_sample() -> Path:
    """Path of the default shipped sample (:data:`DEFAULT_SAMPLE_NAME`)."""
    return data_sample(DEFAULT_SAMPLE_NAME)


__all__ = [
    "DEFAULT_SAMPLE_NAME",
    "MissingResourceError",
    "available_samples",
    "data_sample",
    "data_samples_dir",
    "default_sample",
    "workflows_dir",
]
