"""The datatype plugin interface: what a datatype declares and how requests reach it.

A datatype is one :class:`Datatype` subclass; each data instance is one object of it. The
class declares its type name/URL/version, its creation settings (``parse_settings``), its
endpoints (``@endpoint`` on methods) and its TKey classes (``tkey_classes``, for
documentation and the uniqueness test).

An endpoint declaration is the route's whole description (:mod:`dvidpy.http.spec`): the
method(s), a path template after the instance name whose first segment is the keyword
(``"key/{key:key}"``, ``"raw/{dims:dims}/{size:size}/{offset:coord}/{format?}"``), typed
query parameters (``query=(Q("scale", "count", "pyramid level"),)``), the request body
(``body="json"``/``"octet"``/``"protobuf"`` or a :class:`~dvidpy.http.spec.Body`), the
response media types (``returns=``), whether it mutates stored data (default: POST, PUT
and DELETE do; ``mutates=False`` for queries such as ROI ``POST ptquery``) and its access
class. From it the server dispatches (an O(1) lookup on method and keyword), parses and
validates parameters (a 400 naming the parameter), rejects mutations on locked nodes
(unless the instance is unversioned), documents the route in ``/api/openapi.json`` and
fuzzes it in the tests.

Requests arrive as a :class:`Call` whose ``params`` hold the parsed path and query
parameters (``args`` the raw path segments after the keyword). Handlers return a
Starlette ``Response`` (or a JSON-able value, sent as ``application/json``) and raise
:class:`~dvidpy.errors.DvidError` for bad input.

Built-in datatypes register with :func:`register_datatype` when :mod:`datatypes` is
imported; third-party packages add an entry point in the ``dvidpy.datatypes`` group whose
value is the class.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.responses import JSONResponse, Response

from dvidpy import jsonio
from dvidpy.auth.identity import UNCHECKED, Identity
from dvidpy.dag import timestamp
from dvidpy.errors import BadRequest, NotFound
from dvidpy.http.spec import JSON, OCTET, TEXT, Body, Param, Q, RouteSpec, make_spec
from dvidpy.keys import MARK_DATA, instance_prefix, tkey
from dvidpy.versioned import VersionedBatch, VersionedCtx, VersionedStore

if TYPE_CHECKING:
    from dvidpy.repo import Repo, RepoManager

COMPRESSION_NAMES = {
    "none": "No compression",
    "snappy": "Go Snappy compression",
    "gzip": "gzip compression",
    "lz4": "LZ4 compression",
    "jpeg": "jpeg compression",
}
TRUE_STRINGS = ("true", "on")
#: TKey class of every datatype's mutation log: version (4 B) + mutation id (8 B).
MUTLOG_CLASS = 254
#: TKey class of every datatype's blobstore: reference (ASCII) -> blob bytes.
BLOB_CLASS = 253


@dataclass
class InstanceMeta:
    """Persistent description of one data instance."""

    name: str
    typename: str
    data_uuid: str
    instance_id: int
    repo_uuid: str  # version where it was created (DVID's RepoUUID)
    root_uuid: str
    versioned: bool = True
    compression: str = "lz4"
    compression_level: int = -1
    checksum: str = "none"
    tags: dict[str, str] = field(default_factory=dict)
    syncs: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    store: str = "default"

    def to_json(self) -> dict[str, Any]:
        """Persisted form."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> InstanceMeta:
        """Inverse of :meth:`to_json`."""
        return cls(**d)


@dataclass
class Call:
    """One request to a data instance, already resolved to a version."""

    method: str
    keyword: str
    args: list[str]
    query: Mapping[str, str]
    body: bytes | bytearray
    ctx: VersionedCtx
    headers: Mapping[str, str] = field(default_factory=dict)
    path: str = ""
    #: declared path and query parameters, parsed (absent query parameters: defaults)
    params: dict[str, Any] = field(default_factory=dict)
    #: who is calling (:class:`~dvidpy.auth.identity.Identity`; everything allowed when
    #: auth is off)
    identity: Identity = UNCHECKED

    def json(self) -> Any:
        """The body parsed as JSON (bounded in depth); :class:`BadRequest` when malformed."""
        return jsonio.loads(self.body, f"request body of {self.path}")

    def flag(self, name: str) -> bool:
        """True when query parameter ``name`` is ``true`` or ``on`` (DVID's rule)."""
        return self.query.get(name, "").lower() in TRUE_STRINGS

    def arg(self, i: int, what: str) -> str:
        """Path segment ``i`` after the keyword; :class:`BadRequest` naming ``what``."""
        if i >= len(self.args) or self.args[i] == "":
            raise BadRequest(f"missing {what} in request ({self.path})")
        return self.args[i]

    def int_query(self, name: str, default: int) -> int:
        """Integer query parameter with a default; :class:`BadRequest` when not an int."""
        v = self.query.get(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise BadRequest(f"query parameter {name}={v!r} is not an integer") from None


Handler = Callable[["Datatype", Call], Any]


@dataclass
class SyncEvent:
    """A change published by one instance to the instances synced to it.

    ``kind`` names the change (e.g. ``"merge"``, ``"cleave"``, ``"split"``,
    ``"split-supervoxel"``, ``"block-ingested"``, ``"block-mutated"``,
    ``"element-added"``); ``payload`` is kind-specific and documented by the publisher.
    """

    kind: str
    payload: Any
    mutation_id: int = 0


def endpoint(methods: str | tuple[str, ...], template: str, summary: str = "",
             **kw: Any) -> Callable[[Handler], Handler]:
    """Declare a handler for ``methods`` (e.g. ``"GET"`` or ``("GET", "HEAD")``) of the
    path ``template`` after the instance name; its first segment is the keyword. Keywords
    of :func:`dvidpy.http.spec.make_spec` (``query``, ``body``, ``returns``, ``mutates``,
    ``access``, ``params``, ``inline``) complete the declaration; ``summary`` defaults to
    the first line of the handler's docstring.

    A bare keyword (``"info"``) takes no further path segments.
    """
    ms = (methods,) if isinstance(methods, str) else methods

    def deco(fn: Handler) -> Handler:
        specs = getattr(fn, "_dvid_specs", [])
        doc = (fn.__doc__ or "").strip()
        for m in ms:
            specs.append(make_spec(m, template, fn, summary or doc.split("\n")[0], doc=doc,
                                   **kw))
        fn._dvid_specs = specs  # type: ignore[attr-defined]
        return fn

    return deco


def json_response(obj: Any, status: int = 200) -> Response:
    """Compact JSON response (DVID emits no extra whitespace)."""
    return Response(
        json.dumps(obj, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
    )


@dataclass(frozen=True)
class PyramidPlan:
    """How a datatype builds the multiscale levels above a box of its scale 0, one
    block-aligned box of a level at a time (:meth:`Datatype.pyramid_plan`; used by ingest
    jobs to run the pyramid as parallel tasks).

    ``levels``: levels to build (1..levels; 0: none to build, ``note`` says why), each
    shrinking x, y, z by ``factors`` and stored in blocks of ``block_size`` voxels. Level
    ``k`` blocks are computed from level ``k - 1`` (scale 0 for ``k`` = 1), so every block
    of one level must be built before the next level's.
    """

    levels: int
    block_size: tuple[int, int, int]
    factors: tuple[int, int, int] = (2, 2, 2)
    note: str = ""

    def block_range(self, box: Sequence[int], level: int,
                    ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """``(lo, hi)`` block coordinates (inclusive) of level ``level`` above the scale-0
        voxel box ``box`` (``x0, y0, z0, x1, y1, z1``, exclusive end, non-empty)."""
        lo, hi = [], []
        for i in range(3):
            f = self.factors[i] ** level
            b = self.block_size[i]
            lo.append((box[i] // f) // b)
            hi.append((-(-box[i + 3] // f) - 1) // b)
        return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


class Datatype:
    """Base of every datatype; one object per data instance."""

    type_name: ClassVar[str] = ""
    type_url: ClassVar[str] = ""
    type_version: ClassVar[str] = ""
    help_text: ClassVar[str] = ""
    default_compression: ClassVar[str] = "lz4"
    #: event kinds this datatype publishes to instances synced to it.
    publishes: ClassVar[frozenset[str]] = frozenset()
    #: typename of a sync source -> event kinds handled from it (checked by POST sync).
    subscribes: ClassVar[dict[str, frozenset[str]]] = {}
    #: typenames of which at most one instance may be a sync source (the one labelmap an
    #: annotation or tarsupervoxels follows; checked by POST sync over old and new syncs).
    one_sync_of: ClassVar[frozenset[str]] = frozenset()
    #: class byte -> description of the TKey class (1 is reserved for properties).
    tkey_classes: ClassVar[dict[int, str]] = {}
    #: (method, keyword) -> declaration, collected from ``@endpoint`` along the MRO
    _routes: ClassVar[dict[tuple[str, str], RouteSpec]] = {}
    #: keywords of inherited endpoints this datatype does not serve (a variant of a type)
    omit_endpoints: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        routes: dict[tuple[str, str], RouteSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                for spec in getattr(attr, "_dvid_specs", ()):
                    routes[(spec.method, spec.segments[0].literal or "")] = spec
        cls._routes = {k: v for k, v in routes.items() if k[1] not in cls.omit_endpoints}
        if not cls.__dict__.get("help_text"):
            module = sys.modules.get(cls.__module__)
            cls.help_text = (module.__doc__ if module else None) or cls.__doc__ or ""

    def __init__(self, meta: InstanceMeta, store: VersionedStore, repo: Repo,
                 manager: RepoManager) -> None:
        self.meta = meta
        self.store = store
        self.repo = repo
        self.manager = manager

    # ----- creation and description ---------------------------------------------------

    @classmethod
    def parse_settings(cls, settings: Mapping[str, str]) -> dict[str, Any]:
        """Validate type-specific creation settings (lower-cased keys, string values) and
        return the persisted ``meta.config``. Unknown settings are ignored, as DVID does."""
        return {}

    def on_create(self) -> None:
        """Called once after the instance is created (before it is persisted)."""

    def update_settings(self, settings: Mapping[str, str]) -> None:
        """``POST info``: change settings after creation (default: not supported)."""
        raise BadRequest(f"instance {self.meta.name!r} does not accept settings changes")

    def extended(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        """The ``Extended`` member of ``info`` at ``ctx`` (None: master HEAD)."""
        return {}

    def compression_string(self) -> str:
        """DVID's ``Base.Compression`` text, e.g. ``"LZ4 compression, level -1"``."""
        name = COMPRESSION_NAMES.get(self.meta.compression, self.meta.compression)
        return f"{name}, level {self.meta.compression_level}"

    def base_info(self) -> dict[str, Any]:
        """The ``Base`` member of ``info`` (same fields for every datatype)."""
        m = self.meta
        return {
            "TypeName": self.type_name,
            "TypeURL": self.type_url,
            "TypeVersion": self.type_version,
            "DataUUID": m.data_uuid,
            "Name": m.name,
            "RepoUUID": m.repo_uuid,
            "Compression": self.compression_string(),
            "Checksum": "CRC32 checksum" if m.checksum == "crc32" else "No checksum",
            "Syncs": list(m.syncs),
            "Versioned": m.versioned,
            "KVStore": self.manager.store_description(m.store),
            "LogStore": self.manager.store_description(m.store),
            "Tags": dict(m.tags) if m.tags else None,
        }

    def info(self, ctx: VersionedCtx | None) -> dict[str, Any]:
        """``GET info`` JSON: ``Base`` and ``Extended``."""
        return {"Base": self.base_info(), "Extended": self.extended(ctx)}

    def tkey_voxel_box(self, tk: bytes) -> tuple[tuple[int, int, int], tuple[int, int, int]] | None:
        """Voxel box ``((x0, y0, z0), (x1, y1, z1))`` (max exclusive) covered by the data
        stored under TKey ``tk``, for spatial filters (``dvidpy push --roi``). ``None``: not
        spatial (the default; also for a spatial type's non-block keys), always kept."""
        return None

    def roi_filter_value(self, tk: bytes, value: bytes,
                         inside: Callable[[Any], Any]) -> bytes | None:
        """The part of the value stored under TKey ``tk`` that lies in an ROI, for spatial
        filters (``dvidpy push --roi``) of data that a key filter can't restrict (e.g.
        annotation label lists, which hold elements from everywhere).

        ``inside`` maps integer voxel points ``(N, 3)`` (x, y, z) to a bool ``(N,)`` mask:
        whether each lies in one of the ROI's blocks (vectorized; call it once per value).
        Return ``value`` itself to keep it whole (the default), filtered bytes, or
        ``None`` when nothing of it lies in the ROI: the sender then sends a tombstone
        for ``tk`` at that version (so the receiver does not show an ancestor's list
        instead), or nothing in a flattened push. Only keys kept by
        :meth:`tkey_voxel_box` reach this hook; tombstones never do.
        """
        return value

    # ----- multiscale pyramid (ingest jobs run it as tasks) -----------------------------

    def pyramid_plan(self, ctx: VersionedCtx, box: Sequence[int]) -> PyramidPlan:
        """The levels to build above the scale-0 voxel box ``box`` (``x0, y0, z0, x1, y1,
        z1``, exclusive end) at ``ctx``; changes nothing stored. Default: no pyramid
        (``levels`` 0 and a note saying so)."""
        return PyramidPlan(0, (1, 1, 1), note=f"{self.type_name} has no pyramid")

    def prepare_pyramid(self, ctx: VersionedCtx, plan: PyramidPlan) -> None:
        """Make what the levels of ``plan`` need (level instances) so that
        :meth:`build_pyramid_blocks` calls can then run in parallel; called once a plan
        is accepted. Default: nothing."""

    def build_pyramid_blocks(self, ctx: VersionedCtx, level: int, lo: Sequence[int],
                             hi: Sequence[int]) -> int:
        """Compute the blocks ``lo``..``hi`` (block coordinates, inclusive) of pyramid level
        ``level`` (1..the plan's ``levels``) from the stored level ``level - 1`` and store
        them; returns how many blocks were written. Idempotent: running it again over the
        same stored level below writes the same blocks. Default: 400 (no pyramid)."""
        raise BadRequest(f"{self.type_name} instances have no pyramid levels to build")

    # ----- version diff (GET /api/repo/{uuid}/diff/{from}/{to}) --------------------------

    def describe_key(self, tk: bytes) -> Any:
        """How a version diff lists TKey ``tk``: a JSON-able value as clients know the key
        (a key string, a label id, block coordinates). ``None`` leaves the key out of the
        lists (internal bookkeeping). Default: mutation log and blobstore keys are left
        out, class-1 properties show as ``"property:NAME"``, anything else as hex."""
        if not tk or tk[0] in (MUTLOG_CLASS, BLOB_CLASS):
            return None
        if tk[0] == 1:
            return "property:" + tk[2:].rstrip(b"\x00").decode("utf-8", "replace")
        return tk.hex()

    def describe_keys(self, tks: list[bytes]) -> list[Any]:
        """:meth:`describe_key` of each of ``tks``, in order (a datatype may override this
        with a faster batch form giving the same answers)."""
        describe = self.describe_key
        return [describe(tk) for tk in tks]

    def diff_summary(self, ctx_from: VersionedCtx, ctx_to: VersionedCtx,
                     changes: list[tuple[bytes, Any, Any]]) -> dict[str, Any] | None:
        """A typed summary of what changed in this instance between two versions, or None
        (the default). ``changes`` are :meth:`VersionedStore.diff
        <dvidpy.versioned.VersionedStore.diff>`'s ``(tkey, stored value at from, stored
        value at to)`` triples (``None`` absent), mutation-log keys included."""
        return None

    def mutations_between(self, changes: list[tuple[bytes, Any, Any]],
                          log_class: int = MUTLOG_CLASS) -> dict[str, list[Any]]:
        """Mutation-log records among ``changes``: ``"to"`` those only in the history of
        the ``to`` version, ``"from"`` those only in the history of ``from``."""
        out: dict[str, list[Any]] = {"to": [], "from": []}
        cls = bytes((log_class,))
        for _, old, new in [c for c in changes if c[0][:1] == cls]:
            for side, raw in (("to", new), ("from", old)):
                if isinstance(raw, bytes | bytearray):
                    out[side].append(json.loads(raw))
        return out

    # ----- dispatch ----------------------------------------------------------------------

    @classmethod
    def routes(cls) -> list[RouteSpec]:
        """Every endpoint declaration of this datatype (inherited ones included)."""
        return list(cls._routes.values())

    @classmethod
    def serves(cls, method: str, keyword: str) -> bool:
        """Whether this datatype declares an endpoint ``method`` on ``keyword`` (e.g.
        ``("POST", "raw")``; inherited ones included, omitted ones not)."""
        return (method, keyword) in cls._routes

    @classmethod
    def route(cls, method: str, keyword: str, path: str = "") -> RouteSpec:
        """The declaration for ``method`` on ``keyword`` (HEAD falls back to GET); 400 for
        an unknown keyword or method."""
        spec = cls._routes.get((method, keyword))
        if spec is None and method == "HEAD":
            spec = cls._routes.get(("GET", keyword))
        if spec is not None:
            return spec
        where = f" ({path})" if path else ""
        if any(k == keyword for _, k in cls._routes):
            allowed = ", ".join(sorted(m for m, k in cls._routes if k == keyword))
            raise BadRequest(f"{method} not supported on endpoint {keyword!r} of "
                             f"{cls.type_name} instances (allowed: {allowed}){where}")
        raise BadRequest(f"unknown endpoint {keyword!r} for {cls.type_name} instances{where}")

    def is_mutation(self, method: str, keyword: str) -> bool:
        """Whether a request changes data (rejected on locked nodes of versioned data), as
        the endpoint declares it."""
        spec = self._routes.get((method, keyword))
        if spec is None and method == "HEAD":
            spec = self._routes.get(("GET", keyword))
        return spec.mutates if spec is not None else method in ("POST", "PUT", "DELETE")

    def handle(self, call: Call) -> Response:
        """Run the handler for ``call`` (parsing its declared parameters into
        ``call.params`` when the caller has not); 400 for an unknown keyword or method."""
        spec = self.route(call.method, call.keyword, call.path)
        if not call.params:
            call.params = spec.match_segments([call.keyword, *call.args], call.path)
            call.params.update(spec.parse_query(call.query))
        out = spec.handler(self, call)
        if isinstance(out, Response):
            return out
        return json_response(out)

    def instance_lock(self, on_acquire: Callable[[], None] | None = None) -> Any:
        """A reentrant lock serializing this instance's read-modify-write edits: a
        ``threading.RLock`` on a single server; across every server of a coordinated
        deployment (:mod:`dvidpy.coord`), with ``on_acquire`` run after each outermost
        acquisition to drop in-memory state other servers may have changed."""
        import threading

        coord = getattr(self.manager, "coord", None)
        if coord is None or not coord.shared:
            return threading.RLock()
        return coord.lock(f"instance/{self.meta.data_uuid}", on_acquire)

    @property
    def shared_store(self) -> bool:
        """True when other servers write this instance's store too."""
        return bool(getattr(self.store, "shared", False))

    def save_meta(self) -> None:
        """Persist changes to ``self.meta``."""
        self.manager.save_repo(self.repo)

    # ----- properties stored per version (extents, ...) ----------------------------------

    def get_property(self, ctx: VersionedCtx, name: str) -> Any:
        """A JSON property stored per version (resolved like any key), or None."""
        raw = self.store.get(ctx, tkey(1, name.encode() + b"\x00"))
        return None if raw is None else json.loads(raw)

    def put_property(self, ctx: VersionedCtx, name: str, value: Any) -> None:
        """Store a JSON property at the context's version."""
        self.store.put(ctx, tkey(1, name.encode() + b"\x00"), json.dumps(value).encode())

    # ----- mutation log (append-only, per version) ---------------------------------------

    def log_mutation(self, ctx: VersionedCtx, action: str, fields: dict[str, Any],
                     batch: VersionedBatch | None = None, mutation_id: int | None = None) -> int:
        """Append a JSON record to this instance's mutation log at the context's version.

        The record carries ``Action``, ``MutationID``, ``UUID``, ``User`` (``u=``), ``App``
        (``app=``) and ``Timestamp`` plus ``fields``. Pass the ``batch`` that writes the data
        so the record lands atomically with it; the record also enters the server's
        mutation stream (:mod:`dvidpy.mutations`) in that batch. Returns the record's
        mutation id (a new repo-wide id unless ``mutation_id`` is given). Records are keyed
        by version and
        mutation id, so ``GET mutations`` at a version lists that version's records only.
        """
        mid = mutation_id if mutation_id is not None else self.manager.next_mutation_id(
            self.repo)
        rec = {"Action": action, "MutationID": mid, "UUID": ctx.node.uuid, "User": ctx.user,
               "App": ctx.app, "Timestamp": timestamp(), **fields}
        tk = tkey(MUTLOG_CLASS, ctx.vbytes + mid.to_bytes(8, "big"))
        raw = json.dumps(rec, separators=(",", ":")).encode()
        if batch is not None:
            batch.put(tk, raw)
            self.manager.mutations.enqueue(self, rec, batch.wb)
        else:
            with self.store.batch(ctx) as b:
                b.put(tk, raw)
                self.manager.mutations.enqueue(self, rec, b.wb)
        return mid

    def mutations(self, ctx: VersionedCtx, version: int | None = None) -> list[dict[str, Any]]:
        """The mutation records written at ``version`` (default: ``ctx``'s own; else an
        ancestor of it), in mutation-id order."""
        v = ctx.vbytes if version is None else version.to_bytes(4, "big")
        return [jsonio.loads(raw, f"mutation record of {self.meta.name!r}")
                for _, raw in self.store.scan_prefix(ctx, tkey(MUTLOG_CLASS, v))]

    @endpoint("GET", "mutations", "This version's mutation log records, in order")
    def _get_mutations(self, call: Call) -> Any:
        return self.mutations(call.ctx)

    def version_ctx(self, call: Call, spec: str) -> VersionedCtx:
        """Context of this instance at the version ``spec`` (UUID prefix / branch syntax);
        400 when it is unknown or in another repo."""
        repo, node = self.manager.resolve(spec)
        if repo is not self.repo:
            raise BadRequest(f"version {spec!r} is not in the repo of {self.meta.name!r}")
        return self.manager.context(self, node, call.ctx.user, call.ctx.app)

    def version_chain(self, call: Call) -> tuple[VersionedCtx, VersionedCtx, list[int]]:
        """``(from ctx, to ctx, versions from → to)`` for the path parameters ``from`` and
        ``to``; the first must be an ancestor of (or equal to) the second, else 400. The
        chain follows the second's ancestry (first parents at merge nodes)."""
        beg = self.version_ctx(call, call.params["from"])
        end = self.version_ctx(call, call.params["to"])
        if beg.version not in end.ancestry.pos:
            raise BadRequest(f"version {beg.node.uuid} is not an ancestor of {end.node.uuid}")
        chain = []
        v = end.version
        while True:
            chain.append(v)
            if v == beg.version:
                break
            parents = self.repo.dag.node(v).parents
            v = next(p for p in parents if beg.version in self.repo.dag.ancestry(p).pos)
        return beg, end, chain[::-1]

    @endpoint("GET", "mutations-range/{from}/{to}", "Mutation records of every version from "
              "one to another", params=(
                  Param("from", "uuid", "first version (an ancestor of to, or to itself)"),
                  Param("to", "uuid", "last version")))
    def _get_mutations_range(self, call: Call) -> Response:
        """One JSON array of the mutation records of every version from ``{from}`` to
        ``{to}`` (inclusive, ancestor first)."""
        _, end, chain = self.version_chain(call)
        recs: list[dict[str, Any]] = []
        for v in chain:
            recs.extend(self.mutations(end, v))
        return Response(json.dumps(recs, separators=(",", ":")).encode(),
                        media_type="application/json")

    # ----- endpoints every datatype has -------------------------------------------------

    @endpoint("GET", "info", "Instance description: Base and Extended", inline=True)
    def _get_info(self, call: Call) -> Any:
        info = self.info(call.ctx)
        if not call.identity.admin:  # store locations are for administrators
            spec = self.manager.settings.stores.get(self.meta.store)
            engine = spec.engine if spec else self.meta.store
            info["Base"]["KVStore"] = info["Base"]["LogStore"] = engine
        return info

    @endpoint("POST", "info", "Change settings of the instance", body=Body(
        JSON, "object of setting name -> string value", schema={
            "type": "object", "additionalProperties": {"type": "string"}}),
        returns=TEXT)
    def _post_info(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict):
            raise BadRequest("POST info expects a JSON object of settings")
        settings = {}
        for k, v in body.items():
            if not isinstance(v, str):
                raise BadRequest(f"Setting for {k!r} was not a string")
            settings[k.lower()] = v
        self.update_settings(settings)
        self.save_meta()
        return Response(f"Updated settings of {self.meta.name}\n", media_type="text/plain")

    @endpoint("GET", "help", "The datatype's HTTP API description", returns=TEXT,
              inline=True)
    def _help(self, call: Call) -> Response:
        return Response(self.help_text or self.type_name, media_type="text/plain")

    @endpoint("GET", "tags", "The instance's tags", inline=True)
    def _get_tags(self, call: Call) -> Any:
        return {"Tags": dict(self.meta.tags) if self.meta.tags else None}

    @endpoint("POST", "tags", "Add (or with replace=true set) the instance's tags", body=Body(
        JSON, "object of tag -> string value", schema={
            "type": "object", "additionalProperties": {"type": "string"}}),
        query=(Q("replace", "bool", "replace every tag instead of adding"),),
        returns=TEXT)
    def _post_tags(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise BadRequest("POST tags expects a JSON object of string values")
        if call.flag("replace"):
            self.meta.tags = dict(body)
        else:
            self.meta.tags.update(body)
        self.save_meta()
        return Response(b"", media_type="text/plain")

    @endpoint("POST", "sync", "Sync this instance to others", body=Body(
        JSON, '{"sync": "name1,name2"}', schema={
            "type": "object", "properties": {"sync": {"type": "string"}},
            "required": ["sync"]}),
        query=(Q("replace", "bool", "replace the syncs instead of adding"),),
        returns=TEXT)
    def _post_sync(self, call: Call) -> Response:
        body = call.json()
        if not isinstance(body, dict) or not isinstance(body.get("sync"), str):
            raise BadRequest('POST sync expects {"sync": "name1,name2"}')
        names = [n.strip() for n in body["sync"].split(",") if n.strip()]
        for n in names:
            if n not in self.repo.instances:
                raise BadRequest(f"can't sync {self.meta.name!r} to unknown instance {n!r}")
            if n == self.meta.name:
                raise BadRequest("an instance can't sync to itself")
        after = names if call.flag("replace") else [
            *self.meta.syncs, *(n for n in names if n not in self.meta.syncs)]
        self.check_syncs(after)
        self.meta.syncs = after
        self.save_meta()
        return Response(b"", media_type="text/plain")

    def check_syncs(self, names: list[str]) -> None:
        """Check ``names``, the sync sources the instance would have after the request
        (all of them, old and new): 400 for a datatype this one cannot follow, or for a
        second source of a type in :attr:`one_sync_of`."""
        insts = self.repo.instances
        for n in names:
            src = insts.get(n)  # an old sync may name a deleted instance: nothing to check
            if src is not None and src.type_name not in self.subscribes:
                raise BadRequest(
                    f"{self.type_name} instance {self.meta.name!r} can't sync to "
                    f"{src.type_name} instance {n!r}"
                )
        for t in self.one_sync_of:
            srcs = sorted({n for n in names if n in insts and insts[n].type_name == t})
            if len(srcs) > 1:
                raise BadRequest(f"{self.type_name} {self.meta.name!r} syncs to one {t}, "
                                 f"not {srcs}")

    # ----- sync: synchronous publish/subscribe between instances -------------------------

    def subscribers(self) -> list[Datatype]:
        """Instances of the repo that sync to this one (their ``Syncs`` name it)."""
        return [i for i in self.repo.instances.values() if self.meta.name in i.meta.syncs]

    def publish(self, ctx: VersionedCtx, event: SyncEvent) -> None:
        """Deliver ``event`` to every subscriber, in order, before returning.

        Delivery is synchronous so a write returns only once synced views are consistent
        at the same version; subscribers get a context for the same node.
        """
        for sub in self.subscribers():
            if event.kind in sub.subscribes.get(self.type_name, frozenset()):
                sub_ctx = self.manager.context(sub, ctx.node, ctx.user, ctx.app)
                sub_ctx.allow_locked = ctx.allow_locked
                sub.on_event(self, sub_ctx, event)

    def on_event(self, source: Datatype, ctx: VersionedCtx, event: SyncEvent) -> None:
        """Handle an event published by ``source`` (default: ignore)."""

    # ----- blobstore ---------------------------------------------------------------------
    # Blobs are content-addressed and read the same at every version (as in DVID), but
    # each is stored as a key of the version that wrote it (TKey class BLOB_CLASS), so a
    # repo transfer carries a version's blobs (posted annotation JSON, split RLEs) with
    # the version's data. A blob posted directly to an already transferred (locked)
    # version is not re-sent.

    @staticmethod
    def blob_ref(data: bytes) -> str:
        """Content reference of ``data``: URL-safe base64 (unpadded) of a 16-byte BLAKE2b."""
        digest = hashlib.blake2b(data, digest_size=16).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def put_blob(self, ctx: VersionedCtx, data: bytes,
                 batch: VersionedBatch | None = None) -> str:
        """Store ``data`` at ``ctx``'s version (in ``batch`` when given, so it commits with
        the mutation it documents; else directly, also on a locked node like DVID's
        blobstore) and return its reference. Storing the same bytes again is harmless."""
        data = bytes(data)
        ref = self.blob_ref(data)
        tk = tkey(BLOB_CLASS, ref.encode())
        if batch is not None:
            batch.put(tk, data)
        else:
            self.store.put(replace(ctx, allow_locked=True), tk, data)
        return ref

    def get_blob(self, ref: str) -> bytes | None:
        """The blob with reference ``ref`` written at any version, or None."""
        from storage.base import KeyRange

        pre = instance_prefix(self.meta.instance_id) + tkey(BLOB_CLASS, ref.encode())
        for k, v in self.store.engine.scan(KeyRange.prefix(pre)):
            if len(k) == len(pre) + 5 and k[-1] == MARK_DATA:
                return v
        return None

    # DVID serves blobstore before its locked-node check: not a mutation of versioned data
    @endpoint("POST", "blobstore", "Store a blob; answers its content reference",
              body=Body(OCTET, "the blob"), mutates=False, access="write")
    def _post_blob(self, call: Call) -> Any:
        return {"reference": self.put_blob(call.ctx, call.body)}

    @endpoint("GET", "blobstore/{ref}", "A blob by its reference", returns=OCTET,
              params=(Param("ref", "str", "content reference from POST blobstore"),))
    def _get_blob(self, call: Call) -> Response:
        ref = call.params["ref"]
        data = self.get_blob(ref)
        if data is None:
            raise NotFound(f"no blob with reference {ref!r} in {self.meta.name!r}")
        return Response(data, media_type="application/octet-stream")


_DATATYPES: dict[str, type[Datatype]] = {}


def register_datatype(cls: type[Datatype]) -> type[Datatype]:
    """Class decorator: make ``cls`` creatable under ``cls.type_name``."""
    if not cls.type_name:
        raise ValueError(f"{cls.__name__} has no type_name")
    _DATATYPES[cls.type_name] = cls
    return cls


def datatype_class(name: str) -> type[Datatype]:
    """The datatype registered as ``name`` (entry points consulted on a miss)."""
    if name not in _DATATYPES:
        for ep in entry_points(group="dvidpy.datatypes"):
            if ep.name == name:
                register_datatype(ep.load())
    try:
        return _DATATYPES[name]
    except KeyError:
        raise BadRequest(f"unknown datatype {name!r}") from None


def datatypes() -> dict[str, type[Datatype]]:
    """All registered datatypes by name (built-ins plus loaded entry points)."""
    for ep in entry_points(group="dvidpy.datatypes"):
        if ep.name not in _DATATYPES:
            try:
                register_datatype(ep.load())
            except Exception:  # a broken plugin must not take the server down
                continue
    return dict(_DATATYPES)


__all__ = [
    "Call",
    "Datatype",
    "InstanceMeta",
    "JSONResponse",
    "PyramidPlan",
    "SyncEvent",
    "datatype_class",
    "datatypes",
    "endpoint",
    "json_response",
    "register_datatype",
]
