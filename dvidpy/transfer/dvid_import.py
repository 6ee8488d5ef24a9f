"""Import from any DVID: a transfer source that uses only DVID's public HTTP API.

Used by ``dvidpy pull --from-dvid`` (and automatically when the source does not answer
``GET /api/transfer/protocol``). It reads ``GET /api/repo/{uuid}/info`` for the DAG and the
instances, then copies each (instance, version) as its own group, one version at a time:

* **keyvalue**: ``GET keys`` at the version and at its first parent, ``GET keyvalues``
  (protobuf ``Keys`` -> ``KeyValues``) for the values; only keys whose value differs from
  the parent's are written at the version, keys the parent had and the version lacks
  become tombstones. At a merge node the full visible state is written.
* **roi**: ``GET roi`` at the version and its parent; a changed ROI is written whole.

Other datatypes are left out of the manifest and listed under ``"skipped"``.

The records are produced by the *receiving* server's own datatype code: each version's
changes are replayed into a scratch in-memory instance (``put_value`` / ``write_spans``
/ a delete) and the scratch's raw keys are sent, so stored bytes follow the receiver's
formats. The DVID server never sees a non-public endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import numpy as np

from dvidpy.dag import Ancestry, Node
from dvidpy.datatype import Datatype, InstanceMeta, datatype_class
from dvidpy.errors import BadRequest
from dvidpy.keys import SUFFIX_LEN, instance_prefix, u32be
from dvidpy.repo import RepoManager
from dvidpy.transfer.client import Http, TransferError
from dvidpy.transfer.protocol import DEFAULT_MAX_CHUNK, ChunkWriter, end_frame
from dvidpy.versioned import VersionedCtx, VersionedStore
from storage.base import KeyRange
from storage.memory import MemoryEngine

SUPPORTED = ("keyvalue", "roi")
_KEY_BATCH = 64
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

    def __init__(self, url: str, mgr: RepoManager | None = None) -> None:
        self.http = Http(url)
        self.mgr = mgr
        self.calls: list[str] = []  # every path requested (tests check they are public)
        self._nodes: dict[str, dict[str, Any]] = {}
        self._insts: dict[str, dict[str, Any]] = {}

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
        info = json.loads(self._get(f"/api/repo/{quote(uuid)}/info"))
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
        w = ChunkWriter(int(req.get("max_chunk", DEFAULT_MAX_CHUNK)))
        if im["typename"] == "keyvalue":
            recs = self._keyvalue(im, src_v, parents, start)
        else:
            recs = self._roi(im, src_v, parents)
        for k, val in recs:
            if k[:-SUFFIX_LEN] < start:
                continue
            out = w.add(k, val)
            if out:
                yield out
        last = w.flush()
        if last:
            yield last
        yield end_frame(w.total)

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
        keys_v = json.loads(self._get(self._kv_base(v, name) + "/keys"))
        pkeys: list[set[str]] = [set(json.loads(self._get(self._kv_base(p, name) + "/keys")))
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
        spans = json.loads(self._get(self._kv_base(v, name) + "/roi"))
        if len(parents) == 1:
            pspans = json.loads(self._get(self._kv_base(parents[0], name) + "/roi"))
            if pspans == spans:
                return
        inst, ctx, eng = self._scratch(im)
        arr = np.asarray(spans, dtype=np.int64).reshape(-1, 4)
        inst.write_spans(ctx, arr)  # type: ignore[attr-defined]
        yield from self._drain(eng)
