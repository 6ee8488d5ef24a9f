"""Push and pull between two real servers with auth on both (issue 11): only an
administrator starts them, only to allowed peers, and each server presents the credential
configured for the other (which never reaches a log)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
from servers import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def config(d: Path, port: int, secret: str, peer: str, peer_secret: str) -> Path:
    d.mkdir()
    toml = d / "dvid.toml"
    toml.write_text(
        f'[server]\nhttpAddress = "127.0.0.1:{port}"\n[store.main]\nengine = "leveldb"\n'
        f'path = "db"\n[auth]\nenforce = "token"\nsecretkey = "{secret}"\n'
        f'admins = ["ops@lab.org"]\n[transfer]\nallowedPeers = ["{peer}"]\n'
        f'[transfer.peerTokens]\n"{peer}" = "env:PEER_TOKEN_{port}"\n')
    os.environ[f"PEER_TOKEN_{port}"] = jwt.encode({"user": "ops@lab.org"}, peer_secret,
                                                  algorithm="HS256")
    return toml


def test_push_and_pull_with_auth_on_both(tmp_path: Path) -> None:
    pa, pb = free_port(), free_port()
    ua, ub = f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"
    ta = config(tmp_path / "a", pa, "secret-a", ub, "secret-b")
    tb = config(tmp_path / "b", pb, "secret-b", ua, "secret-a")
    a = ServerProcess(["--config", str(ta)], tmp_path / "a.log", port=pa)
    b = ServerProcess(["--config", str(tb)], tmp_path / "b.log", port=pb)
    try:
        ops_a = {"Authorization": "Bearer " + jwt.encode({"user": "ops@lab.org"}, "secret-a",
                                                         algorithm="HS256")}
        alice_a = {"Authorization": "Bearer " + jwt.encode({"user": "alice@lab.org"},
                                                           "secret-a", algorithm="HS256")}
        c = httpx.Client(base_url=ua, timeout=60)
        root = c.post("/api/repos", json={"alias": "t"}, headers=ops_a).json()["root"]
        c.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"},
               headers=ops_a)
        c.post(f"/api/node/{root}/kv/key/k", content=b"v", headers=ops_a)
        c.post(f"/api/node/{root}/commit", json={}, headers=ops_a)
        assert c.post("/api/transfer/push", json={"uuid": root, "dst": ub},
                      headers=alice_a).status_code == 403
        r = c.post("/api/transfer/push", json={"uuid": root, "dst": "http://127.0.0.1:9"},
                   headers=ops_a)
        assert r.status_code == 403 and "allowedPeers" in r.text
        # the CLI, authenticated as A's administrator, runs the push on A
        env = {**os.environ, "DVIDPY_TOKEN": ops_a["Authorization"][7:]}
        p = subprocess.run([sys.executable, "-m", "dvidpy.cli", "push", ua, root, ub,
                            "--no-progress"], capture_output=True, text=True, cwd=ROOT,
                           env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        ops_b = {"Authorization": "Bearer " + jwt.encode({"user": "ops@lab.org"}, "secret-b",
                                                         algorithm="HS256")}
        assert httpx.get(f"{ub}/api/node/{root}/kv/key/k", headers=ops_b).content == b"v"
        assert httpx.get(f"{ub}/api/node/{root}/kv/key/k").status_code == 401
        # and back the other way: B pulls a new version from A
        child = c.post(f"/api/node/{root}/newversion", json={}, headers=ops_a).json()["child"]
        c.post(f"/api/node/{child}/kv/key/k", content=b"w", headers=ops_a)
        c.post(f"/api/node/{child}/commit", json={}, headers=ops_a)
        job = httpx.post(f"{ub}/api/transfer/pull", json={"uuid": child, "src": ua},
                         headers=ops_b).json()["id"]
        for _ in range(200):
            st = httpx.get(f"{ub}/api/transfer/{job}", headers=ops_b).json()
            if st["state"] != "running":
                break
            time.sleep(0.1)
        assert st["state"] == "done", st
        assert httpx.get(f"{ub}/api/node/{child}/kv/key/k", headers=ops_b).content == b"w"
        for log in (tmp_path / "a.log", tmp_path / "b.log"):
            text = log.read_text()
            assert os.environ[f"PEER_TOKEN_{pa}"] not in text
            assert os.environ[f"PEER_TOKEN_{pb}"] not in text
    finally:
        a.stop()
        b.stop()
