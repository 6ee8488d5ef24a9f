"""Fixtures for the uint8blk tests: an in-process app (64 MiB request limit) and a repo."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app


@pytest.fixture
def app():
    settings = Settings.memory()
    settings.max_request_bytes = 64 << 20
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def repo(client) -> str:
    r = client.post("/api/repos", json={"alias": "u8"})
    assert r.status_code == 200, r.text
    return r.json()["root"]
