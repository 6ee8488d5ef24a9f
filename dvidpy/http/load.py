"""Request counters behind ``GET /api/load`` and ``GET /api/user-latencies``.

The dispatcher calls :meth:`LoadCounters.begin` when a request arrives and
:meth:`LoadCounters.end` when its answer is sent, with the body bytes received and sent.
Counts go into one-second buckets; ``/api/load`` answers DVID's fields as per-second
rates over the last :data:`WINDOW` seconds:

=========================  ============================================================
``"GET requests"``         GET/HEAD/OPTIONS requests per second
``"PUT requests"``         POST/PUT/DELETE requests per second
``"value bytes read"``     response body bytes per second
``"value bytes written"``  request body bytes per second
``"handlers active"``      requests being handled, percent of the worker pool
``"goroutines"``           Python threads alive
other DVID fields          0 (file and key bytes, CGo writes and log queues are Go's)
=========================  ============================================================

plus dvidpy's ``"requests active"``, ``"interval seconds"`` and cumulative ``"total ..."``
counts. ``GET /api/heartbeat?u=USER`` records the user's latency (request arrival to
answer sent), answered by ``/api/user-latencies`` in DVID's shape.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

from dvidpy.dag import timestamp

#: seconds of history the rates are computed over
WINDOW = 5
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def pool_size() -> int:
    """Worker threads of the server's thread pool (anyio's default limiter)."""
    try:
        import anyio.to_thread

        return int(anyio.to_thread.current_default_thread_limiter().total_tokens)
    except Exception:  # no event loop in this thread: anyio's default
        return 40


def _rate(n: int) -> int:
    return math.ceil(n / WINDOW)


class LoadCounters:
    """Per-second request counters of one server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: deque[list[int]] = deque()  # [second, reads, writes, in, out]
        self.active = 0
        self.totals = {"requests": 0, "bytes in": 0, "bytes out": 0}
        self.latencies: dict[str, dict[str, Any]] = {}
        self._pool = 40

    def begin(self) -> None:
        """A request arrived."""
        with self._lock:
            self.active += 1

    def end(self, method: str, bytes_in: int, bytes_out: int, seconds: float,
            latency_user: str = "") -> None:
        """A request was answered (in ``seconds``; recorded as ``latency_user``'s latency
        when one is given)."""
        now = int(time.time())
        with self._lock:
            self.active -= 1
            if not self._buckets or self._buckets[-1][0] != now:
                self._buckets.append([now, 0, 0, 0, 0])
                while self._buckets and self._buckets[0][0] <= now - WINDOW:
                    self._buckets.popleft()
            b = self._buckets[-1]
            b[1 if method in _READS else 2] += 1
            b[3] += bytes_in
            b[4] += bytes_out
            self.totals["requests"] += 1
            self.totals["bytes in"] += bytes_in
            self.totals["bytes out"] += bytes_out
            if latency_user:
                self._latency(latency_user, seconds * 1e3)

    def _latency(self, user: str, ms: float) -> None:
        rec = self.latencies.get(user)
        if rec is None:
            rec = self.latencies[user] = {"User": user, "MinLatency": ms, "MaxLatency": ms}
        rec["LastPing"] = timestamp()
        rec["LastLatency"] = ms
        rec["MinLatency"] = min(rec["MinLatency"], ms)
        rec["MaxLatency"] = max(rec["MaxLatency"], ms)

    def snapshot(self) -> dict[str, int]:
        """DVID's ``/api/load`` object (see the module docstring)."""
        now = int(time.time())
        with self._lock:
            recent = [b for b in self._buckets if b[0] > now - WINDOW]
            active = self.active
            totals = dict(self.totals)
        s = [sum(b[i] for b in recent) for i in range(1, 5)]
        pool = pool_size()
        return {
            "file bytes read": 0, "file bytes written": 0, "key bytes read": 0,
            "key bytes written": 0,
            "value bytes read": _rate(s[3]), "value bytes written": _rate(s[2]),
            "GET requests": _rate(s[0]), "PUT requests": _rate(s[1]),
            "handlers active": min(100, 100 * active // max(pool, 1)),
            "goroutines": threading.active_count(),
            "active CGo writes": 0, "pending log messages": 0,
            "requests active": active, "interval seconds": WINDOW,
            **{f"total {k}": v for k, v in totals.items()},
        }
