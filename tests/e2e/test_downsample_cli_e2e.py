"""``dvidpy downsample`` on the base install (no httpx: standard-library HTTP only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
from base_install import base_install_env
from servers import ServerProcess, free_port


def downsample(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dvidpy.cli", "downsample", *args, "--quiet"],
                          cwd=tmp, env=base_install_env(tmp), capture_output=True, text=True,
                          timeout=120)


def test_downsample_on_the_base_install(tmp_path: Path, client: httpx.Client,
                                        server: ServerProcess) -> None:
    root = client.post("/api/repos", json={}).json()["root"]
    assert client.post(f"/api/repo/{root}/instance",
                       json={"typename": "uint8blk", "dataname": "gray"}).is_success
    vol = np.random.default_rng(1).integers(0, 256, (64, 64, 64), dtype=np.uint8)
    r = client.post(f"/api/node/{root}/gray/raw/0_1_2/64_64_64/0_0_0", content=vol.tobytes())
    assert r.is_success, r.text
    r = downsample(tmp_path, server.url, root[:8], "gray")
    assert r.returncode == 0, r.stderr
    assert "built 1 level(s)" in r.stdout and "Traceback" not in r.stderr
    got = client.get(f"/api/node/{root}/gray_1/raw/0_1_2/32_32_32/0_0_0").content
    means = vol.reshape(32, 2, 32, 2, 32, 2).astype(np.int64).sum(axis=(1, 3, 5))
    assert np.frombuffer(got, np.uint8).reshape(32, 32, 32).tolist() == \
        ((means + 4) // 8).tolist()
    # the server's refusals, unreachable and malformed servers: one line, exit 1
    r = downsample(tmp_path, server.url, root, "nosuch")
    assert r.returncode == 1 and "dvidpy downsample:" in r.stderr and "nosuch" in r.stderr
    r = downsample(tmp_path, server.url, root, "gray", "--bbox", "1,2")
    assert r.returncode == 1 and " 400 " in r.stderr, r.stderr
    for url in (f"http://127.0.0.1:{free_port()}", "ftp://127.0.0.1:1", "http://a b"):
        r = downsample(tmp_path, url, root, "gray")
        assert r.returncode == 1 and r.stderr.startswith("dvidpy downsample: "), r.stderr
        assert "Traceback" not in r.stderr
