"""Grants, public repos, listings, browser logins, accountability and safe defaults with
auth on (issue 11)."""

from __future__ import annotations

import logging
from typing import Any

from credentials import ADMIN


def repo_with_kv(srv: Any, alias: str = "r") -> str:
    c = srv.client
    admin = srv.headers(ADMIN)
    root = c.post("/api/repos", json={"alias": alias}, headers=admin).json()["root"]
    assert c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue",
                                                      "dataname": "kv"},
                  headers=admin).status_code == 200
    return root


def test_grants_groups_instances_and_public(auth_server: Any) -> None:
    srv = auth_server("oidc")
    c = srv.client
    admin = srv.headers(ADMIN)
    root = repo_with_kv(srv)
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "secret"},
           headers=admin)
    other = repo_with_kv(srv, "other")
    lab = srv.headers("bob@lab.org", groups=["/lab"])  # Keycloak group paths
    alice = srv.headers("alice@lab.org")
    kv = f"/api/node/{root}/kv"
    # permissions are for repo admins; bad grants are 400 with nothing changed
    assert c.get(f"/api/repo/{root}/permissions", headers=alice).status_code == 403
    for bad in ({"grants": {"user:alice@lab.org": "superuser"}}, {"grants": {"nobody": "read"}},
                {"grants": []}, {"public": "yes"}, {"instance": "nosuch", "grants": {}},
                {"grants": {"user:alice@lab.org\n": "read"}}):  # a final newline
        r = c.post(f"/api/repo/{root}/permissions", json=bad, headers=admin)
        assert r.status_code == 400, (bad, r.text)
    assert c.get(f"/api/repo/{root}/permissions", headers=admin).json()["grants"] == {
        f"user:{ADMIN}": "admin"}  # the creator administers the repo
    c.post(f"/api/repo/{root}/permissions", headers=admin,
           json={"grants": {"group:lab": "write", "user:alice@lab.org": "read"}})
    c.post(f"/api/repo/{root}/permissions", headers=admin,
           json={"instance": "secret", "grants": {"group:lab": "read"}})
    assert c.post(f"{kv}/key/a", content=b"1", headers=lab).status_code == 200
    assert c.post(f"{kv}/key/b", content=b"1", headers=alice).status_code == 403
    assert c.get(f"{kv}/key/a", headers=alice).content == b"1"
    # the instance override lowers the group's level on "secret"
    assert c.post(f"/api/node/{root}/secret/key/a", content=b"1",
                  headers=lab).status_code == 403
    assert c.get(f"/api/node/{root}/secret/keys", headers=lab).status_code == 200
    # listings show what the caller may read
    assert set(c.get("/api/repos/info", headers=alice).json()) == {root}
    assert set(c.get("/api/repos/info", headers=admin).json()) == {root, other}
    assert c.get("/api/repos/info").json() == {}
    assert c.get(f"{kv}/key/a").status_code == 401
    # a public repo: anyone reads, nobody anonymous writes
    c.post(f"/api/repo/{root}/permissions", headers=admin, json={"public": True})
    assert c.get(f"{kv}/key/a").content == b"1"
    assert set(c.get("/api/repos/info").json()) == {root}
    assert c.post(f"{kv}/key/c", content=b"1").status_code == 401
    assert c.get(f"/api/node/{other}/kv/keys").status_code == 401
    # removing a grant
    c.request("DELETE", f"/api/repo/{root}/permissions", headers=admin,
              json={"principals": ["group:lab"]})
    assert c.post(f"{kv}/key/d", content=b"1", headers=lab).status_code == 403


def test_public_versions_and_admintoken(auth_server: Any, monkeypatch: Any) -> None:
    """DVID's public_versions: anyone reads the listed versions, not their children; the
    admintoken= parameter (DVID_ADMIN_TOKEN) acts as an administrator."""
    monkeypatch.setenv("DVID_ADMIN_TOKEN", "sesame")
    pub = "ab" * 16
    srv = auth_server("token", public_versions=[pub])
    c = srv.client
    root = c.post("/api/repos", json={"root": pub}, headers=srv.headers(ADMIN)).json()["root"]
    assert root == pub
    c.post(f"/api/repo/{root}/instance?admintoken=sesame",
           json={"typename": "keyvalue", "dataname": "kv"})
    c.post(f"/api/node/{root}/kv/key/a?admintoken=sesame", content=b"1")
    assert c.get(f"/api/node/{root}/kv/keys?admintoken=sesame").json() == ["a"]
    assert c.post(f"/api/node/{root}/commit?admintoken=sesame", json={}).status_code == 200
    child = c.post(f"/api/node/{root}/newversion?admintoken=sesame", json={}).json()["child"]
    assert c.get(f"/api/node/{root}/kv/keys").json() == ["a"]  # anonymous, public version
    assert c.get(f"/api/node/{child}/kv/keys").status_code == 401
    assert c.post(f"/api/node/{child}/kv/key/b", content=b"1").status_code == 401
    assert c.get(f"/api/node/{root}/kv/keys?admintoken=nope").status_code == 401


def test_browser_login_cookie_and_neuroglancer_token(auth_server: Any) -> None:
    """A browser logs in with a token (cookie), then asks /api/server/token as
    neuroglancer does and uses the answer as a Bearer token; DSG's cookie works too."""
    srv = auth_server("oidc")
    c = srv.client
    root = repo_with_kv(srv)
    c.post(f"/api/repo/{root}/permissions", headers=srv.headers(ADMIN),
           json={"grants": {"user:alice@lab.org": "read"}})
    oidc = srv.token("alice@lab.org")
    assert c.post("/api/server/login", json={"token": "junk"}).status_code == 401
    r = c.post("/api/server/login", json={"token": oidc})
    assert r.status_code == 200 and "alice@lab.org" in r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert c.get("/api/server/whoami").json()["user"] == "alice@lab.org"  # cookie jar
    token = c.get("/api/server/token").text
    c.post("/api/server/logout")
    c.cookies.clear()
    assert c.get(f"/api/node/{root}/kv/keys").status_code == 401
    hdr = {"Authorization": f"Bearer {token}"}
    assert c.get(f"/api/node/{root}/kv/keys", headers=hdr).status_code == 200
    assert c.get("/api/server/whoami", headers=hdr).json()["via"] == "jwt"
    c.cookies.set("dsg_token", oidc)
    assert c.get(f"/api/node/{root}/kv/keys").status_code == 200
    c.cookies.clear()


def test_accountability(auth_server: Any, caplog: Any) -> None:
    """The authenticated user is in mutation records (``u=`` cannot override it), in the
    access log and in the node log of commit and branch."""
    srv = auth_server("token")
    c = srv.client
    root = repo_with_kv(srv)
    c.post(f"/api/repo/{root}/permissions", headers=srv.headers(ADMIN),
           json={"grants": {"user:alice@lab.org": "write"}})
    alice = srv.headers("alice@lab.org")
    with caplog.at_level(logging.INFO, logger="dvidpy.access"):
        assert c.post(f"/api/node/{root}/kv/key/a?u=mallory", content=b"1",
                      headers=alice).status_code == 200
    assert any("user=alice@lab.org" in r.getMessage() for r in caplog.records)
    recs = c.get(f"/api/node/{root}/kv/mutations", headers=alice).json()
    assert recs[-1]["User"] == "alice@lab.org"
    assert c.post(f"/api/node/{root}/commit", json={"note": "n"}, headers=alice).status_code == 200
    br = c.post(f"/api/node/{root}/branch", json={"branch": "b"}, headers=alice).json()["child"]
    dag = c.get(f"/api/repo/{root}/info", headers=alice).json()["DAG"]["Nodes"]
    assert any("committed by alice@lab.org" in x for x in dag[root]["Log"])
    assert any("created by alice@lab.org" in x for x in dag[br]["Log"])


def test_safe_defaults(auth_server: Any) -> None:
    """With auth on: no CORS unless configured (a DELETE preflight from anywhere fails),
    configured origins echoed with credentials and never '*'; push/pull only by admins to
    allowed peers; jobs only to their owner and admins; host and paths only to admins."""
    srv = auth_server("token")
    c = srv.client
    root = repo_with_kv(srv)
    c.post(f"/api/repo/{root}/permissions", headers=srv.headers(ADMIN),
           json={"grants": {"user:alice@lab.org": "admin"}})
    alice = srv.headers("alice@lab.org")
    evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}
    r = c.options(f"/api/node/{root}/kv/key/a", headers=evil)
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = c.get("/api/server/whoami", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    # push/pull: administrators only, and only to allowed peers
    for path, key in (("/api/transfer/push", "dst"), ("/api/transfer/pull", "src")):
        body = {"uuid": root, key: "http://127.0.0.1:9"}
        assert c.post(path, json=body, headers=alice).status_code == 403
        r = c.post(path, json=body, headers=srv.headers(ADMIN))
        assert r.status_code == 403 and "allowedPeers" in r.text
    info = c.get("/api/server/info", headers=alice).json()
    assert info["Host"] == "" and info["TOML location"] == ""
    kvinfo = c.get(f"/api/node/{root}/kv/info", headers=alice).json()["Base"]
    assert kvinfo["KVStore"] == "memory"
    assert c.get("/api/server/info", headers=srv.headers(ADMIN)).json()["Host"] != ""
    assert c.get("/api/transfer/jobs", headers=alice).status_code == 403

    cors = auth_server("token", server={"corsDomains": ["https://ok.example"]})
    r = cors.client.options("/api/repos/info", headers={
        "Origin": "https://ok.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://ok.example"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-allow-headers"] == "authorization"
    star = auth_server("token", server={"corsDomains": ["*"]})
    r = star.client.get("/api/server/whoami", headers={"Origin": "https://x.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
