"""Sending side: describe a repo (the manifest) and stream an instance's records.

:class:`LocalSource` works directly on a :class:`~dvidpy.repo.RepoManager` (the source
server's own storage); :class:`dvidpy.transfer.client.HttpSource` reaches the same methods
through ``/api/transfer/manifest`` and ``/api/transfer/stream``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dvidpy.datatype import Datatype
from dvidpy.errors import BadRequest
from dvidpy.keys import SUFFIX_LEN, instance_prefix, u32be
from dvidpy.repo import Repo, RepoManager
from dvidpy.transfer.protocol import DEFAULT_MAX_CHUNK, ChunkWriter, end_frame
from storage.base import KeyRange, prefix_successor

#: keys fetched per get_many when only some versions are wanted
_GET_BATCH = 256


def node_entry(repo: Repo, version: int) -> dict[str, Any]:
    """A manifest node: :meth:`Node.to_json` with parents/children as UUIDs."""
    dag = repo.dag
    n = dag.node(version)
    d = n.to_json()
    d["Parents"] = [dag.node(p).uuid for p in n.parents]
    d["Children"] = [dag.node(c).uuid for c in n.children]
    return d


def build_manifest(mgr: RepoManager, uuid: str, *, flatten: bool = False,
                   data: list[str] | None = None, roi: str | None = None) -> dict[str, Any]:
    """The manifest of the repo holding ``uuid`` (a UUID, prefix or ``PREFIX:branch``).

    Full mode lists every node (parents before children). ``flatten`` lists only the node
    ``uuid`` resolves to, as a parentless, childless master root. ``data`` restricts the
    instances that are sent (unknown names: 400); every instance of the repo is still
    listed, with ``included`` false for filtered ones, so a receiver knows what it lacks.
    ``roi`` names an roi instance of the repo (400 when absent or not an roi); keys
    whose :meth:`~dvidpy.datatype.Datatype.tkey_voxel_box` touches none of its blocks are
    then left out, at every version, using the ROI as it is at ``uuid``.
    """
    with mgr.lock:
        repo, node = mgr.resolve(uuid)
        names = set(data) if data else None
        if names is not None:
            unknown = sorted(names - set(repo.instances))
            if unknown:
                raise BadRequest(f"no data instance named {', '.join(unknown)} in repo "
                                 f"{repo.root}")
        if roi is not None:
            r = repo.instances.get(roi)
            if r is None or not hasattr(r, "spans_at"):
                raise BadRequest(f"no roi instance named {roi!r} in repo {repo.root}")
        if flatten:
            n = node_entry(repo, node.version)
            n.update(Parents=[], Children=[], Branch="", Locked=True)
            nodes = [n]
            root = node.uuid
        else:
            nodes = [node_entry(repo, v) for v in sorted(repo.dag.nodes)]
            root = repo.root
        instances = []
        for name, inst in repo.instances.items():
            m = inst.meta.to_json()
            m.pop("instance_id")
            m.pop("store")
            m["included"] = names is None or name in names
            instances.append(m)
        return {
            "protocol": 1,
            "root": root,
            "source_root": repo.root,
            "uuid": node.uuid,
            "flatten": node.uuid if flatten else None,
            "roi": roi,
            "split_versions": False,
            "repo": {"alias": repo.alias, "description": repo.description,
                     "log": list(repo.log), "properties": repo.properties,
                     "created": repo.created, "updated": repo.updated},
            "nodes": nodes,
            "instances": instances,
        }


def _roi_filter(mgr: RepoManager, repo: Repo, inst: Any, roi: str,
                uuid: str) -> Callable[[bytes], bool] | None:
    """Predicate ``tkey -> keep`` for ``inst`` limited to ROI ``roi`` at ``uuid``.

    ``None`` (keep everything) when the datatype is not spatial: its
    :meth:`~dvidpy.datatype.Datatype.tkey_voxel_box` hook is missing or answers ``None``
    for every key. Non-spatial keys of spatial datatypes (properties, indices) are kept.
    """
    if getattr(type(inst), "tkey_voxel_box", None) in (None, Datatype.tkey_voxel_box):
        return None  # not spatial: every key is kept
    hook = inst.tkey_voxel_box
    r = repo.instances.get(roi)
    if r is None or r is inst:
        return None
    _, node = mgr.resolve(uuid)
    spans = r.spans_at(mgr.context(r, node))
    bs = r.block_size
    rows: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for z, y, x0, x1 in spans.tolist():
        rows.setdefault((z, y), []).append((x0, x1))

    def keep(tk: bytes) -> bool:
        box = hook(tk)
        if box is None:
            return True
        lo, hi = box
        bx0, by0, bz0 = (lo[i] // bs[i] for i in range(3))
        bx1, by1, bz1 = ((hi[i] - 1) // bs[i] for i in range(3))
        for z in range(bz0, bz1 + 1):
            for y in range(by0, by1 + 1):
                for x0, x1 in rows.get((z, y), ()):
                    if x0 <= bx1 and x1 >= bx0:
                        return True
        return False

    return keep


class LocalSource:
    """The sending side on a local :class:`RepoManager`."""

    def __init__(self, mgr: RepoManager) -> None:
        self.mgr = mgr
        self.calls: list[str] = []

    def manifest(self, uuid: str, *, flatten: bool = False, data: list[str] | None = None,
                 roi: str | None = None) -> dict[str, Any]:
        """See :func:`build_manifest`."""
        return build_manifest(self.mgr, uuid, flatten=flatten, data=data, roi=roi)

    def stream(self, req: dict[str, Any]) -> Iterator[bytes]:
        """Chunks of one group, then the end frame.

        ``req``: ``uuid`` (any version of the repo; the ROI and flatten version),
        ``instance`` (name), ``versions`` (UUIDs; the record's version index points into
        it), ``start`` (hex TKey to start at, inclusive, or None), ``flatten`` (bool),
        ``roi`` (name or None), ``max_chunk``. Records come in key order. Bad requests
        raise :class:`BadRequest` before the first chunk.
        """
        max_chunk = req.get("max_chunk", DEFAULT_MAX_CHUNK)
        if not isinstance(max_chunk, int) or max_chunk < 1:
            raise BadRequest("max_chunk must be a positive integer")
        recs = self._records(req, keys_only=False)
        return self._chunks(recs, max_chunk)

    @staticmethod
    def _chunks(recs: Iterator[tuple[bytes, bytes]], max_chunk: int) -> Iterator[bytes]:
        w = ChunkWriter(max_chunk)
        for k, v in recs:
            out = w.add(k, v)
            if out:
                yield out
        last = w.flush()
        if last:
            yield last
        yield end_frame(w.total)

    def count(self, req: dict[str, Any]) -> int:
        """Number of records :meth:`stream` would send for ``req`` (a keys-only pass)."""
        return sum(1 for _ in self._records(req, keys_only=True))

    def _records(self, req: dict[str, Any],
                 keys_only: bool) -> Iterator[tuple[bytes, bytes]]:
        """Validate ``req`` now, return an iterator of ``(record key, value)``."""
        mgr = self.mgr
        uuid = _req_str(req, "uuid")
        name = _req_str(req, "instance")
        versions = req.get("versions")
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise BadRequest("stream request needs 'versions', a list of UUIDs")
        start_hex = req.get("start")
        try:
            start = bytes.fromhex(start_hex) if start_hex else b""
        except (TypeError, ValueError):
            raise BadRequest(f"bad start key {start_hex!r}") from None
        roi = req.get("roi")
        if roi is not None and not isinstance(roi, str):
            raise BadRequest("roi must be an instance name")
        with mgr.lock:
            repo, node = mgr.resolve(uuid)
            inst = mgr.instance(repo, name)
            vidx: dict[int, int] = {}
            for i, u in enumerate(versions):
                n = repo.dag.by_uuid.get(u)
                if n is None:
                    raise BadRequest(f"version {u} is not in repo {repo.root}")
                vidx[n.version] = i
            flatten = bool(req.get("flatten"))
            keep = _roi_filter(mgr, repo, inst, roi, uuid) if roi else None
            ctx = mgr.context(inst, node) if flatten else None
            all_versions = len(vidx) == len(repo.dag.nodes)
        engine = mgr.engines[inst.meta.store]
        pre = instance_prefix(inst.meta.instance_id)
        plen = len(pre)

        def flat() -> Iterator[tuple[bytes, bytes]]:
            assert ctx is not None
            tail = u32be(0) + b"\x03"
            for tk, v in inst.store.scan(ctx, start, None, keys_only=keys_only):
                if keep is None or keep(tk):
                    yield tk + tail, v

        def full() -> Iterator[tuple[bytes, bytes]]:
            rng = KeyRange(pre + start, prefix_successor(pre))
            for k, v in engine.scan(rng, keys_only=keys_only):
                idx = vidx.get(int.from_bytes(k[-SUFFIX_LEN:-1], "big"))
                if idx is None or (keep is not None and not keep(k[plen:-SUFFIX_LEN])):
                    continue
                yield k[plen:-SUFFIX_LEN] + u32be(idx) + k[-1:], v

        def some() -> Iterator[tuple[bytes, bytes]]:
            # Few versions wanted: list keys only, fetch the wanted values in batches.
            pending: list[tuple[bytes, int]] = []

            def drain() -> Iterator[tuple[bytes, bytes]]:
                vals = engine.get_many([k for k, _ in pending])
                for (k, idx), v in zip(pending, vals, strict=True):
                    if v is not None:  # None: deleted meanwhile (an open version)
                        yield k[plen:-SUFFIX_LEN] + u32be(idx) + k[-1:], v
                pending.clear()

            rng = KeyRange(pre + start, prefix_successor(pre))
            for k, _ in engine.scan(rng, keys_only=True):
                idx = vidx.get(int.from_bytes(k[-SUFFIX_LEN:-1], "big"))
                if idx is None or (keep is not None and not keep(k[plen:-SUFFIX_LEN])):
                    continue
                pending.append((k, idx))
                if len(pending) >= _GET_BATCH:
                    yield from drain()
            yield from drain()

        if flatten:
            return flat()
        return full() if all_versions or keys_only else some()


def _req_str(req: dict[str, Any], key: str) -> str:
    v = req.get(key)
    if not isinstance(v, str) or not v:
        raise BadRequest(f"request needs a non-empty string {key!r}")
    return v
