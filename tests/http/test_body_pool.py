"""Large request bodies received into reused buffers (:class:`dvidpy.http.body.BufferPool`).

A buffer is handed out again only when nothing refers to it any more; on a real server,
same-sized uploads written one after another, concurrently, and refused ones must each
store exactly their own bytes.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import numpy as np
from servers import ServerProcess

from dvidpy.http.body import BufferPool


def test_pool_reuses_only_unreferenced_buffers() -> None:
    p = BufferPool(keep=3, max_bytes=1000, idle_seconds=10)
    a = p.get(100, 0)
    a[:] = b"a" * 100
    assert p.get(100, 0) is not a  # a is held by this test
    view = np.frombuffer(a, np.uint8)
    mv = memoryview(a)
    ident = id(a)
    del a
    assert id(p.get(100, 0)) != ident  # still viewed by an array and a memoryview
    del view
    assert id(p.get(100, 0)) != ident  # still viewed by the memoryview
    mv.release()
    del mv
    assert id(p.get(50, 0)) != ident  # another size never takes it
    b = p.get(100, 1)
    assert id(b) == ident and bytes(b[:1]) == b"a"  # free now: reused as it was
    assert p.get(100, 1) is not b


def test_pool_bounds_and_idle_expiry() -> None:
    p = BufferPool(keep=2, max_bytes=250, idle_seconds=5)
    held = [p.get(100, i) for i in range(4)]  # four in use at once
    assert len({id(b) for b in held}) == 4
    assert p.nbytes() == 200  # keep=2
    held.append(p.get(200, 4))
    assert p.nbytes() == 200  # the 200-byte buffer alone fits max_bytes with nothing else
    p.get(10, 100)  # everything else idle for more than 5 s is dropped
    assert p.nbytes() == 10
    p.expire(104)
    assert p.nbytes() == 10
    p.expire(105)
    assert p.nbytes() == 0


def test_same_sized_uploads_keep_their_own_bytes(tmp_path: Path) -> None:
    srv = ServerProcess(["--data", str(tmp_path / "data")], tmp_path / "server.log")
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            root = c.post("/api/repos", json={}).json()["root"]
            for body in ({"typename": "uint8blk", "dataname": "g"},
                         {"typename": "keyvalue", "dataname": "kv"}):
                assert c.post(f"/api/repo/{root}/instance", json=body).status_code == 200
            node = f"/api/node/{root}"
            vols = [np.random.default_rng(i).integers(0, 256, (128, 128, 128), np.uint8)
                    for i in range(6)]  # 2 MiB bodies: received into pooled buffers
            url = [f"{node}/g/raw/0_1_2/128_128_128/{i * 128}_0_0" for i in range(6)]
            for i in range(3):  # one after another
                assert c.post(url[i], content=vols[i].tobytes()).status_code == 200
                assert c.post(f"{node}/kv/key/k{i}", content=vols[i].tobytes()
                              ).status_code == 200
            # a body that ends short, then the same size again: nothing of it is stored
            r = c.post(url[3], content=vols[3].tobytes()[:-1])
            assert r.status_code == 400
            with concurrent.futures.ThreadPoolExecutor(3) as ex:  # at once
                codes = list(ex.map(lambda i: httpx.post(srv.url + url[i], timeout=60,
                                                         content=vols[i].tobytes()
                                                         ).status_code, range(3, 6)))
            assert codes == [200, 200, 200]
            for i in range(6):
                got = np.frombuffer(c.get(url[i]).content, np.uint8).reshape(128, 128, 128)
                assert np.array_equal(got, vols[i]), i
            for i in range(3):
                assert c.get(f"{node}/kv/key/k{i}").content == vols[i].tobytes()
    finally:
        srv.stop()
