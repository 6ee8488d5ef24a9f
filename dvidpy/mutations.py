"""The mutation stream: every mutation record, numbered, out of the server to sinks.

Path of a record (at-least-once, in order of sequence number, never blocking a write):

1. :meth:`Datatype.log_mutation <dvidpy.datatype.Datatype.log_mutation>` writes it to the
   instance's mutation log *and* to the **outbox** of the instance's engine
   (``0x00 | "mutq/" | ns timestamp | counter``), in the batch that writes the data, so
   the record exists exactly when the mutation does.
2. The **drainer** thread moves committed outbox entries, oldest first, into the **stream
   log** in the metadata engine (``0x00 | "mutlog/" | sequence u64 BE``), giving each the
   next sequence number (``Sequence``) and the instance's repo/name/type/data UUID. When
   outbox and log share an engine the move is one atomic batch; otherwise the log is
   written first (a crash in between repeats the record under a new number). The log
   keeps the last ``retain`` records.
3. Each **sink** has a persisted cursor (last sequence delivered) and its own thread,
   which sends the records after the cursor in order and advances the cursor when the
   sink acknowledged them. A sink that is down is retried with backoff (0.2 s doubling to
   30 s); records wait in the log meanwhile (a sink that stays down longer than ``retain``
   records loses the oldest ones).

Sinks, from the ``[mutations]`` table of the TOML configuration:

``redis = "redis://HOST:PORT/DB"``, ``stream = "NAME"`` (default ``dvidpy-mutations``)
    Redis Streams: ``XADD NAME <Sequence>-1 record <json>``; the entry id *is* the
    sequence number, so a record sent again after a lost acknowledgement is refused by
    Redis as not newer and counted delivered (each record appears once, in order).
    Needs the ``redis`` package (``pip install 'dvidpy[redis]'``).
``webhook = "http://..."``
    ``POST`` of a JSON array of up to 100 records; a 2xx answer acknowledges them.
    Receivers dedupe by ``Sequence``.
Server-Sent Events (always on)
    ``GET /api/mutations/stream`` and ``GET /api/node/{uuid}/{data}/mutations/stream``
    (:mod:`dvidpy.http.mutations_api`) replay the log after ``Last-Event-ID`` and then
    follow it live; each event's ``id:`` is the record's sequence number.

``retain`` (default 100000) bounds the stream log. Servers sharing their stores
(coordinated deployments) share one log: records are numbered under a cross-server lock,
and each server's sinks deliver from the shared log (Redis refuses the second copy of an
entry id; webhook receivers dedupe by ``Sequence``). DVID's ``[kafka]`` table (``servers``,
``topicPrefix``, ...) and its ``[mutations]`` keys ``jsonstore``/``httpstore``/
``blobstore`` are read and shown in ``/api/server/config``; there is no Kafka sink (no
broker was in reach to test one against).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dvidpy.config import DEFAULT_STREAM, MutationSettings
from dvidpy.keys import meta_key
from storage.base import KeyRange, KVEngine, WriteBatch

if TYPE_CHECKING:
    from dvidpy.datatype import Datatype
    from dvidpy.repo import RepoManager

log = logging.getLogger("dvidpy.mutations")
OUTBOX = meta_key(b"mutq/")
LOG = meta_key(b"mutlog/")
CURSOR = meta_key(b"mutsink/")
SEQ_KEY = meta_key(b"mutseq")
BATCH = 100
POLL = 0.2
MAX_BACKOFF = 30.0


def seq_key(prefix: bytes, seq: int) -> bytes:
    """``prefix`` + sequence number as 8 bytes big-endian."""
    return prefix + seq.to_bytes(8, "big")


class Sink:
    """Delivers records in order; ``send`` raises on failure (then retried)."""

    name = "sink"

    def send(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


class RedisSink(Sink):
    """Redis Streams sink: entry id ``<Sequence>-1`` (see the module docstring)."""

    name = "redis"

    def __init__(self, url: str, stream: str) -> None:
        try:
            import redis
        except ImportError as e:  # pragma: no cover - depends on the install
            raise RuntimeError("the redis sink needs the redis package: "
                               "pip install 'dvidpy[redis]'") from e
        self.redis = redis
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.stream = stream

    def send(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            try:
                self.client.xadd(self.stream, {"record": json.dumps(rec)},
                                 id=f"{rec['Sequence']}-1")
            except self.redis.ResponseError as e:
                if "equal or smaller" not in str(e):
                    raise
                # already there: a repeat after a lost acknowledgement

    def close(self) -> None:
        self.client.close()


class WebhookSink(Sink):
    """HTTP webhook sink: POST of a JSON array; 2xx acknowledges."""

    name = "webhook"

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"[mutations] webhook {url!r} is not an http(s) URL")
        self.url = url

    def send(self, records: list[dict[str, Any]]) -> None:
        req = urllib.request.Request(self.url, data=json.dumps(records).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:  # raises on 4xx/5xx
            r.read()


class MutationHub:
    """Outbox, stream log, sequence numbers and sink workers of one server."""

    def __init__(self, mgr: RepoManager, settings: MutationSettings | None = None) -> None:
        self.mgr = mgr
        self.settings = settings or MutationSettings()
        self.meta: KVEngine = mgr.meta_engine
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._counter = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._new = threading.Condition()
        self._listeners: list[Callable[[int], None]] = []
        raw = self.meta.get(SEQ_KEY)
        self.last_seq = int(raw) if raw else 0
        coord = getattr(mgr, "coord", None)
        # servers sharing their stores number the records one at a time (a cross-server
        # lock, the counter re-read under it); otherwise the local lock
        self._seq_lock: Any = (coord.lock("mutations-seq", local=threading.RLock())
                               if getattr(mgr, "coordinated", False) and coord is not None
                               else self._lock)
        self._threads: list[threading.Thread] = []
        self.sinks: list[Sink] = []
        s = self.settings
        if s.redis:
            self.sinks.append(RedisSink(s.redis, s.stream or DEFAULT_STREAM))
        if s.webhook:
            self.sinks.append(WebhookSink(s.webhook))
        self._started = False

    # ----- writing ----------------------------------------------------------------------

    def enqueue(self, inst: Datatype, rec: dict[str, Any], wb: WriteBatch) -> None:
        """Put ``rec`` (a mutation record of ``inst``) in its engine's outbox, in ``wb``."""
        with self._lock:
            self._counter = (self._counter + 1) & 0xFFFFFFFF
            key = OUTBOX + time.time_ns().to_bytes(8, "big") + self._counter.to_bytes(4, "big")
        m = inst.meta
        env = {"Repo": m.root_uuid, "DataUUID": m.data_uuid, "DataName": m.name,
               "TypeName": m.typename, **rec}
        wb.put(key, json.dumps(env, separators=(",", ":")).encode())
        self.start()
        self._wake.set()

    # ----- the drainer ------------------------------------------------------------------

    def start(self) -> None:
        """Start the drainer and sink threads (once)."""
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
            ts = [threading.Thread(target=self._drain_loop, name="mutations-drain",
                                   daemon=True)]
            ts += [threading.Thread(target=self._sink_loop, args=(s,), daemon=True,
                                    name=f"mutations-{s.name}") for s in self.sinks]
            self._threads = ts
            for t in ts:
                t.start()

    def _engines(self) -> list[KVEngine]:
        seen: dict[int, KVEngine] = {}
        for e in self.mgr.engines.values():
            seen.setdefault(id(e), e)
        return list(seen.values())

    def drain_once(self) -> int:
        """Move every committed outbox entry into the stream log; returns how many.

        One drain at a time in this process (the drainer thread's and :meth:`close`'s
        last one may overlap): two would read the same entries and log them twice."""
        with self._drain_lock:
            return self._drain()

    def _drain(self) -> int:
        moved = 0
        for eng in self._engines():
            while True:
                items = []
                for k, v in eng.scan(KeyRange.prefix(OUTBOX)):
                    items.append((k, v))
                    if len(items) >= 1000:
                        break
                if not items:
                    break
                self._move(eng, items)
                moved += len(items)
        if moved:
            self._trim()
        return moved

    def _move(self, eng: KVEngine, items: list[tuple[bytes, bytes]]) -> None:
        with self._seq_lock:
            if self._seq_lock is not self._lock:  # another server may have moved some
                raw = self.meta.get(SEQ_KEY)
                self.last_seq = max(self.last_seq, int(raw) if raw else 0)
                items = [(k, v) for k, v in items if eng.get(k) is not None]
                if not items:
                    return
            first = self.last_seq + 1
            same = eng is self.meta
            wb = self.meta.batch()
            for i, (k, v) in enumerate(items):
                rec = json.loads(v)
                wb.put(seq_key(LOG, first + i), json.dumps(
                    {"Sequence": first + i, **rec}, separators=(",", ":")).encode())
                if same:
                    wb.delete(k)
            last = first + len(items) - 1
            wb.put(SEQ_KEY, str(last).encode())
            wb.commit()
            if not same:
                ob = eng.batch()
                for k, _ in items:
                    ob.delete(k)
                ob.commit()
            self.last_seq = last
        with self._new:
            self._new.notify_all()
        for fn in list(self._listeners):
            fn(last)

    def _trim(self) -> None:
        keep_from = self.last_seq - self.settings.retain + 1
        if keep_from > 1:
            self.meta.delete_range(KeyRange(LOG, seq_key(LOG, keep_from)))

    def _catch_up(self) -> None:
        """Shared log (coordinated servers, ``--workers``): records another process
        moved into the log wake this one's followers too (within :data:`POLL` s). (A
        race with :meth:`_move` can only set ``last_seq`` lower than the log's for one
        poll; the next one corrects it.)"""
        raw = self.meta.get(SEQ_KEY)
        seq = int(raw) if raw else 0
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        with self._new:
            self._new.notify_all()
        for fn in list(self._listeners):
            fn(seq)

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL)
            self._wake.clear()
            try:
                self.drain_once()
                if self._seq_lock is not self._lock:
                    self._catch_up()
            except Exception:  # keep draining after a transient engine error
                log.exception("mutation drainer failed; retrying")
                time.sleep(1)

    # ----- reading the log --------------------------------------------------------------

    def records_after(self, seq: int, limit: int = BATCH) -> list[dict[str, Any]]:
        """Up to ``limit`` logged records with a sequence number above ``seq``."""
        out: list[dict[str, Any]] = []
        if seq >= self.last_seq:
            return out
        for _, v in self.meta.scan(KeyRange(seq_key(LOG, max(seq, 0) + 1), LOG + b"\xff" * 9)):
            out.append(json.loads(v))
            if len(out) >= limit:
                break
        return out

    def iter_after(self, seq: int) -> Iterator[dict[str, Any]]:
        """Every logged record after ``seq`` (a snapshot, read in pages)."""
        while True:
            page = self.records_after(seq)
            if not page:
                return
            yield from page
            seq = page[-1]["Sequence"]

    def wait_for(self, seq: int, timeout: float) -> bool:
        """Block until a record above ``seq`` is logged (True) or ``timeout`` passes."""
        with self._new:
            return self._new.wait_for(lambda: self.last_seq > seq, timeout)

    def add_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(last_seq)`` (from the drainer thread) whenever records are logged."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[int], None]) -> None:
        """Undo :meth:`add_listener`."""
        try:
            self._listeners.remove(fn)
        except ValueError:
            pass

    # ----- sinks ------------------------------------------------------------------------

    def cursor(self, sink: Sink) -> int:
        """Sequence number of the last record ``sink`` acknowledged."""
        raw = self.meta.get(CURSOR + sink.name.encode())
        return int(raw) if raw else 0

    def _sink_loop(self, sink: Sink) -> None:
        pos = self.cursor(sink)
        backoff = POLL
        while not self._stop.is_set():
            recs = self.records_after(pos)
            if not recs:
                self.wait_for(pos, 1.0)
                continue
            try:
                sink.send(recs)
            except Exception as e:
                log.warning("mutation sink %s is unavailable (%s); retrying in %.1fs",
                            sink.name, e, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = POLL
            pos = recs[-1]["Sequence"]
            self.meta.put(CURSOR + sink.name.encode(), str(pos).encode())

    def close(self) -> None:
        """Stop the threads (after a last drain) and close the sinks."""
        if self._started:
            try:
                self.drain_once()
            except Exception:
                log.exception("last mutation drain failed")
        self._stop.set()
        self._wake.set()
        with self._new:
            self._new.notify_all()
        for t in self._threads:
            t.join(5)
        for s in self.sinks:
            s.close()
