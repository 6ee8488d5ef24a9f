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
