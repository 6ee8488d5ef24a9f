"""A restartable ``redis-server`` (Debian's) on 127.0.0.1 for the mutation-stream tests.

The session-wide ``redis_url`` fixture (``storage.testing.redis_server``) runs without
persistence and cannot be restarted; these tests kill Redis mid-run and start it again on
the same port and data folder, so the fixture owns the process (reusing the port and
wait helpers of :mod:`storage.testing`). Append-only persistence with ``fsync always``
keeps every acknowledged entry across a SIGKILL.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.testing import _free_port, _wait_port

HOST = "127.0.0.1"


class RedisProcess:
    """``redis-server`` in ``folder`` on a fixed port; ``kill()`` / ``start()``."""

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (apt-get install -y redis-server)")
        self.exe = exe
        self.folder = folder
        self.port = _free_port(HOST)
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--bind", HOST, "--port", str(self.port), "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(HOST, self.port, self.proc, 20):
            raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    folder = tmp_path / "redis"
    folder.mkdir()
    r = RedisProcess(folder)
    yield r
    r.kill()
