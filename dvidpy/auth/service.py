"""Authentication and authorization of requests: :class:`Auth`.

**Who.** :meth:`Auth.identify` reads the credential of a request, first found wins:
DVID's ``admintoken=`` query parameter (equal to ``DVID_ADMIN_TOKEN``); an
``Authorization: Bearer <t>`` or ``Authorization: Token <t>`` header (intern sends the
latter); a ``Token: <t>`` header; a ``dsg_token`` or ``dvidpy_token`` cookie (browsers).
The token ``public`` is anonymous (the Boss's public token, which intern sends by
default). A token ``dvp_...`` is an API token of this server; anything else is a JWT: in ``token``
and ``authfile`` modes DVID's HS256 token (claim ``user``); in ``oidc`` mode a token of the
configured issuer, or a token this server issued at ``GET /api/server/token``. A credential
that is present but invalid is a 401 saying why, whatever the route (public routes
excepted); no credential means anonymous.

**May they.** :meth:`Auth.authorize` checks a route's access class (``public``, ``read``,
``write``, ``admin``) for the caller: server administrators may do everything; on a repo,
the caller's level (its own grant, its groups', ``*``'s; an instance override first) must
reach the class; anonymous callers may only read public repos and public versions;
server-level ``read`` routes need any valid credential, ``write`` ones (creating repos) the
``creators``, ``admin`` ones an administrator. A user's groups are the configuration's,
the token's and the API groups (``/v1/groups``) listing them. In ``authfile`` mode DVID's per-user
``read``/``write``/``readwrite`` privilege applies on top. Missing credentials are 401, a
missing grant 403.

With ``enforce = "none"`` (the default) every request is allowed, as before.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

from dvidpy.auth.config import AuthSettings
from dvidpy.auth.identity import ANONYMOUS, UNCHECKED, Identity
from dvidpy.auth.jwts import JwksCache, OidcVerifier, issue_dvid_token, verify_dvid_token
from dvidpy.auth.stores import LEVELS, GrantStore, GroupStore, TokenStore
from dvidpy.errors import Forbidden, Unauthorized
from dvidpy.keys import meta_key

if TYPE_CHECKING:
    from dvidpy.repo import RepoManager

COOKIES = ("dsg_token", "dvidpy_token")


def _server_secret(engine: Any, name: str, nbytes: int) -> str:
    """A random value persisted in the metadata store (made on first use)."""
    key = meta_key(f"auth/{name}")
    raw = engine.get(key)
    if raw is None:
        raw = secrets.token_hex(nbytes).encode()
        engine.put(key, raw)
    return raw.decode()


class Auth:
    """The server's authentication and authorization (see the module docstring)."""

    def __init__(self, cfg: AuthSettings, mgr: RepoManager) -> None:
        self.cfg = cfg
        self.mgr = mgr
        engine = mgr.meta_engine
        self.tokens = TokenStore(engine)
        self.grants = GrantStore(engine, shared=mgr.coordinated)
        self.groups = GroupStore(engine)
        self._server_id = ""
        self._secret = cfg.secretkey
        self.authfile: dict[str, str] = {}
        if cfg.authfile:
            try:
                with open(cfg.authfile) as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"cannot read [auth] authfile {cfg.authfile}: {e}") from e
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise ValueError(f"[auth] authfile {cfg.authfile} must map users to "
                                 "'read', 'write' or 'readwrite'")
            self.authfile = data
        self.oidc: OidcVerifier | None = None
        if cfg.enforce == "oidc":
            self.oidc = OidcVerifier(cfg.issuer, cfg.audience, cfg.leeway,
                                     JwksCache(cfg.issuer, cfg.jwks_url, cfg.jwks_min_refresh,
                                               cfg.jwks_ttl))
        self.public_versions = frozenset(cfg.public_versions)

    @property
    def on(self) -> bool:
        return self.cfg.on

    @property
    def server_id(self) -> str:
        """This server's name in the ``iss`` of the tokens it issues (persisted)."""
        if not self._server_id:
            self._server_id = "dvidpy:" + _server_secret(self.mgr.meta_engine, "server-id", 8)
        return self._server_id

    @property
    def secret(self) -> str:
        """The HS256 key of this server's tokens: ``secretkey``, else a persisted random
        one."""
        if not self._secret:
            self._secret = _server_secret(self.mgr.meta_engine, "jwt-secret", 32)
        return self._secret

    # ----- who ---------------------------------------------------------------------------

    def credential(self, headers: list[tuple[bytes, bytes]], query: Any) -> str | None:
        """The credential a request carries (see the module docstring), or None."""
        cookie = None
        for k, v in headers:
            if k == b"authorization":
                scheme, _, rest = v.decode("latin-1").strip().partition(" ")
                if scheme.lower() in ("bearer", "token") and rest.strip():
                    return rest.strip()
                raise Unauthorized("unsupported Authorization header: use 'Bearer <token>' "
                                   "or 'Token <token>'")
            if k == b"token" and v.strip():
                return v.decode("latin-1").strip()
            if k == b"cookie":
                cookie = v.decode("latin-1")
        if cookie:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(cookie)
            except Exception:  # a malformed cookie header carries no credential
                return None
            for name in COOKIES:
                if name in jar and jar[name].value:
                    return jar[name].value
        return None

    def identify(self, headers: list[tuple[bytes, bytes]], query: Any) -> Identity:
        """The caller of a request; :class:`Unauthorized` for an invalid credential."""
        if not self.on:
            return UNCHECKED
        admintoken = query.get("admintoken")
        if admintoken:
            if self.cfg.admin_token and hmac.compare_digest(admintoken, self.cfg.admin_token):
                return Identity(user="admintoken", admin=True, via="admintoken")
            raise Unauthorized("invalid admintoken")
        token = self.credential(headers, query)
        if token is None or token == "public":  # the Boss's anonymous token
            return ANONYMOUS
        if token.startswith("dvp_"):
            user = self.tokens.verify(token) if self.cfg.api_tokens else None
            if user is None:
                raise Unauthorized("invalid API token (unknown, revoked or expired)")
            return self._identity(user, [], "api-token")
        if self.oidc is not None and not self._ours(token):
            claims = self.oidc.verify(token)
            user = claims.get(self.cfg.user_claim)
            if not isinstance(user, str) or not user:
                raise Unauthorized(f"token has no {self.cfg.user_claim!r} claim naming the "
                                   "user")
            groups = claims.get(self.cfg.groups_claim) or []
            if not isinstance(groups, list):
                groups = []
            return self._identity(user, [str(g).strip("/") for g in groups], "oidc")
        claims = verify_dvid_token(token, self.secret, self.server_id, self.cfg.leeway)
        groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
        return self._identity(claims["user"], [str(g) for g in groups], "jwt")

    def _ours(self, token: str) -> bool:
        """Whether a JWT claims to come from this server (HS256, our ``iss``)."""
        import jwt

        try:
            head = jwt.get_unverified_header(token)
            body = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return head.get("alg") == "HS256" and body.get("iss") == self.server_id

    def _identity(self, user: str, groups: list[str], via: str) -> Identity:
        gs = set(groups)
        gs.update(g for g, members in self.cfg.groups.items() if user in members)
        gs.update(self.groups.groups_of(user))
        admin = user in self.cfg.admins or any(f"group:{g}" in self.cfg.admins for g in gs)
        return Identity(user=user, groups=frozenset(gs), admin=admin, via=via)

    def issue_token(self, ident: Identity) -> str:
        """A JWT of this server for ``ident`` (``GET /api/server/token``)."""
        if ident.user is None:
            raise Unauthorized("log in first: a token is issued to an authenticated caller")
        return issue_dvid_token(self.secret, ident.user, self.server_id, self.cfg.token_ttl,
                                sorted(ident.groups))

    # ----- may they ------------------------------------------------------------------------

    def _member(self, ident: Identity, names: list[str]) -> bool:
        if "*" in names:
            return True
        return (ident.user in names) or any(f"group:{g}" in names for g in ident.groups)

    def authorize(self, ident: Identity, access: str, root: str | None = None,
                  instance: str | None = None, version: str | None = None) -> None:
        """Allow or refuse (401/403) ``ident`` a route of class ``access`` on the repo
        ``root`` (None: a server-level route), optionally one instance and version."""
        if access == "public" or ident.admin:
            return
        if root is None:
            if ident.anonymous:
                raise Unauthorized("credentials required")
            if access == "read":
                return
            if access == "write" and self._member(ident, self.cfg.creators):
                return
            raise Forbidden(f"user {ident.user!r} may not do this on this server "
                            f"({access} access needed)")
        need = LEVELS[access]
        if ident.anonymous:
            if need == 1 and (self.grants.public(root) or version in self.public_versions):
                return
            raise Unauthorized("credentials required")
        if need == 1 and (self.grants.public(root) or version in self.public_versions):
            pass
        elif self.grants.level(root, ident.principals(), instance) < need:
            what = f"instance {instance!r} of repo {root}" if instance else f"repo {root}"
            raise Forbidden(f"user {ident.user!r} has no {access} access to {what}")
        if self.cfg.enforce == "authfile":
            priv = self.authfile.get(ident.user or "", self.authfile.get("*"))
            if priv is None or (need == 1 and priv == "write") or (
                    need > 1 and priv == "read"):
                raise Forbidden(f"user {ident.user!r} is not authorized for this by the "
                                "authfile")

    def can_read(self, ident: Identity, root: str) -> bool:
        """Whether ``ident`` may read the repo ``root`` (for listings)."""
        try:
            self.authorize(ident, "read", root)
        except (Unauthorized, Forbidden):
            return False
        return True

    def grant_creator(self, ident: Identity, root: str) -> None:
        """The creator of a repo administers it."""
        if self.on and ident.user is not None:
            self.grants.update(root, {f"user:{ident.user}": "admin"})
