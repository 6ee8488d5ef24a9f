"""Run dvidpy as the base install (``pip install -e .``) would, inside the test environment.

CI installs ``.[test]``, so every optional package is importable and a command that
needs an extra would pass unnoticed. :func:`base_install_env` gives a child process an
environment in which the modules that only the extras bring (computed from
``pyproject.toml`` and the installed distributions, see :func:`extras_only_modules`)
cannot be imported: a ``sitecustomize`` on ``PYTHONPATH`` puts a finder first on
``sys.meta_path`` that raises :class:`ModuleNotFoundError` for them, exactly as a
missing package does. ``allow`` keeps the modules of some extras importable.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

_SITECUSTOMIZE = '''\
import sys

_BLOCKED = {blocked!r}


class _NotOnTheBaseInstall:
    """Refuses the modules only dvidpy's extras install (tests/base_install.py)."""

    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in _BLOCKED):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotOnTheBaseInstall())
'''


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req(req: str) -> tuple[str, frozenset[str]]:
    """``(normalized distribution name, extras)`` of a requirement string."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
    assert m, req
    extras = frozenset(_norm(e) for e in (m.group(2) or "").split(",") if e.strip())
    return _norm(m.group(1)), extras


def _closure(reqs: set[str]) -> set[str]:
    """Distributions that the requirement strings ``reqs`` install, recursively (markers
    other than ``extra == ...`` count as true, so the closure errs large)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [_req(r) for r in reqs]
    while todo:
        n, extras = todo.pop()
        if (n, extras) in seen:
            continue
        seen.add((n, extras))
        try:
            requires = distribution(n).requires or []
        except PackageNotFoundError:
            continue
        for r in requires:
            m = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", r.partition(";")[2])
            if m is None or _norm(m.group(1)) in extras:
                todo.append(_req(r))
    return {n for n, _ in seen}


def _extra_reqs(project: dict, extra: str, seen: set[str] | None = None) -> set[str]:
    """Requirement strings of an extra of dvidpy (``dvidpy[a,b]`` expanded)."""
    seen = seen if seen is not None else set()
    if extra in seen:
        return set()
    seen.add(extra)
    out: set[str] = set()
    for r in project["optional-dependencies"][extra]:
        m = re.fullmatch(r"\s*dvidpy\[([^\]]+)\]\s*", r)
        if m:
            for e in m.group(1).split(","):
                out |= _extra_reqs(project, e.strip(), seen)
        else:
            out.add(r)
    return out


def _module_paths(dist_name: str) -> list[tuple[str, ...]]:
    try:
        files = distribution(dist_name).files or []
    except PackageNotFoundError:
        return []
    out = []
    for f in files:
        parts = f.parts
        if not parts or parts[0] in ("..", "bin") or any(
                p.endswith((".dist-info", ".egg-info", ".data")) or p == "__pycache__"
                for p in parts):
            continue
        last = parts[-1]
        if not last.endswith((".py", ".so", ".pyd")):
            continue
        mod = last.split(".", 1)[0]
        out.append(parts[:-1] + (() if mod == "__init__" else (mod,)))
    return out


@cache
def extras_only_modules(allow: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """Dotted module prefixes that only dvidpy's extras (other than ``allow``) install.

    A distribution counts when an extra needs it and neither the base dependencies nor
    the allowed extras do. Its modules are cut at the shortest prefix no base
    distribution has files under, so a namespace shared with a base package (``google``:
    protobuf is base, ``google.cloud`` comes with the gcs extra) blocks only its part.
    """
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = set(project["dependencies"])
    for e in allow:
        base |= _extra_reqs(project, e)
    keep = _closure(base)
    extra = set()
    for e in project["optional-dependencies"]:
        extra |= _extra_reqs(project, e)
    only = _closure(extra) - keep
    kept_prefixes = {p[:i] for d in keep for p in _module_paths(d)
                     for i in range(1, len(p) + 1)}
    blocked = set()
    for d in only:
        for p in _module_paths(d):
            for i in range(1, len(p) + 1):
                if p[:i] not in kept_prefixes:
                    blocked.add(".".join(p[:i]))
                    break
    # a prefix inside another blocked one adds nothing
    return tuple(sorted(b for b in blocked
                        if not any(b.startswith(o + ".") for o in blocked)))


def base_install_env(tmp: Path, allow: frozenset[str] = frozenset(),
                     env: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for child processes that import dvidpy from this repository (first
    on ``PYTHONPATH``) without the modules of the extras other than ``allow``."""
    d = tmp / ("base-install-" + "-".join(sorted(allow)))
    d.mkdir(parents=True, exist_ok=True)
    (d / "sitecustomize.py").write_text(
        _SITECUSTOMIZE.format(blocked=extras_only_modules(frozenset(allow))))
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(d)])
    env["PYTHONUNBUFFERED"] = "1"
    return env
