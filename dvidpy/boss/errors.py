"""The Boss's error answers: ``{"status": HTTP status, "code": Boss error code, "message":
text}`` as JSON, for every route under ``/v1/`` (and only there; DVID's routes keep their
plain text).

Handlers raise :class:`BossError` (or any :class:`~dvidpy.errors.DvidError`, whose status
picks the code: 400 -> 1006 BAD_REQUEST, 401 -> 3004, 403 -> 3001 MISSING_PERMISSION, 404
-> 4000 RESOURCE_NOT_FOUND, 405 -> 1000 INVALID_URL, 409 -> 2006 INVALID_STATE, 413 -> 2000
REQUEST_TOO_LARGE). The codes are the Boss's ``bosscore.error.ErrorCodes``.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from dvidpy.errors import DvidError
from dvidpy.http.router import ErrorFormat, register_error_format
from dvidpy.http.spec import JSON

PREFIX = "/v1/"

INVALID_URL = 1000
INVALID_CUTOUT_ARGS = 1001
TYPE_ERROR = 1002
INVALID_POST_ARGUMENT = 1003
INVALID_ARGUMENT = 1005
BAD_REQUEST = 1006
REQUEST_TOO_LARGE = 2000
DATATYPE_DOES_NOT_MATCH = 2001
DATA_DIMENSION_MISMATCH = 2002
DATATYPE_NOT_SUPPORTED = 2003
INVALID_STATE = 2006
MISSING_PERMISSION = 3001
ACCESS_DENIED_UNKNOWN = 3004
RESOURCE_NOT_FOUND = 4000
GROUP_NOT_FOUND = 4001
INTEGRITY_ERROR = 4003
OBJECT_NOT_FOUND = 4004
GROUP_EXISTS = 6001
RESOURCE_EXISTS = 6002
SYSTEM_ERROR = 9001

_BY_STATUS = {400: BAD_REQUEST, 401: ACCESS_DENIED_UNKNOWN, 403: MISSING_PERMISSION,
              404: RESOURCE_NOT_FOUND, 405: INVALID_URL, 408: BAD_REQUEST,
              409: INVALID_STATE, 413: REQUEST_TOO_LARGE, 503: SYSTEM_ERROR}


class BossError(DvidError):
    """An error with a Boss error code (status 400 unless given)."""

    def __init__(self, message: str, code: int = BAD_REQUEST, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status  # type: ignore[misc]


def not_found(what: str) -> BossError:
    """The Boss's "X does not exist." (404, RESOURCE_NOT_FOUND)."""
    return BossError(f"{what} does not exist.", RESOURCE_NOT_FOUND, 404)


def render(e: DvidError, path: str) -> Response:
    """``e`` as the Boss's error JSON."""
    code = getattr(e, "code", None) or _BY_STATUS.get(e.status_code, BAD_REQUEST)
    body = json.dumps({"status": e.status_code, "code": code, "message": e.message})
    headers = {"WWW-Authenticate": 'Token realm="dvidpy"'} if e.status_code == 401 else None
    return Response(body.encode(), status_code=e.status_code, media_type=JSON,
                    headers=headers)


register_error_format(PREFIX, ErrorFormat(
    render, JSON, 'The Boss\'s error JSON {"status": HTTP status, "code": Boss error code, '
                  '"message": text}', collapse_slashes=True))
