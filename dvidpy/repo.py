"""Repos, their DAGs and data instances, and the manager that persists and resolves them.

The :class:`RepoManager` owns every repo on a server. It resolves UUID strings
(dvid-api.md §2.2: unique case-sensitive prefixes across all repos, ``PREFIX:BRANCH`` for a
branch HEAD, ``~N`` for the N-th ancestor along that branch), creates instances on the
store chosen by the configuration, hands out VersionIDs, InstanceIDs and mutation ids, and
persists all of it as JSON records in the metadata store (keyspace ``0x00``) after every
change, so a restart finds everything again without replaying history.

**Several servers over one shared metadata store** (a *coordinated* deployment, see
:mod:`dvidpy.coord`): every metadata change runs under one cross-server lease (``meta``),
which first reloads whatever other servers changed; VersionIDs, InstanceIDs and
mutation-id blocks come from compare-and-swap counters; each save writes a new random
generation token (:data:`GEN_KEY`) that every server polls every 0.2 s, so a repo,
version, instance, lock or branch made on one server is visible on the others well within
1 s. Where 0.2 s of staleness would give a wrong answer the token is re-read at once: when
a UUID or instance name is not found, before a branch HEAD (``PREFIX:BRANCH``, ``~N``) is
resolved, before a write checks that its version is still open
(:meth:`RepoManager.current`), and before the repo and version endpoints answer
(:func:`dvidpy.http.repo_api.repo_of`). A save whose repo
record changed on another server since this one last read it is refused
(:class:`~dvidpy.errors.Conflict`, nothing written) and the repo reloaded. With an
exclusive metadata store (LevelDB, the default) none of this runs: one process, in-memory
counters, exactly as before.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import threading
import uuid as uuidlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dvidpy.config import ConfigError, Settings
from dvidpy.coord import (
    Coordinator,
    DirHold,
    Identity,
    Lease,
    claim_exclusive,
    claim_shared,
    deployment_id,
    explain_busy,
    hold_directory,
    release_exclusive,
)
from dvidpy.dag import UUID_RE, Ancestry, Node, VersionDAG, log_line, timestamp
from dvidpy.datatype import Datatype, InstanceMeta, datatype_class
from dvidpy.errors import BadRequest, Conflict, LockedNodeError
from dvidpy.keys import data_key, meta_key
from dvidpy.versioned import VersionedCtx, VersionedStore
from storage import KeyRange, KVEngine, engine_class, open_engine

RESERVED_NAMES = frozenset({"log", "branch", "note", "commit", "newversion", "status", "tag"})
MUTATION_STRIDE = 1000
#: note (and commit note) of the versions a resolve creates to hold deletions, as in DVID
RESOLVE_NOTE = "Version for deleting conflicts before merge"
#: versioned writes per engine batch when a resolve fills its new versions
RESOLVE_BATCH = 20_000
#: metadata key holding a random token rewritten by every repo save (coordinated mode)
GEN_KEY = meta_key("gen")
COUNTERS_KEY = meta_key("counters")
MUTID_KEY = meta_key("mutids")


def new_uuid() -> str:
    """A random 32-hex UUID, as DVID generates."""
    return uuidlib.uuid4().hex


@dataclass
class Repo:
    """A repo: its DAG, its data instances and descriptive fields."""

    root: str
    dag: VersionDAG
    alias: str = ""
    description: str = ""
    log: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    instances: dict[str, Datatype] = field(default_factory=dict)
    created: str = field(default_factory=timestamp)
    updated: str = field(default_factory=timestamp)
    mutation_id: int = 0
    saved_mutation_id: int = 0
    #: the stored record as last read or written by this server (coordinated mode)
    raw: bytes = field(default=b"", repr=False, compare=False)

    def to_meta(self) -> dict[str, Any]:
        """Persisted form (instances as metadata only)."""
        return {
            "root": self.root,
            "alias": self.alias,
            "description": self.description,
            "log": self.log,
            "properties": self.properties,
            "created": self.created,
            "updated": self.updated,
            "dag": self.dag.to_json(),
            "instances": [d.meta.to_json() for d in self.instances.values()],
            "saved_mutation_id": self.saved_mutation_id,
        }


class RepoManager:
    """All repos of a server, persisted in the metadata engine."""

    def __init__(self, settings: Settings, engines: Mapping[str, KVEngine] | None = None) -> None:
        self.settings = settings
        self.me = Identity.here()
        self.coordinated = settings.coordinated()
        self._check_sharing()
        self.engines: dict[str, KVEngine] = dict(engines or {})
        self._leases: dict[str, Lease | None] = {}
        self._holds: list[DirHold] = []
        self.coord: Coordinator | None = None
        try:
            for alias, spec in settings.stores.items():
                if alias not in self.engines:
                    cls = engine_class(spec.engine)
                    hold = hold_directory(alias, cls, spec.location, spec.is_shared(),
                                          self.me)
                    if hold is not None:
                        self._holds.append(hold)
                    with explain_busy(alias, cls, spec.location):
                        self.engines[alias] = open_engine(spec.engine, spec.location,
                                                          **spec.options)
            self.meta_engine = self.engines[settings.metadata_store()]
            self.coord = Coordinator(self.meta_engine, self.coordinated, self.me)
            self._claim_stores()
        except BaseException:
            self.close()
            raise
        self.stores = {a: self._versioned_store(a, e) for a, e in self.engines.items()}
        self.lock = threading.RLock()
        #: background jobs' boards by kind (:meth:`dvidpy.jobrecords.JobBoard.of`)
        self.job_boards: dict[str, Any] = {}
        self._meta_lock: Any = self.lock
        if self.coordinated:
            # self.lock is its local part: one lock order, no deadlock in this process
            self._meta_lock = self.coord.lock("meta", on_acquire=self.refresh, local=self.lock)
        self.repos: dict[str, Repo] = {}
        self._uuids: list[str] = []  # sorted, every node UUID of every repo
        #: some UUID is longer than 32 characters (then a whole one may be a prefix of it)
        self._long_uuids = False
        self._by_uuid: dict[str, tuple[Repo, Node]] = {}
        self._by_data_uuid: dict[str, Datatype] = {}
        self._seen_gen = self.meta_engine.get(GEN_KEY)
        self._saves = 0
        counters = self._get_json(COUNTERS_KEY) or {}
        self.next_version = int(counters.get("version", 1))
        self.next_instance = int(counters.get("instance", 1))
        self._load()
        from dvidpy.mutations import MutationHub

        self.mutations = MutationHub(self, settings.mutations)
        if self.coordinated:
            self.coord.add_poller(self.refresh)

    # ----- sharing ----------------------------------------------------------------------

    def _is_shared(self, alias: str) -> bool:
        spec = self.settings.stores.get(alias)
        return spec is not None and spec.is_shared()

    def _check_sharing(self) -> None:
        """Refuse shared stores on engines that cannot be shared, or without a shared
        metadata store (two servers would then allocate the same ids)."""
        meta = self.settings.metadata_store()
        for alias, spec in self.settings.stores.items():
            if not spec.is_shared():
                continue
            cls = engine_class(spec.engine)
            if not cls.shareable:
                raise ConfigError(
                    f"[store.{alias}] engine {spec.engine} cannot be shared by several "
                    f"servers (shared = true needs postgres, lmdb, gcs or s3)")
            if not self.settings.stores[meta].is_shared():
                raise ConfigError(
                    f"[store.{alias}] is shared but the metadata store {meta!r} is not: "
                    f"servers sharing data must share their metadata store (make it "
                    f"postgres, or set shared = true on it)")

    def _versioned_store(self, alias: str, engine: KVEngine) -> VersionedStore:
        """The versioned store over ``engine``, with the cache tier its TOML table asks
        for (none in ``fullwrite`` mode, where committed versions can change)."""
        spec = self.settings.stores.get(alias)
        shared = self._is_shared(alias)
        if spec is None or not (spec.cache_mb > 0 or spec.redis) \
                or self.settings.rwmode == "fullwrite":
            return VersionedStore(engine, shared=shared)
        from dvidpy.cache import CachedVersionedStore

        return CachedVersionedStore(engine, shared=shared, cache_mb=spec.cache_mb,
                                    redis_url=spec.redis, ttl=spec.cache_ttl)

    def cache_stats(self) -> dict[str, int]:
        """Cache-tier hit/miss counters of this process (see :func:`dvidpy.cache.cache_stats`)."""
        from dvidpy.cache import cache_stats

        return cache_stats()

    def _claim_stores(self) -> None:
        """Record this server as holder of each exclusive store (refusing a live holder)
        and mark shared stores as this deployment's."""
        assert self.coord is not None
        dep = deployment_id(self.meta_engine) if self.coordinated else ""
        for alias, eng in self.engines.items():
            loc = self.settings.stores[alias].location if alias in self.settings.stores \
                else ""
            if self._is_shared(alias):
                claim_shared(alias, eng, dep)
            else:
                self._leases[alias] = claim_exclusive(alias, eng, loc, self.me, self.coord)

    @contextlib.contextmanager
    def _mutating(self, repo: Repo | None = None) -> Iterator[None]:
        """Hold the metadata lock (cross-server when coordinated). When coordinated and
        the block fails, ``repo`` is reloaded from its stored record, undoing in-memory
        changes that were not saved."""
        with self._meta_lock:
            next_version, saves = self.next_version, self._saves
            try:
                yield
            except BaseException:
                if self.coordinated and repo is not None:
                    self._reload_repo(repo.root)
                if not self.coordinated and saves == self._saves:
                    self.next_version = next_version  # a failed change uses no VersionID
                raise

    def changing(self, repo: Repo | None = None) -> contextlib.AbstractContextManager[None]:
        """The metadata lock for changes made outside the manager's own methods (the
        transfer receiver): cross-server when coordinated, taken after reloading what
        other servers changed; on failure ``repo`` is reloaded (see :meth:`_mutating`)."""
        return self._mutating(repo)

    def _fresh(self, repo: Repo, node: Node) -> Node:
        """``node`` as it is in ``repo``'s current DAG (a refresh may have replaced it)."""
        cur = repo.dag.nodes.get(node.version)
        if cur is None or cur.uuid != node.uuid:
            raise BadRequest(f"version {node.uuid} is not in repo {repo.root}")
        return cur

    def current(self, repo: Repo, node: Node) -> Node:
        """``node`` as the metadata store has it now, for a check that must not act on a
        stale copy (is this version still open?). Coordinated: the generation token is
        read first, so a commit another server answered a moment ago is seen (one small
        metadata read); exclusive: ``node`` itself (this process made every change)."""
        if not self.coordinated:
            return node
        self.refresh()
        return self._fresh(repo, node)

    def _alloc_version(self) -> int:
        """A new VersionID (compare-and-swap counter when coordinated)."""
        if self.coordinated:
            assert self.coord is not None
            return self.coord.allocate(COUNTERS_KEY, "version", start=self.next_version)
        v = self.next_version
        self.next_version += 1
        return v

    def alloc_version(self) -> int:
        """A VersionID for a version made outside the manager's own methods (transfers):
        recorded as used (persisted with the next save, or by its CAS when coordinated)."""
        with self.lock:
            return self._alloc_version()

    def alloc_instance(self) -> int:
        """An InstanceID for an instance made outside :meth:`new_instance` (transfers)."""
        if self.coordinated:
            assert self.coord is not None
            return self.coord.allocate(COUNTERS_KEY, "instance", start=self.next_instance)
        with self.lock:
            iid = self.next_instance
            self.next_instance += 1
            return iid

    def save_counters(self, wb: Any) -> None:
        """Queue the in-memory counters into a metadata batch ``wb`` (nothing when
        coordinated: the counters are persisted by their compare-and-swap)."""
        if not self.coordinated:
            wb.put(COUNTERS_KEY, json.dumps(
                {"version": self.next_version, "instance": self.next_instance}).encode())

    def refresh(self) -> bool:
        """Reload repos changed by other servers, if the generation token moved. Returns
        whether it moved (then a failed lookup is worth retrying). A no-op (False) for an
        exclusive metadata store."""
        if not self.coordinated:
            return False
        gen = self.meta_engine.get(GEN_KEY)
        if gen == self._seen_gen:
            return False
        with self.lock:
            if gen == self._seen_gen:  # another thread applied it while we waited
                return True
            changed = False
            for _k, raw in self.meta_engine.scan(KeyRange.prefix(meta_key("repo/"))):
                d = json.loads(raw)
                repo = self.repos.get(d["root"])
                if repo is not None and repo.raw == raw:
                    continue
                self._apply_record(d, raw)
                changed = True
            if changed:
                self._reindex()
            # Only now: a thread that sees this token finds everything it covers applied.
            # A change saved during the scan has a newer token: the next poll rescans.
            self._seen_gen = gen
            return True

    def _reload_repo(self, root: str) -> None:
        with self.lock:
            raw = self.meta_engine.get(meta_key(f"repo/{root}"))
            if raw is None:
                self.repos.pop(root, None)
            else:
                self._apply_record(json.loads(raw), raw)
            self._reindex()

    def _apply_record(self, d: dict[str, Any], raw: bytes) -> Repo:
        """Create or update (in place) the repo described by a stored record."""
        repo = self.repos.get(d["root"])
        dag = VersionDAG.from_json(d["dag"])
        if repo is None:
            repo = Repo(root=d["root"], dag=dag)
            mut = self._get_json(meta_key(f"mutid/{repo.root}"))
            repo.saved_mutation_id = int(mut or d.get("saved_mutation_id", 0))
            repo.mutation_id = repo.saved_mutation_id
            self.repos[repo.root] = repo
        repo.dag = dag
        repo.alias, repo.description = d["alias"], d["description"]
        repo.log, repo.properties = d["log"], d["properties"]
        repo.created, repo.updated = d["created"], d["updated"]
        repo.raw = raw
        for m in d["instances"]:
            meta = InstanceMeta.from_json(m)
            inst = repo.instances.get(meta.name)
            if inst is None:
                self._attach_instance(repo, meta)
            else:
                inst.meta.__dict__.update(meta.__dict__)
        return repo

    def _reindex(self) -> None:
        uuids: dict[str, tuple[Repo, Node]] = {}
        for repo in self.repos.values():
            for n in repo.dag.nodes.values():
                uuids[n.uuid] = (repo, n)
        self._by_uuid = uuids
        self._uuids = sorted(uuids)
        self._long_uuids = any(len(u) > 32 for u in uuids)

    # ----- persistence ------------------------------------------------------------------

    def _get_json(self, key: bytes) -> Any:
        raw = self.meta_engine.get(key)
        return None if raw is None else json.loads(raw)

    def _load(self) -> None:
        # Mutation ids are persisted in strides; restart above the saved ceiling.
        for _k, raw in self.meta_engine.scan(KeyRange.prefix(meta_key("repo/"))):
            self._apply_record(json.loads(raw), raw)
        self._reindex()

    def save_repo(self, repo: Repo) -> None:
        """Write ``repo`` and the server counters to the metadata store.

        Coordinated: under the metadata lease; raises :class:`Conflict` (and reloads the
        repo) when another server changed the stored record since this one read it.
        """
        self._saves += 1
        if not self.coordinated:
            with self.lock:
                repo.updated = timestamp()
                wb = self.meta_engine.batch()
                wb.put(meta_key(f"repo/{repo.root}"), json.dumps(repo.to_meta()).encode())
                wb.put(COUNTERS_KEY, json.dumps(
                    {"version": self.next_version, "instance": self.next_instance}).encode())
                wb.commit()
            return
        before = repo.raw
        with self._meta_lock:  # (taking it may reload repos changed elsewhere)
            key = meta_key(f"repo/{repo.root}")
            stored = self.meta_engine.get(key)
            if repo.raw != before or (stored is not None and stored != repo.raw):
                self._reload_repo(repo.root)
                raise Conflict(f"repo {repo.root} was changed by another server meanwhile; "
                               "nothing was saved, retry the request")
            repo.updated = timestamp()
            raw = json.dumps(repo.to_meta()).encode()
            self.meta_engine.put(key, raw)
            repo.raw = raw
            token = new_uuid().encode()
            self.meta_engine.put(GEN_KEY, token)
            self._seen_gen = token

    def _index_repo(self, repo: Repo) -> None:
        self.repos[repo.root] = repo
        for n in repo.dag.nodes.values():
            self._index_node(repo, n)

    def _index_node(self, repo: Repo, node: Node) -> None:
        self._by_uuid[node.uuid] = (repo, node)
        bisect.insort(self._uuids, node.uuid)
        if len(node.uuid) > 32:
            self._long_uuids = True

    def _attach_instance(self, repo: Repo, meta: InstanceMeta,
                         syncs: list[str] | None = None) -> Datatype:
        cls = datatype_class(meta.typename)
        if meta.store not in self.stores:
            raise BadRequest(f"instance {meta.name!r} lives in unknown store {meta.store!r}")
        inst = cls(meta, self.stores[meta.store], repo, self)
        if syncs:  # creation setting "sync": validated before anything is attached
            for n in syncs:
                if n not in repo.instances:
                    raise BadRequest(f"can't sync {meta.name!r} to unknown instance {n!r}")
            inst.check_syncs(syncs)
            meta.syncs = list(syncs)
        repo.instances[meta.name] = inst
        self._by_data_uuid[meta.data_uuid] = inst
        return inst

    def close(self) -> None:
        """Stop the mutation stream and coordinating, give up held stores and close every
        engine."""
        hub = getattr(self, "mutations", None)
        if hub is not None:
            hub.close()
        if self.coord is not None:
            self.coord.close()
        for alias, lease in self._leases.items():
            spec = self.settings.stores.get(alias)
            release_exclusive(self.engines[alias], spec.location if spec else "", self.me,
                              lease)
        self._leases.clear()
        for st in getattr(self, "stores", {}).values():
            if hasattr(st, "close"):
                st.close()
        for e in self.engines.values():
            e.close()
        for hold in self._holds:
            hold.release()
        self._holds.clear()

    def store_description(self, alias: str) -> str:
        """Human-readable description of a store (``KVStore`` in instance info)."""
        spec = self.settings.stores.get(alias)
        if spec is None:
            return alias
        return f"{spec.engine} @ {spec.location}" if spec.location else spec.engine

    # ----- resolution -------------------------------------------------------------------

    def resolve(self, spec: str) -> tuple[Repo, Node]:
        """Resolve ``PREFIX``, ``PREFIX:BRANCH`` or ``PREFIX:BRANCH~N`` to a node.

        Coordinated: a spec that does not resolve is tried again after a refresh (it may
        name something another server just made); a branch HEAD or an ancestor count
        (``:``, ``~``) is resolved after a refresh, since another server may just have
        moved the branch (read-your-writes across workers: a ``newversion`` answered by one
        worker is the HEAD the next request sees, whichever worker answers it).
        """
        if self.coordinated and (":" in spec or "~" in spec):
            self.refresh()
        try:
            return self._resolve(spec)
        except BadRequest:
            if not self.coordinated:
                raise
            # Retry even when refresh() finds nothing new: the poller thread may have
            # applied the change between the miss and this call.
            self.refresh()
        return self._resolve(spec)

    def _resolve(self, spec: str) -> tuple[Repo, Node]:
        if len(spec) == 32 and not self._long_uuids:  # a whole UUID: the one it names
            hit = self._by_uuid.get(spec)
            if hit is not None:
                return hit
        prefix, sep, branch = spec.partition(":")
        back = 0
        if "~" in (branch if sep else prefix):
            if sep:
                branch, _, n = branch.partition("~")
            else:
                prefix, _, n = prefix.partition("~")
            try:
                back = int(n)
            except ValueError:
                raise BadRequest(f"bad ancestor count in version {spec!r}") from None
            if back < 0:
                raise BadRequest(f"bad ancestor count in version {spec!r}")
        with self.lock:
            if prefix == "":
                if not sep:
                    raise BadRequest("empty UUID")
                if len(self.repos) != 1:
                    raise BadRequest(
                        f"version {spec!r} names no UUID and the server has "
                        f"{len(self.repos)} repos"
                    )
                repo = next(iter(self.repos.values()))
                node = repo.dag.root
            else:
                i = bisect.bisect_left(self._uuids, prefix)
                matches = []
                while i < len(self._uuids) and self._uuids[i].startswith(prefix):
                    matches.append(self._uuids[i])
                    i += 1
                    if len(matches) > 1:
                        break
                if not matches:
                    raise BadRequest(f"could not find UUID with partial match to {prefix!r}")
                if len(matches) > 1:
                    raise BadRequest(f"more than one UUID matches {prefix!r}")
                repo, node = self._by_uuid[matches[0]]
            if sep:
                node = repo.dag.branch_leaf(branch)
                for _ in range(back):
                    if not node.parents:
                        raise BadRequest(f"version {spec!r} goes back past the root")
                    node = repo.dag.node(node.parents[0])
            elif back:
                for _ in range(back):
                    if not node.parents:
                        raise BadRequest(f"version {spec!r} goes back past the root")
                    node = repo.dag.node(node.parents[0])
            return repo, node

    def instance(self, repo: Repo, name: str) -> Datatype:
        """Instance ``name`` of ``repo``; 400 when unknown (DVID's status)."""
        inst = self.find_instance(repo, name)
        if inst is None:
            raise BadRequest(f"no data instance named {name!r} in repo {repo.root}")
        return inst

    def find_instance(self, repo: Repo, name: str) -> Datatype | None:
        """Instance ``name`` of ``repo``, or None. Coordinated (``--workers``, servers over
        one store): a miss is looked up again after a refresh, since another process may
        have just made it (again even when the refresh finds nothing new: the poller
        thread may have applied it between the miss and the refresh)."""
        inst = repo.instances.get(name)
        if inst is None and self.coordinated:
            self.refresh()
            inst = repo.instances.get(name)
        return inst

    def context(self, inst: Datatype, node: Node, user: str = "", app: str = "") -> VersionedCtx:
        """The versioned context for reading/writing ``inst`` at ``node``."""
        dag = inst.repo.dag
        version = node.version if inst.meta.versioned else dag.root_version
        return VersionedCtx(
            instance_id=inst.meta.instance_id,
            version=version,
            ancestry=dag.ancestry(version),
            node=node,
            versioned=inst.meta.versioned,
            is_ancestor=dag.is_ancestor,
            user=user,
            app=app,
        )

    # ----- repos and versions -----------------------------------------------------------

    def _check_new_uuid(self, u: str | None) -> str:
        if u is None or u == "":
            return new_uuid()
        if not isinstance(u, str) or not UUID_RE.match(u):
            raise BadRequest(f"UUID {u!r} is not 32 lowercase hexadecimal characters")
        if u in self._by_uuid:
            raise BadRequest(f"UUID {u} already exists on this server")
        return u

    def create_repo(self, alias: str = "", description: str = "",
                    root: str | None = None) -> Repo:
        """A new repo with one open root node on ``master``."""
        with self._mutating():
            uuid = self._check_new_uuid(root)
            node = Node(uuid=uuid, version=self._alloc_version())
            repo = Repo(root=uuid, dag=VersionDAG(node), alias=alias, description=description)
            self._index_repo(repo)
            try:
                self.save_repo(repo)
            except BaseException:
                if self.coordinated:
                    self.repos.pop(uuid, None)
                    self._reindex()
                raise
            return repo

    def commit(self, repo: Repo, node: Node, note: str = "", log: list[str] | None = None) -> None:
        """Lock ``node``."""
        with self._mutating(repo):
            repo.dag.commit(self._fresh(repo, node), note, log or ())
            self.save_repo(repo)

    def new_version(self, repo: Repo, parent: Node, note: str = "",
                    uuid: str | None = None) -> Node:
        """Child of ``parent`` on its branch."""
        with self._mutating(repo):
            u = self._check_new_uuid(uuid)
            parent = self._fresh(repo, parent)
            child = repo.dag.new_version(parent, u, self._alloc_version(), note)
            self._index_node(repo, child)
            self.save_repo(repo)
            return child

    def new_branch(self, repo: Repo, parent: Node, name: str, note: str = "",
                   uuid: str | None = None) -> Node:
        """Child of ``parent`` starting branch ``name``."""
        with self._mutating(repo):
            u = self._check_new_uuid(uuid)
            parent = self._fresh(repo, parent)
            child = repo.dag.new_branch(parent, name, u, self._alloc_version(), note)
            self._index_node(repo, child)
            self.save_repo(repo)
            return child

    def new_tag(self, repo: Repo, node: Node, tag: str, note: str = "") -> Node:
        """A committed child of ``node`` named ``tag`` (its UUID) on branch ``tag-<tag>``:
        a fixed name for the state of ``node``. 400 when ``tag`` is empty or names an
        existing version."""
        if not tag:
            raise BadRequest("tag needs a non-empty 'tag'")
        with self._mutating(repo):
            if tag in self._by_uuid:
                raise BadRequest(f"tag {tag!r} is already a version UUID")
            node = self._fresh(repo, node)
            child = repo.dag.new_branch(node, f"tag-{tag}", tag, self._alloc_version(), note)
            self._index_node(repo, child)
            repo.dag.commit(child)
            self.save_repo(repo)
            return child

    def merge(self, repo: Repo, parents: list[Node], note: str = "") -> Node:
        """A conflict-free merge node of ``parents`` (all in ``repo``)."""
        with self._mutating(repo):
            parents = [self._fresh(repo, p) for p in parents]
            child = repo.dag.merge(parents, new_uuid(), self._alloc_version(), note)
            self._index_node(repo, child)
            self.save_repo(repo)
            return child

    def _reserve_version(self) -> int:
        """A fresh VersionID, recorded as used in the metadata store before anything is
        written at it, so that it is never handed out again even after a crash."""
        if self.coordinated:
            return self._alloc_version()  # the counter is persisted by its CAS
        with self.lock:
            v = self._alloc_version()
            self.meta_engine.put(COUNTERS_KEY, json.dumps(
                {"version": self.next_version, "instance": self.next_instance}).encode())
            return v

    def resolve_merge(self, repo: Repo, parents: list[Node], data: list[str],
                      note: str = "") -> Node:
        """``POST /api/repo/{uuid}/resolve``: merge ``parents`` (priority order) after
        hiding, in the listed instances, the values that would make the merge conflict.

        As in DVID (``repoResolveHandler`` in ``server/web.go``): for each parent that loses
        a key to a parent listed before it, a child is created on branch
        ``conflict-<parent uuid>`` with note ``"Version for deleting conflicts before
        merge"``, holds the deletions, and is committed; then the (possibly extended)
        parents are merged into a child with ``note``, returned. Which keys lose and what
        the child stores is :meth:`VersionedStore.resolve_plan`. Unversioned instances
        cannot conflict and are skipped.

        All or nothing: every input is validated and every instance is planned before
        anything is written (an unresolvable key raises :class:`Conflict`). The new
        versions' data is then written at VersionIDs reserved (persisted) first but not yet
        part of any DAG, which no read can reach; finally all new nodes are added to the
        DAG and the repo is saved in one metadata write, so they become visible together.
        If that save fails the in-memory DAG is rolled back. A failure (or crash) after data
        writes began leaves only unreachable keys at VersionIDs that are never reused.
        """
        with self.lock:
            if len(parents) < 2:
                raise BadRequest("Must specify at least two parent UUIDs using 'parents' field")
            if len({p.version for p in parents}) != len(parents):
                raise BadRequest("resolve parents must be distinct")
            for p in parents:
                if repo.dag.nodes.get(p.version) is not p:
                    raise BadRequest(f"resolve parent {p.uuid} is not in repo {repo.root}")
                if not p.locked:
                    raise BadRequest(f"merge parent {p.uuid} is not committed (locked)")
            if not data:
                raise BadRequest("Must specify at least one data instance using 'data' field")
            insts = [self.instance(repo, name) for name in dict.fromkeys(data)]

        # Plan. Parents and all their ancestors are locked, so what is planned is stable.
        plan: dict[int, list[tuple[Datatype, list[tuple[bytes, int | None]]]]] = {}
        for inst in insts:
            if not inst.meta.versioned:
                continue
            per: dict[int, list[tuple[bytes, int | None]]] = {}
            try:
                for kr in inst.store.resolve_plan([self.context(inst, p) for p in parents]):
                    for i, op in kr.ops.items():
                        per.setdefault(i, []).append((kr.tkey, op))
            except Conflict as e:
                raise Conflict(
                    f"Conflict deletion error for data {inst.meta.name!r}: {e.message}"
                ) from None
            for i, ops in per.items():
                plan.setdefault(i, []).append((inst, ops))

        # Write the new versions' data at reserved, not yet reachable VersionIDs.
        ext: dict[int, Node] = {}
        for i in sorted(plan):
            parent = parents[i]
            v = self._reserve_version()
            tmp = Node(uuid=new_uuid(), version=v, parents=[parent.version])
            ext[i] = tmp
            anc = repo.dag.ancestry(parent.version)
            order = (v, *anc.order)
            ancestry = Ancestry(order, {x: k for k, x in enumerate(order)}, anc.linear)
            for inst, ops in plan[i]:
                iid = inst.meta.instance_id
                ctx = VersionedCtx(instance_id=iid, version=v, ancestry=ancestry, node=tmp,
                                   is_ancestor=repo.dag.is_ancestor)
                eng = inst.store.engine
                for s in range(0, len(ops), RESOLVE_BATCH):
                    with inst.store.batch(ctx) as b:
                        for tk, src in ops[s:s + RESOLVE_BATCH]:
                            if src is None:
                                b.delete(tk)
                                continue
                            val = eng.get(data_key(iid, tk, src))
                            if val is None:  # parents are locked: cannot happen
                                raise RuntimeError(f"revision of {tk!r} at {src} vanished")
                            b.put(tk, val)

        # Make it all visible at once.
        with self._mutating(repo):
            added: list[Node] = []
            try:
                parents = [self._fresh(repo, p) for p in parents]
                new_parents = list(parents)
                for i, tmp in ext.items():
                    p = parents[i]
                    child = repo.dag.new_branch(p, self._conflict_branch(repo, p), tmp.uuid,
                                                tmp.version, RESOLVE_NOTE)
                    added.append(child)
                    repo.dag.commit(child, RESOLVE_NOTE)
                    new_parents[i] = child
                merged = repo.dag.merge(new_parents, new_uuid(), self._alloc_version(), note)
                added.append(merged)
                self.save_repo(repo)
            except BaseException:
                for n in reversed(added):
                    repo.dag.discard_leaf(n)
                raise
            for n in added:
                self._index_node(repo, n)
            return merged

    @staticmethod
    def _conflict_branch(repo: Repo, parent: Node) -> str:
        """DVID's branch name for a resolve's deletion version, made unique if needed."""
        used = {n.branch for n in repo.dag.nodes.values()}
        name = f"conflict-{parent.uuid}"
        k = 2
        while name in used:
            name = f"conflict-{parent.uuid}-{k}"
            k += 1
        return name

    def next_mutation_id(self, repo: Repo) -> int:
        """A new repo-wide mutation id, strictly increasing across restarts."""
        if self.coordinated:
            assert self.coord is not None
            with self.lock:  # each server takes blocks of ids from a shared counter
                if repo.mutation_id >= repo.saved_mutation_id or repo.mutation_id == 0:
                    first = self.coord.allocate(MUTID_KEY, repo.root, MUTATION_STRIDE,
                                                start=repo.saved_mutation_id + 1)
                    repo.mutation_id = first - 1
                    repo.saved_mutation_id = first + MUTATION_STRIDE - 1
                repo.mutation_id += 1
                return repo.mutation_id
        with self.lock:
            repo.mutation_id += 1
            if repo.mutation_id > repo.saved_mutation_id:
                repo.saved_mutation_id = repo.mutation_id + MUTATION_STRIDE
                self.meta_engine.put(meta_key(f"mutid/{repo.root}"),
                                     str(repo.saved_mutation_id).encode())
            return repo.mutation_id

    # ----- instances --------------------------------------------------------------------

    def new_instance(self, repo: Repo, node: Node, body: Mapping[str, Any]) -> Datatype:
        """Create an instance from a ``POST /api/repo/{uuid}/instance`` body.

        Keys are case-insensitive and values must be strings (``versioned`` may also be a
        JSON boolean), as in DVID.
        """
        settings: dict[str, str] = {}
        for k, v in body.items():
            if k.lower() == "versioned" and isinstance(v, bool):
                v = "true" if v else "false"
            if not isinstance(v, str):
                raise BadRequest(f"Setting for {k!r} was not a string")
            settings[k.lower()] = v
        typename = settings.get("typename", "")
        name = settings.get("dataname", "")
        if not typename:
            raise BadRequest("instance creation needs a 'typename'")
        if not name:
            raise BadRequest("instance creation needs a 'dataname'")
        if name in RESERVED_NAMES or "/" in name:
            raise BadRequest(f"{name!r} can't be used as a data instance name")
        if node.locked:
            raise LockedNodeError(
                f"can't add instance {name!r}: node {node.uuid} is committed (locked)"
            )
        cls = datatype_class(typename)
        versioned = settings.get("versioned", "true").lower() not in ("false", "0")
        compression, level = _parse_compression(
            settings.get("compression", cls.default_compression), typename)
        checksum = settings.get("checksum", "none").lower()
        if checksum not in ("none", "crc32"):
            raise BadRequest(f"unknown Checksum {checksum!r} (none or crc32)")
        tags = _parse_tags(settings.get("tags", ""))
        config = cls.parse_settings(settings)
        with self._mutating(repo):
            if name in repo.instances:
                raise BadRequest(f"data instance {name!r} already exists in repo {repo.root}")
            if self._fresh(repo, node).locked:
                raise LockedNodeError(
                    f"can't add instance {name!r}: node {node.uuid} is committed (locked)")
            data_uuid = new_uuid()
            store = self.settings.store_for_instance(typename, name, repo.root, data_uuid, tags)
            iid = self.next_instance
            if self.coordinated:
                assert self.coord is not None
                iid = self.coord.allocate(COUNTERS_KEY, "instance", start=self.next_instance)
            meta = InstanceMeta(
                name=name, typename=typename, data_uuid=data_uuid,
                instance_id=iid, repo_uuid=node.uuid, root_uuid=repo.root,
                versioned=versioned, compression=compression, compression_level=level,
                checksum=checksum, tags=tags, config=config, store=store,
            )
            syncs = [n.strip() for n in settings.get("sync", "").split(",") if n.strip()]
            inst = self._attach_instance(repo, meta, syncs)
            try:
                inst.on_create()
            except BaseException:
                repo.instances.pop(name, None)  # nothing half-made stays behind
                self._by_data_uuid.pop(meta.data_uuid, None)
                raise
            if not self.coordinated:
                self.next_instance += 1
            repo.log.append(log_line(
                f"New data instance {name!r} of type {typename!r} with config {settings}"))
            self.save_repo(repo)
            return inst

    # ----- blobs ------------------------------------------------------------------------

    # ----- JSON views -------------------------------------------------------------------

    def repo_info(self, repo: Repo) -> dict[str, Any]:
        """``GET /api/repo/{uuid}/info`` JSON."""
        try:
            head = repo.dag.branch_leaf("")
        except BadRequest:
            head = repo.dag.root
        insts = {}
        for name, inst in repo.instances.items():
            insts[name] = inst.info(self.context(inst, head))
        return {
            "Root": repo.root,
            "Alias": repo.alias,
            "Description": repo.description,
            "Log": list(repo.log),
            "Properties": repo.properties,
            "DataInstances": insts,
            "DAG": repo.dag.to_json(),
            "MutationID": repo.mutation_id,
            "SavedMutationID": repo.saved_mutation_id,
            "Created": repo.created,
            "Updated": repo.updated,
        }


def _parse_compression(spec: str, typename: str) -> tuple[str, int]:
    s = spec.strip().lower()
    name, _, lvl = s.partition(":")
    if name not in ("none", "snappy", "lz4", "gzip", "jpeg"):
        raise BadRequest(f"unknown Compression {spec!r} (none, lz4, gzip, gzip:N, jpeg)")
    if name == "jpeg" and lvl:
        raise BadRequest("Compression 'jpeg:N' is not accepted; use 'jpeg'")
    if name == "jpeg" and typename != "uint8blk":
        raise BadRequest("jpeg compression is only for uint8blk instances")
    level = -1
    if lvl:
        try:
            level = int(lvl)
        except ValueError:
            raise BadRequest(f"bad compression level in {spec!r}") from None
        if name == "gzip" and not 1 <= level <= 9:
            raise BadRequest("gzip level must be 1..9")
    return name, level


def _parse_tags(s: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in s.split(","):
        if not part.strip():
            continue
        k, eq, v = part.partition("=")
        if not eq:
            raise BadRequest(f"bad tag {part!r}: tags are 'key=value' pairs")
        tags[k.strip()] = v.strip()
    return tags
