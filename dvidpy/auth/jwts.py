"""Verifying JSON Web Tokens with PyJWT: DVID's HS256 tokens and OpenID Connect tokens.

Every verification names its algorithms explicitly, so ``alg: none`` and HS/RS confusion
(an HS256 token "signed" with an RSA public key) are refused by construction: DVID-style
tokens accept only HS256 with the server's secret; OIDC tokens accept only the asymmetric
algorithms of :data:`OIDC_ALGORITHMS` with a key from the issuer's JWKS whose ``kid``
matches the token's.

:class:`JwksCache` fetches the issuer's keys (from ``jwks_url`` or the discovery document
at ``{issuer}/.well-known/openid-configuration``), keeps them, and fetches again when a
token names an unknown ``kid`` (key rotation) — at most once per ``min_refresh`` seconds,
so forged key ids cannot make the server hammer the issuer — and when the set is older
than ``ttl`` seconds (so a key the issuer withdrew stops being accepted).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from dvidpy.errors import Unauthorized

OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                   "ES512", "EdDSA")
_FETCH_TIMEOUT = 10.0
_MAX_DOC = 1 << 20


def _why(e: Exception) -> str:
    if isinstance(e, jwt.ExpiredSignatureError):
        return "token has expired"
    if isinstance(e, jwt.ImmatureSignatureError):
        return "token is not valid yet"
    if isinstance(e, jwt.InvalidAudienceError):
        return "token is for another audience"
    if isinstance(e, jwt.InvalidIssuerError):
        return "token is from another issuer"
    if isinstance(e, jwt.InvalidSignatureError):
        return "token signature does not verify"
    if isinstance(e, jwt.InvalidAlgorithmError):
        return "token algorithm is not accepted"
    if isinstance(e, jwt.MissingRequiredClaimError):
        return f"token lacks the {e.claim!r} claim"
    return f"malformed token ({e})"


def issue_dvid_token(secret: str, user: str, issuer: str, ttl: float,
                     groups: list[str] | None = None) -> str:
    """A DVID-style HS256 JWT for ``user`` (claim ``user``), with ``iss`` naming this
    server, ``iat`` and ``exp``."""
    now = int(time.time())
    claims: dict[str, Any] = {"user": user, "iss": issuer, "iat": now, "exp": now + int(ttl)}
    if groups:
        claims["groups"] = groups
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_dvid_token(token: str, secret: str, issuer: str, leeway: float) -> dict[str, Any]:
    """The claims of a DVID-style token; :class:`Unauthorized` saying why when invalid.

    DVID's tokens carry only ``user``; ``exp``/``nbf`` are checked when present, and a
    token naming another issuer (another server's) is refused.
    """
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=leeway,
                            options={"require": ["user"], "verify_aud": False})
    except jwt.PyJWTError as e:
        raise Unauthorized(f"invalid token: {_why(e)}") from None
    if "iss" in claims and claims["iss"] != issuer:
        raise Unauthorized("invalid token: token was issued by another server")
    if not isinstance(claims.get("user"), str) or not claims["user"]:
        raise Unauthorized("invalid token: 'user' must be a non-empty string")
    return claims


def _fetch_json(url: str) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=_FETCH_TIMEOUT) as r:
        data = r.read(_MAX_DOC + 1)
    if len(data) > _MAX_DOC:
        raise ValueError(f"{url} answered more than {_MAX_DOC} bytes")
    return json.loads(data)


class JwksCache:
    """The issuer's signing keys by ``kid`` (see the module docstring)."""

    def __init__(self, issuer: str, jwks_url: str = "", min_refresh: float = 10.0,
                 ttl: float = 3600.0) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.min_refresh = min_refresh
        self.ttl = ttl
        self.keys: dict[str, PyJWK] = {}
        self.fetched = 0.0
        self.fetches = 0
        self._lock = threading.Lock()

    def _url(self) -> str:
        if not self.jwks_url:
            doc = _fetch_json(self.issuer + "/.well-known/openid-configuration")
            if not isinstance(doc, dict) or not isinstance(doc.get("jwks_uri"), str):
                raise ValueError("the issuer's discovery document has no jwks_uri")
            if doc.get("issuer", self.issuer).rstrip("/") != self.issuer:
                raise ValueError("the discovery document names another issuer")
            self.jwks_url = doc["jwks_uri"]
        return self.jwks_url

    def refresh(self) -> None:
        """Fetch the key set now (raises on network or format errors)."""
        self.fetches += 1
        self.fetched = time.monotonic()
        data = _fetch_json(self._url())
        keys = {}
        for k in PyJWKSet.from_dict(data).keys:
            if k.key_id and getattr(k, "public_key_use", "sig") in (None, "sig"):
                keys[k.key_id] = k
        self.keys = keys

    def key(self, kid: str) -> PyJWK:
        """The key ``kid``, fetching the set again (rate-limited) when it is unknown, and
        when the set is older than ``ttl`` (so keys the issuer withdrew stop working)."""
        k = self.keys.get(kid)
        if k is not None and time.monotonic() - self.fetched < self.ttl:
            return k
        if k is not None:
            with self._lock:
                try:
                    self.refresh()
                except (OSError, ValueError, jwt.PyJWTError) as e:
                    raise Unauthorized(f"cannot fetch the issuer's keys: {e}") from None
            k = self.keys.get(kid)
            if k is not None:
                return k
        with self._lock:
            k = self.keys.get(kid)
            if k is None and (not self.fetched
                              or time.monotonic() - self.fetched >= self.min_refresh):
                try:
                    self.refresh()
                except (OSError, ValueError, jwt.PyJWTError) as e:
                    raise Unauthorized(f"cannot fetch the issuer's keys: {e}") from None
                k = self.keys.get(kid)
        if k is None:
            raise Unauthorized("invalid token: signed with a key the issuer does not list")
        return k


class OidcVerifier:
    """Verifies ID/access tokens of one OpenID Connect issuer."""

    def __init__(self, issuer: str, audience: str, leeway: float, jwks: JwksCache) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.jwks = jwks

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; :class:`Unauthorized` saying why when invalid."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {_why(e)}") from None
        alg = header.get("alg")
        if alg not in OIDC_ALGORITHMS:
            raise Unauthorized(f"invalid token: algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("invalid token: no key id (kid)")
        key = self.jwks.key(kid)
        declared = getattr(key, "_jwk_data", {}).get("alg")
        if declared and declared != alg:
            raise Unauthorized("invalid token: algorithm does not match the issuer's key")
        try:
            return jwt.decode(token, key, algorithms=[alg], audience=self.audience,
                              issuer=self.issuer, leeway=self.leeway,
                              options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as e:
            raise Unauthorized(f"invalid token: {_why(e)}") from None
