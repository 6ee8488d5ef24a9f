"""tarsupervoxels: a blob per supervoxel (usually a mesh), served as a tar per body through
the body → supervoxel mapping of a synced labelmap (DVID's ``datatype/tarsupervoxels``,
dvid-api.md §14).

Creation setting ``Extension`` (e.g. ``drc`` or ``ngmesh``; ``dat`` when not given, as
DVID's help says, although DVID's code refuses a missing one): the file extension of the
blobs; ``POST info`` may change it (blobs stored under another extension are then
not seen, as in DVID). Sync to exactly one labelmap (``POST sync {"sync": "seg"}`` or the
``sync`` creation setting) before asking for bodies.

Blobs are stored once for the whole repo (at its root version, as DVID does), so every
version sees the same blob of a supervoxel; which supervoxels make up a body is read from
the synced labelmap *at the requested version*, so a tar follows merges, cleaves and
splits made in that version and its ancestors. Writes are refused on committed versions
(the instance is versioned data for locking purposes, as in DVID).

Endpoints under ``/api/node/{uuid}/{data}/`` (ids are uint64; 0 is refused):

``GET|POST|DELETE supervoxel/{sv}``
    The blob of one supervoxel (octet-stream; 404 when none) / store it / remove it.
``GET tarfile/{body}``
    A streamed tar of the body's supervoxels in ascending id order: ``<sv>.<Extension>``
    holding the blob, or an empty ``<sv>.missing`` when the supervoxel has none. 400 when
    the instance is not synced or the body has no supervoxels at this version.
``HEAD tarfile/{body}``
    200 when every supervoxel of the body has a blob (even empty), else 400.
``GET missing/{body}``
    JSON array of the body's supervoxels without a blob (``[]`` when none).
``GET exists[?hash=MD5]``
    Body: JSON array of supervoxel ids → JSON array of booleans; ``hash`` (hex MD5 of the
    body) is checked when given.
``POST load``
    A tar whose regular files are named ``<sv>.<Extension>``; all of them are stored in
    one batch, or none when any name, extension or id is bad.

TKey class 133: supervoxel (u64 BE) + extension + 0x00.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from starlette.responses import Response

from datatypes.keyvalue import TAR_END, tar_entry
from datatypes.labelmap import layout as L
from dvidpy.datatype import Call, Datatype, endpoint, register_datatype
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.spec import EMPTY, JSON, OCTET, Body, Param, Q
from dvidpy.http.streams import StreamingResponse
from dvidpy.keys import tkey
from dvidpy.versioned import VersionedCtx

BLOB_CLASS_SV = 133
#: supervoxels read per batched engine get while streaming a tar
READ_BATCH = 256
_EXT_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}\Z")
_SV = Param("sv", "label", "a supervoxel id (not 0)")
_BODY = Param("body", "label", "a body id (not 0)")
TAR = "application/tar"


def _extension(value: str) -> str:
    if not _EXT_RE.match(value):
        raise BadRequest(f"tarsupervoxels Extension {value!r} must be 1-64 letters, digits "
                         "or _.+-")
    return value


@register_datatype
class TarSupervoxels(Datatype):
    """The tarsupervoxels datatype."""

    type_name = "tarsupervoxels"
    type_url = "github.com/janelia-flyem/dvid/datatype/tarsupervoxels"
    type_version = "0.1"
    default_compression = "none"
    subscribes = {"labelmap": frozenset()}  # a lookup only: no events are handled
    one_sync_of = frozenset({"labelmap"})
    tkey_classes = {BLOB_CLASS_SV: "supervoxel (u64 BE) + extension + 0x00 -> blob",
                    254: "mutation log: version + mutation id -> JSON record"}

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        return {"Extension": _extension(settings.get("extension", "dat"))}

    def update_settings(self, settings: Mapping[str, str]) -> None:
        if "extension" in settings:
            self.meta.config["Extension"] = _extension(settings["extension"])

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        return {"Extension": self.extension}

    def describe_key(self, tk: bytes) -> Any:
        """Blobs show as ``"<sv>.<extension>"`` (they live at the root: diffs between
        versions never list them)."""
        if tk[:1] == bytes((BLOB_CLASS_SV,)):
            return f"{int.from_bytes(tk[2:10], 'big')}.{tk[10:-1].decode(errors='replace')}"
        return super().describe_key(tk)

    @property
    def extension(self) -> str:
        return str(self.meta.config.get("Extension", "dat"))

    # ----- storage ----------------------------------------------------------------------

    def blob_tkey(self, sv: int) -> bytes:
        """TKey of a supervoxel's blob under the current extension."""
        return tkey(BLOB_CLASS_SV, sv.to_bytes(8, "big") + self.extension.encode() + b"\x00")

    def shared_ctx(self, ctx: VersionedCtx) -> VersionedCtx:
        """``ctx`` moved to the repo's root version (where every blob lives), keeping the
        requested node (whose lock state decides writes)."""
        root = self.repo.dag.root_version
        if ctx.version == root:
            return ctx
        return replace(ctx, version=root, ancestry=self.repo.dag.ancestry(root))

    def supervoxels(self, ctx: VersionedCtx, body: int) -> np.ndarray:
        """Sorted supervoxels of ``body`` in the synced labelmap at ``ctx``'s node; 400
        when unsynced or when the body has none there."""
        lm = next((self.repo.instances[n] for n in self.meta.syncs
                   if n in self.repo.instances
                   and self.repo.instances[n].type_name == "labelmap"), None)
        if lm is None:
            raise BadRequest(f"data {self.meta.name!r} is not synced with any labelmap "
                             "instance")
        idx = lm.get_index(self.manager.context(lm, ctx.node, ctx.user, ctx.app), body)  # type: ignore[attr-defined]
        svs = np.unique(L.index_arrays(idx)[1]) if idx is not None else np.zeros(0, np.uint64)
        if svs.size == 0:
            raise BadRequest(f"label {body} has no supervoxels")
        return svs

    def blobs(self, ctx: VersionedCtx, svs: np.ndarray) -> Iterator[tuple[int, bytes | None]]:
        """``(sv, blob or None)`` in the order of ``svs``, read in batches."""
        sctx = self.shared_ctx(ctx)
        for i in range(0, len(svs), READ_BATCH):
            chunk = [int(s) for s in svs[i:i + READ_BATCH]]
            vals = self.store.get_many(sctx, [self.blob_tkey(s) for s in chunk])
            yield from zip(chunk, vals, strict=True)

    # ----- one supervoxel ---------------------------------------------------------------

    @endpoint("GET", "supervoxel/{sv}", "The blob of a supervoxel", params=(_SV,),
              returns=OCTET)
    def _get_sv(self, call: Call) -> Response:
        sv = self._nonzero(call.params["sv"], "Supervoxel")
        data = self.store.get(self.shared_ctx(call.ctx), self.blob_tkey(sv))
        if data is None:
            raise NotFound(f"Supervoxel {sv} not found")
        return Response(data, media_type="application/octet-stream")

    @endpoint("POST", "supervoxel/{sv}", "Store the blob of a supervoxel", params=(_SV,),
              body=Body(OCTET, "the blob"), returns=EMPTY)
    def _post_sv(self, call: Call) -> Response:
        sv = self._nonzero(call.params["sv"], "Supervoxel")
        ctx = call.ctx
        with self.store.batch(self.shared_ctx(ctx)) as b:
            b.put(self.blob_tkey(sv), bytes(call.body))
            self.log_mutation(ctx, "postsupervoxel", {"Supervoxel": sv,
                                                      "Bytes": len(call.body)}, b)
        return Response(b"")

    @endpoint("DELETE", "supervoxel/{sv}", "Remove the blob of a supervoxel", params=(_SV,),
              returns=EMPTY)
    def _delete_sv(self, call: Call) -> Response:
        sv = self._nonzero(call.params["sv"], "Supervoxel")
        ctx = call.ctx
        with self.store.batch(self.shared_ctx(ctx)) as b:
            b.delete(self.blob_tkey(sv))
            self.log_mutation(ctx, "deletesupervoxel", {"Supervoxel": sv}, b)
        return Response(b"")

    @staticmethod
    def _nonzero(v: int, what: str) -> int:
        if v == 0:
            raise BadRequest(f"{what} 0 is protected background value and cannot be used")
        return v

    # ----- bodies -----------------------------------------------------------------------

    @endpoint(("GET", "HEAD"), "tarfile/{body}", "A tar of the blobs of a body's supervoxels",
              params=(_BODY,), returns={200: (TAR,)})
    def _tarfile(self, call: Call) -> Response:
        body = self._nonzero(call.params["body"], "Label")
        svs = self.supervoxels(call.ctx, body)
        if call.method == "HEAD":
            if any(v is None for _, v in self.blobs(call.ctx, svs)):
                raise BadRequest(f"not all supervoxel data available for label {body}")
            return Response(b"", media_type=TAR)
        ext, ctx = self.extension, call.ctx

        def gen() -> Iterator[bytes]:
            for sv, v in self.blobs(ctx, svs):
                yield tar_entry(f"{sv}.missing", b"") if v is None else tar_entry(
                    f"{sv}.{ext}", v)
            yield TAR_END

        return StreamingResponse(gen(), media_type=TAR)

    @endpoint("GET", "missing/{body}", "The body's supervoxels without a blob",
              params=(_BODY,))
    def _missing(self, call: Call) -> Any:
        body = self._nonzero(call.params["body"], "Label")
        svs = self.supervoxels(call.ctx, body)
        return [sv for sv, v in self.blobs(call.ctx, svs) if v is None]

    @endpoint("GET", "exists", "Whether each listed supervoxel has a blob",
              query=(Q("hash", "str", "hex MD5 of the request body, checked when given"),),
              body=Body(JSON, "JSON array of supervoxel ids", schema={
                  "type": "array", "items": {"type": "integer", "minimum": 0}}))
    def _exists(self, call: Call) -> Any:
        want = call.params.get("hash")
        if want and hashlib.md5(call.body).hexdigest() != want.lower():
            raise BadRequest(f"content hash incorrect: expected {want}, got "
                             f"{hashlib.md5(call.body).hexdigest()}")
        ids = call.json()
        if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**64 for i in ids):
            raise BadRequest("exists expects a JSON array of supervoxel ids (uint64)")
        return [v is not None for _, v in self.blobs(call.ctx, np.array(ids, dtype=np.uint64))]

    @endpoint("POST", "load", "Store every <sv>.<Extension> file of a tar, atomically",
              body=Body(TAR, "a tar of <supervoxel>.<Extension> files"), returns=EMPTY)
    def _load(self, call: Call) -> Response:
        ext = self.extension
        items: list[tuple[int, bytes]] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(call.body), mode="r:") as tf:
                for n, m in enumerate(tf, 1):
                    if not m.isfile():
                        raise BadRequest(f"file {n} ({m.name!r}) of the tar is not a regular "
                                         "file")
                    stem, dot, got = m.name.partition(".")
                    if not dot or not stem.isascii() or not stem.isdigit():
                        raise BadRequest(f"file {n} name is invalid, expect "
                                         f"supervoxel+ext: {m.name!r}")
                    if got != ext:
                        raise BadRequest(f"file {n} name has bad extension (expect {ext!r}): "
                                         f"{m.name!r}")
                    sv = int(stem)
                    if sv == 0 or sv >= 2**64:
                        raise BadRequest(f"file {n}: supervoxel {stem} is 0 or too large")
                    f = tf.extractfile(m)
                    items.append((sv, f.read() if f is not None else b""))
        except (tarfile.TarError, EOFError, ValueError) as e:
            raise BadRequest(f"bad tar body for load: {e}") from None
        ctx = call.ctx
        with self.store.batch(self.shared_ctx(ctx)) as b:
            for sv, data in items:
                b.put(self.blob_tkey(sv), data)
            self.log_mutation(ctx, "load", {"Supervoxels": len(items),
                                            "Bytes": sum(len(d) for _, d in items)}, b)
        return Response(b"")
