"""The console's routes over HTTP (no browser): redirects, the shell, static files and what
they refuse, config.json, neuroglancer's client and its side endpoints."""

from __future__ import annotations

import httpx
import pytest

from dvidpy.console.routes import NG_PAGE, neuroglancer_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def http(world):
    with httpx.Client(base_url=world.url, timeout=30) as c:
        yield c


def test_redirects_and_shell(http, world) -> None:
    r = http.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/console/"
    r = http.get("/console")
    assert r.status_code == 307 and r.headers["location"] == "/console/"
    shells = ["/console/", "/console/jobs", f"/console/repo/{world.root}",
              f"/console/repo/{world.root[:6]}:proofread",
              f"/console/node/{world.nodes['p1']}/segmentation"]
    bodies = set()
    for path in shells:
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/console/static/app.js">' in r.text
        bodies.add(r.text)
    assert len(bodies) == 1  # one shell; the modules read the path


def test_page_routes_refuse_unknown_things(http, world) -> None:
    r = http.get("/console/repo/0123456789abcdef")
    assert r.status_code == 400 and "0123456789abcdef" in r.text
    r = http.get(f"/console/node/{world.root}/no-such-instance")
    assert r.status_code == 400 and "no-such-instance" in r.text
    assert http.get(f"/console/node/{world.root}").status_code == 404  # no such page
    assert http.post("/console/jobs").status_code == 405


@pytest.mark.parametrize("path", [
    "/console/static/%2e%2e/routes.py",        # .. after percent-decoding
    "/console/static/%2e%2e%2froutes.py",      # a / inside one segment
    "/console/static/..%5croutes.py",          # a backslash
    "/console/static/pages/%2e%2e/%2e%2e/routes.py",
    "/console/static/.hidden.js",
    "/console/static/routes.py",               # not a served extension
    "/console/static/app.js%00.css",           # NUL
    "/console/static/nope.js",
    "/console/static",
    "/console/static/pages",
])
def test_static_refuses_escapes_and_unknown_files(http, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith("text/plain")


def test_static_files_types_and_revalidation(http) -> None:
    for path, ctype in (("app.js", "text/javascript"), ("style.css", "text/css"),
                        ("viewer/viewer.js", "text/javascript"), ("favicon.png", "image/png")):
        r = http.get(f"/console/static/{path}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), path
        etag = r.headers["etag"]
        assert r.headers["cache-control"] == "no-cache"
        again = http.get(f"/console/static/{path}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        stale = http.get(f"/console/static/{path}", headers={"If-None-Match": '"other"'})
        assert stale.status_code == 200 and stale.content == r.content
    assert http.get("/favicon.ico").headers["content-type"] == "image/png"


def test_config(http) -> None:
    cfg = http.get("/console/config.json").json()
    assert cfg["features"] == {"transfer": True, "ingest": True}
    assert cfg["readonly"] is False
    assert [s["engine"] for s in cfg["stores"]] == ["lmdb"]  # the default of a new folder
    assert cfg["neuroglancer"] == (NG_PAGE if neuroglancer_client() else None)


def test_neuroglancer_client_and_side_routes(http) -> None:
    if neuroglancer_client() is None:
        r = http.get(NG_PAGE)
        assert r.status_code == 404 and "dvidpy[neuroglancer]" in r.text
        return
    r = http.get("/console/neuroglancer")
    assert r.status_code == 307 and r.headers["location"] == NG_PAGE
    r = http.get(NG_PAGE.rstrip("/"))
    assert r.status_code == 307 and r.headers["location"] == NG_PAGE
    page = http.get(NG_PAGE)
    assert page.status_code == 200 and "<title>neuroglancer</title>" in page.text
    main_js = next(p for p in page.text.split('"') if p.startswith("main.") and p.endswith(".js"))
    js = http.get(NG_PAGE + main_js)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert http.get(NG_PAGE + "%2e%2e/__init__.py").status_code == 404
    cred = http.post("/console/neuroglancer/credentials/dvidpy",
                     json={"key": "DVID", "parameters": {"dvidServer": "x"}})
    assert cred.status_code == 200 and cred.json() == {"generation": 1,
                                                       "credentials": {"token": ""}}
    bad = http.post("/console/neuroglancer/credentials/dvidpy", json={"key": "gcs"})
    assert bad.status_code == 400 and "dvid://" in bad.text
    assert http.post("/console/neuroglancer/credentials/dvidpy",
                     content=b"[1,").status_code == 400
    with http.stream("GET", "/console/neuroglancer/events/dvidpy") as ev:
        assert ev.status_code == 200
        assert ev.headers["content-type"].startswith("text/event-stream")
        assert next(ev.iter_bytes()).startswith(b": dvidpy")
