"""Server configuration: a TOML file in DVID's shape (dvid-api.md §16.2).

Example::

    [server]
    httpAddress = "127.0.0.1:8000"
    note = "lab server"
    corsDomains = ["*"]
    rwmode = ""                     # "readonly" | "fullwrite"
    maxRequestBytes = 4294967296    # bodies / responses larger than this get 413 / 400
    headerTimeout = 30              # s a client may take to send its request headers
    bodyTimeout = 60                # s a client may pause while sending its body (408)
    writeBatchBytes = 16777216      # bulk writes commit in batches of about this many bytes

    [store.raid6]
    engine = "leveldb"              # lmdb | leveldb | rocksdb | postgres | gcs | s3 | memory
    path = "/data/dbs/leveldb"
    [store.old]
    engine = "badger"               # an engine dvidpy lacks: an error, unless ...
    substitute = "leveldb"          # ... the TOML names the engine that stands in for it
    path = "/data/dbs/badger"
    [store.fast]
    engine = "rocksdb"
    path = "/ssd/rocks"
    [store.cloud]
    engine = "gcs"
    bucket = "my-bucket/prefix"
    endpoint = "http://127.0.0.1:9023"   # optional, e.g. an emulator
    [store.pg]
    engine = "postgres"
    dsn = "postgresql://dvid@db.example:5432/dvid"   # password: PGPASSWORD or ~/.pgpass
    table = "dvid_kv"
    [store.s3]
    engine = "s3"
    bucket = "my-bucket/prefix"
    endpoint = "http://127.0.0.1:9000"   # optional (MinIO, Ceph); default AWS
    region = "us-east-1"                 # credentials: AWS_* environment variables

    [backend.default]                # required unless exactly one store exists
    store = "raid6"
    [backend.metadata]               # optional; defaults to the default store
    store = "raid6"
    [backend.labelmap]               # by datatype name
    store = "fast"
    [backend."segmentation:28841c8277e044a7b187dda03e18da13"]   # by instance name:root UUID
    store = "fast"
    [backend."2ff3197a5a9844be9a905b38d12d41ca"]                # by data UUID
    store = "cloud"
    [backend."type=meshes"]                                      # by instance tag key=value
    store = "cloud"

Store precedence for an instance (first match wins): data UUID, ``name:rootUUID``, tag
``key=value``, datatype name, ``default``. Relative paths are relative to the TOML file.

Engine names: dvidpy's own (see :func:`storage.available_engines`) and DVID's names for the
same engines (:data:`ENGINE_ALIASES`). Any other name - DVID's ``badger``, a typo - is a
:class:`ConfigError` naming the known engines, unless the store says which engine serves it
instead (``substitute = "leveldb"``); ``substitute`` next to an engine dvidpy has is an error
too (it would never apply).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dvidpy.auth.config import AuthConfigError, AuthSettings
from storage import available_engines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: DVID's names for engines dvidpy has (the same engine, so no ``substitute`` is needed)
ENGINE_ALIASES = {"basholeveldb": "leveldb", "gbucket": "gcs"}
DEFAULT_MAX_REQUEST = 4 << 30
DEFAULT_HEADER_TIMEOUT = 30.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_WRITE_BATCH = 16 << 20  # 64 MiB batches cost LevelDB more memory and speed


DEFAULT_STREAM = "dvidpy-mutations"
DEFAULT_RETAIN = 100_000


class ConfigError(ValueError):
    """The configuration file is invalid."""


#: engines of ``dvidpy serve`` without a config, the first one for new folders
EMBEDDED_DEFAULTS = ("lmdb", "leveldb")
#: engines whose location is a local directory (relative paths resolve from the TOML)
DIRECTORY_ENGINES = ("leveldb", "rocksdb", "lmdb")


def folder_engine(path: str | Path) -> str | None:
    """The engine whose data the folder ``path`` holds: ``"lmdb"`` (a ``data.mdb`` file),
    ``"leveldb"`` (a ``CURRENT`` file, or any other content: what ``dvidpy serve`` always
    made before LMDB became its default), or None for a missing or empty folder (dvidpy's
    own ``dvidpy-*`` holder files do not count)."""
    p = Path(path)
    if (p / "data.mdb").is_file():
        return "lmdb"
    if (p / "CURRENT").is_file():
        return "leveldb"
    try:
        return "leveldb" if any(not x.name.startswith("dvidpy-") for x in p.iterdir()) \
            else None
    except (FileNotFoundError, NotADirectoryError):
        return None


def _engine_name(alias: str, opts: dict[str, Any]) -> tuple[str, str]:
    """``(engine to open, engine it substitutes or "")`` for ``[store.alias]``, popping
    ``engine`` and ``substitute`` from ``opts``; ConfigError for a name dvidpy lacks (with
    the known names and how to substitute) and for a pointless or unknown ``substitute``."""
    where = f"[store.{alias}]"
    asked = opts.pop("engine")
    sub = opts.pop("substitute", None)
    if not isinstance(asked, str) or (sub is not None and not isinstance(sub, str)):
        raise ConfigError(f"{where} engine and substitute must be strings")
    known = available_engines()
    names = (f"{', '.join(known)} (DVID's "
             + ", ".join(f"{a} = {e}" for a, e in ENGINE_ALIASES.items()) + ")")
    engine = ENGINE_ALIASES.get(asked, asked)
    if sub is None:
        if engine not in known:
            raise ConfigError(
                f"{where} engine {asked!r} is not a storage engine of dvidpy; known engines: "
                f"{names}. To serve this store with one of them instead, say so in {where}: "
                f'substitute = "leveldb" (or another known engine)')
        return engine, ""
    if engine in known:
        raise ConfigError(f"{where} engine {asked!r} is available, so substitute = {sub!r} "
                          f"would never apply; remove it")
    stand_in = ENGINE_ALIASES.get(sub, sub)
    if stand_in not in known:
        raise ConfigError(f"{where} substitute = {sub!r} is not a storage engine of dvidpy; "
                          f"known engines: {names}")
    return stand_in, asked


def _positive(table: dict[str, Any], key: str, default: Any, typ: type,
              where: str = "[server]") -> Any:
    """``table[key]`` as a positive ``typ`` (``default`` when absent); ConfigError if not."""
    v = table.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise ConfigError(f"{where} {key} must be a positive number, not {v!r}")
    return typ(v)


@dataclass
class StoreSpec:
    """One ``[store.NAME]`` table: an engine name and its options.

    Keys that belong to dvidpy rather than to the engine are taken out of ``options``:
    ``shared`` (several servers use the store at once; default true for ``postgres``,
    false otherwise; ``lmdb`` may be shared by the processes of one machine; see
    :mod:`dvidpy.coord`), and the cache tier of
    :mod:`dvidpy.cache`: ``cache_mb`` (in-process LRU of committed-version reads, MiB;
    0 = none; for LevelDB and RocksDB ``cache_mb`` remains their own block cache),
    ``redis`` (``redis://HOST:PORT/DB`` shared cache) and ``cache_ttl`` (seconds a Redis
    entry lives, default 3600).

    ``substitutes`` is the engine the TOML named when ``engine`` stands in for it
    (``substitute = ...``), else "".
    """

    alias: str
    engine: str
    location: str
    options: dict[str, Any] = field(default_factory=dict)
    shared: bool | None = None
    cache_mb: float = 0.0
    redis: str = ""
    cache_ttl: int = 3600
    substitutes: str = ""

    def is_shared(self) -> bool:
        """Whether several servers may use this store at once (see the class docstring)."""
        if self.shared is not None:
            return self.shared
        from storage.registry import shared_by_default

        return shared_by_default(self.engine)


@dataclass
class MutationSettings:
    """The ``[mutations]`` table: sinks of the mutation stream (:mod:`dvidpy.mutations`).

    ``redis`` (``redis://HOST:PORT/DB``) with ``stream``, ``webhook`` (http URL),
    ``retain`` (records kept in the stream log). DVID's own ``[mutations]`` keys
    (``jsonstore``, ``httpstore``, ``blobstore``) and its ``[kafka]`` table are kept in
    ``dvid`` for reporting; nothing acts on them.
    """

    redis: str = ""
    stream: str = DEFAULT_STREAM
    webhook: str = ""
    retain: int = DEFAULT_RETAIN
    dvid: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tables(cls, mut: Any, kafka: Any) -> MutationSettings:
        """Parse ``[mutations]`` and ``[kafka]``; :class:`ConfigError` when malformed."""
        if not isinstance(mut, dict) or not isinstance(kafka, dict):
            raise ConfigError("[mutations] and [kafka] must be tables")
        s = cls()
        for key in ("redis", "stream", "webhook"):
            v = mut.get(key, getattr(s, key))
            if not isinstance(v, str):
                raise ConfigError(f"[mutations] {key} must be a string, not {v!r}")
            setattr(s, key, v)
        if s.redis and not s.redis.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"[mutations] redis {s.redis!r} is not a redis:// URL")
        if s.webhook and not s.webhook.startswith(("http://", "https://")):
            raise ConfigError(f"[mutations] webhook {s.webhook!r} is not an http(s) URL")
        if not s.stream:
            raise ConfigError("[mutations] stream must not be empty")
        s.retain = _positive(mut, "retain", DEFAULT_RETAIN, int, "[mutations]")
        s.dvid = {k: v for k, v in mut.items() if k in ("jsonstore", "httpstore", "blobstore")}
        if kafka:
            s.dvid["kafka"] = dict(kafka)
        return s


@dataclass
class Settings:
    """Everything the server reads from its configuration."""

    host: str = "127.0.0.1"
    port: int = 8000
    note: str = ""
    cors_domains: list[str] = field(default_factory=lambda: ["*"])
    rwmode: str = ""
    max_request_bytes: int = DEFAULT_MAX_REQUEST
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    write_batch_bytes: int = DEFAULT_WRITE_BATCH
    stores: dict[str, StoreSpec] = field(default_factory=dict)
    backend: dict[str, str] = field(default_factory=dict)  # rule -> store alias
    toml_path: str = ""
    mutations: MutationSettings = field(default_factory=MutationSettings)
    #: whether ``corsDomains`` was set in the TOML (with auth on, unset means no CORS)
    cors_configured: bool = False
    auth: AuthSettings = field(default_factory=AuthSettings)

    @classmethod
    def default(cls, data_dir: str = "dvid-data", engine: str = "",
                shared: bool = False) -> Settings:
        """One embedded store in ``data_dir``: the default of ``dvidpy serve``.

        The engine is what the folder holds (:func:`folder_engine`: LMDB for a new or
        empty folder, LevelDB for one LevelDB made); ``engine`` ("lmdb" or "leveldb")
        forces it for a new folder and must agree with an existing one (ConfigError).
        ``shared``: the store is shared by several processes (``--workers``; LMDB only).
        """
        path = Path(data_dir).resolve()
        found = folder_engine(path)
        if engine and engine not in EMBEDDED_DEFAULTS:
            raise ConfigError(f"--engine must be one of {', '.join(EMBEDDED_DEFAULTS)}, "
                              f"not {engine!r}")
        if engine and found is not None and engine != found:
            raise ConfigError(f"{path} holds {found} data, not {engine}")
        chosen = engine or found or EMBEDDED_DEFAULTS[0]
        s = cls()
        s.stores["default"] = StoreSpec("default", chosen, str(path),
                                        shared=True if shared else None)
        s.backend["default"] = "default"
        return s

    @classmethod
    def memory(cls) -> Settings:
        """Everything in memory (tests, throwaway servers)."""
        s = cls()
        s.stores["default"] = StoreSpec("default", "memory", "")
        s.backend["default"] = "default"
        return s

    @classmethod
    def from_toml(cls, path: str | Path) -> Settings:
        """Parse a TOML file; raises :class:`ConfigError` with a clear message."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config {p}: {e}") from e
        return cls.from_dict(data, base_dir=p.resolve().parent, toml_path=str(p.resolve()))

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None,
                  toml_path: str = "") -> Settings:
        """Build settings from parsed TOML."""
        base_dir = base_dir or Path.cwd()
        s = cls(toml_path=toml_path)
        server = data.get("server", {})
        addr = str(server.get("httpAddress", "127.0.0.1:8000"))
        host, _, port = addr.rpartition(":")
        s.host = host or "127.0.0.1"
        try:
            s.port = int(port)
        except ValueError as e:
            raise ConfigError(f"bad [server] httpAddress {addr!r}") from e
        s.note = str(server.get("note", ""))
        s.cors_domains = list(server.get("corsDomains", ["*"]))
        s.cors_configured = "corsDomains" in server
        s.rwmode = str(server.get("rwmode", ""))
        if s.rwmode not in ("", "readonly", "fullwrite"):
            raise ConfigError(f"bad [server] rwmode {s.rwmode!r}")
        s.max_request_bytes = _positive(server, "maxRequestBytes", DEFAULT_MAX_REQUEST, int)
        s.header_timeout = _positive(server, "headerTimeout", DEFAULT_HEADER_TIMEOUT, float)
        s.body_timeout = _positive(server, "bodyTimeout", DEFAULT_BODY_TIMEOUT, float)
        s.write_batch_bytes = _positive(server, "writeBatchBytes", DEFAULT_WRITE_BATCH, int)
        s.mutations = MutationSettings.from_tables(data.get("mutations", {}),
                                                   data.get("kafka", {}))
        for alias, spec in data.get("store", {}).items():
            if not isinstance(spec, dict) or "engine" not in spec:
                raise ConfigError(f"[store.{alias}] needs an engine")
            opts = dict(spec)
            engine, substitutes = _engine_name(alias, opts)
            loc = str(opts.pop("path", opts.pop("bucket", opts.pop("dsn", ""))))
            if engine in DIRECTORY_ENGINES:
                if not loc:
                    raise ConfigError(f"[store.{alias}] engine {engine} needs a path")
                loc = str((base_dir / loc).resolve())
            elif engine in ("postgres", "s3") and not loc:
                what = "a dsn" if engine == "postgres" else "a bucket"
                raise ConfigError(f"[store.{alias}] engine {engine} needs {what}")
            spec_ = StoreSpec(alias, engine, loc, opts, substitutes=substitutes)
            _store_extras(spec_, opts)
            s.stores[alias] = spec_
        if not s.stores:
            raise ConfigError("the config defines no [store.NAME] table")
        for rule, spec in data.get("backend", {}).items():
            store = spec.get("store") if isinstance(spec, dict) else None
            if store is None:
                continue
            if store not in s.stores:
                raise ConfigError(f"[backend.{rule}] names unknown store {store!r}")
            s.backend[str(rule)] = str(store)
        try:
            s.auth = AuthSettings.from_dict(data.get("auth", {}), data.get("transfer", {}),
                                            base_dir)
        except AuthConfigError as e:
            raise ConfigError(str(e)) from None
        if "default" not in s.backend:
            if len(s.stores) != 1:
                raise ConfigError("several stores are defined but no [backend.default]")
            s.backend["default"] = next(iter(s.stores))
        return s

    def coordinated(self) -> bool:
        """True when servers share the metadata store (and so coordinate through it)."""
        return self.stores[self.metadata_store()].is_shared()

    def store_for_instance(self, typename: str, name: str, root_uuid: str, data_uuid: str,
                           tags: dict[str, str]) -> str:
        """The store alias an instance lives in, by DVID's precedence rules."""
        b = self.backend
        if data_uuid in b:
            return b[data_uuid]
        if f"{name}:{root_uuid}" in b:
            return b[f"{name}:{root_uuid}"]
        for k, v in tags.items():
            if f"{k}={v}" in b:
                return b[f"{k}={v}"]
        if typename in b:
            return b[typename]
        return b["default"]

    def metadata_store(self) -> str:
        """Alias of the store holding repos, DAGs and counters."""
        return self.backend.get("metadata", self.backend["default"])


def _engine_option(engine: str, name: str) -> bool:
    """True when engine ``engine`` has its own option ``name`` (LevelDB's and RocksDB's
    ``cache_mb`` is their block cache, not the cache tier)."""
    from storage.registry import EngineUnavailable, engine_class

    try:
        return name in getattr(engine_class(engine), "defaults", {})
    except EngineUnavailable:
        return False


def _store_extras(spec: StoreSpec, opts: dict[str, Any]) -> None:
    """Move dvidpy's own keys (shared, cache_mb, redis, cache_ttl) out of engine options;
    ``cache_mb`` stays with an engine that has that option itself (LevelDB, RocksDB)."""
    where = f"[store.{spec.alias}]"
    if "shared" in opts:
        v = opts.pop("shared")
        if not isinstance(v, bool):
            raise ConfigError(f"{where} shared must be true or false")
        spec.shared = v
    if "cache_mb" in opts and not _engine_option(spec.engine, "cache_mb"):
        v = opts.pop("cache_mb")
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ConfigError(f"{where} cache_mb must be a number >= 0")
        spec.cache_mb = float(v)
    if "redis" in opts:
        v = opts.pop("redis")
        if not isinstance(v, str) or not v.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"{where} redis must be a URL such as redis://HOST:6379/0")
        spec.redis = v
    if "cache_ttl" in opts:
        v = opts.pop("cache_ttl")
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ConfigError(f"{where} cache_ttl must be a positive number of seconds")
        spec.cache_ttl = v
