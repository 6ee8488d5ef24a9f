"""Hostile input against the shared mechanisms of the HTTP surface (issue 10).

Each test names the bad inputs it tries; each must get a 4xx with a plain-text message that
says what is wrong, and a snapshot of the server's state taken before must be unchanged
after. Routes are enumerated from the route table itself, so a new route is covered the
moment it is declared.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from routes_util import fill
from starlette.testclient import TestClient

from dvidpy.config import Settings
from dvidpy.datatype import datatypes as registered_datatypes
from dvidpy.http.spec import JSON
from server import all_routes, create_app

DEEP = b"[" * 50_000 + b"]" * 50_000
DEEP_OBJ = b'{"a":' * 20_000 + b"1" + b"}" * 20_000
@pytest.fixture
def c() -> Iterator[TestClient]:
    with TestClient(create_app(Settings.memory()), raise_server_exceptions=True) as client:
        yield client


def make_repo(c: TestClient) -> tuple[str, dict[str, str]]:
    """A repo with one instance of every datatype; ``(root, type -> instance name)``."""
    root = c.post("/api/repos", json={"alias": "hostile"}).json()["root"]
    names = {}
    for t in sorted(registered_datatypes()):
        r = c.post(f"/api/repo/{root}/instance", json={"typename": t, "dataname": f"{t}1"})
        assert r.status_code == 200, r.text
        names[t] = f"{t}1"
    boss_resources(c)
    return root, names


def boss_resources(c: TestClient, name: str = "x") -> None:
    """A Boss collection, frame, experiment and image channel all called ``name`` (the
    value :func:`routes_util.fill` gives names), so Boss routes reach their bodies."""
    frame = {"x_start": 0, "x_stop": 64, "y_start": 0, "y_stop": 64, "z_start": 0,
             "z_stop": 64, "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 40,
             "voxel_unit": "nanometers"}
    for path, body in ((f"/v1/collection/{name}", {}), (f"/v1/coord/{name}", frame),
                       (f"/v1/collection/{name}/experiment/{name}", {"coord_frame": name}),
                       (f"/v1/collection/{name}/experiment/{name}/channel/{name}",
                        {"type": "image", "datatype": "uint8"})):
        r = c.post(path, json=body)
        assert r.status_code == 201, (path, r.text)


def snapshot(c: TestClient) -> Any:
    return c.get("/api/repos/info").json()


def json_routes(root: str, names: dict[str, str]) -> Iterator[tuple[str, str]]:
    """``(method, path)`` of every declared route whose body is JSON."""
    for spec in all_routes():
        if spec.body is not None and spec.body.media == JSON:
            yield spec.method, "/" + fill(spec, {"uuid": root}).lstrip("/")
    for t, name in names.items():
        for spec in registered_datatypes()[t].routes():
            if spec.body is not None and spec.body.media == JSON:
                yield spec.method, f"/api/node/{root}/{name}/" + fill(spec, {"uuid": root})


def test_deep_json_is_400_on_every_json_route(c: TestClient) -> None:
    """Bad input: arrays nested 50,000 deep and objects nested 20,000 deep (a
    RecursionError and a 500 before), as the body of every route declared to take JSON."""
    root, names = make_repo(c)
    before = snapshot(c)
    routes = sorted(set(json_routes(root, names)))
    assert len(routes) >= 20, routes  # the server, repo, node, transfer and datatype routes
    for method, path in routes:
        for body in (DEEP, DEEP_OBJ):
            r = c.request(method, path, content=body)
            assert r.status_code == 400, (method, path, r.status_code, r.text[:200])
            media = "application/json" if path.startswith("/v1/") else "text/plain"
            assert r.headers["content-type"].startswith(media)
            assert "nests deeper than" in r.text, (method, path, r.text[:200])
    after = snapshot(c)
    for v in (*before.values(), *after.values()):
        v.pop("Updated", None)
    assert after == before


@pytest.mark.parametrize("url", [
    "http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:0", "file:///etc/passwd",
    "ftp://127.0.0.1:21", "notaurl", "http://", "http://user:pw@127.0.0.1:8000",
    "http://127.0.0.1:8000/api/other", "http://exa mple.org", "gopher://x:70", " ",
    "http://127.0.0.1:8000?x=1", "http://" + "a" * 3000, "http://bad_host!:80",
])
def test_malformed_peer_urls_are_400(c: TestClient, url: str) -> None:
    """Bad input: each URL above as the peer of a push and of a pull (502s and 500s before);
    no job may start."""
    root, _ = make_repo(c)
    for path, key in (("/api/transfer/push", "dst"), ("/api/transfer/pull", "src")):
        r = c.post(path, json={"uuid": root, key: url})
        assert r.status_code == 400, (path, url, r.status_code, r.text)
        assert repr(key) in r.text
    assert c.get("/api/transfer/jobs").json() == []


def test_typed_parameters_are_400_naming_the_parameter(c: TestClient) -> None:
    """Bad input: a non-integer group id, a negative one, a non-UTF-8 instance name, an
    unknown UUID, too many path segments, a wrong method, an unknown route."""
    root, _names = make_repo(c)
    r = c.post("/api/transfer/receive/abc/notanint", content=b"")
    assert r.status_code == 400 and "gid" in r.text
    r = c.post("/api/transfer/receive/abc/-1", content=b"")
    assert r.status_code == 400 and "gid" in r.text
    r = c.get(f"/api/node/{root}/%ff%fe/info")
    assert r.status_code == 400 and "UTF-8" in r.text
    r = c.get("/api/repo/0000/info")
    assert r.status_code == 400
    r = c.get(f"/api/node/{root}/keyvalue1/info/extra/segments")
    assert r.status_code == 400 and "path segments" in r.text
    r = c.delete("/api/repos/info")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    r = c.get("/api/no/such/route")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")


def test_keys_are_the_raw_bytes_of_the_path(c: TestClient) -> None:
    """Distinct non-UTF-8 keys stayed distinct (``%ff`` and ``%fe`` collided as U+FFFD):
    every distinct byte string is its own key through POST, GET, keys, keyrange,
    keyrangevalues (JSON, tar and protobuf) and DELETE."""
    import io
    import tarfile

    from datatypes import protos

    root, _ = make_repo(c)
    base = f"/api/node/{root}/keyvalue1"
    keys = {"%ff": b"\xff", "%fe": b"\xfe", "a%2Fb": b"a/b", "%e2%82%ac": "€".encode(),
            "plain": b"plain"}
    for i, q in enumerate(keys):
        assert c.post(f"{base}/key/{q}", content=b"%d" % i).status_code == 200
    for i, q in enumerate(keys):
        assert c.get(f"{base}/key/{q}").content == b"%d" % i, q
    listed = c.get(f"{base}/keys").json()
    assert sorted(k.encode("utf-8", "surrogateescape") for k in listed) == sorted(
        keys.values())
    raw = c.get(f"{base}/keyrangevalues/%01/%ff%ff").content
    # protobuf carries the raw key bytes (read at the wire level: \xff is not UTF-8)
    assert raw.count(b"\x0a") >= len(keys)
    for k in keys.values():
        assert k in raw
    tar = c.get(f"{base}/keyrangevalues/%01/%ff%ff?tar=true").content
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        names = {m.name.encode("utf-8", "surrogateescape") for m in tf.getmembers()}
    assert names == set(keys.values())
    js = json.loads(c.get(f"{base}/keyrangevalues/%01/%ff%ff?json=true").content)
    assert {k.encode("utf-8", "surrogateescape"): v for k, v in js.items()} == {
        b: i for i, b in enumerate(keys.values())}
    assert c.delete(f"{base}/key/%ff").status_code == 200
    assert c.get(f"{base}/key/%ff").status_code == 404
    assert c.get(f"{base}/key/%fe").content == b"1"
    r = c.post(f"{base}/key/a%00b", content=b"x")
    assert r.status_code == 400 and "NUL" in r.text
    pb = protos.Keys(keys=["plain"]).SerializeToString()
    r = c.request("GET", f"{base}/keyvalues", content=pb)
    assert protos.KeyValues.FromString(r.content).kvs[0].value == b"4"


def test_request_body_limits(tmp_path: Any) -> None:
    """Bad input: a Content-Length over the limit (refused before any body byte is sent),
    a chunked body that grows past it, and a body shorter than its Content-Length."""
    from servers import ServerProcess

    toml = tmp_path / "dvid.toml"
    toml.write_text('[server]\nmaxRequestBytes = 1000\nbodyTimeout = 2\n'
                    '[store.main]\nengine = "memory"\n')
    srv = ServerProcess(["--config", str(toml)], tmp_path / "log")
    try:
        def raw(req: bytes, body_parts: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(req)
            for p in body_parts:
                try:
                    s.sendall(p)
                except OSError:
                    break
            s.settimeout(10)
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except (TimeoutError, ConnectionResetError):
                pass
            s.close()
            return out

        # 413 arrives although no body byte was sent
        ans = raw(b"POST /api/repos HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
        assert ans.startswith(b"HTTP/1.1 413") and b"over the server limit" in ans
        chunk = b"%x\r\n%s\r\n" % (600, b"x" * 600)
        ans = raw(b"POST /api/repos HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                  [chunk, chunk, chunk])
        assert ans.startswith(b"HTTP/1.1 413"), ans[:100]
        ans = raw(b"POST /api/repos HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{}")
        assert ans.startswith(b"HTTP/1.1 408"), ans[:100]
        import httpx

        assert httpx.get(srv.url + "/api/repos/info").json() == {}
    finally:
        srv.stop()
