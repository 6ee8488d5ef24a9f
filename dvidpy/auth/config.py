"""The ``[auth]`` and ``[transfer]`` TOML sections (DVID's key names where DVID has them).

::

    [auth]
    enforce = "token"             # "none" (default) | "token" | "authfile" | "oidc"
    secretkey = "..."             # HS256 key of DVID-style JWTs (or env DVID_JWT_SECRET_KEY)
    authfile = "users.json"       # DVID's {"user": "read"|"write"|"readwrite", "*": ...}
    issuer = "https://keycloak.example.org/realms/lab"     # oidc
    audience = "dvidpy"                                   # oidc: required
    jwks_url = ""                 # oidc: default from the issuer's discovery document
    user_claim = "email"          # oidc: the claim naming the user
    groups_claim = "groups"       # oidc: the claim listing groups ("/a/b" -> "a/b")
    leeway = 60                   # s of clock skew accepted on exp / nbf / iat
    jwks_ttl = 3600               # oidc: s before the issuer's keys are fetched again
    jwks_min_refresh = 10         # oidc: s between fetches caused by unknown key ids
    admins = ["alice@lab.org"]    # server administrators (users or "group:NAME")
    creators = ["*"]              # who may create repos ("*": any authenticated user)
    public_versions = []          # version UUIDs anyone may read (DVID)
    api_tokens = true             # accept tokens made by `dvidpy token create`
    token_ttl = 86400             # s: lifetime of JWTs from GET /api/server/token
    [auth.groups]                 # static groups (token mode has no groups claim)
    lab = ["alice@lab.org", "bob@lab.org"]

    [transfer]
    allowedPeers = ["http://10.0.0.2:8000"]   # push/pull only to/from these (auth on)
    [transfer.peerTokens]                      # credentials sent to peers, by peer root
    "http://10.0.0.2:8000" = "env:PEER_TOKEN"  # env:NAME reads the environment

``DVID_ADMIN_TOKEN`` in the environment enables DVID's ``admintoken=`` query parameter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("none", "token", "authfile", "oidc")
LEVELS = ("read", "write", "readwrite")


class AuthConfigError(ValueError):
    """The ``[auth]`` or ``[transfer]`` section is invalid."""


def _strs(d: dict[str, Any], key: str, default: list[str] | None = None) -> list[str]:
    v = d.get(key, default if default is not None else [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise AuthConfigError(f"[auth] {key} must be a list of strings")
    return list(v)


def _str(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise AuthConfigError(f"[auth] {key} must be a string")
    return v


def secret_value(v: str) -> str:
    """``env:NAME`` -> the environment variable NAME (empty when unset); else ``v``."""
    return os.environ.get(v[4:], "") if v.startswith("env:") else v


@dataclass
class AuthSettings:
    """What the ``[auth]`` section says (see the module docstring)."""

    enforce: str = "none"
    secretkey: str = ""
    authfile: str = ""
    issuer: str = ""
    audience: str = ""
    jwks_url: str = ""
    user_claim: str = "email"
    groups_claim: str = "groups"
    leeway: float = 60.0
    jwks_min_refresh: float = 10.0
    jwks_ttl: float = 3600.0
    admins: list[str] = field(default_factory=list)
    creators: list[str] = field(default_factory=lambda: ["*"])
    public_versions: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    api_tokens: bool = True
    token_ttl: float = 86400.0
    admin_token: str = ""
    allowed_peers: list[str] = field(default_factory=list)
    peer_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def on(self) -> bool:
        """Whether requests are authenticated at all."""
        return self.enforce != "none"

    @classmethod
    def from_dict(cls, auth: dict[str, Any], transfer: dict[str, Any] | None = None,
                  base_dir: Path | None = None) -> AuthSettings:
        """Parse the sections; :class:`AuthConfigError` with a clear message when wrong."""
        if not isinstance(auth, dict):
            raise AuthConfigError("[auth] must be a table")
        s = cls()
        enforce = _str(auth, "enforce", "none").lower() or "none"
        if auth.get("no_enforce") is True and "enforce" not in auth:
            enforce = "none"
        if enforce not in MODES:
            raise AuthConfigError(f"[auth] enforce = {enforce!r}: use one of {', '.join(MODES)}")
        s.enforce = enforce
        s.secretkey = secret_value(_str(auth, "secretkey")) or os.environ.get(
            "DVID_JWT_SECRET_KEY", "")
        af = _str(auth, "authfile") or _str(auth, "auth_file")
        if af:
            p = Path(af)
            s.authfile = str(p if p.is_absolute() else (base_dir or Path.cwd()) / p)
        s.issuer = _str(auth, "issuer").rstrip("/")
        s.audience = _str(auth, "audience")
        s.jwks_url = _str(auth, "jwks_url")
        s.user_claim = _str(auth, "user_claim", "email")
        s.groups_claim = _str(auth, "groups_claim", "groups")
        for key in ("leeway", "token_ttl", "jwks_min_refresh", "jwks_ttl"):
            v = auth.get(key, getattr(s, key))
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise AuthConfigError(f"[auth] {key} must be a non-negative number")
            setattr(s, key, float(v))
        s.admins = _strs(auth, "admins")
        s.creators = _strs(auth, "creators", ["*"])
        s.public_versions = _strs(auth, "public_versions")
        groups = auth.get("groups", {})
        if not isinstance(groups, dict) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v)
                for v in groups.values()):
            raise AuthConfigError("[auth.groups] must map group names to lists of users")
        s.groups = {str(k): list(v) for k, v in groups.items()}
        v = auth.get("api_tokens", True)
        if not isinstance(v, bool):
            raise AuthConfigError("[auth] api_tokens must be true or false")
        s.api_tokens = v
        s.admin_token = os.environ.get("DVID_ADMIN_TOKEN", "")
        if s.enforce == "oidc":
            if not s.issuer:
                raise AuthConfigError("[auth] enforce = 'oidc' needs issuer")
            if not s.audience:
                raise AuthConfigError("[auth] enforce = 'oidc' needs audience (the client id "
                                      "tokens are issued for)")
        if s.enforce in ("token", "authfile") and not s.secretkey:
            raise AuthConfigError(f"[auth] enforce = {s.enforce!r} needs secretkey (or the "
                                  "DVID_JWT_SECRET_KEY environment variable)")
        if s.enforce == "authfile" and not s.authfile:
            raise AuthConfigError("[auth] enforce = 'authfile' needs authfile")
        t = transfer or {}
        if not isinstance(t, dict):
            raise AuthConfigError("[transfer] must be a table")
        peers = t.get("allowedPeers", [])
        if not isinstance(peers, list) or not all(isinstance(x, str) for x in peers):
            raise AuthConfigError("[transfer] allowedPeers must be a list of URLs")
        s.allowed_peers = [p.rstrip("/") for p in peers]
        pt = t.get("peerTokens", {})
        if not isinstance(pt, dict) or not all(isinstance(v, str) for v in pt.values()):
            raise AuthConfigError("[transfer.peerTokens] must map peer URLs to tokens")
        s.peer_tokens = {k.rstrip("/"): v for k, v in pt.items()}
        return s

    def peer_token(self, url: str) -> str:
        """The credential to send to the peer at ``url`` (empty when none is configured)."""
        return secret_value(self.peer_tokens.get(url.rstrip("/"), ""))
