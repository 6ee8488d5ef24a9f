"""Slow and idle clients (issue 10): header and body deadlines on a real server process.

Bad inputs tried: 40 connections that send half a request line and stop; 40 that connect and
send nothing; one that sends headers then stops mid-body (Content-Length 1000, 10 bytes
sent). The server must keep answering others while they are open, and close each after its
deadline.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
from servers import ServerProcess


def _toml(tmp_path: Path) -> Path:
    p = tmp_path / "dvid.toml"
    p.write_text('[server]\nheaderTimeout = 1.5\nbodyTimeout = 1.5\n\n'
                 '[store.main]\nengine = "memory"\n')
    return p


def _closed(s: socket.socket, within: float) -> tuple[bool, bytes]:
    """Whether the server closed ``s`` within ``within`` s, and what it sent first."""
    s.settimeout(within)
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True, got
            got += chunk
    except TimeoutError:
        return False, got
    except ConnectionResetError:
        return True, got


def test_half_open_connections_are_closed_and_others_served(tmp_path: Path) -> None:
    srv = ServerProcess(["--config", str(_toml(tmp_path))], tmp_path / "server.log")
    try:
        host, port = "127.0.0.1", srv.port
        partial = [socket.create_connection((host, port)) for _ in range(40)]
        for s in partial:
            s.sendall(b"GET /api/heartbeat HTTP/1.1\r\nHost: x\r\n")  # never finished
        silent = [socket.create_connection((host, port)) for _ in range(40)]
        # the server keeps answering while all 80 are held open
        t0 = time.monotonic()
        with httpx.Client(base_url=srv.url, timeout=5) as c:
            for _ in range(20):
                assert c.get("/api/heartbeat").text == "OK"
        assert time.monotonic() - t0 < 3
        closed = [_closed(s, 5) for s in partial]
        assert all(ok for ok, _ in closed)
        assert all(b" 408 " in first for _, first in closed)  # a request had begun
        assert all(_closed(s, 5) == (True, b"") for s in silent)
        for s in partial + silent:
            s.close()
        # a body that stops arriving: 408 from the body reader, connection closed
        s = socket.create_connection((host, port))
        s.sendall(b"POST /api/repos HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                  b'{"alias":')
        ok, first = _closed(s, 6)
        s.close()
        assert ok and first.startswith(b"HTTP/1.1 408"), first[:200]
        with httpx.Client(base_url=srv.url, timeout=5) as c:
            assert c.get("/api/repos/info").json() == {}  # nothing was created
    finally:
        srv.stop()


def _read_response(s: socket.socket, buf: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """(head, body, leftover) of one Content-Length response read from ``s``."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(rest) < n:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return head, rest[:n], rest[n:]


def test_large_bodies_received_into_their_buffer(tmp_path: Path) -> None:
    """Bodies of >= 1 MiB go straight from the parser into the handler's buffer
    (dvidpy.http.protocol.BodySink). Tried: a 3 MiB body trickled in 256 KiB pieces with
    pauses shorter than bodyTimeout (longer in total); one that stops half way (408,
    nothing stored); a large POST pipelined with a GET in one write; Expect: 100-continue;
    a client that disconnects mid-body. Every stored value reads back byte for byte, and
    /api/load counts the bytes received."""
    import os

    srv = ServerProcess(["--config", str(_toml(tmp_path))], tmp_path / "server.log")
    try:
        host, port = "127.0.0.1", srv.port
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            root = c.post("/api/repos", json={}).json()["root"]
            assert c.post(f"/api/repo/{root}/instance",
                          json={"typename": "keyvalue", "dataname": "kv"}).status_code == 200
            bytes_in = c.get("/api/load").json()["total bytes in"]
        kv = f"/api/node/{root}/kv/key"

        def post_head(key: str, n: int, extra: str = "") -> bytes:
            return (f"POST {kv}/{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n{extra}"
                    "\r\n").encode()

        slow = os.urandom(3 << 20)
        s = socket.create_connection((host, port))
        s.sendall(post_head("slow", len(slow)))
        t0 = time.monotonic()
        for i in range(0, len(slow), 256 << 10):
            s.sendall(slow[i:i + (256 << 10)])
            time.sleep(0.3)
        assert time.monotonic() - t0 > 2  # longer than bodyTimeout, in steady progress
        head, _, _ = _read_response(s)
        assert head.startswith(b"HTTP/1.1 200"), head
        s.close()

        s = socket.create_connection((host, port))
        s.sendall(post_head("stalled", 2 << 20) + os.urandom(1200 << 10))
        ok, first = _closed(s, 6)
        s.close()
        assert ok and first.startswith(b"HTTP/1.1 408"), first[:200]

        piped = os.urandom((2 << 20) + 17)
        s = socket.create_connection((host, port))
        s.sendall(post_head("piped", len(piped)) + piped +
                  f"GET {kv}/piped HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head, _, rest = _read_response(s)
        assert head.startswith(b"HTTP/1.1 200"), head
        head, body, _ = _read_response(s, rest)
        assert head.startswith(b"HTTP/1.1 200") and body == piped
        s.close()

        cont = os.urandom(5 << 20)
        s = socket.create_connection((host, port))
        s.sendall(post_head("continued", len(cont), "Expect: 100-continue\r\n"))
        first = s.recv(4096)
        assert first.startswith(b"HTTP/1.1 100"), first
        s.sendall(cont)
        head, _, _ = _read_response(s, first.partition(b"\r\n\r\n")[2])
        assert head.startswith(b"HTTP/1.1 200"), head
        s.close()

        s = socket.create_connection((host, port))
        s.sendall(post_head("gone", 4 << 20) + os.urandom(1 << 20))
        s.close()  # disconnects mid-body

        with httpx.Client(base_url=srv.url, timeout=10) as c:
            assert c.get(f"{kv}/slow").content == slow
            assert c.get(f"{kv}/continued").content == cont
            assert c.get(f"{kv}/piped").content == piped
            for key in ("stalled", "gone"):
                assert c.get(f"{kv}/{key}").status_code == 404
            # bodies received into their buffer are counted by /api/load
            got = c.get("/api/load").json()["total bytes in"] - bytes_in
            assert got >= len(slow) + len(piped) + len(cont), got
    finally:
        srv.stop()
