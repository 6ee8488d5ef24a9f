"""Fixtures of the ingest tests: a real server process and a client of it (helpers in
:mod:`ingest_util`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server on LevelDB (access log on: tests count requests in it)."""
    srv = ServerProcess(["--data", str(tmp_path / "db")], tmp_path / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture
def repo(client: httpx.Client) -> str:
    r = client.post("/api/repos", json={"alias": "ingest"})
    assert r.status_code == 200, r.text
    return r.json()["root"]


