"""Third-party datatypes and engines register through entry points, without core edits.

The test writes a real installed distribution (a ``*.dist-info`` folder with
``entry_points.txt``) and its module into a temporary folder on ``sys.path``, which is what
``pip install`` of a plugin package produces; ``importlib.metadata`` finds it like any other.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app
from storage import available_engines, open_engine

PLUGIN = '''
"""counter: a toy third-party datatype."""
from dvidpy.datatype import Datatype, endpoint
from dvidpy.keys import tkey
from storage.memory import MemoryEngine

class Counter(Datatype):
    type_name = "counter"
    type_url = "example.org/counter"
    type_version = "0.1"
    tkey_classes = {200: "counter value"}

    @endpoint("GET", "value")
    def value(self, call):
        return {"value": int(self.store.get(call.ctx, tkey(200, b"n")) or b"0")}

    @endpoint("POST", "incr")
    def incr(self, call):
        n = int(self.store.get(call.ctx, tkey(200, b"n")) or b"0") + 1
        self.store.put(call.ctx, tkey(200, b"n"), str(n).encode())
        return {"value": n}

class OtherMemory(MemoryEngine):
    name = "othermem"
'''


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dvidpy_counter_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "dvidpy_counter_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dvidpy-counter-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[dvidpy.datatypes]\ncounter = dvidpy_counter_plugin:Counter\n\n"
        "[dvidpy.storage]\nothermem = dvidpy_counter_plugin:OtherMemory\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield
    sys.modules.pop("dvidpy_counter_plugin", None)


def test_entry_point_datatype_and_engine(plugin_on_path: None) -> None:
    assert "othermem" in available_engines()
    eng = open_engine("othermem")
    eng.put(b"k", b"v")
    assert eng.get(b"k") == b"v"
    with TestClient(create_app(Settings.memory())) as c:
        assert "counter" in c.get("/api/server/compiled-types").json()
        root = c.post("/api/repos", json={}).json()["root"]
        r = c.post(f"/api/repo/{root}/instance", json={"typename": "counter", "dataname": "n"})
        assert r.status_code == 200, r.text
        assert c.post(f"/api/node/{root}/n/incr").json() == {"value": 1}
        assert c.post(f"/api/node/{root}/n/incr").json() == {"value": 2}
        c.post(f"/api/node/{root}/commit", json={})
        assert c.post(f"/api/node/{root}/n/incr").status_code == 400  # locked: a mutation
        child = c.post(f"/api/node/{root}/newversion", json={}).json()["child"]
        assert c.post(f"/api/node/{child}/n/incr").json() == {"value": 3}
        assert c.get(f"/api/node/{root}/n/value").json() == {"value": 2}
        assert "toy third-party" in c.get("/api/help/counter").text
