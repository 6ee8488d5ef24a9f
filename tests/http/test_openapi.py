"""``/api/openapi.json`` lists every declared route, validates as OpenAPI 3.1, and says each
operation's access class; ``/api/docs`` renders it from files this server serves."""

from __future__ import annotations

from openapi_spec_validator import validate
from starlette.testclient import TestClient

from dvidpy.datatype import datatypes as registered_datatypes
from dvidpy.http.openapi import _paths_of
from dvidpy.http.spec import ACCESS_CLASSES
from server import all_routes


def test_every_route_and_datatype_endpoint_appears(c: TestClient) -> None:
    root = c.post("/api/repos", json={}).json()["root"]
    types = registered_datatypes()
    for t in types:
        assert c.post(f"/api/repo/{root}/instance",
                      json={"typename": t, "dataname": f"i_{t}"}).status_code == 200
    doc = c.get("/api/openapi.json").json()
    validate(doc)  # a valid OpenAPI 3.1 document
    paths = doc["paths"]
    expected = []
    for spec in all_routes():
        if spec.openapi:
            expected += [(p, spec.method) for p, _ in _paths_of(spec)]
    for t, cls in types.items():
        for spec in cls.routes():
            expected += [(p, spec.method) for p, _ in _paths_of(spec, f"/api/node/{{uuid}}/i_{t}/")]
    missing = [(p, m) for p, m in expected if m.lower() not in paths.get(p, {})]
    assert not missing, missing
    assert len(expected) == sum(len(v) for v in paths.values())  # and nothing else
    for item in paths.values():
        for op in item.values():
            assert op["x-dvidpy-access"] in ACCESS_CLASSES
            assert "4XX" in op["responses"]
    # one repo's document lists only its instances
    other = c.post("/api/repos", json={}).json()["root"]
    c.post(f"/api/repo/{other}/instance", json={"typename": "keyvalue", "dataname": "lonely"})
    one = c.get(f"/api/openapi.json?repo={other}").json()["paths"]
    assert any("/lonely/" in p for p in one) and not any("/i_keyvalue/" in p for p in one)
    assert c.get("/api/openapi.json?repo=ffffffff").status_code == 400


def test_docs_page_and_its_files(c: TestClient) -> None:
    page = c.get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in page.text
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        r = c.get(f"/api/docs/static/{name}")
        assert r.status_code == 200 and len(r.content) > 10_000, name
    assert c.get("/api/docs/static/..%2Fspec.py").status_code == 404
    assert c.get("/api/docs/static/nothing.js").status_code == 404


def test_datatype_endpoints_declare_every_path_segment() -> None:
    """No endpoint takes "the rest of the path" to parse by hand: every segment is declared
    (so the router validates it, the document shows it and the fuzzer generates it)."""
    loose = [(t, s.method, s.template) for t, cls in registered_datatypes().items()
             for s in cls.routes() if s.segments[-1].rest]
    assert not loose, loose
