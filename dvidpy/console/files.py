"""Serving a folder of static files from a route with a ``{path*}`` parameter.

:class:`FileFolder` answers a list of path segments with the file's bytes, its media type
(by extension, from a fixed table: anything else is refused), a strong ``ETag`` and
``Cache-Control: no-cache`` (browsers revalidate and get a bodiless 304 when unchanged).
Segments that are empty, ``.``/``..``, start with a dot or hold a ``/`` or ``\\`` are
refused with 404, so nothing outside the folder is reachable whatever the request's
percent-encoding. Files are kept in memory and re-read when their modification time or
size changes (so edited files are served without a restart); source maps are read per
request (they are large and only fetched by developer tools).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.responses import Response

from dvidpy.errors import NotFound

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


class FileFolder:
    """Files under one folder (a :class:`~pathlib.Path` or package resource)."""

    TYPES = {
        ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
        ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml",
        ".json": "application/json", ".map": "application/json",
        ".wasm": "application/wasm", ".txt": "text/plain",
    }

    def __init__(self, root: Traversable | Path) -> None:
        self.root = root
        self._cache: dict[tuple[str, ...], tuple[tuple[int, int], bytes, str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _stamp(f: Traversable | Path) -> tuple[int, int]:
        if isinstance(f, Path):
            st = f.stat()
            return st.st_mtime_ns, st.st_size
        return 0, 0

    def _find(self, parts: Sequence[str]) -> tuple[bytes, str]:
        key = tuple(parts)
        hit = self._cache.get(key)
        what = "/".join(parts)
        if not parts or any(p in ("", ".", "..") or p.startswith(".") or "/" in p
                            or "\\" in p for p in parts):
            raise NotFound(f"no file {what!r}")
        name = parts[-1]
        ext = name[name.rfind("."):].lower() if "." in name else ""
        if ext not in self.TYPES:
            raise NotFound(f"no file {what!r}")
        f: Traversable | Path = self.root
        for p in parts:
            f = f / p
        try:
            if not f.is_file():
                raise NotFound(f"no file {what!r}")
            stamp = self._stamp(f)
            if hit is not None and hit[0] == stamp:
                return hit[1], hit[2]
            data = f.read_bytes()
        except (OSError, UnicodeError, ValueError):  # ValueError: NUL in a name
            raise NotFound(f"no file {what!r}") from None
        etag = '"' + hashlib.sha1(data).hexdigest()[:20] + '"'
        if ext != ".map":
            with self._lock:
                self._cache[key] = (stamp, data, etag)
        return data, etag

    def response(self, parts: Sequence[str], headers: Headers | None = None) -> Response:
        """The file at ``parts`` (404 when absent or not servable); 304 when the request's
        ``If-None-Match`` names its current ETag."""
        data, etag = self._find(parts)
        h = {"ETag": etag, "Cache-Control": "no-cache"}
        if headers is not None and etag in headers.get("if-none-match", ""):
            return Response(status_code=304, headers=h)
        name = parts[-1]
        return Response(data, media_type=self.TYPES[name[name.rfind("."):].lower()], headers=h)
