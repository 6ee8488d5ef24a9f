"""Fixtures for transfer tests: real servers on LevelDB, RocksDB and the GCS emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import ServerProcess

MakeServer = Callable[..., Any]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[MakeServer]:
    """``make_server(engine, **server_opts)`` starts a server on a fresh store.

    ``engine`` is ``leveldb``, ``rocksdb`` or ``gcs`` (the latter needs ``bucket`` and
    ``endpoint``); extra keyword arguments become ``[server]`` TOML settings, except
    ``transfer_max`` (``[transfer] maxBytes``).
    """
    started: list[Any] = []

    def make(engine: str, bucket: str = "", endpoint: str = "", transfer_max: int = 0,
             **server: int | str) -> Any:
        d = tmp_path / f"srv{len(started)}"
        d.mkdir()
        lines = ["[server]"]
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}"
                  for k, v in server.items()]
        lines.append(f"[store.main]\nengine = {engine!r}")
        if engine == "gcs":
            lines.append(f"bucket = {bucket!r}\nendpoint = {endpoint!r}")
        else:
            lines.append(f"path = {str(d / 'db')!r}")
        lines.append('[backend.default]\nstore = "main"')
        if transfer_max:
            lines.append(f"[transfer]\nmaxBytes = {transfer_max}")
        (d / "dvid.toml").write_text("\n".join(lines) + "\n")
        srv = ServerProcess(["--config", str(d / "dvid.toml"), "--quiet"], d / "server.log")
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.stop()
