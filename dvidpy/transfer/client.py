"""Driving a transfer: sources, sinks (local or over HTTP) and :func:`run_transfer`.

A *source* has ``manifest(uuid, flatten=, data=, roi=)``, ``stream(req)`` (raw frames) and
``count(req)`` (records a stream will carry, or None); a *sink* has ``begin(manifest)``,
``put_chunk(tid, gid, frame)``, ``finish(tid)`` and ``abort(tid)``. The driver connects one
of each, so a push runs inside the source server (local source, HTTP sink), a pull inside
the receiving server (HTTP source, local sink), and tests can mix them freely.

HTTP uses only the standard library (``http.client``) with keep-alive connections.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from dvidpy import jsonio
from dvidpy.errors import DvidError
from dvidpy.transfer.protocol import (
    DEFAULT_MAX_CHUNK,
    PROTOCOL_NAME,
    ProtocolError,
    read_frames,
)


class TransferError(DvidError):
    """A transfer failed because of the other server; ``status`` is the HTTP status that
    caused it (0: no answer). Reaches an HTTP client of this server as 502."""

    status_code = 502

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def parse_peer_url(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a peer server's root URL such as ``http://host:8000``
    (``host:port`` alone means http). The one validator of peer URLs: ``ValueError``
    saying what is wrong for any other scheme, a missing or malformed host, a port outside
    1..65535, or a path, query, fragment or user info (a peer is a server root)."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise ValueError("a peer URL must be a non-empty string of at most 2048 characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"peer URL {url!r} contains whitespace or control characters")
    try:
        u = urlsplit(url if "://" in url else "http://" + url)
        port = u.port
        host = u.hostname
    except ValueError as e:
        raise ValueError(f"malformed peer URL {url!r}: {e}") from None
    if "://" not in url and port is None:
        raise ValueError(f"peer URL {url!r} needs a scheme (http://host[:port]) or a port "
                         "(host:port)")
    if u.scheme not in ("http", "https"):
        raise ValueError(f"peer URL {url!r} must use http or https, not {u.scheme!r}")
    if not host:
        raise ValueError(f"peer URL {url!r} has no host")
    if u.username is not None or u.password is not None:
        raise ValueError(f"peer URL {url!r} must not carry user info")
    if u.path not in ("", "/") or u.query or u.fragment:
        raise ValueError(f"peer URL {url!r} must be a server root (http://host:port)")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"peer URL {url!r} has port {port} outside 1..65535")
    if port == 0:
        raise ValueError(f"peer URL {url!r} has port 0")
    if "[" not in u.netloc:
        labels = host.split(".")
        if not all(labels) or any(len(x) > 63 for x in labels) or not all(
                c.isalnum() or c in "-_" for x in labels for c in x):
            raise ValueError(f"peer URL {url!r} has a malformed host name {host!r}")
    else:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"peer URL {url!r} has a malformed IPv6 address") from None
    return u.scheme, host, port


class Http:
    """A tiny keep-alive HTTP client for one server root such as ``http://host:port``."""

    def __init__(self, base_url: str, timeout: float = 600.0, token: str = "") -> None:
        #: sent as ``Authorization: Bearer`` on every request when set (never logged)
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            self.scheme, self.host, self.port = parse_peer_url(base_url)
        except ValueError as e:
            raise TransferError(str(e)) from None
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.base = f"{self.scheme}://{host}" + (f":{self.port}" if self.port else "")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _new_conn(self) -> http.client.HTTPConnection:
        cls = (http.client.HTTPSConnection if self.scheme == "https"
               else http.client.HTTPConnection)
        return cls(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """``(status, body)``; reconnects once when a kept-alive connection went stale."""
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._new_conn()
            try:
                self._conn.request(method, path, body=body, headers={**(headers or {}),
                                                                     **self.auth})
                resp = self._conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                self.close()
                if attempt:
                    raise TransferError(f"{self.base}: connection lost ({e})") from None
            except OSError as e:
                self.close()
                raise TransferError(f"{self.base}: {e}") from None
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, obj: Any = None) -> Any:
        """Send JSON (when ``obj`` is not None), return the decoded JSON answer."""
        body = None if obj is None else json.dumps(obj).encode()
        hdr = {"Content-Type": "application/json"} if body is not None else {}
        status, data = self.request(method, path, body, hdr)
        if status >= 400:
            raise TransferError(f"{self.base}{path}: {status} {data.decode(errors='replace')}",
                                status)
        if not data.strip():
            return None
        try:
            return jsonio.loads(data, f"answer of {self.base}{path}")
        except DvidError as e:
            raise TransferError(e.message) from None

    def stream(self, method: str, path: str, obj: Any) -> http.client.HTTPResponse:
        """A streaming response on its own connection (the caller closes it)."""
        conn = self._new_conn()
        try:
            conn.request(method, path, body=json.dumps(obj).encode(),
                         headers={"Content-Type": "application/json", **self.auth})
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            raise TransferError(f"{self.base}: {e}") from None
        if resp.status >= 400:
            text = resp.read().decode(errors="replace")
            conn.close()
            raise TransferError(f"{self.base}{path}: {resp.status} {text}", resp.status)
        return resp

    def close(self) -> None:
        """Drop the kept-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def speaks_transfer(url: str, token: str = "") -> bool:
    """True when the server at ``url`` answers the dvidpy transfer protocol probe."""
    h = Http(url, timeout=30, token=token)
    try:
        status, data = h.request("GET", "/api/transfer/protocol")
    finally:
        h.close()
    if status != 200:
        return False
    try:
        answer = jsonio.loads(data, "protocol probe answer")
    except DvidError:
        return False
    return isinstance(answer, dict) and answer.get("protocol") == PROTOCOL_NAME


class HttpSource:
    """A dvidpy server sending over ``/api/transfer/manifest|count|stream``."""

    def __init__(self, url: str, token: str = "") -> None:
        self.http = Http(url, token=token)

    def manifest(self, uuid: str, *, flatten: bool = False, data: list[str] | None = None,
                 roi: str | None = None) -> dict[str, Any]:
        """The source's manifest (see :func:`dvidpy.transfer.sender.build_manifest`)."""
        return self.http.json("POST", "/api/transfer/manifest",
                              {"uuid": uuid, "flatten": flatten, "data": data, "roi": roi})

    def count(self, req: dict[str, Any]) -> int | None:
        """Records the stream for ``req`` will carry."""
        return int(self.http.json("POST", "/api/transfer/count", req)["records"])

    def stream(self, req: dict[str, Any]) -> Iterator[bytes]:
        """Raw frames; :class:`TransferError` when the stream is cut off."""
        resp = self.http.stream("POST", "/api/transfer/stream", req)
        try:
            limit = max(int(req.get("max_chunk", DEFAULT_MAX_CHUNK)), 1 << 16) * 4 + (64 << 20)
            yield from read_frames(resp, limit)  # type: ignore[arg-type]
        except (ProtocolError, OSError, http.client.HTTPException) as e:
            raise TransferError(f"stream from {self.http.base} broke: {e}") from None
        finally:
            resp.close()


class HttpSink:
    """A dvidpy server receiving over ``/api/transfer/receive``."""

    def __init__(self, url: str, token: str = "") -> None:
        self.http = Http(url, token=token)

    def begin(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Send the manifest, get the plan."""
        return self.http.json("POST", "/api/transfer/receive", manifest)

    def put_chunk(self, tid: str, gid: int, frame: bytes) -> None:
        """Post one frame (chunk or end marker)."""
        path = f"/api/transfer/receive/{quote(tid)}/{gid}"
        status, data = self.http.request("POST", path, frame,
                                         {"Content-Type": "application/octet-stream"})
        if status >= 400:
            raise TransferError(f"{self.http.base}{path}: {status} "
                                f"{data.decode(errors='replace')}", status)

    def finish(self, tid: str) -> dict[str, Any]:
        """Publish the received versions."""
        return self.http.json("POST", f"/api/transfer/receive/{quote(tid)}/finish", {})

    def abort(self, tid: str) -> None:
        """Drop a pending transfer and its staged data."""
        self.http.json("DELETE", f"/api/transfer/receive/{quote(tid)}")


class LocalSink:
    """The receiving side on this server's :class:`~dvidpy.transfer.receiver.Receiver`."""

    def __init__(self, receiver: Any) -> None:
        self.receiver = receiver

    def begin(self, manifest: dict[str, Any]) -> dict[str, Any]:
        # docstring: see HttpSink
        return self.receiver.begin(manifest)

    def put_chunk(self, tid: str, gid: int, frame: bytes) -> None:
        """Apply one frame."""
        self.receiver.apply_chunk(tid, gid, frame)

    def finish(self, tid: str) -> dict[str, Any]:
        """Publish the received versions."""
        return self.receiver.finish(tid)

    def abort(self, tid: str) -> None:
        """Drop a pending transfer and its staged data."""
        self.receiver.abort(tid)


_DONE = object()


def _prefetch(it: Iterator[bytes], depth: int = 3) -> Iterator[bytes]:
    """Run ``it`` in a thread, ``depth`` frames ahead (reading overlaps writing)."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for x in it:
                while not stop.is_set():
                    try:
                        q.put(x, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, daemon=True, name="transfer-prefetch")
    t.start()
    try:
        while True:
            x = q.get()
            if x is _DONE:
                return
            if isinstance(x, BaseException):
                raise x
            yield x
    finally:
        stop.set()
        close = getattr(it, "close", None)
        if close is not None and not t.is_alive():
            close()


ProgressFn = Callable[[dict[str, Any]], None]


def _names(xs: list[str]) -> str:
    return ", ".join(xs) if len(xs) <= 6 else ", ".join(xs[:6]) + f" and {len(xs) - 6} more"


def nothing_moved(m: dict[str, Any], plan: dict[str, Any], state: dict[str, Any]) -> str:
    """Why a transfer of manifest ``m`` with receiver plan ``plan`` that ended in
    ``state`` moved nothing, and what to do; "" when records or new versions moved.

    Two causes: the receiver already held every (instance, version) asked for (no
    transfer was opened), or what was asked for held no records once filtered (``roi``,
    or instances empty at those versions). Versions still open on the source
    (``m["source_open"]``) are named: writes made there after they were sent never travel.
    """
    if state["records"] or state["versions"]:
        return ""
    included = [im["name"] for im in m["instances"] if im["included"]]
    left_out = [im["name"] for im in m["instances"] if not im["included"]]
    uuid = m.get("uuid") or m["root"]
    if m.get("flatten"):
        versions = f"the flattened version {uuid}"
    else:
        versions = f"all {len(m['nodes'])} version(s) of repo {m['root']}"
    scope = (f"instance(s) {_names(included)} (--data; left out: {_names(left_out)})"
             if left_out else "every instance")
    still_open = [u for u in m.get("source_open", []) if isinstance(u, str)]
    if plan.get("transfer") is None:
        why = f"Nothing moved: the receiver already holds {scope} at {versions}."
        if still_open:
            todo = (f"Version(s) {_names(still_open)} are still open on the source: writes "
                    "made there after the first transfer are not sent again. Commit on the "
                    "source (POST /api/node/UUID/commit), write in a new version "
                    "(POST /api/node/UUID/newversion) and push that.")
        else:
            todo = ("Nothing to do: the receiver is up to date. Later changes travel once "
                    "they are in a new version: push that version.")
        return f"{why} {todo}"
    sent = sorted({g["instance"] for g in plan["groups"]})
    at = sorted({u for g in plan["groups"] for u in g["versions"]})
    where = f"instance(s) {_names(sent)} at version(s) {_names(at)}"
    if m.get("roi"):
        return (f"Nothing moved: no record of {where} lies inside roi {m['roi']!r} (as it "
                f"is at {uuid}). Check that ROI (GET /api/node/{uuid}/{m['roi']}/roi), or "
                "push without --roi.")
    return (f"Nothing moved: nothing was written to {where}. Check --data and the UUID "
            "(is the data in another version?).")


def run_transfer(source: Any, sink: Any, uuid: str, *, flatten: bool = False,
                 data: list[str] | None = None, roi: str | None = None,
                 progress: ProgressFn | None = None) -> dict[str, Any]:
    """Copy what the sink lacks of the repo holding ``uuid`` from ``source`` to ``sink``.

    Returns ``{"transfer", "groups", "records", "bytes", "seconds", "versions", "note"}``;
    ``note`` says why nothing moved and what to do (:func:`nothing_moved`), else "".
    ``progress`` is called with the same keys plus ``records_total`` (None when unknown)
    after every chunk. Interrupted transfers resume on the next call: the sink's plan
    carries each group's restart key. A sink answering 413 (over its limits) has already
    dropped the staged data; other failures keep it for resuming.
    """
    t0 = time.monotonic()
    m = source.manifest(uuid, flatten=flatten, data=data, roi=roi)
    plan = sink.begin(m)
    state: dict[str, Any] = {"transfer": plan["transfer"], "groups": len(plan["groups"]),
                             "groups_done": 0, "records": 0, "bytes": 0,
                             "records_total": None, "seconds": 0.0, "versions": [],
                             "note": ""}
    if plan["transfer"] is None:
        state["seconds"] = time.monotonic() - t0
        state["note"] = nothing_moved(m, plan, state)
        if progress:
            progress(state)
        return state
    tid = plan["transfer"]
    reqs = [(g["gid"], {
        "uuid": m["uuid"], "instance": g["instance"], "versions": g["versions"],
        "start": g["start"], "flatten": bool(m.get("flatten")), "roi": m.get("roi"),
        "max_chunk": int(plan.get("max_chunk", DEFAULT_MAX_CHUNK)),
    }) for g in plan["groups"]]
    try:
        counts = [source.count(r) for _, r in reqs]
        state["records_total"] = None if None in counts else sum(counts)  # type: ignore[arg-type]
    except TransferError:
        state["records_total"] = None
    if progress:
        progress(state)
    for gid, req in reqs:
        for frame in _prefetch(source.stream(req)):
            sink.put_chunk(tid, gid, frame)
            state["bytes"] += len(frame)
            state["records"] += int.from_bytes(frame[4:8], "big") if frame[:4] == b"DVXC" else 0
            state["seconds"] = time.monotonic() - t0
            if progress:
                progress(state)
        state["groups_done"] += 1
    res = sink.finish(tid)
    state["versions"] = res.get("versions", [])
    state["seconds"] = time.monotonic() - t0
    state["note"] = nothing_moved(m, plan, state)
    if progress:
        progress(state)
    return state
