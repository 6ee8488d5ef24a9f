"""Receiving side: validate a manifest, stage invisible versions, apply chunks, publish.

State lives in the metadata store (keyspace ``0x00``), so a restarted server resumes:

``xfer/rec/{root}``
    The transfer record of the repo with root UUID ``root``: staged nodes with their local
    VersionIDs, staged (new) instances with their local InstanceIDs, and the groups
    ``(instance, version UUIDs)`` to receive. At most one pending transfer per repo.
``xfer/prog/{root}/{gid}``
    Progress of one group: the TKey to restart at, records and bytes so far, ``done``.
``xfer/missing/{root}``
    ``{data_uuid: [version UUIDs]}``: versions of an instance whose data never arrived
    (filtered out with ``data=`` or an ROI). A later transfer sends them.

Staged versions get fresh local VersionIDs, but no node of any repo carries them until
:meth:`Receiver.finish`, so no read can see their keys; staged instances get fresh
InstanceIDs and are attached only at finish. ``finish`` adds every staged node (locked)
and instance in memory under the manager lock and persists the repo in one metadata
write: the whole transfer becomes visible at once.

Chunks are applied as one engine batch each, then the group's progress is recorded. A
crash in between replays that chunk on resume, which is harmless: records are raw puts
of exact keys (plus, when completing versions an ROI push left partial, deletes of the
same key with the other marker, so a value and a tombstone never share a version).

With a shared metadata store (``--workers``, or servers over one PostgreSQL) each request
of a transfer may reach another process: records are then read from the store every time
(never cached), and begin, finish and abort run under the cross-server metadata lock.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from dvidpy.config import Settings
from dvidpy.dag import UUID_RE, Node, VersionDAG, log_line, timestamp
from dvidpy.datatype import Datatype, InstanceMeta, datatype_class
from dvidpy.errors import BadRequest, Conflict, DvidError, NotFound, TooLarge
from dvidpy.keys import MARK_DATA, MARK_TOMBSTONE, SUFFIX_LEN, instance_prefix, meta_key, u32be
from dvidpy.repo import Repo, RepoManager
from dvidpy.transfer.protocol import DEFAULT_MAX_CHUNK, HEADER_LEN, ProtocolError, decode_chunk
from storage.base import KeyRange


def transfer_limit(settings: Settings) -> int | None:
    """``[transfer] maxBytes`` of the server's TOML file (None: no limit)."""
    if not settings.toml_path:
        return None
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(settings.toml_path, "rb") as f:
            v = tomllib.load(f).get("transfer", {}).get("maxBytes")
    except (OSError, ValueError):
        return None
    return int(v) if v is not None else None


def _rec_key(tid: str) -> bytes:
    return meta_key(f"xfer/rec/{tid}")


def _prog_key(tid: str, gid: int) -> bytes:
    return meta_key(f"xfer/prog/{tid}/{gid:08d}")


def _missing_key(root: str) -> bytes:
    return meta_key(f"xfer/missing/{root}")


def _roi_filtered(m: dict[str, Any], im: dict[str, Any]) -> bool:
    """Whether the sender drops some of instance ``im``'s keys for the manifest's ROI.

    True for datatypes with a spatial :meth:`~dvidpy.datatype.Datatype.tkey_voxel_box`
    or :meth:`~dvidpy.datatype.Datatype.roi_filter_value` hook (the received versions are
    then recorded as *missing*, so a later push without ROI completes them); False
    without ROI, for the ROI instance itself and for non-spatial datatypes, which always
    arrive whole.
    """
    if not m.get("roi") or im["name"] == m["roi"]:
        return False
    cls = datatype_class(im["typename"])
    return (getattr(cls, "tkey_voxel_box", None) is not Datatype.tkey_voxel_box
            or getattr(cls, "roi_filter_value", None) is not Datatype.roi_filter_value)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise BadRequest(f"bad transfer manifest: {msg}")


def _raise_label_counter(inst: Datatype) -> None:
    """Labelmap (duck-typed): raise the repo-wide ``maxrepolabel`` counter, which lives at
    the never-transferred version 0, to the largest received per-version max label, so
    labels allocated here after a transfer never collide with transferred ones."""
    by_version = getattr(inst, "max_labels_by_version", None)
    current = getattr(inst, "repo_max_label", None)
    if by_version is None or current is None:
        return
    from datatypes.labelmap.layout import counter_tkey
    from dvidpy.keys import data_key

    top = max(by_version().values(), default=0)
    if top > current():
        inst.store.engine.put(data_key(inst.meta.instance_id, counter_tkey("maxrepolabel"), 0),
                              int(top).to_bytes(8, "little"))
        inst._repo_max = top  # type: ignore[attr-defined]


def validate_manifest(m: Any) -> None:
    """Raise :class:`BadRequest` unless ``m`` has the manifest's shape and a sound DAG."""
    _check(isinstance(m, dict), "not a JSON object")
    _check(m.get("protocol") == 1, "unsupported protocol version")
    _check(isinstance(m.get("root"), str) and bool(UUID_RE.match(m["root"])), "bad root")
    _check(isinstance(m.get("repo"), dict), "no repo")
    nodes = m.get("nodes")
    _check(isinstance(nodes, list) and bool(nodes), "no nodes")
    seen: set[str] = set()
    roots = []
    for n in nodes:
        _check(isinstance(n, dict), "node is not an object")
        u = n.get("UUID")
        _check(isinstance(u, str) and bool(UUID_RE.match(u)), f"bad node UUID {u!r}")
        _check(u not in seen, f"node {u} listed twice")
        ps = n.get("Parents")
        _check(isinstance(ps, list) and all(isinstance(p, str) for p in ps), "bad Parents")
        _check(all(p in seen for p in ps), f"node {u} listed before its parents")
        for f, t in (("Branch", str), ("Note", str), ("Log", list), ("Created", str),
                     ("Updated", str)):
            _check(isinstance(n.get(f), t), f"node {u}: bad {f}")
        if not ps:
            roots.append(u)
        seen.add(u)
    _check(roots == [m["root"]], "the DAG must have exactly one root, the manifest's root")
    insts = m.get("instances")
    _check(isinstance(insts, list), "no instances")
    names: set[str] = set()
    for im in insts:
        _check(isinstance(im, dict), "instance is not an object")
        for f, t in (("name", str), ("typename", str), ("data_uuid", str), ("versioned", bool),
                     ("compression", str), ("compression_level", int), ("checksum", str),
                     ("tags", dict), ("syncs", list), ("config", dict), ("included", bool),
                     ("repo_uuid", str)):
            _check(isinstance(im.get(f), t), f"instance {im.get('name')!r}: bad {f}")
        _check(im["name"] not in names, f"instance {im['name']!r} listed twice")
        _check(bool(UUID_RE.match(im["data_uuid"])), f"bad data UUID {im['data_uuid']!r}")
        names.add(im["name"])


class Receiver:
    """Transfers into the repos of one :class:`RepoManager`."""

    def __init__(self, mgr: RepoManager, settings: Settings) -> None:
        self.mgr = mgr
        self.max_request = settings.max_request_bytes
        self.max_bytes = transfer_limit(settings)
        self.lock = threading.Lock()
        self._recs: dict[str, dict[str, Any]] = {}

    # ----- records ----------------------------------------------------------------------

    def _load(self, tid: str) -> dict[str, Any] | None:
        """The pending transfer's record; cached in this process unless the metadata
        store is shared (then other servers, or ``--workers`` siblings, change it)."""
        rec = None if self.mgr.coordinated else self._recs.get(tid)
        if rec is None:
            raw = self.mgr.meta_engine.get(_rec_key(tid))
            if raw is None:
                return None
            rec = json.loads(raw)
            if not self.mgr.coordinated:
                self._recs[tid] = rec
        return rec

    def _need(self, tid: str) -> dict[str, Any]:
        rec = self._load(tid)
        if rec is None:
            raise NotFound(f"no pending transfer {tid!r} on this server")
        return rec

    def _prog(self, tid: str, gid: int) -> dict[str, Any]:
        raw = self.mgr.meta_engine.get(_prog_key(tid, gid))
        if raw is None:
            return {"start": None, "records": 0, "bytes": 0, "done": False}
        return json.loads(raw)

    def _missing(self, root: str) -> dict[str, list[str]]:
        raw = self.mgr.meta_engine.get(_missing_key(root))
        return {} if raw is None else json.loads(raw)

    def pending(self) -> list[str]:
        """Ids of pending transfers."""
        pre = meta_key("xfer/rec/")
        return [k[len(pre):].decode()
                for k, _ in self.mgr.meta_engine.scan(KeyRange.prefix(pre), keys_only=True)]

    # ----- begin ------------------------------------------------------------------------

    def begin(self, m: Any) -> dict[str, Any]:
        """Check ``m`` against this server, stage what is missing, return the plan.

        The plan is ``{"transfer": id | None, "max_chunk": n, "groups": [{"gid",
        "instance", "versions", "start", "records", "bytes"}], "new_versions": k}`` listing
        the groups still to receive (with resume points). ``transfer`` is None when the
        server already holds everything. Raises :class:`Conflict` (nothing written) when
        a manifest UUID or instance already exists here with a different history.
        """
        validate_manifest(m)
        mgr = self.mgr
        root = m["root"]
        nodes: list[dict[str, Any]] = m["nodes"]
        by_uuid = {n["UUID"]: n for n in nodes}
        with mgr.changing(), self.lock:
            local = self._local_repo(m, by_uuid)
            included = [im for im in m["instances"] if im["included"]]
            self._check_instances(local, included)
            for im in included:
                datatype_class(im["typename"])  # 400 for a datatype this server lacks
            rec = self._load(root)
            if rec is not None:
                if rec["flatten"] != m.get("flatten"):
                    raise Conflict(
                        f"another transfer into repo {root} (flatten={rec['flatten']}) is "
                        f"pending; finish it or DELETE /api/transfer/receive/{root}")
                if any(n["UUID"] in mgr._by_uuid for n in rec["nodes"]):
                    # finish published it but stopped before dropping the record
                    self._drop_record(root, rec)
                    rec = None
                elif rec["new_repo"] and local is not None:
                    raise Conflict(f"pending transfer {root} is stale; "
                                   f"DELETE /api/transfer/receive/{root} first")
            rec = rec or {"id": root, "root": root, "flatten": m.get("flatten"),
                          "new_repo": local is None, "repo": m["repo"], "nodes": [],
                          "instances": {}, "groups": [], "all_instances": [],
                          "created": timestamp()}
            rec["all_instances"] = sorted(
                set(rec["all_instances"]) | {im["data_uuid"] for im in m["instances"]})
            changed = False
            # staged versions, in manifest order (parents first)
            staged = {n["UUID"]: n["Local"] for n in rec["nodes"]}
            for n in nodes:
                u = n["UUID"]
                if (local is None or u not in local.dag.by_uuid) and u not in staged:
                    entry = dict(n, Local=mgr.alloc_version(), Locked=True)
                    rec["nodes"].append(entry)
                    staged[u] = entry["Local"]
                    changed = True

            def local_version(u: str) -> int:
                if local is not None and u in local.dag.by_uuid:
                    return local.dag.by_uuid[u].version
                return staged[u]

            missing = self._missing(root)
            covered = {(g["data_uuid"], u) for g in rec["groups"] for u in g["versions"]}
            for im in included:
                d = im["data_uuid"]
                inst = mgr._by_data_uuid.get(d)
                if inst is None:
                    meta = rec["instances"].get(d)
                    if meta is None:
                        meta = self._new_meta(im, root)
                        rec["instances"][d] = meta
                        changed = True
                    iid, store = meta["instance_id"], meta["store"]
                else:
                    iid, store = inst.meta.instance_id, inst.meta.store
                have_missing = set(missing.get(d, ()))
                want = [n["UUID"] for n in nodes
                        if (inst is None or n["UUID"] not in local.dag.by_uuid  # type: ignore[union-attr]
                            or n["UUID"] in have_missing)
                        and (d, n["UUID"]) not in covered]
                if not want:
                    continue
                partial = _roi_filtered(m, im)
                # versions that already hold (ROI-filtered) keys of this instance here
                old = set() if inst is None or local is None else (
                    set(local.dag.by_uuid) & have_missing)
                batches = [[u] for u in want] if m.get("split_versions") else [want]
                for vs in batches:
                    rec["groups"].append({
                        "gid": len(rec["groups"]), "data_uuid": d, "name": im["name"],
                        "versions": vs, "local_versions": [local_version(u) for u in vs],
                        "iid": iid, "store": store, "partial": partial,
                        "refill": bool(old.intersection(vs)),
                    })
                    changed = True
            if not changed and not rec["nodes"] and not rec["groups"]:
                return {"transfer": None, "max_chunk": self._max_chunk(), "groups": [],
                        "new_versions": 0}
            if changed:
                wb = mgr.meta_engine.batch()
                wb.put(_rec_key(root), json.dumps(rec).encode())
                mgr.save_counters(wb)
                wb.commit()
                if not mgr.coordinated:
                    self._recs[root] = rec
            groups = []
            for g in rec["groups"]:
                p = self._prog(root, g["gid"])
                if not p["done"]:
                    groups.append({"gid": g["gid"], "instance": g["name"],
                                   "versions": g["versions"], "start": p["start"],
                                   "records": p["records"], "bytes": p["bytes"]})
            return {"transfer": root, "max_chunk": self._max_chunk(), "groups": groups,
                    "new_versions": len(rec["nodes"])}

    def _max_chunk(self) -> int:
        return max(1 << 16, min(DEFAULT_MAX_CHUNK, self.max_request - HEADER_LEN))

    def _local_repo(self, m: dict[str, Any], by_uuid: dict[str, dict[str, Any]]) -> Repo | None:
        """The local repo sharing UUIDs with the manifest (None), checking both DAGs agree."""
        mgr = self.mgr
        local: Repo | None = None
        for u in by_uuid:
            hit = mgr._by_uuid.get(u)
            if hit is None:
                continue
            if local is not None and hit[0] is not local:
                raise Conflict(f"versions of the pushed repo belong to several repos here "
                               f"({local.root}, {hit[0].root}); nothing written")
            local = hit[0]
        if local is None:
            return None
        root = m["root"]
        if local.root != root:
            raise Conflict(
                f"this server has version(s) of the pushed repo in repo {local.root}, whose "
                f"DAG differs (pushed root {root}); nothing written")
        dag = local.dag
        for u, n in by_uuid.items():
            ln = dag.by_uuid.get(u)
            if ln is not None:
                have = [dag.node(p).uuid for p in ln.parents]
                if have != n["Parents"]:
                    raise Conflict(f"version {u} has parents {have} here but {n['Parents']} "
                                   "in the pushed repo (different DAG); nothing written")
                if ln.created != n["Created"]:
                    raise Conflict(f"version {u} here was created at {ln.created}, in the "
                                   f"pushed repo at {n['Created']}: a different repo with "
                                   "the same UUID; nothing written")
                continue
            for p in n["Parents"]:
                lp = dag.by_uuid.get(p)
                if lp is None:
                    continue
                for c in lp.children:
                    cn = dag.node(c)
                    if cn.branch == n["Branch"] and cn.uuid not in by_uuid:
                        raise Conflict(
                            f"version {p} already has a child {cn.uuid} on branch "
                            f"{n['Branch'] or 'master'!r} here that the pushed repo lacks "
                            "(the DAGs diverged); nothing written")
            if n["Branch"]:
                for ln2 in dag.nodes.values():
                    if ln2.branch == n["Branch"] and ln2.uuid not in by_uuid:
                        raise Conflict(f"branch {n['Branch']!r} exists here with other "
                                       "versions (the DAGs diverged); nothing written")
        return local

    def _check_instances(self, local: Repo | None, included: list[dict[str, Any]]) -> None:
        mgr = self.mgr
        for im in included:
            inst = mgr._by_data_uuid.get(im["data_uuid"])
            if inst is not None:
                if inst.repo is not local or inst.meta.name != im["name"]:
                    raise Conflict(
                        f"data instance {im['data_uuid']} exists here as {inst.meta.name!r} "
                        f"of repo {inst.repo.root}, not as {im['name']!r} of the pushed "
                        "repo; nothing written")
            elif local is not None and im["name"] in local.instances:
                raise Conflict(f"repo {local.root} here already has a different instance "
                               f"named {im['name']!r}; nothing written")

    def _new_meta(self, im: dict[str, Any], root: str) -> dict[str, Any]:
        mgr = self.mgr
        store = mgr.settings.store_for_instance(im["typename"], im["name"], root,
                                                im["data_uuid"], im["tags"])
        meta = InstanceMeta(
            name=im["name"], typename=im["typename"], data_uuid=im["data_uuid"],
            instance_id=mgr.alloc_instance(), repo_uuid=im["repo_uuid"], root_uuid=root,
            versioned=im["versioned"], compression=im["compression"],
            compression_level=im["compression_level"], checksum=im["checksum"],
            tags=dict(im["tags"]), syncs=list(im["syncs"]), config=dict(im["config"]),
            store=store)
        return meta.to_json()

    # ----- chunks -----------------------------------------------------------------------

    def apply_chunk(self, tid: str, gid: int, body: bytes) -> dict[str, Any]:
        """Check and write one chunk (or the end frame) of group ``gid``.

        A chunk with a bad checksum or framing is rejected whole (400); a transfer going
        over ``[transfer] maxBytes`` is aborted, its staged data deleted (413).
        """
        rec = self._need(tid)
        if not 0 <= gid < len(rec["groups"]):
            raise BadRequest(f"transfer {tid} has no group {gid}")
        g = rec["groups"][gid]
        try:
            chunk = decode_chunk(body)
        except ProtocolError as e:
            raise BadRequest(f"rejected chunk for transfer {tid} group {gid}: {e}") from None
        with self.lock:
            prog = self._prog(tid, gid)
        if chunk.end:
            prog["done"] = True
            self.mgr.meta_engine.put(_prog_key(tid, gid), json.dumps(prog).encode())
            return prog
        if self.max_bytes is not None:
            total = sum(self._prog(tid, x["gid"])["bytes"] for x in rec["groups"])
            if total + len(chunk.payload) > self.max_bytes:
                self.abort(tid)
                raise TooLarge(
                    f"transfer {tid} exceeds this server's [transfer] maxBytes of "
                    f"{self.max_bytes} bytes; it was aborted and nothing was kept")
        engine = self.mgr.engines[g["store"]]
        pre = instance_prefix(g["iid"])
        lv = [u32be(v) for v in g["local_versions"]]
        nv = len(lv)
        # Completing versions an ROI push left partial: a value may now replace a tombstone
        # the filtered push wrote for an emptied value at the same version, or vice versa
        # (another ROI); one version must never hold both markers of a TKey.
        refill = bool(g.get("refill"))
        flip = {MARK_DATA: bytes((MARK_TOMBSTONE,)), MARK_TOMBSTONE: bytes((MARK_DATA,))}
        wb = engine.batch()
        last: bytes | None = None
        for key, val in chunk.records():
            if len(key) < 2 + SUFFIX_LEN or key[-1] not in (MARK_DATA, MARK_TOMBSTONE):
                raise BadRequest(f"rejected chunk for transfer {tid}: malformed record key")
            idx = int.from_bytes(key[-SUFFIX_LEN:-1], "big")
            if idx >= nv:
                raise BadRequest(f"rejected chunk for transfer {tid}: version index {idx} "
                                 f"out of range ({nv} versions)")
            last = key[:-SUFFIX_LEN]
            wb.put(pre + last + lv[idx] + key[-1:], val)
            if refill:
                wb.delete(pre + last + lv[idx] + flip[key[-1]])
        wb.commit()
        with self.lock:
            prog = self._prog(tid, gid)
            if last is not None:
                prog["start"] = last.hex()
            prog["records"] += chunk.n_records
            prog["bytes"] += len(chunk.payload)
            self.mgr.meta_engine.put(_prog_key(tid, gid), json.dumps(prog).encode())
        return prog

    # ----- finish / abort -----------------------------------------------------------------

    def finish(self, tid: str) -> dict[str, Any]:
        """Make the transfer visible at once: nodes (locked), instances, missing list.

        400 when some group has not received its end frame.
        """
        mgr = self.mgr
        with mgr.changing(mgr.repos.get(tid)), self.lock:
            rec = self._need(tid)
            pending = [g["gid"] for g in rec["groups"] if not self._prog(tid, g["gid"])["done"]]
            if pending:
                raise BadRequest(f"transfer {tid} is incomplete: {len(pending)} of "
                                 f"{len(rec['groups'])} groups not fully received")
            root = rec["root"]
            repo = mgr.repos.get(root)
            if rec["new_repo"] and repo is not None:
                raise Conflict(f"repo {root} appeared here during the transfer")
            if not rec["new_repo"] and repo is None:
                raise Conflict(f"repo {root} disappeared here during the transfer")
            vid = {n["UUID"]: n["Local"] for n in rec["nodes"]}
            if repo is not None:
                vid.update({u: n.version for u, n in repo.dag.by_uuid.items()})
            new_nodes = [Node(
                uuid=n["UUID"], version=n["Local"], parents=[vid[p] for p in n["Parents"]],
                children=[], branch=n["Branch"], note=n["Note"], log=list(n["Log"]),
                locked=True, created=n["Created"], updated=n["Updated"]) for n in rec["nodes"]]
            if repo is None:
                r = rec["repo"]
                root_node = next(n for n in new_nodes if not n.parents)
                repo = Repo(root=root, dag=VersionDAG(root_node), alias=r.get("alias", ""),
                            description=r.get("description", ""), log=list(r.get("log", [])),
                            properties=dict(r.get("properties", {})),
                            created=r.get("created", timestamp()))
                mgr.repos[root] = repo
                mgr._index_node(repo, root_node)
            dag = repo.dag
            for n in new_nodes:
                if n.version in dag.nodes:
                    continue
                dag.nodes[n.version] = n
                dag.by_uuid[n.uuid] = n
                dag.graph.add_node(n.version)
                mgr._index_node(repo, n)
            for n in new_nodes:
                for p in n.parents:
                    dag.graph.add_edge(p, n.version)
                    if n.version not in dag.node(p).children:
                        dag.node(p).children.append(n.version)
            for meta in rec["instances"].values():
                if meta["name"] not in repo.instances:
                    mgr._attach_instance(repo, InstanceMeta.from_json(meta))
            missing = {d: set(v) for d, v in self._missing(root).items()}
            sent = {(g["data_uuid"], u) for g in rec["groups"] if not g["partial"]
                    for u in g["versions"]}
            partial = {(g["data_uuid"], u) for g in rec["groups"] if g["partial"]
                       for u in g["versions"]}
            known = set(rec["all_instances"])
            for inst in repo.instances.values():
                d = inst.meta.data_uuid
                if d not in known:
                    continue
                for n in new_nodes:
                    if (d, n.uuid) not in sent:
                        missing.setdefault(d, set()).add(n.uuid)
            for d, u in sent:
                missing.get(d, set()).discard(u)
            for d, u in partial:
                missing.setdefault(d, set()).add(u)
            # Keys were written behind the versioned stores' backs: tell them which versions
            # now hold data, so point reads probe those versions.
            for inst in repo.instances.values():
                d = inst.meta.data_uuid
                got = {vid[u] for dd, u in sent | partial if dd == d and u in vid}
                if got:
                    inst.store.add_versions(inst.meta.instance_id, got)
                    _raise_label_counter(inst)
            nrec = sum(self._prog(tid, g["gid"])["records"] for g in rec["groups"])
            repo.log.append(log_line(
                f"received {len(new_nodes)} version(s) and {len(rec['instances'])} new "
                f"instance(s), {nrec} records, by transfer"))
            mgr.meta_engine.put(_missing_key(root), json.dumps(
                {d: sorted(v) for d, v in missing.items() if v}).encode())
            mgr.save_repo(repo)
            self._drop_record(tid, rec)
            return {"transfer": tid, "root": root, "versions": [n.uuid for n in new_nodes],
                    "records": nrec}

    def _drop_record(self, tid: str, rec: dict[str, Any]) -> None:
        wb = self.mgr.meta_engine.batch()
        for g in rec["groups"]:
            wb.delete(_prog_key(tid, g["gid"]))
        wb.delete(_rec_key(tid))
        wb.commit()
        self._recs.pop(tid, None)

    def abort(self, tid: str) -> bool:
        """Delete a pending transfer and everything it staged. False when none is pending."""
        with self.mgr.changing(), self.lock:
            rec = self._load(tid)
            if rec is None:
                return False
            staged = {n["Local"] for n in rec["nodes"]}
            new_iids = {(m["store"], m["instance_id"]) for m in rec["instances"].values()}
            done: set[tuple[str, int]] = set()
            for g in rec["groups"]:
                key = (g["store"], g["iid"])
                if key in done:
                    continue
                done.add(key)
                engine = self.mgr.engines[g["store"]]
                rng = KeyRange.prefix(instance_prefix(g["iid"]))
                if key in new_iids:
                    engine.delete_range(rng)
                    continue
                wb = engine.batch()
                for k, _ in engine.scan(rng, keys_only=True):
                    if int.from_bytes(k[-SUFFIX_LEN:-1], "big") in staged:
                        wb.delete(k)
                wb.commit()
            self._drop_record(tid, rec)
            return True

    def status(self, tid: str) -> dict[str, Any]:
        """Progress of a pending transfer."""
        rec = self._need(tid)
        progs = [self._prog(tid, g["gid"]) for g in rec["groups"]]
        return {"transfer": tid, "groups": len(progs),
                "groups_done": sum(p["done"] for p in progs),
                "records": sum(p["records"] for p in progs),
                "bytes": sum(p["bytes"] for p in progs),
                "staged_versions": [n["UUID"] for n in rec["nodes"]]}

    def missing_report(self, uuid: str) -> dict[str, list[str]]:
        """``{instance name: [version UUIDs]}``: versions of the repo holding ``uuid`` whose
        data of that instance arrived incomplete (ROI-filtered) or not at all (``data=``
        filter). Empty when every received version is complete; a later push without
        the filters fills the gaps and clears them. 400 for an unknown UUID."""
        with self.mgr.lock:
            repo, _ = self.mgr.resolve(uuid)
            names = {i.meta.data_uuid: n for n, i in repo.instances.items()}
            out: dict[str, list[str]] = {}
            for d, vs in self._missing(repo.root).items():
                if vs:
                    out[names.get(d, d)] = sorted(vs)
            return out


__all__ = ["DvidError", "Receiver", "transfer_limit", "validate_manifest"]
