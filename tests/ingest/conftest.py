"""Fixtures of the ingest tests: a real server process and a client of it (from
:mod:`servers`), and a repo on it (helpers in :mod:`ingest_util`)."""

from __future__ import annotations

import httpx
import pytest
from servers import client, server

__all__ = ["client", "repo", "server"]


@pytest.fixture
def repo(client: httpx.Client) -> str:
    r = client.post("/api/repos", json={"alias": "ingest"})
    assert r.status_code == 200, r.text
    return r.json()["root"]
