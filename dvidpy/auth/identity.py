"""Who is calling: :class:`Identity`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Identity:
    """The caller of one request.

    ``user`` is None for anonymous callers. ``via`` names how the credential arrived
    (``"jwt"``, ``"oidc"``, ``"api-token"``, ``"admintoken"``, ``"none"``: auth is off).
    ``admin``: a server administrator (every route, every repo).
    """

    user: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False
    via: str = "anonymous"

    @property
    def anonymous(self) -> bool:
        return self.user is None and not self.admin

    def principals(self) -> list[str]:
        """Grant keys that apply to this caller: ``user:U``, ``group:G`` and ``*``
        (any authenticated caller)."""
        if self.anonymous:
            return []
        out = ["*"]
        if self.user is not None:
            out.append(f"user:{self.user}")
        out += [f"group:{g}" for g in sorted(self.groups)]
        return out


ANONYMOUS = Identity()
#: every request when auth is off: full access, as before auth existed
UNCHECKED = Identity(user=None, admin=True, via="none")
