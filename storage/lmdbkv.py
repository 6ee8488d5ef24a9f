"""LMDB engine (via the ``lmdb`` package): embedded, persistent, ordered, and open by many
processes of one machine at once (many readers, one writer at a time).

``LMDBEngine.open(path, **options)`` creates the directory ``path`` (holding ``data.mdb`` and
``lock.mdb``) if needed. Several processes may open one directory together: reads never
wait, write transactions are serialized by LMDB's own inter-process lock, and every read
sees the transactions committed before it began, whichever process wrote them. So
``shareable = True``: :meth:`LMDBEngine.compare_and_swap` runs in one write transaction,
atomic across processes, and the servers of ``dvidpy serve --workers N`` share one
directory (with ``shared = true``; see :mod:`dvidpy.coord`). Only processes of one machine:
LMDB's locks live in shared memory, so never put the directory on a network filesystem.

Options (all optional, unknown names raise TypeError):

=================  ========  ===============================================================
option             default   meaning
=================  ========  ===============================================================
``map_gb``          1024     largest size the data file may reach, in GiB (address space
                             only: the file grows with the data; every process should use
                             the same value)
``sync``            false    fsync at each commit (true: a commit survives power loss, and
                             costs ~2 ms on an ordinary disk; false: like LevelDB's default,
                             a commit survives a crash of the process, not of the machine)
``readahead``       true     let the OS read ahead (false helps random reads of stores much
                             larger than RAM)
``max_readers``     1024     concurrent read transactions over all processes
=================  ========  ===============================================================

Keys longer than LMDB's limit (511 bytes) are stored too, in *overflow buckets*: a key of
more than :data:`SHORT` bytes lives inside the value of the stored key ``key[:SHORT] +
b"\\x00"`` (a sorted list of ``(rest of key, value)`` pairs), which no short key can equal
and which sorts exactly where those keys belong, so scans stay in unsigned byte order.

While write batches are being filled, a thread of the process prepares the part of
``data.mdb`` they will be committed into (allocates it and reads it into the page cache;
it never writes a byte of the file), so the commit copies into pages that exist (see
:class:`_Warmer`): ``data.mdb`` may be up to 256 MiB longer than LMDB's data.

``read_views()`` (``zero_copy_reads``) reads in one read transaction opened with py-lmdb's
``buffers=True``: values are memoryviews into LMDB's map, valid until the ``with`` block
ends the transaction (long keys' values are copies).

Batches are one write transaction (atomic). Scans read one read transaction's snapshot
taken at call time, released when the scan is exhausted, closed or collected.
``delete_range`` deletes in write transactions of 10,000 keys. The empty key is refused
(ValueError), as LMDB cannot store it. Within one process, every handle on one directory
shares one LMDB environment (LMDB forbids opening it twice in a process).
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import ctypes.util
import errno
import os
import struct
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import lmdb

from storage.base import GuardedWriteBatch, KeyRange, KVEngine, ViewReader
from storage.embedded import prepare_directory
from storage.registry import register_engine

_DEFAULTS: dict[str, Any] = {
    "map_gb": 1024,
    "sync": False,
    "readahead": True,
    "max_readers": 1024,
}
#: keys up to this many bytes are stored as themselves; longer ones in overflow buckets
SHORT = 510
_BUCKET_LEN = SHORT + 1
_DELETE_CHUNK = 10_000
_U32 = struct.Struct("<I")
_GiB = 1 << 30

# ----- one environment per directory per process ---------------------------------------------

_ENVS: dict[str, list[Any]] = {}  # realpath -> [environment, handle count, _Warmer]
_ENVS_LOCK = threading.Lock()


def _acquire_env(path: str, opts: dict[str, Any]) -> tuple[str, Any, _Warmer]:
    real = os.path.realpath(path)
    with _ENVS_LOCK:
        ent = _ENVS.get(real)
        if ent is None:
            env = lmdb.open(real, map_size=int(opts["map_gb"] * _GiB), subdir=True,
                            sync=bool(opts["sync"]), metasync=bool(opts["sync"]),
                            readahead=bool(opts["readahead"]),
                            max_readers=int(opts["max_readers"]), max_spare_txns=16,
                            lock=True)
            ent = _ENVS[real] = [env, 0, _Warmer(env, os.path.join(real, "data.mdb"))]
        ent[1] += 1
        return real, ent[0], ent[2]


def _release_env(real: str) -> None:
    with _ENVS_LOCK:
        ent = _ENVS.get(real)
        if ent is None:
            return
        ent[1] -= 1
        if ent[1] == 0:
            del _ENVS[real]
            ent[2].close()  # before the environment it reads
            ent[0].close()


# ----- preparing the pages the next commits write ---------------------------------------------

_WARM_STEP = 2 << 20  # bytes prepared per step (one fallocate + one readahead)
_WARM_MIN = 1 << 20  # queued bytes that wake the warmer
_WARM_MAX = 256 << 20  # never more than this far beyond the data


def _libc_fallocate() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.fallocate
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    fn.restype = ctypes.c_int
    return fn


_FALLOCATE = _libc_fallocate() if hasattr(os, "posix_fadvise") else None


class _Warmer:
    """Prepares, in a thread of its own, the part of the data file the queued write
    batches will be committed into, so that the commit (one writer thread, LMDB's
    ``writev``) copies into pages already in the page cache.

    Why: a commit's cost is mostly the kernel's copy into page cache pages it must first
    allocate for the growing file; on a VM whose memory, once free, goes back to the host,
    touching those pages costs several times the copy (45-52 % of the server's CPU during
    a ``POST raw`` was that copy, in the committing thread alone). Preparing them here
    puts that cost on another core while the blocks are still being encoded.

    How: write batches report the bytes they queue (:meth:`add`); the thread keeps the
    file prepared from LMDB's last page up to that many bytes (and 1/32 more, for LMDB's
    own pages) beyond it, at most :data:`_WARM_MAX`: ``fallocate`` (mode 0: allocates
    blocks and extends the size, never shrinks the file or changes a byte of it) and
    ``posix_fadvise(WILLNEED)`` (reads the range into the page cache: zeroed pages for
    the new blocks). It never writes the file, so what a crash or ``kill -9`` leaves is
    what LMDB wrote; the file may end up to :data:`_WARM_MAX` beyond LMDB's last page
    (LMDB ignores what lies past its last page). Where ``fallocate`` is not supported, or
    fails (a full disk), the thread stops preparing (a full disk is LMDB's error to
    report, as before). Only speed depends on it.
    """

    def __init__(self, env: Any, path: str) -> None:
        self.env = env
        self.path = path
        self.queued = 0
        self.gen = 0
        self.cond = threading.Condition()
        self.closed = False
        self.disabled = _FALLOCATE is None
        self.thread: threading.Thread | None = None
        self.upto = 0  # bytes of the file prepared (from its start)

    def add(self, n: int) -> None:
        """``n`` more bytes queued for the next commits (negative: committed or dropped)."""
        if self.disabled:
            return
        with self.cond:
            self.queued = max(0, self.queued + n)
            self.gen += 1
            if n > 0:
                if self.thread is None and not self.closed:
                    self.thread = threading.Thread(target=self._run, daemon=True,
                                                   name="lmdb-warmer")
                    self.thread.start()
                self.cond.notify()

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        with self.cond:
            self.closed = True
            self.cond.notify()
            t = self.thread
        if t is not None:
            t.join(10)

    def _run(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            self.disabled = True
            return
        try:
            psize = self.env.stat()["psize"]
            seen = -1
            while True:
                with self.cond:
                    while not self.closed and (self.queued <= 0 or self.gen == seen):
                        self.cond.wait()
                    if self.closed:
                        return
                    seen, queued = self.gen, self.queued
                info = self.env.info()
                last = (info["last_pgno"] + 1) * psize
                target = min(last + min(queued + queued // 32 + _WARM_MIN, _WARM_MAX),
                             info["map_size"])
                off = max(self.upto, last) // _WARM_STEP * _WARM_STEP
                while off < target and not self.closed:
                    if not self._prepare(fd, off):
                        self.disabled = True
                        return
                    off += _WARM_STEP
                    self.upto = off
                    with self.cond:
                        if self.gen != seen:
                            break  # re-read LMDB's last page and the queue
        except lmdb.Error:
            return  # the environment was closed
        finally:
            os.close(fd)

    @staticmethod
    def _prepare(fd: int, off: int) -> bool:
        size = os.fstat(fd).st_size
        end = off + _WARM_STEP
        if end > size:
            start = max(off, size)
            if _FALLOCATE(fd, 0, start, end - start) != 0:
                return ctypes.get_errno() == errno.EINTR
        os.posix_fadvise(fd, off, _WARM_STEP, os.POSIX_FADV_WILLNEED)
        return True


# ----- overflow buckets of long keys ---------------------------------------------------------


def _stored(key: bytes) -> bytes:
    """The LMDB key under which ``key`` lives (itself, or its bucket)."""
    if not key:
        raise ValueError("the lmdb engine cannot store the empty key")
    return key if len(key) <= SHORT else key[:SHORT] + b"\x00"


def _decode_bucket(head: bytes, raw: bytes | memoryview) -> list[tuple[bytes, bytes]]:
    """The sorted ``(full key, value)`` pairs of a bucket stored under ``head + 0x00``."""
    out = []
    mv = memoryview(raw)
    i, n = 0, len(mv)
    while i < n:
        (kl,) = _U32.unpack_from(mv, i)
        i += 4
        suffix = bytes(mv[i:i + kl])
        i += kl
        (vl,) = _U32.unpack_from(mv, i)
        i += 4
        out.append((head + suffix, bytes(mv[i:i + vl])))
        i += vl
    return out


def _encode_bucket(items: list[tuple[bytes, bytes]]) -> bytes:
    parts = []
    for k, v in items:
        s = k[SHORT:]
        parts += (_U32.pack(len(s)), s, _U32.pack(len(v)), v)
    return b"".join(parts)


def _bucket(txn: Any, sk: bytes) -> list[tuple[bytes, bytes]]:
    raw = txn.get(sk)
    return [] if raw is None else _decode_bucket(sk[:SHORT], raw)


def _txn_get(txn: Any, key: bytes) -> bytes | None:
    if not key:
        return None  # never stored
    sk = _stored(key)
    if sk is key:
        return txn.get(key)
    items = _bucket(txn, sk)
    i = bisect.bisect_left(items, (key,))
    if i < len(items) and items[i][0] == key:
        return items[i][1]
    return None


def _txn_put(txn: Any, key: bytes, value: bytes) -> None:
    sk = _stored(key)
    if sk is key:
        txn.put(key, value)
        return
    items = _bucket(txn, sk)
    i = bisect.bisect_left(items, (key,))
    if i < len(items) and items[i][0] == key:
        items[i] = (key, bytes(value))
    else:
        items.insert(i, (key, bytes(value)))
    txn.put(sk, _encode_bucket(items))


def _txn_delete(txn: Any, key: bytes) -> None:
    if not key:
        return  # never stored
    sk = _stored(key)
    if sk is key:
        txn.delete(key)
        return
    items = _bucket(txn, sk)
    i = bisect.bisect_left(items, (key,))
    if i < len(items) and items[i][0] == key:
        del items[i]
        if items:
            txn.put(sk, _encode_bucket(items))
        else:
            txn.delete(sk)


def _as_bytes(b: Any) -> bytes:
    return b if type(b) is bytes else bytes(b)


class LMDBWriteBatch(GuardedWriteBatch):
    """Queued operations applied in one LMDB write transaction (atomic)."""

    def __init__(self, engine: LMDBEngine) -> None:
        super().__init__()
        self._engine = engine
        self._ops: list[tuple[bytes, Any]] = []
        self._unreported = 0  # value bytes not yet told to the warmer
        self._reported = 0

    def _put(self, key: bytes, value: bytes) -> None:
        _stored(key)  # refuse the empty key now
        self._ops.append((_as_bytes(key), value))
        self._unreported += len(value)
        if self._unreported >= _WARM_MIN:
            self._engine._warmer.add(self._unreported)
            self._reported += self._unreported
            self._unreported = 0

    def _unreport(self) -> None:
        if self._reported:
            self._engine._warmer.add(-self._reported)
            self._reported = 0

    def __del__(self) -> None:  # dropped without a commit
        with contextlib.suppress(Exception):
            self._unreport()

    def _delete(self, key: bytes) -> None:
        self._ops.append((_as_bytes(key), None))

    def _write(self) -> None:
        ops: list[Any]
        ops, self._ops = self._ops, []
        if not ops:
            return
        try:
            self._apply(ops)
        finally:
            self._unreport()

    def _apply(self, ops: list[Any]) -> None:
        with self._engine._env.begin(write=True) as txn:
            put, delete = txn.put, txn.delete
            for i in range(len(ops)):
                k, v = ops[i]
                ops[i] = None  # LMDB has copied the value: free it now, not after the loop
                if 0 < len(k) <= SHORT:
                    if v is None:
                        delete(k)
                    else:
                        put(k, v)
                elif v is None:
                    _txn_delete(txn, k)
                else:
                    _txn_put(txn, k, v)


@register_engine
class LMDBEngine(KVEngine):
    """Persistent ordered store in an LMDB directory, shareable by the processes of one
    machine (see the module docstring)."""

    name = "lmdb"
    atomic_batches = True
    persistent = True
    shareable = True
    local = True
    local_path = True
    zero_copy_reads = True
    defaults = _DEFAULTS

    def __init__(self, real: str, env: Any, path: str, options: dict[str, Any],
                 warmer: _Warmer) -> None:
        self._real = real
        self._env = env
        self._warmer = warmer
        self.path = path
        self.options = options
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def open(cls, location: str, **options: Any) -> LMDBEngine:
        """Open (creating if needed) the LMDB directory ``location``.

        Raises ValueError for an empty location and TypeError for unknown options. Opening
        a directory another process has open is fine (that is the point); options of the
        first handle in a process win for later handles in the same process.
        """
        opts = prepare_directory(cls.name, _DEFAULTS, location, options)
        real, env, warmer = _acquire_env(location, opts)
        return cls(real, env, location, opts, warmer)

    # ----- point operations ------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The stored value or ``None``."""
        if 0 < len(key) <= SHORT:
            with self._env.begin() as txn:
                return txn.get(key)
        with self._env.begin() as txn:
            return _txn_get(txn, key)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order, all read in one transaction."""
        with self._env.begin() as txn:
            get = txn.get
            return [get(k) if 0 < len(k) <= SHORT else _txn_get(txn, k) for k in keys]

    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key`` (one write transaction)."""
        with self._env.begin(write=True) as txn:
            _txn_put(txn, key, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key``; a missing key is not an error."""
        with self._env.begin(write=True) as txn:
            _txn_delete(txn, key)

    def compare_and_swap(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        """Set ``key`` to ``new`` (``None`` deletes) iff it holds ``expected`` (``None``:
        absent), in one write transaction: atomic across every process of the machine."""
        with self._env.begin(write=True) as txn:
            if _txn_get(txn, key) != expected:
                return False
            if new is None:
                _txn_delete(txn, key)
            else:
                _txn_put(txn, key, new)
            return True

    def batch(self) -> LMDBWriteBatch:
        """A new atomic write batch."""
        return LMDBWriteBatch(self)

    # ----- scans ---------------------------------------------------------------------------

    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over ``rng`` in one read transaction begun at call time.

        An empty or inverted range yields nothing. The transaction ends when the generator
        is exhausted, closed or garbage collected.
        """
        if rng.is_empty():
            return iter(())
        txn = self._env.begin()
        if reverse:
            return _scan_reverse(txn, rng, keys_only)
        return _scan_forward(txn, rng, keys_only)

    @contextlib.contextmanager
    def read_views(self) -> Iterator[ViewReader]:
        """Reads from one read transaction whose values are memoryviews into the map
        (valid until the block exits; see :meth:`KVEngine.read_views`)."""
        txn = self._env.begin(buffers=True)
        try:
            yield _LMDBViews(txn)
        finally:
            with contextlib.suppress(lmdb.Error):  # the environment may be closed already
                txn.abort()

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every key in ``rng`` in write transactions of 10,000 keys (so the whole
        operation is not atomic); returns how many were deleted."""
        if rng.is_empty():
            return 0
        n = 0
        start = rng.start
        while True:
            done, count, resume = self._delete_chunk(start, rng)
            n += count
            if done:
                return n
            start = resume

    def _delete_chunk(self, start: bytes, rng: KeyRange) -> tuple[bool, int, bytes]:
        end = rng.end
        n = 0
        with self._env.begin(write=True) as txn:
            cur = txn.cursor()
            if not (cur.set_range(_stored(start)) if start else cur.first()):
                return True, 0, b""
            while True:
                sk = cur.key()
                if end is not None and sk >= end:
                    return True, n, b""
                if n >= _DELETE_CHUNK:
                    return False, n, sk
                if len(sk) == _BUCKET_LEN:
                    items = _decode_bucket(sk[:SHORT], cur.value())
                    keep = [kv for kv in items if kv[0] not in rng]
                    n += len(items) - len(keep)
                    if keep:
                        cur.put(sk, _encode_bucket(keep))
                        if not cur.next():
                            return True, n, b""
                        continue
                elif sk < rng.start:  # cannot happen after the seek; kept for exactness
                    if not cur.next():
                        return True, n, b""
                    continue
                else:
                    n += 1
                cur.delete()  # moves to the next key, or off the end (key b"")
                if not cur.key():
                    return True, n, b""

    # ----- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Drop this handle (the environment closes with the process's last handle on the
        directory). Idempotent."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                _release_env(self._real)

    def describe(self) -> str:
        return f"lmdb @ {self.path}"


class _LMDBViews(ViewReader):
    """:class:`ViewReader` over one ``buffers=True`` read transaction."""

    def __init__(self, txn: Any) -> None:
        self._txn = txn

    def scan(self, rng: KeyRange) -> Iterator[tuple[bytes, Any]]:
        if rng.is_empty():
            return iter(())
        return _forward(self._txn, rng, False)

    def get_many(self, keys: Sequence[bytes]) -> list[Any]:
        txn = self._txn
        get = txn.get
        return [get(k) if 0 < len(k) <= SHORT else _txn_get(txn, k) for k in keys]


def _forward(txn: Any, rng: KeyRange, keys_only: bool) -> Iterator[tuple[bytes, Any]]:
    """The pairs of ``rng`` in ``txn`` (keys as bytes also from a ``buffers=True`` one)."""
    start, end = rng.start, rng.end
    cur = txn.cursor()
    if not (cur.set_range(_stored(start)) if start else cur.first()):
        return
    for skv, v in cur.iternext(keys=True, values=True):
        sk = _as_bytes(skv)
        if end is not None and sk >= end:
            return
        if len(sk) != _BUCKET_LEN:
            if sk >= start:  # always, after the seek (kept for exactness)
                yield (sk, b"") if keys_only else (sk, v)
            continue
        for k, bv in _decode_bucket(sk[:SHORT], v):
            if k < start:
                continue
            if end is not None and k >= end:
                return
            yield (k, b"") if keys_only else (k, bv)


def _scan_forward(txn: Any, rng: KeyRange, keys_only: bool) -> Iterator[tuple[bytes, bytes]]:
    try:
        yield from _forward(txn, rng, keys_only)
    finally:
        with contextlib.suppress(lmdb.Error):  # the environment may be closed already
            txn.abort()


def _scan_reverse(txn: Any, rng: KeyRange, keys_only: bool) -> Iterator[tuple[bytes, bytes]]:
    start, end = rng.start, rng.end
    try:
        cur = txn.cursor()
        # from the first stored key at or after end's own place: it may still hold keys
        # below end (end's bucket), so it is looked at before stepping back
        ok = cur.last() if end is None else (cur.set_range(_stored(end)) or cur.last())
        if not ok:
            return
        while True:
            sk, v = cur.item()
            bucket = len(sk) == _BUCKET_LEN
            items = _decode_bucket(sk[:SHORT], v)[::-1] if bucket else [(sk, v)]
            for k, bv in items:
                if end is not None and k >= end:
                    continue
                if k < start:
                    return
                yield (k, b"") if keys_only else (k, bv)
            if not cur.prev():
                return
    finally:
        with contextlib.suppress(lmdb.Error):  # the environment may be closed already
            txn.abort()
