"""Version diff: what changed in each instance of a repo between two of its versions.

``GET /api/repo/{uuid}/diff/{from}/{to}[?data=a,b]`` (:mod:`dvidpy.http.diff_api`) and
``dvidpy diff`` answer::

    {"from": UUID, "to": UUID,
     "instances": {NAME: {"added": [...], "changed": [...], "deleted": [...],
                          ["conflicts": [...],] ["summary": {...}]}}}

Any two nodes of one repo may be compared (not only parent and child). A key is *added*
when it reads nothing at ``from`` and something at ``to``, *deleted* the other way round,
*changed* when both read different bytes; *conflicts* lists keys written between the two
versions whose read conflicts at a merge version on either side (they are in ``changed``
too; a conflict both sides inherit unchanged is no difference). Keys are shown as each
datatype shows them (:meth:`Datatype.describe_key <dvidpy.datatype.Datatype.describe_key>`:
keyvalue key strings, label ids, block coordinates); internal keys (mutation logs, blobs)
are left out of the lists but feed the typed ``summary``
(:meth:`~dvidpy.datatype.Datatype.diff_summary`: labelmap, annotation, keyvalue, ...).
Unversioned instances never differ.

Cost per instance is proportional to what was written at the versions between the two
nodes (see :meth:`VersionedStore.diff <dvidpy.versioned.VersionedStore.diff>`), not to the
instance's size; the answer is streamed instance by instance.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dvidpy.versioned import CONFLICT

if TYPE_CHECKING:
    from dvidpy.dag import Node
    from dvidpy.datatype import Datatype
    from dvidpy.repo import RepoManager


def instance_diff(mgr: RepoManager, inst: Datatype, a: Node, b: Node) -> dict[str, Any]:
    """The diff of one instance between nodes ``a`` (from) and ``b`` (to)."""
    ca, cb = mgr.context(inst, a), mgr.context(inst, b)
    changes = list(inst.store.diff(ca, cb))
    added: list[Any] = []
    changed: list[Any] = []
    deleted: list[Any] = []
    conflicts: list[Any] = []
    shown_keys = inst.describe_keys([c[0] for c in changes])
    for shown, (_, old, new) in zip(shown_keys, changes, strict=True):
        if shown is None:
            continue
        if old is CONFLICT or new is CONFLICT:
            conflicts.append(shown)
            changed.append(shown)
        elif old is None:
            added.append(shown)
        elif new is None:
            deleted.append(shown)
        else:
            changed.append(shown)
    out: dict[str, Any] = {"added": added, "changed": changed, "deleted": deleted}
    if conflicts:
        out["conflicts"] = conflicts
    summary = inst.diff_summary(ca, cb, changes)
    if summary is not None:
        out["summary"] = summary
    return out


def repo_diff(mgr: RepoManager, a: Node, b: Node,
              instances: list[Datatype]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, instance diff)`` for each instance, computed one at a time."""
    for inst in instances:
        yield inst.meta.name, instance_diff(mgr, inst, a, b)
