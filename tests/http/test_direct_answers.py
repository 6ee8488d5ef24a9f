"""Body-less reads answered on the spot by the protocol (``Dispatcher.answer_now``), on a
real server process, against the same requests through the ASGI path.

Tried: one write carrying GETs answered on the spot, a streamed answer (prepared on the spot,
sent through ASGI), a POST with a body, a 404, a 405, a HEAD and a GET with a query, in that
order, must come back in order with the right bodies; HEAD carries the ASGI path's headers and
no body; ``Connection: close`` is honoured; a GET with a body (Content-Length > 0) still gets its
answer; a client that pipelines 1,000 reads of 256 KiB and reads nothing must not make the
server buffer them (RSS bounded), and then gets every answer in order; ``/api/load`` counts
requests answered on the spot.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
from servers import ServerProcess


def _toml(tmp_path: Path) -> Path:
    p = tmp_path / "dvid.toml"
    p.write_text('[store.main]\nengine = "memory"\n')
    return p


def _response(s: socket.socket, buf: bytes, head_only: bool = False
              ) -> tuple[int, dict[bytes, bytes], bytes, bytes]:
    """(status, headers, body, leftover) of one response read from ``s``."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1 << 20)
        assert chunk, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (ln.partition(b":") for ln in lines[1:])}
    n = 0 if head_only else int(headers.get(b"content-length", b"0"))
    while len(rest) < n:
        chunk = s.recv(1 << 20)
        assert chunk
        rest += chunk
    return status, headers, rest[:n], rest[n:]


def _setup(url: str) -> tuple[str, dict[str, bytes]]:
    with httpx.Client(base_url=url, timeout=10) as c:
        root = c.post("/api/repos", json={}).json()["root"]
        assert c.post(f"/api/repo/{root}/instance",
                      json={"typename": "keyvalue", "dataname": "kv"}).status_code == 200
        values = {f"k{i}": os.urandom(100 + i) for i in range(5)}
        for k, v in values.items():
            assert c.post(f"/api/node/{root}/kv/key/{k}", content=v).status_code == 200
    return root, values


def test_pipelined_mixture_answers_in_order(tmp_path: Path) -> None:
    srv = ServerProcess(["--config", str(_toml(tmp_path))], tmp_path / "server.log")
    try:
        root, values = _setup(srv.url)
        kv = f"/api/node/{root}/kv"
        # the same requests through the ASGI path (a proxy header keeps them off the
        # direct one, for uvicorn's proxy-headers middleware)
        with httpx.Client(base_url=srv.url, timeout=10,
                          headers={"x-forwarded-for": "10.0.0.1"}) as c:
            asgi_get = c.get(f"{kv}/key/k1")
            asgi_head = c.head(f"{kv}/key/k1")
            asgi_range = c.get(f"{kv}/keyrangevalues/k0/k9", params={"json": "true"})
        reqs = [f"GET {kv}/key/k0 HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET {kv}/keyrangevalues/k0/k9?json=true HTTP/1.1\r\nHost: x\r\n\r\n",
                f"POST {kv}/key/new HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
                f"GET {kv}/key/new HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET {kv}/key/missing HTTP/1.1\r\nHost: x\r\n\r\n",
                f"PATCH {kv}/key/k0 HTTP/1.1\r\nHost: x\r\n\r\n",
                f"HEAD {kv}/key/k1 HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET {kv}/key/k1?u=someone HTTP/1.1\r\nHost: x\r\n\r\n",
                f"GET {kv}/key/k2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nzz",
                "GET /api/heartbeat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.settimeout(10)
        s.sendall("".join(reqs).encode())
        got = []
        buf = b""
        for r in reqs:
            st, h, body, buf = _response(s, buf, head_only=r.startswith("HEAD"))
            got.append((st, h, body))
        assert s.recv(100) == b""  # closed after the Connection: close request
        s.close()
        assert got[0][0] == 200 and got[0][2] == values["k0"]
        assert got[1][0] == 200 and got[1][2] == asgi_range.content
        assert got[2][0] == 200
        assert got[3][0] == 200 and got[3][2] == b"abc"  # written by the POST before it
        assert got[4][0] == 404 and b"missing" in got[4][2]
        assert got[4][1][b"content-type"].startswith(b"text/plain")
        assert got[5][0] == 405
        st, h, body = got[6]
        assert st == 200 and body == b""
        assert h[b"content-length"] == asgi_head.headers["content-length"].encode()
        assert got[7][0] == 200 and got[7][2] == values["k1"]
        for name in (b"content-type", b"content-length", b"accept-ranges",
                     b"access-control-allow-origin", b"server", b"date"):
            assert name.decode() in asgi_get.headers
            assert got[7][1][name.lower()] == asgi_get.headers[name.decode()].encode() or \
                name == b"date"
        assert got[8][0] == 200 and got[8][2] == values["k2"]
        assert got[9][0] == 200 and got[9][2] == b"OK"
        assert got[9][1][b"connection"] == b"close"
    finally:
        srv.stop()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_client_that_reads_nothing_is_not_buffered(tmp_path: Path) -> None:
    srv = ServerProcess(["--config", str(_toml(tmp_path))], tmp_path / "server.log")
    try:
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            root = c.post("/api/repos", json={}).json()["root"]
            c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                        "dataname": "kv"})
            big = os.urandom(256 << 10)
            assert c.post(f"/api/node/{root}/kv/key/big", content=big).status_code == 200
            requests_before = c.get("/api/load").json()["total requests"]
        assert srv.proc is not None
        pid = srv.proc.pid
        rss0 = _rss_kib(pid)
        n = 1000  # 250 MiB of answers
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        s.settimeout(20)
        s.sendall(f"GET /api/node/{root}/kv/key/big HTTP/1.1\r\nHost: x\r\n\r\n".encode() * n)
        time.sleep(1.5)
        grown = _rss_kib(pid) - rss0
        assert grown < 100 << 10, f"server RSS grew by {grown} KiB for an unread client"
        buf = b""
        for _ in range(n):
            st, _, body, buf = _response(s, buf)
            assert st == 200 and body == big
        s.close()
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            load = c.get("/api/load").json()
        # every pipelined request was counted (plus this /api/load request itself)
        assert load["total requests"] - requests_before >= n
    finally:
        srv.stop()
