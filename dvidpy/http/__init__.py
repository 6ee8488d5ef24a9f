"""The HTTP surface: route declarations (:mod:`~dvidpy.http.spec`), the router and
dispatcher (:mod:`~dvidpy.http.router`), bounded request bodies (:mod:`~dvidpy.http.body`),
the OpenAPI document (:mod:`~dvidpy.http.openapi`), and the route tables of the server,
repo, node and docs levels (``*_api`` modules)."""
