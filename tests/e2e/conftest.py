"""End-to-end fixtures: a real ``dvidpy serve`` process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import ServerProcess, free_port

__all__ = ["ServerProcess", "free_port"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server on LevelDB under a temporary folder."""
    srv = ServerProcess(["--data", str(tmp_path / "db")], tmp_path / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c
