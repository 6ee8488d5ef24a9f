"""``dvidpy serve`` says where it is before serving; ``dvidpy --version``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ServerProcess

import dvidpy
from dvidpy.banner import startup_banner
from dvidpy.config import Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def banner_of(log: Path) -> list[str]:
    """The lines the server printed before its first log line (the access log line of
    the start-up heartbeat may not be written yet)."""
    lines = log.read_text().splitlines()
    first_log = next((i for i, x in enumerate(lines) if re.match(r"\d{4}-\d\d-\d\d ", x)),
                     len(lines))
    return lines[:first_log]


def test_version() -> None:
    r = subprocess.run([sys.executable, "-m", "dvidpy.cli", "--version"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"dvidpy {dvidpy.__version__}", r
    # one version: pyproject.toml takes it from dvidpy.__version__
    py = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in py["project"] and "version" in py["project"]["dynamic"]
    assert py["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dvidpy.__version__"}


def test_serve_prints_one_startup_block(tmp_path: Path) -> None:
    cfg = tmp_path / "dvid.toml"
    cfg.write_text('''
[store.main]
engine = "leveldb"
path = "db/main"
[store.scratch]
engine = "memory"
[store.old]
engine = "badger"
substitute = "leveldb"
path = "db/old"
[backend.default]
store = "main"
[backend.keyvalue]
store = "old"
[auth]
enforce = "token"
secretkey = "a-secret"
''')
    srv = ServerProcess(["--config", str(cfg)], tmp_path / "server.log")
    try:
        lines = banner_of(tmp_path / "server.log")
    finally:
        srv.stop()
    text = "\n".join(lines)
    assert lines[0].startswith(f"dvidpy {dvidpy.__version__} serving {srv.url}"), text
    assert f"config  {cfg}" in text
    assert re.search(rf"store\s+main\s+leveldb\s+{re.escape(str(tmp_path / 'db/main'))}"
                     r".*backend: default, metadata", text), text
    assert re.search(r"store\s+scratch\s+memory\s+in memory.*backend: none", text), text
    assert re.search(rf"store\s+old\s+leveldb\s+{re.escape(str(tmp_path / 'db/old'))} "
                     r"\(substitute for badger\).*backend: keyvalue", text), text
    assert re.search(r"auth\s+token", text), text
    assert "a-secret" not in text
    assert text.count("serving") == 1


@pytest.mark.parametrize("args, store, auth", [
    (["--memory"], r"memory\s+in memory", "none"),
    ([], r"lmdb\s+\S+/dvid-data", "none"),  # a new folder: LMDB, the default
    (["--engine", "leveldb"], r"leveldb\s+\S+/dvid-data", "none"),
])
def test_serve_defaults(tmp_path: Path, args: list[str], store: str, auth: str) -> None:
    if args != ["--memory"]:
        args = ["--data", str(tmp_path / "dvid-data"), *args]
    srv = ServerProcess(args, tmp_path / "server.log")
    try:
        text = "\n".join(banner_of(tmp_path / "server.log"))
    finally:
        srv.stop()
    assert f"serving {srv.url}" in text
    assert "config  none" in text
    assert re.search(rf"store\s+default\s+{store}", text), text
    assert re.search(rf"auth\s+{auth}", text), text


def test_banner_hides_url_passwords_and_brackets_ipv6() -> None:
    from dvidpy.config import StoreSpec

    s = Settings.memory()
    s.host = "::1"
    s.rwmode = "readonly"
    s.stores["pg"] = StoreSpec("pg", "postgres", "postgresql://dvid:hunter2@db:5432/dvid")
    s.stores["cloud"] = StoreSpec("cloud", "gcs", "bucket/pre",
                                  {"endpoint": "http://127.0.0.1:9023"})
    text = startup_banner(s)
    assert text.splitlines()[0].startswith(f"dvidpy {dvidpy.__version__} serving "
                                           "http://[::1]:8000")
    assert "hunter2" not in text and "postgresql://dvid:***@db:5432/dvid" in text
    assert "bucket bucket/pre at http://127.0.0.1:9023" in text
    assert "mode    readonly" in text
    assert "backend: none" in text
