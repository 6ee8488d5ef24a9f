"""Sending side: describe a repo (the manifest) and stream an instance's records.

:class:`LocalSource` works directly on a :class:`~dvidpy.repo.RepoManager` (the source
server's own storage); :class:`dvidpy.transfer.client.HttpSource` reaches the same methods
through ``/api/transfer/manifest`` and ``/api/transfer/stream``.

ROI-filtered streams (``roi``) apply two datatype hooks, built once per request by
:func:`_roi_filter`: :meth:`~dvidpy.datatype.Datatype.tkey_voxel_box` drops keys whose
voxel box touches none of the ROI's blocks (uint8blk and labelmap blocks, annotation block
lists), then :meth:`~dvidpy.datatype.Datatype.roi_filter_value` restricts the values of
the keys kept (annotation block, label and tag lists keep the elements inside the ROI's
blocks). A data value the value hook empties (``None``) is sent as a tombstone of that
key at that version in a versioned stream (an ancestor's filtered value must not show
through) and left out of a flattened one. Tombstones of the source pass unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dvidpy.datatype import Datatype
from dvidpy.errors import BadRequest
from dvidpy.keys import MARK_DATA, MARK_TOMBSTONE, SUFFIX_LEN, instance_prefix, u32be
from dvidpy.repo import Repo, RepoManager
from dvidpy.transfer.protocol import DEFAULT_MAX_CHUNK, group_frames
from storage.base import KeyRange, prefix_successor

#: keys fetched per get_many when only some versions are wanted
_GET_BATCH = 256
#: marker byte of a tombstone record
_TOMB = bytes((MARK_TOMBSTONE,))


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
    ``roi`` names an roi instance of the repo (400 when absent or not an roi); streams
    then keep only what lies in its blocks (see :class:`RoiFilter`), at every version,
    using the ROI as it is at ``uuid``.
    """
    with mgr.lock:
        repo, node = mgr.resolve(uuid)
        names = set(data) if data else None
        if names is not None:
            unknown = sorted(n for n in names if mgr.find_instance(repo, n) is None)
            if unknown:
                raise BadRequest(f"no data instance named {', '.join(unknown)} in repo "
                                 f"{repo.root}")
        if roi is not None:
            r = mgr.find_instance(repo, roi)
            if r is None or not hasattr(r, "spans_at"):
                raise BadRequest(f"no roi instance named {roi!r} in repo {repo.root}")
        if flatten:
            n = node_entry(repo, node.version)
            still_open = [] if n["Locked"] else [node.uuid]
            n.update(Parents=[], Children=[], Branch="", Locked=True)
            nodes = [n]
            root = node.uuid
        else:
            nodes = [node_entry(repo, v) for v in sorted(repo.dag.nodes)]
            still_open = [n["UUID"] for n in nodes if not n["Locked"]]
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
            "source_open": still_open,  # versions still open on the source (for messages)
        }


@dataclass
class RoiFilter:
    """What an ROI keeps of one instance: built once per stream request.

    ``key(tkey) -> keep`` drops keys whose
    :meth:`~dvidpy.datatype.Datatype.tkey_voxel_box` touches none of the ROI's blocks
    (None: every key is kept). ``value(tkey, value) -> bytes | None`` is the datatype's
    :meth:`~dvidpy.datatype.Datatype.roi_filter_value` bound to the ROI (None: values pass
    unchanged); it sees only data records of kept keys, never tombstones.
    """

    key: Callable[[bytes], bool] | None
    value: Callable[[bytes, bytes], bytes | None] | None


def _roi_filter(mgr: RepoManager, repo: Repo, inst: Any, roi: str,
                uuid: str) -> RoiFilter | None:
    """The :class:`RoiFilter` of ``inst`` limited to ROI ``roi`` at ``uuid``.

    ``None`` (keep everything) when the datatype overrides neither
    :meth:`~dvidpy.datatype.Datatype.tkey_voxel_box` nor
    :meth:`~dvidpy.datatype.Datatype.roi_filter_value`, and for the ROI itself. Keys
    whose voxel box is ``None`` (properties, indices, logs) pass the key filter.
    :class:`BadRequest` when ``roi`` names no roi instance of ``repo``.
    """
    cls = type(inst)
    spatial_keys = getattr(cls, "tkey_voxel_box", None) not in (None, Datatype.tkey_voxel_box)
    spatial_values = getattr(cls, "roi_filter_value", None) not in (
        None, Datatype.roi_filter_value)
    if not (spatial_keys or spatial_values):
        return None  # not spatial: every key is kept whole
    r = mgr.find_instance(repo, roi)
    if r is None or not hasattr(r, "point_tester"):
        raise BadRequest(f"no roi instance named {roi!r} in repo {repo.root}")
    if r is inst:
        return None
    _, node = mgr.resolve(uuid)
    rctx = mgr.context(r, node)
    keep: Callable[[bytes], bool] | None = None
    if spatial_keys:
        hook = inst.tkey_voxel_box
        spans = r.spans_at(rctx)
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

    value: Callable[[bytes, bytes], bytes | None] | None = None
    if spatial_values:
        vhook = inst.roi_filter_value
        inside = r.point_tester(rctx)

        def value(tk: bytes, v: bytes) -> bytes | None:
            return vhook(tk, v, inside)

    return RoiFilter(keep, value)


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
        return group_frames(recs, max_chunk)

    def count(self, req: dict[str, Any]) -> int:
        """Number of records :meth:`stream` would send for ``req`` (a keys-only pass).

        Exact, except for flattened ROI-filtered streams of datatypes with a
        :meth:`~dvidpy.datatype.Datatype.roi_filter_value` hook: values it empties are
        left out of those, so the count is an upper bound there.
        """
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
            filt = _roi_filter(mgr, repo, inst, roi, uuid) if roi else None
            ctx = mgr.context(inst, node) if flatten else None
            all_versions = len(vidx) == len(repo.dag.nodes)
        engine = mgr.engines[inst.meta.store]
        pre = instance_prefix(inst.meta.instance_id)
        plen = len(pre)
        keep = filt.key if filt is not None else None
        # Keys-only passes (count) skip the value filter: in a versioned stream a filtered
        # value is replaced 1:1 (by a tombstone when emptied), so the count stays exact;
        # in a flattened one emptied values are dropped, so the count is an upper bound.
        vfilt = filt.value if filt is not None and not keys_only else None

        def record(k: bytes, idx: int, v: bytes) -> tuple[bytes, bytes]:
            """Stream record of engine key ``k`` (at version index ``idx``), value
            filtered; an emptied data value becomes a tombstone at that version, so the
            receiver doesn't fall back to an ancestor's (filtered) value."""
            tk = k[plen:-SUFFIX_LEN]
            if vfilt is not None and k[-1] == MARK_DATA:
                fv = vfilt(tk, v)
                if fv is None:
                    return tk + u32be(idx) + _TOMB, b""
                v = fv
            return tk + u32be(idx) + k[-1:], v

        def flat() -> Iterator[tuple[bytes, bytes]]:
            assert ctx is not None
            tail = u32be(0) + b"\x03"
            for tk, v in inst.store.scan(ctx, start, None, keys_only=keys_only):
                if keep is not None and not keep(tk):
                    continue
                if vfilt is not None:
                    fv = vfilt(tk, v)
                    if fv is None:
                        continue  # one parentless version: nothing to hide, just omit it
                    v = fv
                yield tk + tail, v

        def full() -> Iterator[tuple[bytes, bytes]]:
            rng = KeyRange(pre + start, prefix_successor(pre))
            for k, v in engine.scan(rng, keys_only=keys_only):
                idx = vidx.get(int.from_bytes(k[-SUFFIX_LEN:-1], "big"))
                if idx is None or (keep is not None and not keep(k[plen:-SUFFIX_LEN])):
                    continue
                if vfilt is None:
                    yield k[plen:-SUFFIX_LEN] + u32be(idx) + k[-1:], v
                else:
                    yield record(k, idx, v)

        def some() -> Iterator[tuple[bytes, bytes]]:
            # Few versions wanted: list keys only, fetch the wanted values in batches.
            pending: list[tuple[bytes, int]] = []

            def drain() -> Iterator[tuple[bytes, bytes]]:
                vals = engine.get_many([k for k, _ in pending])
                for (k, idx), v in zip(pending, vals, strict=True):
                    if v is not None:  # None: deleted meanwhile (an open version)
                        yield record(k, idx, v)
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
