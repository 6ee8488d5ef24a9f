"""Import from any DVID: a transfer source that uses only DVID's public HTTP API.

Used by ``dvidpy pull --from-dvid`` (and automatically when the source does not answer
``GET /api/transfer/protocol``). It reads ``GET /api/repo/{uuid}/info`` for the DAG and the
instances, then copies each (instance, version) as its own group, one version at a time:

* **keyvalue**: ``GET keys`` at the version and at its first parent, ``GET keyvalues``
  (protobuf ``Keys`` -> ``KeyValues``) for the values; only keys whose value differs from
  the parent's are written at the version, keys the parent had and the version lacks
  become tombstones. At a merge node the full visible state is written.
* **roi**: ``GET roi`` at the version and its parent; a changed ROI is written whole.
* **uint8blk**: ``GET info`` at the version for the extents (``MinPoint``/``MaxPoint``,
  written as the version's ``extents`` property), then ``GET subvolblocks`` over the
  extents' block box in slabs of at most ~8 MiB of voxels (``compression=uncompressed``,
  re-encoded with the receiver's codec; JPEG-stored instances take the default payload,
  DVID's JPEG file, stored as is after a decode check). BlockSize, VoxelSize,
  VoxelUnits, Background and the storage compression are kept. The public API cannot
  say which blocks changed, so **every block of every version is read**; only blocks
  whose payload differs from the first parent's (an 8-byte BLAKE2b digest, remembered
  from importing the parent in the same run, else read again from the source) are
  written. Edge cases: blocks outside the reported extents are not seen; DVID cannot
  delete uint8blk blocks, so no tombstones are written; a merge node, the root and a
  flattened import get every block; imported blocks are not marked dirty (run
  ``POST downres?full=true`` to build a pyramid here).
* **labelmap**: settings (BlockSize, VoxelSize, VoxelUnits, IndexedLabels,
  MaxDownresLevel) from ``info``; blocks always stored gzip-wrapped. Per version, in key
  order: the extents (``info``, written when they differ from the first parent's); the
  supervoxel blocks of every scale 0..MaxDownresLevel via ``GET blocks/{size}/{offset}
  ?compression=blocks&supervoxels=true&scale=N`` over the extents' block box (each
  payload gunzipped and decoded once to validate it, stored as received), only those
  whose digest differs from the first parent's (memo or re-read, as for uint8blk); the
  label indices (``listlabels`` + ``GET indices``), written when their deterministic
  protobuf differs from the parent's, with tombstones for labels the parent listed and
  the version does not; the mappings (``GET mappings`` text), changed entries written,
  entries the parent had but the version lacks re-read with ``GET mapping?nolookup=true``
  (identity or 0 = retired) and written explicitly; the version's ``maxlabel``. At the
  root, a merge node or a flattened import everything is written. The receiver raises
  its repo-wide ``maxrepolabel`` counter to the largest per-version max label, so new
  ids never collide. Limits: no block tombstones (DVID's API cannot delete labelmap
  blocks); a root-version retired supervoxel is invisible (``GET mappings`` omits 0
  entries) and so not copied; the mutation log (``GET mutations``) and a source
  ``nextlabel`` counter above the max label (reserved, unused ids) are not copied.

* **annotation**: ``GET all-elements`` at the version gives every element; block lists
  are regrouped by this server's block size (the synced label instance's ``BlockSize``,
  else 64³), the label lists are rebuilt from the bodies at each element's position
  (``GET labels`` on the first synced labelmap/labelarray/labelblk of ``Syncs``, batches
  of 10,000 points) and the tag lists from the elements' ``Tags``, exactly as ``POST
  reload`` builds them. Lists whose bytes differ from the first parent's state (memo of
  the previous version, else rebuilt from the source) are written; lists the parent(s)
  had and the version lacks become tombstones. ``Syncs`` is kept, so the imported
  instance follows its labelmap here. Limits: a source whose label lists were never
  reloaded after a late sync gets complete lists here; element order inside a label or
  tag list is the block order, not the source's posting order (DVID leaves it
  unspecified); the whole version's element set is held in memory; the mutation log
  is not copied.

Other datatypes (labelsz included: ``POST reload`` it after import) are left out of the
manifest and listed under ``"skipped"``.

The records are produced by the *receiving* server's own datatype code: each version's
changes are replayed into a scratch in-memory instance (``put_value`` / ``write_spans``
/ a delete) and the scratch's raw keys are sent, so stored bytes follow the receiver's
formats. The DVID server never sees a non-public endpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import numpy as np

from dvidpy import jsonio
from dvidpy.dag import Ancestry, Node
from dvidpy.datatype import Datatype, InstanceMeta, datatype_class
from dvidpy.errors import BadRequest
from dvidpy.keys import SUFFIX_LEN, instance_prefix, u32be
from dvidpy.repo import RepoManager
from dvidpy.transfer.client import Http, TransferError
from dvidpy.transfer.protocol import DEFAULT_MAX_CHUNK, group_frames
from dvidpy.versioned import VersionedCtx, VersionedStore
from storage.base import KeyRange
from storage.memory import MemoryEngine

SUPPORTED = ("keyvalue", "roi", "uint8blk", "labelmap", "annotation")
#: datatypes an annotation may take its bodies from (``GET labels`` at points)
_LABEL_TYPES = ("labelmap", "labelarray", "labelblk")
#: points per ``GET labels`` request
_POINT_BATCH = 10000
#: labels per ``GET indices`` request (DVID allows 50,000)
_INDEX_BATCH = 1000
_KEY_BATCH = 64
#: voxels per subvolblocks request (uint8: bytes), at least one block
_SLAB_VOXELS = 8 << 20
#: block digests remembered per imported version (and how many versions)
_MEMO_MAX_BLOCKS = 1 << 20
_MEMO_VERSIONS = 2
_COMPRESSIONS = {"no": "none", "go": "snappy", "gzip": "gzip", "lz4": "lz4", "jpeg": "jpeg"}


def _compression(text: str) -> tuple[str, int]:
    """DVID's ``"LZ4 compression, level -1"`` -> ``("lz4", -1)`` (unknown: ``none``)."""
    word = text.split(" ", 1)[0].lower() if text else "no"
    level = -1
    if "level" in text:
        try:
            level = int(text.rsplit("level", 1)[1].strip())
        except ValueError:
            level = -1
    return _COMPRESSIONS.get(word, "none"), level


class DvidApiSource:
    """A transfer source backed by DVID's public HTTP API at ``url``."""

    def __init__(self, url: str, mgr: RepoManager | None = None, token: str = "") -> None:
        self.http = Http(url, token=token)
        self.mgr = mgr
        self.calls: list[str] = []  # every path requested (tests check they are public)
        self._nodes: dict[str, dict[str, Any]] = {}
        self._insts: dict[str, dict[str, Any]] = {}
        # annotation name -> the source label instance it takes bodies from
        self._ann_labels: dict[str, str] = {}
        # (instance, version) -> {block tkey: payload digest} of fully imported versions
        self._memo: OrderedDict[tuple[str, str], dict[bytes, bytes]] = OrderedDict()

    def _get(self, path: str, body: bytes | None = None) -> bytes:
        self.calls.append(path)
        status, data = self.http.request("GET", path, body)
        if status >= 400:
            raise TransferError(f"{self.http.base}{path}: {status} "
                                f"{data.decode(errors='replace')}", status)
        return data

    def manifest(self, uuid: str, *, flatten: bool = False, data: list[str] | None = None,
                 roi: str | None = None) -> dict[str, Any]:
        """Manifest from ``/api/repo/{uuid}/info`` (``split_versions``: one group per
        version). ``roi`` filtering is not supported through the public API (400)."""
        if roi:
            raise BadRequest("--roi is not supported when importing from DVID's public API")
        info = jsonio.loads(self._get(f"/api/repo/{quote(uuid)}/info"))
        dag_nodes = info["DAG"]["Nodes"]
        by_vid = {int(n["VersionID"]): n for n in dag_nodes.values()}
        matches = [u for u in dag_nodes if u.startswith(uuid.split(":")[0])]
        if len(matches) != 1:
            raise BadRequest(f"UUID {uuid!r} matches {len(matches)} versions of the source")
        target = matches[0]
        nodes = []
        for vid in sorted(by_vid):
            n = by_vid[vid]
            nodes.append({
                "UUID": n["UUID"], "Parents": [by_vid[int(p)]["UUID"] for p in n["Parents"]],
                "Children": [by_vid[int(c)]["UUID"] for c in n["Children"]],
                "Branch": n.get("Branch", ""), "Note": n.get("Note", ""),
                "Log": list(n.get("Log") or []), "Locked": bool(n.get("Locked")),
                "Created": n.get("Created", ""), "Updated": n.get("Updated", ""),
                "VersionID": int(n["VersionID"]),
            })
        if flatten:
            t = next(n for n in nodes if n["UUID"] == target)
            t.update(Parents=[], Children=[], Branch="", Locked=True)
            nodes = [t]
        self._nodes = {n["UUID"]: n for n in nodes}
        names = set(data) if data else None
        instances, skipped = [], []
        for name, d in (info.get("DataInstances") or {}).items():
            base = d["Base"]
            tn = base["TypeName"]
            if tn not in SUPPORTED:
                skipped.append(name)
                continue
            comp, level = _compression(base.get("Compression", ""))
            if tn == "roi":
                comp = "lz4"
            config: dict[str, Any] = {}
            if tn == "roi":
                bs = (d.get("Extended") or {}).get("BlockSize") or [32, 32, 32]
                config = {"BlockSize": [int(x) for x in bs]}
            elif tn == "uint8blk":
                ext = d.get("Extended") or {}
                if not ext.get("BlockSize"):
                    ext = jsonio.loads(self._get(self._kv_base(target, name) + "/info")
                                     ).get("Extended") or {}
                config = _uint8blk_config(name, ext, comp)
                if comp == "jpeg":
                    level = -1
            elif tn == "labelmap":
                ext = d.get("Extended") or {}
                if not ext.get("BlockSize"):
                    ext = jsonio.loads(self._get(self._kv_base(target, name) + "/info")
                                     ).get("Extended") or {}
                config = _labelmap_config(name, ext)
                comp = "gzip"  # labelmap blocks are always stored gzip-wrapped
            elif tn == "annotation":
                config, label_src = self._annotation_config(
                    name, base, info.get("DataInstances") or {}, target)
                if label_src:
                    self._ann_labels[name] = label_src
                comp, level = "none", -1
            im = {"name": name, "typename": tn, "data_uuid": base["DataUUID"],
                  "versioned": bool(base.get("Versioned", True)), "compression": comp,
                  "compression_level": level,
                  "checksum": "crc32" if "CRC32" in base.get("Checksum", "") else "none",
                  "tags": dict(base.get("Tags") or {}), "syncs": list(base.get("Syncs") or []),
                  "config": config, "repo_uuid": base.get("RepoUUID", ""),
                  "included": names is None or name in names}
            self._insts[name] = im
            instances.append(im)
        if names is not None:
            unknown = sorted(names - set(self._insts))
            if unknown:
                raise BadRequest(f"no importable instance named {', '.join(unknown)}")
        return {"protocol": 1, "root": nodes[0]["UUID"], "source_root": info["Root"],
                "uuid": target, "flatten": target if flatten else None, "roi": None,
                "split_versions": True, "repo": {
                    "alias": info.get("Alias", ""), "description": info.get("Description", ""),
                    "log": list(info.get("Log") or []), "properties": {},
                    "created": info.get("Created", ""), "updated": info.get("Updated", "")},
                "nodes": [{k: v for k, v in n.items() if k != "VersionID"} for n in nodes],
                "instances": instances, "skipped": skipped}

    def count(self, req: dict[str, Any]) -> int | None:
        """Unknown in advance."""
        return None

    # ----- streaming ----------------------------------------------------------------------

    def _scratch(self, im: dict[str, Any]) -> tuple[Datatype, VersionedCtx, MemoryEngine]:
        """A throw-away instance of the receiver's datatype on an in-memory engine."""
        eng = MemoryEngine()
        meta = InstanceMeta(name=im["name"], typename=im["typename"],
                            data_uuid=im["data_uuid"], instance_id=1, repo_uuid="",
                            root_uuid="", versioned=True, compression=im["compression"],
                            compression_level=im["compression_level"],
                            checksum=im["checksum"], config=dict(im["config"]))
        inst = datatype_class(im["typename"])(meta, VersionedStore(eng), None, self.mgr)
        # two-version ancestry so deletes leave tombstones
        ctx = VersionedCtx(instance_id=1, version=1,
                           ancestry=Ancestry((1, 0), {1: 0, 0: 1}, True),
                           node=Node(uuid="0" * 32, version=1))
        return inst, ctx, eng

    @staticmethod
    def _drain(eng: MemoryEngine) -> Iterator[tuple[bytes, bytes]]:
        pre = instance_prefix(1)
        recs = list(eng.scan(KeyRange.prefix(pre)))
        for k, _ in recs:
            eng.delete(k)
        for k, v in recs:
            yield k[len(pre):-SUFFIX_LEN] + u32be(0) + k[-1:], v

    def stream(self, req: dict[str, Any]) -> Iterator[bytes]:
        """One version of one instance (``req["versions"]`` has exactly one UUID)."""
        name, versions = req["instance"], req["versions"]
        im = self._insts.get(name)
        if im is None or len(versions) != 1:
            raise BadRequest(f"cannot import {name!r} versions {versions}")
        v = versions[0]
        node = self._nodes[v]
        src_v = req["uuid"] if req.get("flatten") else v
        parents = [] if req.get("flatten") else node["Parents"]
        start = bytes.fromhex(req["start"]) if req.get("start") else b""
        max_chunk = int(req.get("max_chunk", DEFAULT_MAX_CHUNK))
        if im["typename"] == "keyvalue":
            recs = self._keyvalue(im, src_v, parents, start)
        elif im["typename"] == "uint8blk":
            recs = self._uint8blk(im, src_v, parents, start)
        elif im["typename"] == "labelmap":
            recs = self._labelmap(im, src_v, parents, start)
        elif im["typename"] == "annotation":
            recs = self._annotation(im, src_v, parents)
        else:
            recs = self._roi(im, src_v, parents)
        yield from group_frames(((k, val) for k, val in recs if k[:-SUFFIX_LEN] >= start),
                                max_chunk)

    def _kv_base(self, uuid: str, name: str) -> str:
        return f"/api/node/{uuid}/{quote(name)}"

    def _values(self, uuid: str, name: str, keys: list[str]) -> dict[str, bytes]:
        from datatypes import protos

        out: dict[str, bytes] = {}
        for i in range(0, len(keys), _KEY_BATCH):
            body = protos.Keys(keys=keys[i:i + _KEY_BATCH]).SerializeToString()
            msg = protos.KeyValues()
            msg.ParseFromString(self._get(self._kv_base(uuid, name) + "/keyvalues", body))
            out.update((kv.key, kv.value) for kv in msg.kvs)
        return out

    def _keyvalue(self, im: dict[str, Any], v: str, parents: list[str],
                  start: bytes) -> Iterator[tuple[bytes, bytes]]:
        from datatypes.keyvalue import encode_key

        name = im["name"]
        keys_v = jsonio.loads(self._get(self._kv_base(v, name) + "/keys"))
        pkeys: list[set[str]] = [set(jsonio.loads(self._get(self._kv_base(p, name) + "/keys")))
                                 for p in parents]
        merge = len(parents) > 1
        first = pkeys[0] if pkeys else set()
        inst, ctx, eng = self._scratch(im)
        every = sorted(set(keys_v).union(*pkeys)) if pkeys else sorted(keys_v)
        every = [k for k in every if encode_key(k) >= start]
        have = set(keys_v)
        for i in range(0, len(every), _KEY_BATCH):
            batch = every[i:i + _KEY_BATCH]
            present = [k for k in batch if k in have]
            vals = self._values(v, name, present)
            pvals = ({} if merge or not parents else
                     self._values(parents[0], name, [k for k in present if k in first]))
            for k in batch:
                if k in have:
                    if merge or k not in pvals or pvals[k] != vals.get(k, b""):
                        inst.put_value(ctx, k, vals.get(k, b""))  # type: ignore[attr-defined]
                else:
                    inst.store.delete(ctx, encode_key(k))
            yield from self._drain(eng)

    def _roi(self, im: dict[str, Any], v: str, parents: list[str]
             ) -> Iterator[tuple[bytes, bytes]]:
        name = im["name"]
        spans = jsonio.loads(self._get(self._kv_base(v, name) + "/roi"))
        if len(parents) == 1:
            pspans = jsonio.loads(self._get(self._kv_base(parents[0], name) + "/roi"))
            if pspans == spans:
                return
        inst, ctx, eng = self._scratch(im)
        arr = np.asarray(spans, dtype=np.int64).reshape(-1, 4)
        inst.write_spans(ctx, arr)  # type: ignore[attr-defined]
        yield from self._drain(eng)

    def _box_blocks(self, inst: Any, v: str, endpoint: str, query: str,
                    first: tuple[int, int, int], last: tuple[int, int, int],
                    check: Callable[[tuple[int, int, int], memoryview], None],
                    tkey: Callable[[int, int, int], bytes],
                    ) -> list[tuple[bytes, bytes, memoryview]]:
        """``(block tkey, digest, payload)`` of the blocks DVID's ``endpoint``
        (``subvolblocks`` or ``blocks``, with ``query``) answers for one box at ``v``, in
        key order; :class:`TransferError` when DVID's answer is malformed: a block outside
        the box, or one for which ``check(coord, payload)`` raises ValueError."""
        from datatypes.common.blockstream import iter_records

        bs = inst.block_size
        size = "_".join(str((last[i] - first[i] + 1) * bs[i]) for i in range(3))
        off = "_".join(str(first[i] * bs[i]) for i in range(3))
        path = f"{self._kv_base(v, inst.meta.name)}/{endpoint}/{size}/{off}{query}"
        raw = self._get(path)
        out = []
        try:
            for r in iter_records(raw):
                c = (r.x, r.y, r.z)
                if not all(first[i] <= c[i] <= last[i] for i in range(3)):
                    raise ValueError(f"block {c} outside the requested box")
                check(c, r.payload)
                out.append((tkey(*c), hashlib.blake2b(r.payload, digest_size=8).digest(),
                            r.payload))
        except ValueError as e:
            raise TransferError(f"{self.http.base}{path}: bad block stream: {e}") from None
        out.sort(key=lambda t: t[0])
        return out

    def _block_digests(self, inst: Any, v: str, first: tuple[int, int, int],
                       last: tuple[int, int, int], mode: str
                       ) -> list[tuple[bytes, bytes, memoryview]]:
        """``(block tkey, digest, payload)`` of the uint8blk blocks stored in one box at
        ``v`` (see :meth:`_box_blocks`)."""
        from datatypes.uint8blk import block_tkey

        bs = inst.block_size
        nvox = bs[0] * bs[1] * bs[2]

        def check(c: tuple[int, int, int], payload: memoryview) -> None:
            if mode == "uncompressed" and payload.nbytes != nvox:
                raise ValueError(f"block {c} has {payload.nbytes} bytes, not {nvox}")

        query = f"?compression={mode}" if mode else ""
        return self._box_blocks(inst, v, "subvolblocks", query, first, last, check,
                                block_tkey)

    def _uint8blk(self, im: dict[str, Any], v: str, parents: list[str],
                  start: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Records of uint8blk ``im`` at version ``v`` (see the module docstring)."""
        from datatypes.common import imagecodec
        from datatypes.uint8blk import block_tkey
        from dvidpy.codec import serialize

        name = im["name"]
        inst, ctx, eng = self._scratch(im)
        ext = (jsonio.loads(self._get(self._kv_base(v, name) + "/info")).get("Extended")
               or {})
        if [int(x) for x in ext.get("BlockSize") or []] != list(inst.block_size):
            raise TransferError(f"uint8blk {name!r} reports BlockSize "
                                f"{ext.get('BlockSize')} at {v}, not {inst.block_size}")
        mode = "" if inst.is_jpeg else "uncompressed"
        # first parent's digests: remembered, else re-read from the source box by box
        parent = parents[0] if len(parents) == 1 else None
        pmemo = self._memo.get((name, parent)) if parent else None
        memo: dict[bytes, bytes] | None = {} if not start else None
        mn, mx = ext.get("MinPoint"), ext.get("MaxPoint")
        if mn is None or mx is None:
            return
        if not all(isinstance(p, list) and len(p) == 3
                   and all(isinstance(c, int) and not isinstance(c, bool) for c in p)
                   for p in (mn, mx)):
            raise TransferError(f"uint8blk {name!r} at {v}: bad extents {mn!r}..{mx!r} "
                                "in DVID's info")
        inst.put_property(ctx, "extents", {"MinPoint": [int(c) for c in mn],
                                           "MaxPoint": [int(c) for c in mx]})
        yield from self._drain(eng)
        bs = inst.block_size
        lo = [int(mn[i]) // bs[i] for i in range(3)]
        hi = [int(mx[i]) // bs[i] for i in range(3)]
        crc = inst.meta.checksum == "crc32"
        for first, last in _slabs(lo, hi, bs):
            if start and block_tkey(*last) < start:
                continue  # already received before an interruption
            blocks = self._block_digests(inst, v, first, last, mode)
            memo, before = _remember_and_compare(
                blocks, memo, parent, pmemo,
                lambda p, f=first, la=last: self._block_digests(inst, p, f, la, mode))
            with inst.store.batch(ctx) as b:
                for k, dg, payload in blocks:
                    if before.get(k) == dg:
                        continue  # same block as the parent's: inherited
                    if inst.is_jpeg:
                        try:
                            imagecodec.decode_jpeg_block(payload, bs)
                        except ValueError as e:
                            raise TransferError(f"uint8blk {name!r} at {v}: bad JPEG "
                                                f"block from DVID: {e}") from None
                        b.put(k, serialize(bytes(payload), "jpeg", crc))
                    else:
                        b.put(k, inst.encode_block(
                            np.frombuffer(payload, dtype=np.uint8).reshape(inst.bshape)))
            yield from self._drain(eng)
        if memo is not None:
            self._memo[(name, v)] = memo
            while len(self._memo) > _MEMO_VERSIONS:
                self._memo.popitem(last=False)


    # ----- labelmap -------------------------------------------------------------------------

    def _json_or_none(self, path: str, body: bytes | None = None) -> Any:
        """JSON answer of ``path``, None when DVID answers 400/404 (e.g. no max label)."""
        self.calls.append(path)
        status, data = self.http.request("GET", path, body)
        if status in (400, 404):
            return None
        if status >= 400:
            raise TransferError(f"{self.http.base}{path}: {status} "
                                f"{data.decode(errors='replace')}", status)
        return jsonio.loads(data)

    def _label_blocks(self, inst: Any, v: str, scale: int, first: tuple[int, int, int],
                      last: tuple[int, int, int]) -> list[tuple[bytes, bytes, memoryview]]:
        """``(block tkey, digest, gzip payload)`` of the supervoxel blocks of one box at
        ``scale`` (``compression=blocks``), each fully decoded once to validate it (see
        :meth:`_box_blocks`)."""
        from datatypes.labelmap import layout as L
        from datatypes.labelmap.block_codec import decode_block

        def check(c: tuple[int, int, int], payload: memoryview) -> None:
            if payload.nbytes == 0:
                raise ValueError(f"block {c} has an empty payload")
            decode_block(L.gunzip(payload, 1 << 27), inst.block_shape)

        return self._box_blocks(
            inst, v, "blocks", f"?compression=blocks&supervoxels=true&scale={scale}",
            first, last, check, lambda x, y, z: L.block_tkey(scale, x, y, z))

    def _listlabels(self, v: str, name: str) -> list[int]:
        raw = self._get(self._kv_base(v, name) + "/listlabels")
        if len(raw) % 8:
            raise TransferError(f"labelmap {name!r} at {v}: listlabels answer of "
                                f"{len(raw)} bytes is not a list of uint64")
        return np.frombuffer(raw, dtype="<u8").tolist()

    def _indices(self, v: str, name: str, labels: list[int]) -> dict[int, Any]:
        """``{label: LabelIndex}`` (labels without an index are left out)."""
        from datatypes import protos

        out: dict[int, Any] = {}
        for i in range(0, len(labels), _INDEX_BATCH):
            batch = labels[i:i + _INDEX_BATCH]
            msg = protos.LabelIndices()
            try:
                msg.ParseFromString(self._get(self._kv_base(v, name) + "/indices",
                                              json.dumps(batch).encode()))
            except Exception as e:
                raise TransferError(f"labelmap {name!r} at {v}: bad LabelIndices from "
                                    f"DVID: {e}") from None
            for idx in msg.indices:
                if idx.label and len(idx.blocks):
                    out[int(idx.label)] = idx
        return out

    def _mappings(self, v: str, name: str) -> dict[int, int]:
        """Non-identity, non-retired ``{supervoxel: body}`` of ``GET mappings``."""
        out: dict[int, int] = {}
        for line in self._get(self._kv_base(v, name) + "/mappings").decode().splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise TransferError(f"labelmap {name!r} at {v}: bad mappings line {line!r}")
            out[int(parts[0])] = int(parts[1])
        return out

    def _labelmap(self, im: dict[str, Any], v: str, parents: list[str],
                  start: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Records of labelmap ``im`` at version ``v`` (see the module docstring), in
        key order: extents, blocks (every scale), label indices, mappings, max label."""
        from datatypes.labelmap import layout as L
        from dvidpy.keys import tkey

        name = im["name"]
        inst, ctx, eng = self._scratch(im)
        parent = parents[0] if len(parents) == 1 else None
        info = jsonio.loads(self._get(self._kv_base(v, name) + "/info"))
        ext = info.get("Extended") or {}
        if [int(x) for x in ext.get("BlockSize") or []] != list(inst.block_size):
            raise TransferError(f"labelmap {name!r} reports BlockSize "
                                f"{ext.get('BlockSize')} at {v}, not {inst.block_size}")
        mn, mx = ext.get("MinPoint"), ext.get("MaxPoint")
        if mn is not None and mx is not None:
            if not all(isinstance(p, list) and len(p) == 3
                       and all(isinstance(c, int) and not isinstance(c, bool) for c in p)
                       for p in (mn, mx)):
                raise TransferError(f"labelmap {name!r} at {v}: bad extents {mn!r}..{mx!r}")
            pext = None
            if parent is not None:
                pe = jsonio.loads(self._get(self._kv_base(parent, name) + "/info")
                                ).get("Extended") or {}
                pext = [pe.get("MinPoint"), pe.get("MaxPoint")]
            if pext != [mn, mx]:
                inst.put_property(ctx, "extents", [list(mn), list(mx)])
            yield from self._drain(eng)
            # blocks of every scale: each box of the extents, compared with the parent's
            pmemo = self._memo.get((name, parent)) if parent else None
            memo: dict[bytes, bytes] | None = {} if not start else None
            bs = inst.block_size
            crc = inst.meta.checksum == "crc32"
            for scale in range(inst.max_scale + 1):
                lo = [(int(mn[i]) // bs[i]) >> scale for i in range(3)]
                hi = [(int(mx[i]) // bs[i]) >> scale for i in range(3)]
                for first, last in _slabs(lo, hi, bs):
                    if start and L.block_tkey(scale, *last) < start:
                        continue
                    blocks = self._label_blocks(inst, v, scale, first, last)
                    memo, before = _remember_and_compare(
                        blocks, memo, parent, pmemo,
                        lambda p, s=scale, f=first, la=last:
                            self._label_blocks(inst, p, s, f, la))
                    with inst.store.batch(ctx) as b:
                        for k, dg, payload in blocks:
                            if before.get(k) != dg:
                                b.put(k, L.frame_gzip_payload(payload, crc))
                    yield from self._drain(eng)
            if memo is not None:
                self._memo[(name, v)] = memo
                while len(self._memo) > _MEMO_VERSIONS:
                    self._memo.popitem(last=False)
        # label indices: changed ones written, labels the parent had become tombstones
        labels = self._listlabels(v, name)
        plabels = set(self._listlabels(parent, name)) if parent else set()
        have = set(labels)
        every = sorted(have | plabels)
        for i in range(0, len(every), _INDEX_BATCH):
            batch = every[i:i + _INDEX_BATCH]
            idxs = self._indices(v, name, [lab for lab in batch if lab in have])
            pidx = self._indices(parent, name, [lab for lab in batch if lab in plabels]
                                 ) if parent else {}
            with inst.store.batch(ctx) as b:
                for lab in batch:
                    idx = idxs.get(lab)
                    if idx is None:
                        if lab in plabels:
                            b.delete(L.index_tkey(lab))
                        continue
                    p = pidx.get(lab)
                    if p is None or (p.SerializeToString(deterministic=True)
                                     != idx.SerializeToString(deterministic=True)):
                        b.put(L.index_tkey(lab), L.serialize_index(idx))
            yield from self._drain(eng)
        # mappings: changed entries; entries the parent had are re-read exactly
        # (identity or retired) through GET mapping?nolookup=true
        maps = self._mappings(v, name)
        pmaps = self._mappings(parent, name) if parent else {}
        gone = sorted(set(pmaps) - set(maps))
        now: dict[int, int] = {}
        for i in range(0, len(gone), _INDEX_BATCH):
            batch = gone[i:i + _INDEX_BATCH]
            got = jsonio.loads(self._get(self._kv_base(v, name) + "/mapping?nolookup=true",
                                       json.dumps(batch).encode()))
            if not isinstance(got, list) or len(got) != len(batch):
                raise TransferError(f"labelmap {name!r} at {v}: bad GET mapping answer")
            now.update(zip(batch, (int(x) for x in got), strict=True))
        with inst.store.batch(ctx) as b:
            for sv in sorted(set(maps) | set(now)):
                body = maps.get(sv, now.get(sv, sv))
                if pmaps.get(sv, sv) != body:
                    b.put(L.mapping_tkey(sv), int(body).to_bytes(8, "little"))
        yield from self._drain(eng)
        # the version's max label
        top = self._json_or_none(self._kv_base(v, name) + "/maxlabel")
        ptop = self._json_or_none(self._kv_base(parent, name) + "/maxlabel") if parent \
            else None
        if isinstance(top, dict) and top.get("maxlabel") is not None and top != ptop:
            with inst.store.batch(ctx) as b:
                b.put(tkey(L.MAXLABEL_CLASS, b""), int(top["maxlabel"]).to_bytes(8, "little"))
            yield from self._drain(eng)

    # ----- annotation -----------------------------------------------------------------------

    def _annotation_config(self, name: str, base: dict[str, Any],
                           datainstances: dict[str, Any], target: str
                           ) -> tuple[dict[str, Any], str | None]:
        """``(meta.config, label instance)`` of a DVID annotation: its block size is its
        synced label instance's (``BlockSize`` of that instance's info), else 64³; the
        label instance is the first of ``Syncs`` whose type is in :data:`_LABEL_TYPES`."""
        from datatypes.annotation.datatype import DEFAULT_BLOCK_SIZE

        label_src = None
        for s in base.get("Syncs") or []:
            d = datainstances.get(s)
            if d is not None and d["Base"]["TypeName"] in _LABEL_TYPES:
                label_src = s
                break
        bs = list(DEFAULT_BLOCK_SIZE)
        if label_src is not None:
            ext = datainstances[label_src].get("Extended") or {}
            if not ext.get("BlockSize"):
                ext = jsonio.loads(self._get(self._kv_base(target, label_src) + "/info")
                                 ).get("Extended") or {}
            got = ext.get("BlockSize") or bs
            if not (isinstance(got, list) and len(got) == 3
                    and all(isinstance(x, int) and x > 0 for x in got)):
                raise BadRequest(f"annotation {name!r}: bad BlockSize {got!r} of its synced "
                                 f"instance {label_src!r}")
            bs = [int(x) for x in got]
        return {"BlockSize": bs}, label_src

    def _bodies(self, v: str, label_src: str, pos: np.ndarray) -> np.ndarray:
        """Bodies (uint64) at the (N, 3) points ``pos`` in ``label_src`` at ``v``, via
        ``GET labels`` in batches."""
        out = np.zeros(len(pos), np.uint64)
        path = self._kv_base(v, label_src) + "/labels"
        for i in range(0, len(pos), _POINT_BATCH):
            pts = pos[i:i + _POINT_BATCH].tolist()
            got = jsonio.loads(self._get(path, json.dumps(pts).encode()))
            if not (isinstance(got, list) and len(got) == len(pts)
                    and all(isinstance(x, int) and 0 <= x < 2**64 for x in got)):
                raise TransferError(f"{label_src!r} at {v}: GET labels answered "
                                    f"{type(got).__name__} for {len(pts)} points")
            out[i:i + len(pts)] = np.asarray(got, dtype=np.uint64)
        return out

    def _annotation_state(self, im: dict[str, Any], v: str) -> dict[bytes, bytes]:
        """``{tkey: stored bytes}`` of annotation ``im`` at ``v``: block lists regrouped
        from ``GET all-elements`` by this server's block size (elements keep the source's
        order), then the label lists (bodies of the synced label instance at each
        element's position) and the tag lists, built as ``POST reload`` builds them."""
        from datatypes.annotation.datatype import denormalize
        from datatypes.annotation.elements import ElemList, parse_elements
        from datatypes.annotation.store import block_tkey, group_rows

        name = im["name"]
        body = self._get(self._kv_base(v, name) + "/all-elements")
        try:
            blocks = jsonio.loads(body) if body.strip() else {}
            if blocks is None:
                blocks = {}
            if not isinstance(blocks, dict):
                raise BadRequest("all-elements is not a JSON object")
            elems = [e for k in blocks for e in parse_elements(blocks[k])]
        except (ValueError, BadRequest) as e:
            msg = e.message if isinstance(e, BadRequest) else str(e)
            raise TransferError(f"annotation {name!r} at {v}: bad all-elements answer: "
                                f"{msg}") from None
        every = ElemList.of(elems)
        if len(every) and np.unique(every.pos, axis=0).shape[0] != len(every):
            raise TransferError(f"annotation {name!r} at {v}: all-elements lists a "
                                "position twice")
        bs = np.asarray(im["config"]["BlockSize"], np.int64)
        coords, groups = group_rows(np.floor_divide(every.pos.astype(np.int64), bs))
        state = {block_tkey(*c): every.select(idx).encode()
                 for c, idx in zip(coords.tolist(), groups, strict=True)}
        label_src = self._ann_labels.get(name)
        bodies = self._bodies(v, label_src, every.pos) if label_src else None
        state.update((tk, lst.encode()) for tk, lst in denormalize(every, bodies).items())
        return state

    def _annotation(self, im: dict[str, Any], v: str, parents: list[str]
                    ) -> Iterator[tuple[bytes, bytes]]:
        """Records of annotation ``im`` at ``v``: the lists whose bytes differ from the
        first parent's, tombstones for lists the parent(s) had and ``v`` lacks; at the
        root, a merge node or a flattened import every list."""
        name = im["name"]
        state = self._annotation_state(im, v)
        digests = {tk: hashlib.blake2b(val, digest_size=8).digest()
                   for tk, val in state.items()}
        before: list[dict[bytes, bytes]] = []
        for p in parents:
            memo = self._memo.get((name, p))
            if memo is None:
                memo = {tk: hashlib.blake2b(val, digest_size=8).digest()
                        for tk, val in self._annotation_state(im, p).items()}
            before.append(memo)
        self._memo[(name, v)] = digests
        while len(self._memo) > _MEMO_VERSIONS:
            self._memo.popitem(last=False)
        first = before[0] if len(before) == 1 else {}
        inst, ctx, eng = self._scratch(im)
        gone = set().union(*before) - set(state) if before else set()
        with inst.store.batch(ctx) as b:
            for tk in sorted(set(state) | gone):
                if tk in gone:
                    b.delete(tk)
                elif first.get(tk) != digests[tk]:
                    b.put(tk, state[tk])
        yield from self._drain(eng)


def _block_config(
    kind: str,
    parse: Callable[[dict[str, str]], dict[str, Any]],
    name: str,
    ext: dict[str, Any],
    block: int,
    **more: str,
) -> dict[str, Any]:
    """The receiver's ``meta.config`` for the DVID ``kind`` instance ``name`` described by
    its ``Extended`` info: ``BlockSize`` (default ``block`` cubed), ``VoxelSize`` and
    ``VoxelUnits`` plus the settings ``more``, validated by our own ``parse`` (the type's
    ``parse_settings``): 400 naming the instance when DVID reports settings we cannot hold."""

    def triple(key: str, default: list[Any]) -> str:
        v = ext.get(key) or default
        if not isinstance(v, list) or len(v) != 3:
            raise BadRequest(f"{kind} {name!r}: bad {key} {v!r} in DVID's info")
        return ",".join(str(x) for x in v)

    settings = {"blocksize": triple("BlockSize", [block] * 3),
                "voxelsize": triple("VoxelSize", [8, 8, 8]),
                "voxelunits": triple("VoxelUnits", ["nanometers"] * 3), **more}
    try:
        return parse(settings)
    except BadRequest as e:
        raise BadRequest(f"cannot import {kind} {name!r}: {e.message} (leave it out "
                         "with data=...)") from None


def _uint8blk_config(name: str, ext: dict[str, Any], comp: str) -> dict[str, Any]:
    """The ``meta.config`` for a DVID uint8blk instance (see :func:`_block_config`; e.g.
    blocks over 2**24 voxels are refused)."""
    from datatypes.uint8blk import Uint8Blk

    return _block_config("uint8blk", Uint8Blk.parse_settings, name, ext, 32,
                         background=str(ext.get("Background", 0)), compression=comp)


def _remember_and_compare(
    blocks: list[tuple[bytes, bytes, Any]],
    memo: dict[bytes, bytes] | None,
    parent: str | None,
    pmemo: dict[bytes, bytes] | None,
    parent_blocks: Callable[[str], list[tuple[bytes, bytes, Any]]],
) -> tuple[dict[bytes, bytes] | None, dict[bytes, bytes]]:
    """Remember this version's ``(key, digest)`` pairs in ``memo`` (dropped past
    ``_MEMO_MAX_BLOCKS``) and return it with the parent's digests for the same box: none at a
    root, the parent's remembered digests, or the parent's blocks read again."""
    if memo is not None:
        memo.update((k, dg) for k, dg, _ in blocks)
        if len(memo) > _MEMO_MAX_BLOCKS:
            memo = None
    if parent is None:
        return memo, {}
    if pmemo is not None:
        return memo, pmemo
    return memo, {k: dg for k, dg, _ in parent_blocks(parent)}


def _slabs(lo: list[int], hi: list[int], bs: tuple[int, int, int]
           ) -> Iterator[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """Block boxes ``(first, last)`` (inclusive block coordinates) covering ``lo..hi`` in
    block-key order (Z, then Y, then X), each at most :data:`_SLAB_VOXELS` voxels (or one
    block): whole X rows grouped along Y when a row fits, else pieces of one row."""
    per = max(1, _SLAB_VOXELS // (bs[0] * bs[1] * bs[2]))
    nx = hi[0] - lo[0] + 1
    for z in range(lo[2], hi[2] + 1):
        if nx <= per:
            rows = per // nx
            for y in range(lo[1], hi[1] + 1, rows):
                yield (lo[0], y, z), (hi[0], min(hi[1], y + rows - 1), z)
        else:
            for y in range(lo[1], hi[1] + 1):
                for x in range(lo[0], hi[0] + 1, per):
                    yield (x, y, z), (min(hi[0], x + per - 1), y, z)



def _labelmap_config(name: str, ext: dict[str, Any]) -> dict[str, Any]:
    """The ``meta.config`` for a DVID labelmap (see :func:`_block_config`)."""
    from datatypes.labelmap.core import LabelmapCore

    return _block_config(
        "labelmap", LabelmapCore.parse_settings, name, ext, 64,
        indexedlabels="false" if ext.get("IndexedLabels") is False else "true",
        maxdownreslevel=str(ext.get("MaxDownresLevel") or 0))
