"""Route tables: how a module declares its routes (``@routes.get("/api/...", "summary")``).

Each level of the HTTP surface (server, repo, node, transfer, ...) is one module holding one
:class:`RouteTable`; the server's router is built from the tables. A table is just an
ordered list of :class:`~dvidpy.http.spec.RouteSpec` with decorators to fill it, so a
module reads like the table it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dvidpy.http.spec import RouteSpec, make_spec

F = Callable[..., Any]


class RouteTable:
    """An ordered collection of route declarations."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.specs: list[RouteSpec] = []

    def route(self, methods: str | tuple[str, ...], template: str, summary: str = "",
              **kw: Any) -> Callable[[F], F]:
        """Declare ``fn`` as the handler of ``methods`` on ``template`` (see
        :func:`~dvidpy.http.spec.make_spec` for the keywords)."""
        ms = (methods,) if isinstance(methods, str) else methods

        def deco(fn: F) -> F:
            doc = (fn.__doc__ or "").strip()
            for m in ms:
                self.specs.append(make_spec(m, template, fn, summary or doc.split("\n")[0],
                                            doc=doc, tags=(self.tag,), **kw))
            return fn

        return deco

    def get(self, template: str, summary: str = "", **kw: Any) -> Callable[[F], F]:
        """``route("GET", ...)``."""
        return self.route("GET", template, summary, **kw)

    def post(self, template: str, summary: str = "", **kw: Any) -> Callable[[F], F]:
        """``route("POST", ...)``."""
        return self.route("POST", template, summary, **kw)

    def put(self, template: str, summary: str = "", **kw: Any) -> Callable[[F], F]:
        """``route("PUT", ...)``."""
        return self.route("PUT", template, summary, **kw)

    def patch(self, template: str, summary: str = "", **kw: Any) -> Callable[[F], F]:
        """``route("PATCH", ...)``."""
        return self.route("PATCH", template, summary, **kw)

    def delete(self, template: str, summary: str = "", **kw: Any) -> Callable[[F], F]:
        """``route("DELETE", ...)``."""
        return self.route("DELETE", template, summary, **kw)

    def __iter__(self) -> Iterator[RouteSpec]:
        return iter(self.specs)
