"""Domain errors. Core code raises these; :mod:`dvidpy.http.router` answers them as plain
text.

DVID answers almost every failure with 400 and a plain-text message (clients such as
neuclease show the body in their exceptions), 404 only for lookups of missing things on a
few endpoints, 503 when throttled. The status codes here follow that policy.
"""

from __future__ import annotations

from typing import ClassVar


class DvidError(Exception):
    """Base of every error that reaches an HTTP client as plain text."""

    status_code: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(DvidError):
    """Malformed or invalid input (400)."""


class NotFound(DvidError):
    """A missing key, label or route where DVID answers 404."""

    status_code = 404


class LockedNodeError(DvidError):
    """A mutation on a committed (locked) version; DVID answers 400."""


class Conflict(DvidError):
    """A state conflict such as an ambiguous merge read; DVID answers 400."""


class TooLarge(DvidError):
    """A request over a configured size limit (413)."""

    status_code = 413


class Unavailable(DvidError):
    """Throttled or temporarily unavailable (503)."""

    status_code = 503


class Unauthorized(DvidError):
    """Missing or invalid credentials where the route needs them (401)."""

    status_code = 401


class Forbidden(DvidError):
    """Valid credentials without the grant the route needs (403)."""

    status_code = 403
