"""A real ``dvidpy serve`` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A ``dvidpy serve`` child process; ``restart()`` keeps its data folder/config.

    One server process unless ``args`` say otherwise (``--workers N``), so that a test
    knows which process answers; ``workers=None`` runs ``dvidpy serve``'s own default
    (one process per core over an LMDB folder), which tests/e2e/test_workers_e2e.py uses.
    """

    def __init__(self, args: list[str], log: Path, port: int | None = None,
                 workers: int | None = 1) -> None:
        if workers is not None and "--workers" not in args:
            args = [*args, "--workers", str(workers)]
        self.args = args
        self.log = log
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "dvidpy.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), *self.args]
        self.logf = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=subprocess.STDOUT,
                                     cwd=Path(__file__).resolve().parents[1],
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/api/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server on a new data folder (the default engine) under a temporary folder,
    its access log in ``server.log`` beside it. Import it into a folder's conftest."""
    srv = ServerProcess(["--data", str(tmp_path / "db")], tmp_path / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client of :func:`server`."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _stat(pid: int | str) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(d)
            if st is not None and int(st[1]) == pid and st[0] != "Z":
                out.append(int(d))
    return out


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[0] != "Z"
