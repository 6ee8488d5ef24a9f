"""``dvidpy token create|list|revoke`` offline (``--config``) and against a running server
(``--server``), as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


def dvidpy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dvidpy.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=60)


def test_token_cli(tmp_path: Path) -> None:
    toml = tmp_path / "dvid.toml"
    toml.write_text('[store.main]\nengine = "leveldb"\npath = "db"\n\n[auth]\n'
                    'enforce = "token"\nsecretkey = "k"\nadmins = ["ops@lab.org"]\n')
    bad = dvidpy("token", "create", "--user", "a", "--expires", "soon", "--config", str(toml))
    assert bad.returncode == 2 and "bad duration" in bad.stderr
    r = dvidpy("token", "create", "--user", "ops@lab.org", "--expires", "30d", "--note", "ops",
               "--config", str(toml))
    assert r.returncode == 0, r.stderr
    ops = r.stdout.strip()
    assert ops.startswith("dvp_") and "shown only now" in r.stderr
    srv = ServerProcess(["--config", str(toml)], tmp_path / "log")
    try:
        h = {"Authorization": f"Token {ops}"}
        assert httpx.get(srv.url + "/api/server/whoami", headers=h).json()["admin"] is True
        # offline access while the server holds the LevelDB lock: a clear error
        locked = dvidpy("token", "list", "--config", str(toml))
        assert locked.returncode != 0 and "--server" in locked.stderr
        r = dvidpy("token", "create", "--user", "alice@lab.org", "--server", srv.url,
                   env={"DVIDPY_TOKEN": ops})
        assert r.returncode == 0, r.stderr
        alice = r.stdout.strip()
        who = httpx.get(srv.url + "/api/server/whoami",
                        headers={"Authorization": f"Bearer {alice}"}).json()
        assert who["user"] == "alice@lab.org" and who["via"] == "api-token"
        r = dvidpy("token", "list", "--server", srv.url, env={"DVIDPY_TOKEN": ops})
        recs = json.loads(r.stdout)
        assert {x["user"] for x in recs} == {"ops@lab.org", "alice@lab.org"}
        aid = next(x["id"] for x in recs if x["user"] == "alice@lab.org")
        r = dvidpy("token", "revoke", aid, "--server", srv.url, env={"DVIDPY_TOKEN": ops})
        assert r.returncode == 0, r.stderr
        assert httpx.get(srv.url + "/api/server/whoami",
                         headers={"Authorization": f"Bearer {alice}"}).status_code == 200
        assert httpx.get(srv.url + "/api/server/tokens",
                         headers={"Authorization": f"Bearer {alice}"}).status_code == 401
        r = dvidpy("token", "list", "--server", srv.url, env={"DVIDPY_TOKEN": "dvp_nope"})
        assert r.returncode != 0 and "401" in r.stderr
    finally:
        srv.stop()
