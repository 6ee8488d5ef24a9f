"""Every imageblk type's ``GET raw`` over a real server: the small boxes answered on the
event loop (one buffer, passed on as a memoryview of its bytes) and the big ones streamed
from a worker thread both carry a Content-Length equal to the voxel bytes, and the bytes
are the voxels written (little-endian, ZYX)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from servers import ServerProcess

from datatypes.imageblk import IMAGEBLK_TYPES


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp: Path = tmp_path_factory.mktemp("imageblk-wire")
    srv = ServerProcess(["--data", str(tmp / "data")], tmp / "server.log")
    yield srv
    srv.stop()


@pytest.mark.parametrize("typename", sorted(IMAGEBLK_TYPES))
@pytest.mark.parametrize("size", [(40, 24, 8), (128, 128, 72)])  # inline / streamed
def test_get_raw_bytes_and_length(server, typename: str, size: tuple[int, int, int]) -> None:
    dtype = IMAGEBLK_TYPES[typename].voxel.dtype
    with httpx.Client(base_url=server.url, timeout=60) as c:
        root = c.post("/api/repos", json={}).json()["root"]
        name = f"{typename}_{size[0]}"
        r = c.post(f"/api/repo/{root}/instance", json={"typename": typename,
                                                      "dataname": name})
        assert r.status_code == 200, r.text
        rng = np.random.default_rng(size[0])
        nx, ny, nz = size
        vol = rng.integers(0, 250, size=(nz, ny, nx)).astype(dtype)
        shape = "_".join(map(str, size))
        r = c.post(f"/api/node/{root}/{name}/raw/0_1_2/{shape}/0_0_0", content=vol.tobytes())
        assert r.status_code == 200, r.text
        r = c.get(f"/api/node/{root}/{name}/raw/0_1_2/{shape}/0_0_0")
        assert r.status_code == 200, r.text
        assert int(r.headers["content-length"]) == vol.nbytes == len(r.content)
        assert r.content == vol.tobytes()
