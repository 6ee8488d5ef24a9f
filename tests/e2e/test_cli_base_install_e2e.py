"""``dvidpy diff`` and ``dvidpy downsample`` against a real server, run with ``httpx``
made unimportable: they must work on a plain ``pip install -e .`` (no test extra)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.e2e
NO_HTTPX = ("import sys; sys.modules['httpx'] = None; from dvidpy.cli import main; "
            "sys.exit(main(sys.argv[1:]))")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NO_HTTPX, *args], capture_output=True,
                          text=True, timeout=120)


def test_diff_and_downsample_without_httpx(server, client: httpx.Client) -> None:
    root = client.post("/api/repos", json={}).json()["root"]
    client.post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    client.post(f"/api/repo/{root}/instance", json={"typename": "uint8blk", "dataname": "g",
                                                    "BlockSize": "16,16,16"})
    client.post(f"/api/node/{root}/kv/key/a", content=b"1")
    vol = np.arange(32 ** 3, dtype=np.uint8).tobytes()
    assert client.post(f"/api/node/{root}/g/raw/0_1_2/32_32_32/0_0_0",
                       content=vol).status_code == 200
    client.post(f"/api/node/{root}/commit", json={})
    child = client.post(f"/api/node/{root}/newversion", json={}).json()["child"]
    client.post(f"/api/node/{child}/kv/key/b", content=b"2")
    r = cli("diff", server.url, root, root, child, "--data", "kv")
    assert r.returncode == 0, r.stderr
    assert "kv: 1 added, 0 changed, 0 deleted" in r.stdout and '+ "b"' in r.stdout
    r = cli("diff", server.url, root, root, child, "--json")
    assert json.loads(r.stdout)["instances"]["kv"]["added"] == ["b"]
    r = cli("diff", server.url, root, root, "nope")
    assert r.returncode == 1 and "400" in r.stderr
    r = cli("downsample", server.url, child, "g", "--quiet", "--levels", "1")
    assert r.returncode == 0, r.stderr
    assert "built 1 level(s)" in r.stdout
    assert client.get(f"/api/node/{child}/g_1/info").status_code == 200
