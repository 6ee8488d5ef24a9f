"""A server whose instances live on different engines, chosen by a DVID-style TOML file."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from servers import ServerProcess


def test_instances_on_leveldb_rocksdb_and_gcs(tmp_path: Path, gcs_emulator: str) -> None:
    bucket = f"cfg-{uuid.uuid4().hex[:12]}"
    cfg = tmp_path / "dvid.toml"
    cfg.write_text(f"""
[server]
note = "three engines"

[store.main]
engine = "basholeveldb"
path = "db/leveldb"
[store.fast]
engine = "rocksdb"
path = "db/rocks"
[store.cloud]
engine = "gcs"
bucket = "{bucket}/dvid"
endpoint = "{gcs_emulator}"

[backend.default]
store = "main"
[backend."type=meshes"]
store = "cloud"
[backend."fastkv:{'a' * 32}"]
store = "fast"
""")
    srv = ServerProcess(["--config", str(cfg)], tmp_path / "server.log")
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        assert c.get("/api/server/note").text == "three engines"
        root = c.post("/api/repos", json={"root": "a" * 32}).json()["root"]
        for name, extra in (("plain", {}), ("fastkv", {}), ("meshes", {"Tags": "type=meshes"})):
            r = c.post(f"/api/repo/{root}/instance",
                       json={"typename": "keyvalue", "dataname": name, **extra})
            assert r.status_code == 200, r.text
            assert c.post(f"/api/node/{root}/{name}/key/k", content=name.encode()).is_success
        stores = {n: c.get(f"/api/node/{root}/{n}/info").json()["Base"]["KVStore"]
                  for n in ("plain", "fastkv", "meshes")}
        assert stores["plain"].startswith("leveldb")
        assert stores["fastkv"].startswith("rocksdb")
        assert stores["meshes"].startswith("gcs")
        srv.restart()
        for n in ("plain", "fastkv", "meshes"):
            assert c.get(f"/api/node/{root}/{n}/key/k").content == n.encode()
        # the data really is in each engine: the RocksDB folder and the bucket hold keys
        assert any((tmp_path / "db" / "rocks").iterdir())
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        gcs = storage.Client(project="test", credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": gcs_emulator})
        assert list(gcs.list_blobs(bucket, prefix="dvid/"))
    finally:
        srv.stop()


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[store.a]\nengine = "leveldb"\npath = "x"\n[store.b]\nengine = "memory"\n')
    r = subprocess.run([sys.executable, "-m", "dvidpy.cli", "serve", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "backend.default" in r.stderr
    cfg.write_text('[store.a]\nengine = "nosuch"\n')
    r = subprocess.run([sys.executable, "-m", "dvidpy.cli", "serve", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nosuch" in r.stderr
