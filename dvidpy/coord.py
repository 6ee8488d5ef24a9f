"""Who holds a store, and coordination between servers that share one.

Every store a server opens is either **exclusive** (one server at a time) or **shared**
(several servers at once, coordinated through the metadata store):

* A store is shared when its ``[store.NAME]`` table says ``shared = true``; that is the
  default for ``postgres`` and needs an engine with ``shareable = True`` (PostgreSQL,
  GCS, S3). A deployment whose metadata store is shared is *coordinated*; a shared data
  store under an exclusive metadata store is refused (two such servers would hand out the
  same instance and version ids).
* **Exclusive stores record their holder**, so a second server refuses to start with an
  error naming it (host, pid, start time). Engines over a local directory
  (``KVEngine.local_path``: LevelDB, RocksDB) are locked by the engine itself (the OS
  drops the lock when a process dies); the holder is written beside it in
  ``dvidpy-holder.json`` only to name it. Other persistent engines (a bucket used without
  ``shared = true``) hold a **lease** record (:data:`HOLDER_KEY`) renewed by a heartbeat
  every ``ttl/3`` seconds: a holder whose lease expired, or whose pid is gone on this same
  host, is stale and replaced, so a restart after SIGKILL needs no cleanup.
* **Local directories that many processes may open** (``local_path`` and ``shareable``:
  LMDB) are held with an ``flock`` on :data:`HOLD_FILE` in the directory, taken before the
  engine opens (:func:`hold_directory`): exclusive by a server that holds the store alone,
  shared by the servers (``--workers``) that share it, so a lone server and sharing
  servers refuse each other, and the OS drops the lock when a process dies.
* **Shared stores record the deployment** (the metadata store's random id,
  :data:`DEPLOYMENT_KEY`) so a store of another deployment is refused.

:class:`Coordinator` gives the rest of the server the primitives it needs, the same in
both modes: :meth:`Coordinator.lock` (a ``threading.RLock`` for a single server; a
reentrant cross-server lease lock over ``compare_and_swap`` of the metadata store for a
coordinated one) and :meth:`Coordinator.allocate` (a counter advanced by compare-and-swap).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dvidpy.keys import meta_key
from storage.base import KVEngine

log = logging.getLogger("dvidpy.coord")

HOLDER_KEY = meta_key("holder")
DEPLOYMENT_KEY = meta_key("deployment")
HOLDER_FILE = "dvidpy-holder.json"
HOLD_FILE = "dvidpy-hold.lock"
#: seconds without a heartbeat after which a store holder or lease is stale
HOLDER_TTL = 15.0
LEASE_TTL = 10.0


class StoreBusy(RuntimeError):
    """Another server holds an exclusive store (the message names it)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Identity:
    """This server process: host, pid, start time and a token unique to this run."""

    host: str
    pid: int
    started: float
    token: str

    @classmethod
    def here(cls) -> Identity:
        return cls(socket.gethostname(), os.getpid(), time.time(), uuid.uuid4().hex)

    def describe(self) -> str:
        t = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started))
        return f"pid {self.pid} on host {self.host} (started {t})"


def _holder_text(rec: dict[str, Any]) -> str:
    if not rec:
        return "another process (no holder record)"
    try:
        ident = Identity(str(rec["host"]), int(rec["pid"]), float(rec["started"]), "")
        return ident.describe()
    except (KeyError, TypeError, ValueError):
        return f"an unknown server ({rec!r})"


class Lease:
    """A record ``{owner, host, pid, started, expires}`` under ``key`` that one owner holds
    at a time, taken and renewed by compare-and-swap. An expired record, or one whose pid
    is gone on this host, may be taken over."""

    def __init__(self, engine: KVEngine, key: bytes, me: Identity, ttl: float) -> None:
        self.engine = engine
        self.key = key
        self.me = me
        self.ttl = ttl
        self.raw: bytes | None = None  # our record while held
        self._mu = threading.Lock()  # renew (heartbeat thread) vs release (owner)

    def _record(self) -> bytes:
        return json.dumps({"owner": self.me.token, "host": self.me.host, "pid": self.me.pid,
                           "started": self.me.started,
                           "expires": time.time() + self.ttl}).encode()

    def stale(self, rec: dict[str, Any]) -> bool:
        """True when the holder in ``rec`` can no longer be holding it."""
        if float(rec.get("expires", 0)) < time.time():
            return True
        return rec.get("host") == self.me.host and not _pid_alive(int(rec.get("pid", 0)))

    def try_acquire(self) -> dict[str, Any] | None:
        """Take the lease; returns None on success, else the current holder's record."""
        for _ in range(8):
            cur = self.engine.get(self.key)
            rec: dict[str, Any] = {}
            if cur is not None:
                try:
                    rec = json.loads(cur)
                except ValueError:
                    rec = {}
                if rec.get("owner") == self.me.token:
                    self.raw = cur
                    return None
                if rec and not self.stale(rec):
                    return rec
            mine = self._record()
            if self.engine.compare_and_swap(self.key, cur, mine):
                self.raw = mine
                return None
        return rec or {"host": "?", "pid": 0, "started": 0}

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lease (backing off from 2 ms to 50 ms)."""
        delay = 0.002
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.try_acquire() is not None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"lease {self.key!r} not acquired in {timeout} s")
            time.sleep(delay)
            delay = min(0.05, delay * 1.5)

    def renew(self) -> bool:
        """Extend a held lease; False (and no longer held) when it was taken over. True
        when there is nothing to renew (not held)."""
        with self._mu:
            if self.raw is None:
                return True
            new = self._record()
            if self.engine.compare_and_swap(self.key, self.raw, new):
                self.raw = new
                return True
            self.raw = None
            return False

    def release(self) -> None:
        """Give the lease up (a lease already taken over is left alone)."""
        with self._mu:
            raw, self.raw = self.raw, None
            if raw is not None:
                self.engine.compare_and_swap(self.key, raw, None)


class SharedLock:
    """A reentrant lock held across servers: a local ``RLock`` plus a :class:`Lease`.

    The first (outermost) acquisition in this process takes the lease and then calls
    ``on_acquire`` (to reload state other servers may have changed); the last release
    gives it up. Used as a context manager, like ``threading.RLock``.
    """

    def __init__(self, coord: Coordinator, name: str,
                 on_acquire: Callable[[], None] | None = None,
                 local: Any = None) -> None:
        self._local = local if local is not None else threading.RLock()
        self._depth = 0
        self._lease = Lease(coord.engine, meta_key(f"lease/{name}"), coord.me, LEASE_TTL)
        self._coord = coord
        self.on_acquire = on_acquire

    def acquire(self) -> bool:
        self._local.acquire()
        if self._depth == 0:
            try:
                self._lease.acquire()
                self._coord._held.add(self._lease)
                if self.on_acquire is not None:
                    self.on_acquire()
            except BaseException:
                self._coord._held.discard(self._lease)
                self._lease.release()
                self._local.release()
                raise
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._coord._held.discard(self._lease)
            self._lease.release()
        self._local.release()

    def __enter__(self) -> SharedLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Coordinator:
    """Locks and counters for one server: local (``shared=False``) or across servers.

    A background thread (started on first need) renews held leases and runs the
    ``pollers`` (callables) every ``poll_interval`` seconds.
    """

    def __init__(self, engine: KVEngine, shared: bool, me: Identity | None = None,
                 poll_interval: float = 0.2) -> None:
        self.engine = engine
        self.shared = shared
        self.me = me or Identity.here()
        self.poll_interval = poll_interval
        self._held: set[Lease] = set()
        self._pollers: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def lock(self, name: str, on_acquire: Callable[[], None] | None = None,
             local: Any = None) -> Any:
        """A reentrant lock named ``name``: across servers when coordinated (then
        ``on_acquire`` runs after each outermost acquisition, and ``local``, an RLock, may
        be given as its in-process part), else a new ``threading.RLock``."""
        if not self.shared:
            return threading.RLock()
        self._ensure_thread()
        return SharedLock(self, name, on_acquire, local)

    def allocate(self, key: bytes, field: str, n: int = 1, start: int = 1) -> int:
        """Reserve ``n`` consecutive values of counter ``field`` in the JSON object under
        ``key`` (created with ``start``); returns the first. Compare-and-swap loop."""
        while True:
            cur = self.engine.get(key)
            d = json.loads(cur) if cur is not None else {}
            first = int(d.get(field, start))
            d[field] = first + n
            if self.engine.compare_and_swap(key, cur, json.dumps(d, sort_keys=True).encode()):
                return first

    def add_poller(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` every ``poll_interval`` seconds in the background thread."""
        self._pollers.append(fn)
        self._ensure_thread()

    def keep(self, lease: Lease) -> None:
        """Renew ``lease`` in the background until :meth:`close`."""
        self._held.add(lease)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dvidpy-coord",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        last_renew = 0.0
        while not self._stop.wait(self.poll_interval):
            now = time.monotonic()
            if now - last_renew >= min(LEASE_TTL, HOLDER_TTL) / 3:
                last_renew = now
                for lease in list(self._held):
                    try:
                        if not lease.renew():
                            log.error("lease %r was taken over by another server", lease.key)
                    except Exception:
                        log.exception("renewing lease %r failed", lease.key)
            for fn in list(self._pollers):
                try:
                    fn()
                except Exception:
                    log.exception("background metadata poll failed")

    def close(self) -> None:
        """Stop the background thread and release every kept lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for lease in list(self._held):
            with contextlib.suppress(Exception):
                lease.release()
        self._held.clear()


# ----- claiming the stores at startup --------------------------------------------------------


def _read_holder_file(path: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(path, HOLDER_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def explain_busy(alias: str, engine_cls: type[KVEngine], location: str) -> Iterator[None]:
    """Turn an engine's failure to open a locked local directory into :class:`StoreBusy`
    naming the server recorded in its holder file (other errors pass unchanged).

    Before the engine runs, the directory's ``LOCK`` file is probed with a non-blocking
    ``fcntl`` lock (what LevelDB and RocksDB take): when another process holds it, the
    engine is not even started (LevelDB would rotate its info log before failing).
    """
    def busy() -> StoreBusy:
        rec = _read_holder_file(location) or {}
        return StoreBusy(
            f"store {alias!r} ({engine_cls.name} @ {location}) is in use by dvidpy "
            f"{_holder_text(rec)}; a {engine_cls.name} store serves one server at a time "
            f"(stop that server, or use a shared engine such as postgres)")

    real = os.path.realpath(location) if engine_cls.local_path else ""
    # Closing any descriptor of a file drops this process's fcntl locks on it: never
    # probe a directory this process already has open.
    if real and real not in _OPEN_HERE and _lock_held_elsewhere(os.path.join(real, "LOCK")):
        raise busy()
    try:
        yield
    except Exception as e:
        if not engine_cls.local_path or not _looks_locked(e):
            raise
        raise busy() from e
    if real:
        _OPEN_HERE.add(real)


#: local store directories this process has open (see :func:`explain_busy`)
_OPEN_HERE: set[str] = set()


class DirHold:
    """This process's ``flock`` on a store directory's :data:`HOLD_FILE` (see
    :func:`hold_directory`); :meth:`release` drops it and this server's holder record."""

    def __init__(self, fd: int, location: str, me: Identity) -> None:
        self.fd = fd
        self.location = location
        self.me = me

    def release(self) -> None:
        """Drop the lock (idempotent); the holder file goes too if it names this server."""
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        rec = _read_holder_file(self.location)
        if rec is not None and rec.get("token") == self.me.token:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.location, HOLDER_FILE))
        os.close(fd)


def _write_holder_file(location: str, me: Identity, shared: bool = False) -> None:
    rec = {"host": me.host, "pid": me.pid, "started": me.started, "token": me.token,
           "shared": shared}
    tmp = os.path.join(location, f"{HOLDER_FILE}.{me.pid}.tmp")
    with open(tmp, "w") as f:
        json.dump(rec, f)
    os.replace(tmp, os.path.join(location, HOLDER_FILE))


def hold_directory(alias: str, engine_cls: type[KVEngine], location: str, shared: bool,
                   me: Identity) -> DirHold | None:
    """Hold the local directory of an engine that many processes may open (LMDB) before it
    is opened: an exclusive ``flock`` for a store this server holds alone, a shared one for
    a store it shares (``shared = true``, as ``--workers`` sets for the default folder).
    Raises :class:`StoreBusy` naming the holder when the other kind is held, by this or
    another process. None (nothing to hold) for every other engine."""
    import fcntl

    if not (engine_cls.local_path and engine_cls.shareable and location):
        return None
    os.makedirs(location, exist_ok=True)
    fd = os.open(os.path.join(location, HOLD_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        rec = _read_holder_file(location) or {}
        what = f"store {alias!r} ({engine_cls.name} @ {location})"
        if shared:
            raise StoreBusy(
                f"{what} is in use by dvidpy {_holder_text(rec)}, which holds it alone "
                f"(without shared = true); stop that server before starting servers that "
                f"share it") from None
        raise StoreBusy(
            f"{what} is in use by dvidpy {_holder_text(rec)}"
            f"{' and the servers sharing it' if rec.get('shared') else ''}; without "
            f"shared = true it serves one server at a time (stop those servers, or share "
            f"it: shared = true on every server, as dvidpy serve --workers N does)") from None
    _write_holder_file(location, me, shared)
    return DirHold(fd, location, me)


def _lock_held_elsewhere(path: str) -> bool:
    """True when another process holds an ``fcntl`` lock on ``path``."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False  # no LOCK file yet: a new store
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _looks_locked(e: Exception) -> bool:
    text = str(e).lower()
    return "lock" in text or "resource temporarily unavailable" in text or "busy" in text


def claim_exclusive(alias: str, engine: KVEngine, location: str, me: Identity,
                    coord: Coordinator) -> Lease | None:
    """Record this server as the holder of an exclusive store, or raise
    :class:`StoreBusy` naming the live holder. Returns the lease to renew (None for
    engines that lock themselves or keep nothing)."""
    cls = type(engine)
    if cls.local_path:
        _write_holder_file(location, me)
        return None
    if not cls.persistent:
        return None
    lease = Lease(engine, HOLDER_KEY, me, HOLDER_TTL)
    rec = lease.try_acquire()
    if rec is not None:
        left = max(0.0, float(rec.get("expires", 0)) - time.time())
        raise StoreBusy(
            f"store {alias!r} ({engine.describe()}) is held by dvidpy {_holder_text(rec)}; "
            f"it is not configured 'shared = true', so only one server may use it (its "
            f"lease expires {left:.0f} s after that server's last heartbeat)")
    coord.keep(lease)
    return lease


def release_exclusive(engine: KVEngine, location: str, me: Identity,
                      lease: Lease | None) -> None:
    """Undo :func:`claim_exclusive` at a clean shutdown."""
    if lease is not None:
        with contextlib.suppress(Exception):
            lease.release()
    if type(engine).local_path:
        _OPEN_HERE.discard(os.path.realpath(location))
        rec = _read_holder_file(location)
        if rec is not None and rec.get("token") == me.token:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(location, HOLDER_FILE))


def deployment_id(meta: KVEngine) -> str:
    """The random id of the deployment whose metadata lives in ``meta`` (made once)."""
    while True:
        cur = meta.get(DEPLOYMENT_KEY)
        if cur is not None:
            return cur.decode()
        if meta.compare_and_swap(DEPLOYMENT_KEY, None, uuid.uuid4().hex.encode()):
            continue


def claim_shared(alias: str, engine: KVEngine, deployment: str) -> None:
    """Mark a shared data store as this deployment's, or raise :class:`StoreBusy` when
    another deployment (another metadata store) uses it."""
    want = deployment.encode()
    if engine.compare_and_swap(DEPLOYMENT_KEY, None, want):
        return
    cur = engine.get(DEPLOYMENT_KEY)
    if cur is not None and cur != want:
        raise StoreBusy(
            f"store {alias!r} ({engine.describe()}) belongs to another deployment (metadata "
            f"store id {cur.decode(errors='replace')}, ours {deployment}); servers sharing a "
            f"store must share its metadata store too")
