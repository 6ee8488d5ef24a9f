"""Real clients against a real server process with auth on (issue 11).

* neuclease's session: a ``requests.Session`` with ``u``/``app`` (and ``admintoken`` from
  ``DVID_ADMIN_TOKEN``) query parameters and an ``Authorization: Bearer`` header.
* neuroglancer's DVID credentials flow (``src/datasource/dvid``): anonymous first; on 401
  it fetches ``/api/server/token`` with the browser's cookies (``credentials: include``, so
  CORS must allow credentials for the viewer's origin) and retries with ``Bearer``.
* intern's ``DVIDRemote`` sends no credentials at all (module-level ``requests`` calls), so
  with auth on it reads public repos and its writes are refused with 401.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import intern.remote.dvid as intern_remote
import intern.resource.dvid as intern_resource
import jwt
import numpy as np
import pytest
import requests
from credentials import ADMIN, SECRET
from servers import ServerProcess

VIEWER = "https://viewer.example"


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: Any) -> Any:
    monkeypatch.setenv("DVID_ADMIN_TOKEN", "open-sesame")
    toml = tmp_path / "dvid.toml"
    toml.write_text(
        f'[server]\ncorsDomains = ["{VIEWER}"]\n\n[store.main]\nengine = "leveldb"\n'
        f'path = "db"\n\n[auth]\nenforce = "token"\nsecretkey = "{SECRET}"\n'
        f'admins = ["{ADMIN}"]\n')
    srv = ServerProcess(["--config", str(toml)], tmp_path / "server.log")
    yield srv
    srv.stop()


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + jwt.encode({"user": user}, SECRET, algorithm="HS256")}


def neuclease_session(token_headers: dict[str, str], admintoken: str | None = None) -> Any:
    s = requests.Session()
    s.params = {"u": "someone", "app": "neuclease"}
    if admintoken:
        s.params["admintoken"] = admintoken
    s.headers.update(token_headers)
    return s


def test_neuclease_session(secured: Any) -> None:
    url = secured.url
    admin = neuclease_session({}, admintoken="open-sesame")
    root = admin.post(f"{url}/api/repos", json={"alias": "nc"}).json()["root"]
    admin.post(f"{url}/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                        "dataname": "kv"}).raise_for_status()
    admin.post(f"{url}/api/repo/{root}/permissions",
               json={"grants": {"user:alice@lab.org": "write"}}).raise_for_status()
    s = neuclease_session(bearer("alice@lab.org"))
    assert s.get(f"{url}/api/repos/info").json().keys() == {root}
    s.post(f"{url}/api/node/{root}/kv/key/k", data=b"v").raise_for_status()
    assert s.get(f"{url}/api/node/{root}/kv/key/k").content == b"v"
    rec = s.get(f"{url}/api/node/{root}/kv/mutations").json()[-1]
    assert rec["User"] == "alice@lab.org" and rec["App"] == "neuclease"
    anon = neuclease_session({})
    assert anon.get(f"{url}/api/node/{root}/kv/key/k").status_code == 401
    log = secured.log.read_text()
    assert "user=alice@lab.org" in log and "open-sesame" not in log  # tokens never logged


def test_neuroglancer_credentials_flow(secured: Any) -> None:
    url = secured.url
    admin = neuclease_session({}, admintoken="open-sesame")
    root = admin.post(f"{url}/api/repos", json={}).json()["root"]
    admin.post(f"{url}/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                        "dataname": "kv"}).raise_for_status()
    admin.post(f"{url}/api/repo/{root}/permissions",
               json={"grants": {"user:alice@lab.org": "read"}}).raise_for_status()
    browser = requests.Session()
    browser.headers["Origin"] = VIEWER
    # the user logged in before (console / login page): the browser holds the cookie
    r = browser.post(f"{url}/api/server/login", json={"token": bearer(
        "alice@lab.org")["Authorization"][7:]})
    assert r.status_code == 200
    target = f"{url}/api/node/{root}/kv/keys?app=Neuroglancer"
    first = requests.get(target, headers={"Origin": VIEWER})  # anonymous first
    assert first.status_code == 401
    pre = requests.options(f"{url}/api/server/token", headers={
        "Origin": VIEWER, "Access-Control-Request-Method": "GET"})
    assert pre.headers["access-control-allow-origin"] == VIEWER
    assert pre.headers["access-control-allow-credentials"] == "true"
    tok = browser.get(f"{url}/api/server/token")
    assert tok.status_code == 200 and tok.headers["access-control-allow-credentials"] == "true"
    again = requests.get(target, headers={"Origin": VIEWER,
                                          "Authorization": f"Bearer {tok.text}"})
    assert again.status_code == 200 and again.json() == []


def test_intern_dvidremote_reads_public_repos_only(secured: Any) -> None:
    url = secured.url
    admin = neuclease_session({}, admintoken="open-sesame")
    root = admin.post(f"{url}/api/repos", json={"alias": "pub"}).json()["root"]
    admin.post(f"{url}/api/repo/{root}/instance", json={
        "typename": "uint8blk", "dataname": "grayscale"}).raise_for_status()
    vol = np.random.default_rng(1).integers(0, 255, (8, 16, 32), dtype=np.uint8)
    admin.post(f"{url}/api/node/{root}/grayscale/raw/0_1_2/32_16_8/0_0_0",
               data=vol.tobytes()).raise_for_status()
    rmt = intern_remote.DVIDRemote({"protocol": "http", "host": url.removeprefix("http://")})
    res = intern_resource.DataInstanceResource("grayscale", UUID=root, type="uint8blk")
    with pytest.raises(Exception):  # noqa: B017 (intern raises its own errors for a 401)
        rmt.get_cutout(res, 0, [0, 32], [0, 16], [0, 8])
    admin.post(f"{url}/api/repo/{root}/permissions", json={"public": True}).raise_for_status()
    got = rmt.get_cutout(res, 0, [0, 32], [0, 16], [0, 8])
    assert np.array_equal(got, vol)
    with pytest.raises(Exception):  # noqa: B017
        rmt.create_cutout(res, 0, [0, 32], [0, 16], [0, 8], vol)
    again = admin.get(f"{url}/api/node/{root}/grayscale/raw/0_1_2/32_16_8/0_0_0").content
    assert again == vol.tobytes()  # the refused write changed nothing
