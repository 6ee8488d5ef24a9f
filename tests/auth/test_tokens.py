"""Tokens that must fail, and the OIDC issuer's keys rotating (issue 11).

Each bad token is refused with 401 on a read and on a write, and the write changed nothing.
Tried: a bad signature; ``alg: none``; HS256 "signed" with the issuer's RSA public key
(HS/RS confusion); expired; not yet valid; another issuer; another audience; an unknown key
id; a revoked API token; an expired API token; a token issued by another server (JWT and API
token); garbage; an unsupported Authorization scheme; a wrong ``admintoken``.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from credentials import ADMIN, SECRET


def _b64(d: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")


def setup_repo(srv: Any) -> tuple[str, str]:
    c = srv.client
    admin = srv.headers(ADMIN)
    root = c.post("/api/repos", json={}, headers=admin).json()["root"]
    c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"},
           headers=admin)
    c.post(f"/api/repo/{root}/permissions", headers=admin,
           json={"grants": {"user:alice@lab.org": "write"}})
    return root, f"/api/node/{root}/kv"


def refused(srv: Any, base: str, headers: dict[str, str], why: str) -> None:
    c = srv.client
    r = c.get(f"{base}/keys", headers=headers)
    assert r.status_code == 401, (why, r.status_code, r.text)
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = c.post(f"{base}/key/{why.replace(' ', '-')}", content=b"x", headers=headers)
    assert r.status_code == 401, (why, r.status_code, r.text)


def test_bad_oidc_tokens(auth_server: Any) -> None:
    srv = auth_server("oidc")
    iss = srv.issuer
    _root, base = setup_repo(srv)
    good = iss.token("alice@lab.org")
    assert srv.client.get(f"{base}/keys", headers={"Authorization": f"Bearer {good}"}).json() == []
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    now = int(time.time())
    other = type(iss)()  # another issuer, other keys, same claims
    try:
        bad = {
            "bad signature": f"{head}.{_b64({**claims, 'email': 'root@lab.org'})}.{sig}",
            "alg none": f"{_b64({'alg': 'none', 'kid': iss.current})}.{body}.",
            "hs rs confusion": _hs_with_pem(claims, iss.public_pem(), iss.current),
            "expired": iss.token("alice@lab.org", exp=now - 3600, iat=now - 7200),
            "not yet valid": iss.token("alice@lab.org", nbf=now + 3600),
            "wrong issuer": iss.token("alice@lab.org", iss="http://evil.example"),
            "wrong audience": iss.token("alice@lab.org", audience="someone-else"),
            "unknown kid": other.token("alice@lab.org"),
            "garbage": "not.a.token",
        }
    finally:
        other.close()
    for why, tok in bad.items():
        refused(srv, base, {"Authorization": f"Bearer {tok}"}, why)
    refused(srv, base, {"Authorization": "Basic YWxpY2U6cHc="}, "basic scheme")
    assert srv.client.get(f"{base}/keys", headers=srv.headers(ADMIN)).json() == []


def _hs_with_pem(claims: dict[str, Any], pem: bytes, kid: str) -> str:
    """HS256 with the RSA public key as the HMAC secret (PyJWT refuses to make one, so by
    hand): the classic key-confusion forgery."""
    import hashlib
    import hmac

    signing = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    mac = hmac.new(pem, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


@pytest.mark.parametrize("mode", ["token", "oidc"])
def test_bad_api_and_server_tokens(auth_server: Any, mode: str) -> None:
    a = auth_server(mode)
    b = auth_server(mode)
    _root, base = setup_repo(a)
    c = a.client
    admin = a.headers(ADMIN)
    made = c.post("/api/server/tokens", json={"user": "alice@lab.org", "note": "ci"},
                  headers=admin).json()
    tok = made["token"]
    assert tok.startswith("dvp_") and "sha256" not in made
    ok = {"Authorization": f"Token {tok}"}  # intern's header form
    assert c.get(f"{base}/keys", headers=ok).status_code == 200
    assert c.get("/api/server/whoami", headers=ok).json()["user"] == "alice@lab.org"
    assert all("sha256" not in r for r in c.get("/api/server/tokens", headers=admin).json())
    assert c.delete(f"/api/server/tokens/{made['id']}", headers=admin).status_code == 200
    refused(a, base, ok, "revoked api token")
    short = c.post("/api/server/tokens", json={"user": "alice@lab.org", "expires": 0.2},
                   headers=admin).json()["token"]
    time.sleep(0.5)
    refused(a, base, {"Authorization": f"Bearer {short}"}, "expired api token")
    # tokens of another server
    _b_root, _ = setup_repo(b)
    b_api = b.client.post("/api/server/tokens", json={"user": "alice@lab.org"},
                          headers=b.headers(ADMIN)).json()["token"]
    refused(a, base, {"Authorization": f"Bearer {b_api}"}, "api token of another server")
    b_jwt = b.client.get("/api/server/token", headers=b.headers("alice@lab.org")).text
    if mode == "token":  # same secret key, but issued by (and for) the other server
        assert jwt.decode(b_jwt, SECRET, algorithms=["HS256"])["iss"] != jwt.decode(
            a.client.get("/api/server/token", headers=a.headers("alice@lab.org")).text,
            SECRET, algorithms=["HS256"])["iss"]
    refused(a, base, {"Authorization": f"Bearer {b_jwt}"}, "jwt of another server")
    refused(a, base, {"Authorization": f"Bearer {tok}x"}, "tampered api token")
    r = c.get(f"{base}/keys?admintoken=guess")
    assert r.status_code == 401
    assert c.get(f"{base}/keys", headers=admin).json() == []


def test_oidc_key_rotation(auth_server: Any) -> None:
    """The issuer rotates its key: tokens signed with the new key are accepted (the JWKS is
    fetched again for the unknown kid); once the old key is withdrawn and the cached set
    expires, tokens signed with it are refused."""
    srv = auth_server("oidc", jwks_ttl=0.5)
    iss = srv.issuer
    _root, base = setup_repo(srv)
    old = iss.current
    t_old = iss.token("alice@lab.org")
    c = srv.client
    assert c.get(f"{base}/keys", headers={"Authorization": f"Bearer {t_old}"}).status_code == 200
    hits = iss.jwks_hits
    new = iss.rotate("ES256")
    t_new = iss.token("alice@lab.org")
    assert jwt.get_unverified_header(t_new)["kid"] == new
    assert c.get(f"{base}/keys", headers={"Authorization": f"Bearer {t_new}"}).status_code == 200
    assert iss.jwks_hits == hits + 1  # fetched once more for the new kid
    iss.withdraw(old)
    time.sleep(0.6)
    refused(srv, base, {"Authorization": f"Bearer {t_old}"}, "withdrawn key")
    assert c.get(f"{base}/keys", headers={"Authorization": f"Bearer {t_new}"}).status_code == 200
