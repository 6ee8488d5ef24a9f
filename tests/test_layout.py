"""Guard: the first-party packages import from this checkout, not from site-packages."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _locations(name: str) -> list[Path]:
    """Directories a package was imported from (every portion of a namespace package)."""
    module = importlib.import_module(name)
    if getattr(module, "__file__", None):
        return [Path(module.__file__).resolve().parent]  # a regular package
    # A namespace package; skip placeholder entries such as editable-install path hooks.
    return [Path(p).resolve() for p in module.__path__ if Path(p).is_dir()]


@pytest.mark.parametrize("name", ["storage", "dvidpy", "datatypes"])
def test_package_imports_from_repo(name: str) -> None:
    assert _locations(name) == [REPO / name]


def test_storage_file_is_in_repo() -> None:
    import storage

    assert Path(storage.__file__).resolve() == REPO / "storage" / "__init__.py"
