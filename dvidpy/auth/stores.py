"""What auth keeps in the metadata store: API tokens (hashed) and per-repo grants.

API tokens look like ``dvp_<id>_<secret>``: ``id`` (12 hex) finds the record, the secret (32
random bytes, URL-safe base64) is stored only as its SHA-256, compared in constant time. A
record holds the user, creation and expiry times, a note and whether it was revoked; a
revoked or expired token is refused, and a token made by another server is unknown here.

Groups made through the API (the Boss's ``/v1/groups``) are records ``{"name", "owner",
"members": [users], "maintainers": [users]}``; a user's groups are those of the
configuration (``[auth.groups]``), of their token, and the groups listing them as members.

Grants are per repo (by root UUID): ``{"public": bool, "grants": {principal: level},
"instances": {name: {principal: level}}}`` with principals ``user:U``, ``group:G`` or ``*``
(any authenticated caller) and levels ``read`` < ``write`` < ``admin``. An instance entry
that names a caller overrides the repo's level for that instance (up or down). Additive
instance grants (``"adds": {name: {principal: level}}``, made by the Boss API's channel
permissions, which add up as the Boss's do) only ever raise a caller's level there.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from typing import Any

from dvidpy.errors import BadRequest, Conflict
from dvidpy.keys import meta_key
from storage import KeyRange, KVEngine

LEVELS = {"read": 1, "write": 2, "admin": 3}
_PRINCIPAL = re.compile(r"^(\*|user:[^\s]{1,256}|group:[^\s]{1,256})\Z")
_TOKEN = re.compile(r"^dvp_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})\Z")


def level_of(name: str) -> int:
    """The rank of a level name; 400 for an unknown one."""
    if name not in LEVELS:
        raise BadRequest(f"unknown access level {name!r} (read, write or admin)")
    return LEVELS[name]


def check_principal(p: Any) -> str:
    """``p`` if it is ``*``, ``user:NAME`` or ``group:NAME``; else 400."""
    if not isinstance(p, str) or not _PRINCIPAL.match(p):
        raise BadRequest(f"bad principal {p!r}: use '*', 'user:NAME' or 'group:NAME'")
    return p


class TokenStore:
    """API tokens in the metadata store (see the module docstring)."""

    PREFIX = "auth/token/"

    def __init__(self, engine: KVEngine) -> None:
        self.engine = engine

    def create(self, user: str, ttl: float | None = None, note: str = "") -> tuple[str, dict]:
        """A new token for ``user``: ``(token, record)``; the token is shown only now."""
        if not user:
            raise BadRequest("a token needs a user")
        tid = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        rec = {"id": tid, "user": user, "created": now,
               "expires": (now + ttl) if ttl else None, "note": note, "revoked": False,
               "sha256": hashlib.sha256(secret.encode()).hexdigest()}
        self.engine.put(meta_key(self.PREFIX + tid), json.dumps(rec).encode())
        return f"dvp_{tid}_{secret}", rec

    def _get(self, tid: str) -> dict[str, Any] | None:
        raw = self.engine.get(meta_key(self.PREFIX + tid))
        return None if raw is None else json.loads(raw)

    def verify(self, token: str) -> str | None:
        """The user of a valid token; None when unknown, wrong, revoked or expired."""
        m = _TOKEN.match(token)
        if not m:
            return None
        rec = self._get(m.group(1))
        if rec is None or rec["revoked"]:
            return None
        digest = hashlib.sha256(m.group(2).encode()).hexdigest()
        if not hmac.compare_digest(digest, rec["sha256"]):
            return None
        if rec["expires"] is not None and time.time() > rec["expires"]:
            return None
        return rec["user"]

    def list(self, user: str | None = None) -> list[dict[str, Any]]:
        """Records (without hashes), all or ``user``'s."""
        out = []
        for _, raw in self.engine.scan(KeyRange.prefix(meta_key(self.PREFIX))):
            rec = json.loads(raw)
            if user is None or rec["user"] == user:
                rec.pop("sha256", None)
                out.append(rec)
        return sorted(out, key=lambda r: r["created"])

    def revoke(self, tid: str) -> dict[str, Any] | None:
        """Mark a token revoked; its record, or None when unknown."""
        rec = self._get(tid)
        if rec is None:
            return None
        rec["revoked"] = True
        self.engine.put(meta_key(self.PREFIX + tid), json.dumps(rec).encode())
        rec.pop("sha256", None)
        return rec


class GrantStore:
    """Per-repo grants in the metadata store, cached in memory.

    ``shared``: other processes (``--workers`` siblings, servers over one metadata store)
    change grants too, so every read checks the stored record (one metadata read; the
    cached parse is used while the stored bytes are unchanged): a grant given or taken in
    one process applies in every other from its next request. Changes are compare-and-
    swaps of the stored record, so two processes changing one repo's grants at once both
    land. Unshared: cached until changed here.
    """

    PREFIX = "auth/grants/"

    def __init__(self, engine: KVEngine, shared: bool = False) -> None:
        self.engine = engine
        self.shared = shared
        self._cache: dict[str, tuple[dict[str, Any], bytes | None]] = {}
        self._lock = threading.Lock()

    def get(self, root: str) -> dict[str, Any]:
        """The grants of the repo with root ``root`` (empty ones when never set)."""
        hit = self._cache.get(root)
        if hit is not None and not self.shared:
            return hit[0]
        raw = self.engine.get(meta_key(self.PREFIX + root))
        if hit is not None and hit[1] == raw:
            return hit[0]
        return self._parse(root, raw)

    def _parse(self, root: str, raw: bytes | None) -> dict[str, Any]:
        g = json.loads(raw) if raw else {"public": False, "grants": {}, "instances": {}}
        self._cache[root] = (g, raw)
        return g

    def _read(self, root: str) -> tuple[dict[str, Any], bytes | None]:
        raw = self.engine.get(meta_key(self.PREFIX + root))
        return self._parse(root, raw), raw

    def _change(self, root: str, fn: Any) -> dict[str, Any]:
        """Apply ``fn`` to a copy of the stored grants and store them (compare-and-swap:
        retried when another process changed them meanwhile); the new grants."""
        key = meta_key(self.PREFIX + root)
        for _ in range(100):
            cur, raw = self._read(root)
            g = json.loads(json.dumps(cur))
            fn(g)
            new = json.dumps(g).encode()
            if self.engine.compare_and_swap(key, raw, new):
                self._cache[root] = (g, new)
                return g
        raise Conflict(f"the grants of repo {root} are changing too often; try again")

    def update(self, root: str, grants: dict[str, str], instance: str | None = None,
               public: bool | None = None, additive: bool = False) -> dict[str, Any]:
        """Add or change grants (and the public flag); the repo's new grants. ``additive``:
        the instance's additive grants (see the module docstring)."""
        for p, lv in grants.items():
            check_principal(p)
            level_of(lv)
        def change(g: dict[str, Any]) -> None:
            if additive and instance is not None:
                table = g.setdefault("adds", {}).setdefault(instance, {})
            else:
                table = (g["grants"] if instance is None
                         else g["instances"].setdefault(instance, {}))
            table.update(grants)
            if public is not None:
                g["public"] = public

        with self._lock:
            return self._change(root, change)

    def remove(self, root: str, principals: list[str], instance: str | None = None,
               additive: bool = False) -> dict:
        """Drop grants of ``principals`` (``additive``: the instance's additive ones); the
        repo's new grants."""
        for p in principals:
            check_principal(p)
        def change(g: dict[str, Any]) -> None:
            where = g.setdefault("adds", {}) if additive else g["instances"]
            table = g["grants"] if instance is None else where.get(instance, {})
            for p in principals:
                table.pop(p, None)
            if instance is not None and not table:
                where.pop(instance, None)

        with self._lock:
            return self._change(root, change)

    def clear(self, root: str) -> None:
        """Forget every grant of ``root`` (a deleted resource's name may be reused)."""
        with self._lock:
            self.engine.delete(meta_key(self.PREFIX + root))
            self._cache.pop(root, None)

    def level(self, root: str, principals: list[str], instance: str | None = None) -> int:
        """The highest level any of ``principals`` has on the repo (or, where an entry for
        the instance names one of them, on the instance); 0 for none."""
        g = self.get(root)
        adds = g.get("adds", {}).get(instance, {}) if instance is not None else {}
        extra = max((LEVELS[adds[p]] for p in principals if p in adds), default=0)
        if instance is not None:
            inst = g["instances"].get(instance)
            if inst:
                hits = [LEVELS[inst[p]] for p in principals if p in inst]
                if hits:
                    return max(max(hits), extra)
        return max(max((LEVELS[g["grants"][p]] for p in principals if p in g["grants"]),
                       default=0), extra)

    def public(self, root: str) -> bool:
        """Whether anyone may read the repo."""
        return bool(self.get(root)["public"])


GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}\Z")


class GroupStore:
    """Groups made through the API (see the module docstring), in the metadata store.

    The member index (user -> groups) is kept in memory and rebuilt when the groups'
    generation token (:data:`GEN`, a random value written after every change, by any
    process over the store) differs from the one it was built at: a member added or
    removed in one process counts in every other from its next request, for the price of
    one metadata read per lookup."""

    PREFIX = "auth/group/"
    GEN = "auth/group-gen"

    def __init__(self, engine: KVEngine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._index: dict[str, frozenset[str]] = {}
        self._built_at: bytes | None = None
        self._built = False

    def get(self, name: str) -> dict[str, Any] | None:
        """The record of group ``name``, or None."""
        if not GROUP_NAME.match(name):
            return None
        raw = self.engine.get(meta_key(self.PREFIX + name))
        return None if raw is None else json.loads(raw)

    def all(self) -> list[dict[str, Any]]:
        """Every group record, by name."""
        return [json.loads(v) for _, v in
                self.engine.scan(KeyRange.prefix(meta_key(self.PREFIX)))]

    def put(self, rec: dict[str, Any]) -> None:
        """Store (create or change) a group record."""
        if not GROUP_NAME.match(rec["name"]):
            raise BadRequest(f"bad group name {rec['name']!r}: 1 to 255 of A-Z a-z 0-9 _ -")
        with self._lock:
            self.engine.put(meta_key(self.PREFIX + rec["name"]), json.dumps(rec).encode())
            self._changed()

    def delete(self, name: str) -> None:
        """Remove group ``name``."""
        with self._lock:
            self.engine.delete(meta_key(self.PREFIX + name))
            self._changed()

    def _changed(self) -> None:
        """A new generation token, written after the change it announces (a reader that
        sees it rebuilds from records that include the change)."""
        self.engine.put(meta_key(self.GEN), secrets.token_bytes(16))

    def groups_of(self, user: str) -> frozenset[str]:
        """The API groups listing ``user`` as a member."""
        with self._lock:
            gen = self.engine.get(meta_key(self.GEN))
            if not self._built or gen != self._built_at:
                index: dict[str, set[str]] = {}
                for rec in self.all():
                    for u in rec["members"]:
                        index.setdefault(u, set()).add(rec["name"])
                self._index = {u: frozenset(g) for u, g in index.items()}
                self._built_at, self._built = gen, True
            return self._index.get(user, frozenset())
