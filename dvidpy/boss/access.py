"""Finding what a Boss request names, and who may do it.

:func:`target` resolves the ``collection``/``experiment``/``channel`` path parameters of a
request to their records, the experiment's repo, the version (the repo's ``master`` HEAD,
or the extension query parameter ``version=UUID``, which must name a version of that
repo) and the channel's instance; it is cached in the request's scope, so the resolver
the dispatcher calls for authorization (:func:`on_collection`, :func:`on_experiment`,
:func:`on_channel`, ...) and the handler share one lookup.

Authorization (with ``[auth]`` on) is dvidpy's, per repo, checked by the dispatcher from
each route's declared access class on what the resolver names:

====================================  ==================================================
Boss resource                         checked on
====================================  ==================================================
collection                            pseudo-repo ``boss:collection/C`` (its grants)
coordinate frame (change, delete)     pseudo-repo ``boss:coord/F``
experiment                            its repo
channel                               its repo, with the instance's overrides
creating a collection or frame        server level: ``creators``
====================================  ==================================================

The creator of a collection, frame or experiment administers it (as the creator of a repo
does). The Boss's ``public`` flag of a collection or experiment is the pseudo-repo's or
repo's public flag; a channel's is kept and shown, but anonymous reads follow its
experiment (dvidpy's public flag is per repo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dvidpy.boss.errors import BossError
from dvidpy.boss.model import BossModel
from dvidpy.errors import BadRequest, LockedNodeError
from dvidpy.http.spec import Q

if TYPE_CHECKING:
    from dvidpy.dag import Node
    from dvidpy.datatype import Datatype
    from dvidpy.http.router import HttpCall
    from dvidpy.repo import Repo

VERSION = Q("version", "uuid", "dvidpy extension: act on this version of the experiment's "
                               "repo (a UUID, prefix or PREFIX:branch) instead of its master "
                               "HEAD; writes need an open (uncommitted) version")


def model(call: HttpCall) -> BossModel:
    """The server's :class:`BossModel` (made on first use)."""
    m = call.state.extras.get("boss")
    if m is None:
        m = call.state.extras.setdefault("boss", BossModel(call.mgr))
    return m


def collection_root(name: str) -> str:
    """The pseudo-repo whose grants and public flag are collection ``name``'s."""
    return f"boss:collection/{name}"


def frame_root(name: str) -> str:
    """The pseudo-repo whose grants are coordinate frame ``name``'s."""
    return f"boss:coord/{name}"


@dataclass
class Target:
    """What one Boss request acts on (fields None where the path does not go so deep)."""

    coll: dict[str, Any]
    exp: dict[str, Any] | None = None
    chan: dict[str, Any] | None = None
    repo: Repo | None = None
    node: Node | None = None
    inst: Datatype | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def writable(self) -> Node:
        """The version, which must be open for a write (400 naming it otherwise)."""
        assert self.node is not None
        if self.node.locked:
            raise LockedNodeError(f"version {self.node.uuid} of experiment "
                                  f"{self.exp['name'] if self.exp else ''} is committed "
                                  "(locked): make a new version on master, or name an open "
                                  "one with version=UUID")
        return self.node


def target(call: HttpCall, upto: str = "channel") -> Target:
    """The records, repo, version and instance the request's path names, down to ``upto``
    (``"collection"``, ``"experiment"`` or ``"channel"``; a route that creates one names
    its parent): 404 when a resource does not exist; 400 for a ``version`` of another
    repo."""
    key = f"dvidpy.boss.target.{upto}"
    cached = call.scope.get(key)
    if cached is not None:
        return cached
    m = model(call)
    p = call.params
    t = Target(m.collection(p["collection"]))
    if p.get("experiment") and upto != "collection":
        t.exp = m.experiment(p["collection"], p["experiment"])
        t.repo = m.repo_of(t.exp)
        spec = p.get("version")
        if spec:
            try:
                repo, node = call.mgr.resolve(spec)
            except BadRequest as e:
                raise BossError(f"version {spec!r}: {e.message}") from None
            if repo is not t.repo:
                raise BossError(f"version {spec!r} is not a version of experiment "
                                f"{t.exp['name']} (repo {t.repo.root})")
            t.node = node
        else:
            try:
                t.node = t.repo.dag.branch_leaf("")
            except BadRequest as e:
                raise BossError(e.message) from None
        if p.get("channel") and upto == "channel":
            t.chan = m.channel(p["collection"], p["experiment"], p["channel"])
            t.inst = m.instance(t.exp, t.chan)
    call.scope[key] = t
    return t


def on_collection(call: HttpCall) -> tuple[str | None, str | None, str | None]:
    """Access resolver: the collection's pseudo-repo (404 when it does not exist)."""
    model(call).collection(call.params["collection"])
    return collection_root(call.params["collection"]), None, None


def on_experiment(call: HttpCall) -> tuple[str | None, str | None, str | None]:
    """Access resolver: the experiment's repo at the request's version."""
    t = target(call, "experiment")
    assert t.repo is not None and t.node is not None
    return t.repo.root, None, t.node.uuid


def on_channel(call: HttpCall) -> tuple[str | None, str | None, str | None]:
    """Access resolver: the channel's instance in the experiment's repo."""
    t = target(call)
    assert t.repo is not None and t.node is not None and t.inst is not None
    return t.repo.root, t.inst.meta.name, t.node.uuid


def on_frame(call: HttpCall) -> tuple[str | None, str | None, str | None]:
    """Access resolver: the coordinate frame's pseudo-repo (404 when it does not exist)."""
    model(call).frame(call.params["frame"])
    return frame_root(call.params["frame"]), None, None


def readable(call: HttpCall, root: str, instance: str | None = None) -> bool:
    """Whether the caller may read ``root`` (and ``instance``) (for listings)."""
    from dvidpy.errors import Forbidden, Unauthorized

    auth = call.state.auth
    if auth is None or not auth.on:
        return True
    try:
        auth.authorize(call.identity, "read", root, instance)
    except (Unauthorized, Forbidden):
        return False
    return True


def creator(call: HttpCall) -> str:
    """The Boss's ``creator`` of what the caller makes: the user, else ``anonymous``."""
    return call.identity.user or ("admin" if call.identity.admin else "anonymous")


def grant_creator(call: HttpCall, root: str, public: bool | None = None) -> None:
    """The creator administers ``root`` (whose old grants, of a deleted resource of the
    same name, are dropped); ``public`` sets its public flag."""
    auth = call.state.auth
    if auth is None:
        return
    auth.grants.clear(root)
    auth.grant_creator(call.identity, root)
    if public is not None:
        set_public(call, root, public)


def set_public(call: HttpCall, root: str, public: bool) -> None:
    """Set the public flag of ``root`` (a Boss resource's ``public`` field)."""
    auth = call.state.auth
    if auth is not None:
        auth.grants.update(root, {}, None, public)
