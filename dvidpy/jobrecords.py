"""Records of background jobs in the metadata store, so every process of a server sees them.

A background job (a ``downres``, a transfer) runs in a thread of the process that started
it, but any process may be asked about it: a ``--workers`` sibling answering the next
request, or another server over the same shared metadata store. So a job's state is a
record in the metadata store (keyspace ``0x00``)::

    jobs/{kind}/{id}   the record (JSON)

The process running a job holds the record in memory (:class:`LiveJob`) and writes it
through at most every :data:`FLUSH_EVERY` seconds while it changes, at once when the job
ends, and at least every :data:`BEAT_EVERY` seconds while it runs (its heartbeat). Every
write is a compare-and-swap over the stored record, which is how a *cancel* asked in
another process (a flag set on the record, :meth:`JobBoard.cancel`) reaches the running
one: its next write sees the flag and sets :attr:`LiveJob.cancelled`.

A running record whose process stopped (killed, or the server restarted) would say
"running" for ever; readers show it in the board's *lost* state instead: on a store that
only this process opens, any running record not of this process; on a shared store, one
whose heartbeat is older than :data:`STALE_AFTER` seconds.

Private bookkeeping fields start with ``_`` (``_owner``, ``_beat``, ``_cancel``,
``_order``) and are never shown.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dvidpy import jsonio
from dvidpy.errors import Conflict
from dvidpy.keys import meta_key
from storage.base import KeyRange

if TYPE_CHECKING:
    from storage.base import KVEngine

#: seconds between write-throughs of a changing record
FLUSH_EVERY = 0.5
#: seconds between heartbeats of a running job
BEAT_EVERY = 2.0
#: a running record on a shared store whose heartbeat is older than this was interrupted
STALE_AFTER = 20.0
_CAS_TRIES = 100
#: what a job id looks like (:func:`new_job_id`); check before building a key from one
JOB_ID = re.compile(r"[0-9a-f]{16}")


def new_job_id() -> str:
    """A fresh job id: 16 hex digits."""
    return uuidlib.uuid4().hex[:16]


class JobRunning(Conflict):
    """:meth:`JobBoard.start` with ``exclusive``: a live job holds the id."""


class LiveJob:
    """A job this process runs: its record, written through to the board's store.

    :meth:`update` changes fields (written within :data:`FLUSH_EVERY` seconds),
    :meth:`finish` writes at once and ends the heartbeat. :attr:`cancelled` is set when a
    cancel was asked here or in another process.
    """

    def __init__(self, board: JobBoard, jid: str, record: dict[str, Any]) -> None:
        self.board = board
        self.id = jid
        self.record = record
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._written = 0.0
        self._ended = False

    def view(self) -> dict[str, Any]:
        """A copy of the record as readers see it."""
        with self._lock:
            return dict(self.record)

    def update(self, **fields: Any) -> None:
        """Change fields; written through when the last write is older than
        :data:`FLUSH_EVERY` (a failed write is retried at the next change or beat)."""
        with self._lock:
            self.record.update(fields)
            if time.monotonic() - self._written < FLUSH_EVERY:
                return
        self.flush()

    def finish(self, **fields: Any) -> None:
        """Set the final fields, write them now and stop the heartbeat."""
        with self._lock:
            self.record.update(fields)
            self._ended = True
        try:
            self.flush()
        finally:
            self.board._ended(self)

    def flush(self) -> None:
        """Write the record now (compare-and-swap over the stored one, keeping a cancel
        flag set elsewhere, which then sets :attr:`cancelled`)."""
        with self._lock:
            eng, key = self.board.engine, self.board.key(self.id)
            for _ in range(_CAS_TRIES):
                old = eng.get(key)
                stored = _parse(old) if old is not None else {}
                if stored.get("_cancel"):
                    self.cancelled.set()
                new = {**self.record, "_owner": self.board.owner, "_beat": time.time(),
                       "_cancel": bool(stored.get("_cancel")) or self.cancelled.is_set(),
                       "_order": stored.get("_order", self.record.get("_order", 0))}
                if eng.compare_and_swap(key, old, _dumps(new)):
                    self._written = time.monotonic()
                    return
            raise Conflict(f"{self.board.kind} job {self.id} record keeps changing")


class JobBoard:
    """The ``kind`` jobs of a server (see the module docstring).

    ``state_key`` names the record's state field and ``running`` its value while the job
    runs; ``lost`` is merged into a running record whose process stopped. ``keep`` bounds
    the finished records kept (oldest dropped when a job starts).
    """

    def __init__(self, engine: KVEngine, kind: str, owner: str, shared: bool, *,
                 state_key: str, running: str, lost: dict[str, Any],
                 keep: int = 1000) -> None:
        self.engine = engine
        self.kind = kind
        self.owner = owner
        self.shared = shared
        self.state_key = state_key
        self.running = running
        self.lost = lost
        self.keep = keep
        self._live: dict[str, LiveJob] = {}
        self._lock = threading.Lock()
        self._beater: threading.Thread | None = None

    @classmethod
    def of(cls, manager: Any, kind: str, **kw: Any) -> JobBoard:
        """The board of ``kind`` on a :class:`~dvidpy.repo.RepoManager`'s metadata store,
        one per manager and kind (made on first use; ``kw`` as for the constructor)."""
        boards = manager.job_boards
        with manager.lock:
            b = boards.get(kind)
            if b is None:
                b = boards[kind] = cls(manager.meta_engine, kind, manager.me.token,
                                       manager.coordinated, **kw)
            return b

    def key(self, jid: str) -> bytes:
        """The metadata key of job ``jid``."""
        return meta_key(f"jobs/{self.kind}/{jid}")

    # ----- starting and running ---------------------------------------------------------

    def start(self, jid: str, record: dict[str, Any], *, exclusive: bool = False,
              refuse: Callable[[dict[str, Any]], str] | None = None) -> LiveJob:
        """Record a job this process runs from now on. With ``exclusive``, a job of the
        same id that is still running (here or in a live process) refuses it:
        :class:`JobRunning` with ``refuse(its record)`` as the message. The stored
        record is replaced (by compare-and-swap, so of two processes starting the same
        id at once one is refused)."""
        record = {**record, self.state_key: self.running}
        job = LiveJob(self, jid, record)
        key = self.key(jid)
        with self._lock:
            for _ in range(_CAS_TRIES):
                old = self.engine.get(key)
                if exclusive and old is not None:
                    cur = self._shown(_parse(old))
                    if cur.get(self.state_key) == self.running:
                        msg = refuse(cur) if refuse else f"{self.kind} job {jid} is running"
                        raise JobRunning(msg)
                new = {**record, "_owner": self.owner, "_beat": time.time(),
                       "_cancel": False, "_order": time.time_ns()}
                if self.engine.compare_and_swap(key, old, _dumps(new)):
                    job._written = time.monotonic()
                    self._live[jid] = job
                    break
            else:
                raise Conflict(f"{self.kind} job {jid} record keeps changing")
            if self._beater is None or not self._beater.is_alive():
                self._beater = threading.Thread(target=self._beat, daemon=True,
                                                name=f"jobs-{self.kind}-beat")
                self._beater.start()
        self._prune()
        return job

    def _ended(self, job: LiveJob) -> None:
        with self._lock:
            if self._live.get(job.id) is job:
                del self._live[job.id]

    def _beat(self) -> None:
        while True:
            time.sleep(BEAT_EVERY)
            with self._lock:
                live = list(self._live.values())
                if not live:
                    self._beater = None
                    return
            for job in live:
                try:
                    job.flush()
                except Exception:  # a store hiccup: the next beat tries again
                    pass

    def _prune(self) -> None:
        recs = self._stored()
        done = [(r.get("_order", 0), jid) for jid, r in recs.items()
                if self._shown(r).get(self.state_key) != self.running]
        if len(done) <= self.keep:
            return
        done.sort()
        wb = self.engine.batch()
        for _, jid in done[: len(done) - self.keep]:
            wb.delete(self.key(jid))
        wb.commit()

    # ----- reading and cancelling -------------------------------------------------------

    def _stored(self) -> dict[str, dict[str, Any]]:
        pre = meta_key(f"jobs/{self.kind}/")
        return {k[len(pre):].decode(): _parse(v)
                for k, v in self.engine.scan(KeyRange.prefix(pre))}

    def _shown(self, rec: dict[str, Any]) -> dict[str, Any]:
        """``rec`` as readers see it: the lost state for a dead process's running job."""
        if rec.get(self.state_key) != self.running or rec.get("_owner") == self.owner:
            return rec
        if not self.shared or time.time() - float(rec.get("_beat", 0)) > STALE_AFTER:
            return {**rec, **self.lost}
        return rec

    def get(self, jid: str) -> dict[str, Any] | None:
        """Job ``jid``'s record (None when there is none): this process's live record
        for its own running job, else the stored one."""
        with self._lock:
            job = self._live.get(jid)
        if job is not None:
            return job.view()
        raw = self.engine.get(self.key(jid))
        return None if raw is None else _public(self._shown(_parse(raw)))

    def records(self) -> list[dict[str, Any]]:
        """Every job's record, oldest first (live ones as in :meth:`get`)."""
        stored = self._stored()
        out = []
        for jid, rec in sorted(stored.items(), key=lambda kv: kv[1].get("_order", 0)):
            got = self.get(jid) if jid in self._live else _public(self._shown(rec))
            if got is not None:
                out.append(got)
        return out

    def cancel(self, jid: str) -> bool:
        """Ask job ``jid`` to stop, wherever it runs; whether it was running."""
        with self._lock:
            job = self._live.get(jid)
        if job is not None:
            job.cancelled.set()
            job.flush()
            return True
        key = self.key(jid)
        for _ in range(_CAS_TRIES):
            old = self.engine.get(key)
            if old is None:
                return False
            rec = _parse(old)
            if self._shown(rec).get(self.state_key) != self.running:
                return False
            if self.engine.compare_and_swap(key, old, _dumps({**rec, "_cancel": True})):
                return True
        raise Conflict(f"{self.kind} job {jid} record keeps changing")


def _parse(raw: bytes) -> dict[str, Any]:
    rec = jsonio.loads(raw, "stored job record")
    return rec if isinstance(rec, dict) else {}


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if not k.startswith("_")}


def _dumps(rec: dict[str, Any]) -> bytes:
    return json.dumps(rec, separators=(",", ":")).encode()


__all__ = ["BEAT_EVERY", "FLUSH_EVERY", "JOB_ID", "STALE_AFTER", "JobBoard", "JobRunning",
           "LiveJob", "new_job_id"]
