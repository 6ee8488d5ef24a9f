"""Bad sources, a file that breaks midway, a source that changed, cancelling, and auth
(issue 15): a clear error before any upload, a FAILED job naming the file with its
acknowledged chunks intact and resumable, checksums that catch changed voxels."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import jwt
import numpy as np
import pytest
from ingest_util import (
    access_count,
    ingest_cli,
    png_slices,
    read_raw,
    start_ingest,
    tiff_slices,
    volume,
)
from servers import ServerProcess

pytestmark = pytest.mark.e2e


def test_bad_sources_fail_before_any_upload(tmp_path: Path, server, client, repo) -> None:
    import h5py
    import tifffile
    from PIL import Image

    assert client.post(f"/api/repo/{repo}/instance", json={
        "typename": "uint8blk", "dataname": "gray", "BlockSize": "16,16,16"}).is_success
    good = volume((4, 20, 30))
    cases: dict[str, tuple[Path | str, list[str], str]] = {}

    d = tiff_slices(tmp_path / "truncated", good)
    raw = (d / "z2.tif").read_bytes()
    (d / "z2.tif").write_bytes(raw[: len(raw) // 2])
    cases["truncated TIFF"] = (d, [], "z2.tif: truncated TIFF")
    d = tiff_slices(tmp_path / "garbage", good)
    (d / "z1.tif").write_bytes(b"this is no TIFF at all" * 10)
    cases["unreadable TIFF"] = (d, [], "z1.tif: cannot read it as TIFF")
    d = tiff_slices(tmp_path / "sizes", good)
    tifffile.imwrite(d / "z3.tif", good[3, :19])
    cases["mixed sizes"] = (d, [], "every slice must have one size")
    d = tiff_slices(tmp_path / "dtypes", good)
    tifffile.imwrite(d / "z0.tif", good[0].astype(np.uint16))
    cases["mixed dtypes"] = (d, [], "every slice must have one dtype")
    tifffile.imwrite(tmp_path / "wide.tif", good.astype(np.uint16) * 300, photometric="minisblack")
    cases["dtype the target cannot hold"] = (tmp_path / "wide.tif", [],
                                             "uint16 voxels do not fit 'gray'")
    cases["box outside the source"] = (tiff_slices(tmp_path / "ok", good),
                                       ["--box", "0,0,0,31,20,4"], "is outside the source")
    cases["z-range outside"] = (tmp_path / "ok", ["--z-range", "2:9"], "is outside the source")
    d = png_slices(tmp_path / "png", good)
    raw = (d / "s001.png").read_bytes()
    (d / "s001.png").write_bytes(raw[:-20])
    cases["truncated PNG"] = (d, [], "s001.png: truncated PNG")
    d = tmp_path / "rgb"
    d.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "a.png")
    cases["colour slice"] = (d, [], "colour image")
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = good
        f["b"] = good
    cases["ambiguous HDF5"] = (tmp_path / "two.h5", [], "name one with --dataset")
    (tmp_path / "empty").mkdir()
    cases["no slices"] = (tmp_path / "empty", [], "no slice files")
    cases["missing path"] = (tmp_path / "nope", [], "no such file or directory")
    cases["chunk off the blocks"] = (tmp_path / "ok", ["--chunk", "20,16,16"],
                                     "must be positive multiples of the block size")
    cases["no such scheduler"] = (tmp_path / "ok", ["--scheduler", "tcp:/host"],
                                  "a Dask scheduler address such as tcp://host:8786")
    for what, (src, extra, msg) in cases.items():
        r = ingest_cli(str(src), server.url, repo, "gray", "--scheduler", "threads", *extra)
        assert r.returncode == 1, (what, r.stdout, r.stderr)
        assert msg in r.stderr and r.stderr.startswith("dvidpy ingest: "), (what, r.stderr)
        assert "Traceback" not in r.stderr, what
    r = ingest_cli(str(tmp_path / "ok"), server.url, repo, "other", "--scheduler", "threads")
    assert r.returncode == 1 and "add --create" in r.stderr, r.stderr
    assert client.get("/api/ingest").json() == []  # no job was made
    assert access_count(server.log, "/raw/") == 0  # nothing was uploaded
    assert client.get(f"/api/node/{repo}/gray/info").json()["Extents"]["MinPoint"] is None


def test_file_breaking_midway_fails_the_job_then_resumes(tmp_path: Path, server, client,
                                                         repo) -> None:
    vol = volume((64, 32, 32), seed=2)
    src = tiff_slices(tmp_path / "slices", vol, compress=True)
    bad = src / "z50.tif"
    good_bytes = bad.read_bytes()
    broken = bytearray(good_bytes)
    mid = len(broken) // 2
    broken[mid - 40:mid + 40] = b"\x00" * 80  # corrupt zlib data, headers intact
    bad.write_bytes(bytes(broken))
    args = (str(src), server.url, repo, "gray", "--create", "--block-size", "16,16,16",
            "--chunk", "16,16,16", "--workers", "1", "--scheduler", "threads")
    r = ingest_cli(*args)
    assert r.returncode == 1 and "FAILED" in r.stderr and "z50.tif" in r.stderr, r.stderr
    job = client.get("/api/ingest").json()[0]
    assert job["state"] == "FAILED" and "z50.tif" in job["error"], job
    acked = job["chunks_done"]
    assert 12 <= acked < 16, job  # z 0..47 are in chunks 0..11
    got = read_raw(client, repo, "gray", (48, 32, 32))
    assert (got == vol[:48]).all()  # acknowledged chunks are intact
    # fix the file, change the voxels of one slice of an acknowledged chunk and touch
    # another (same voxels): the first is caught by its checksum, the second is not
    bad.write_bytes(good_bytes)
    vol2 = vol.copy()
    vol2[5] = 255 - vol2[5]
    tiff_slices(tmp_path / "slices", vol2[5:6], compress=True, name="tmp")
    os.replace(src / "tmp0.tif", src / "z5.tif")
    os.utime(src / "z20.tif", ns=(time.time_ns(), time.time_ns()))
    mark = server.log.stat().st_size
    r = ingest_cli(*args)
    assert r.returncode == 1 and "the source changed since 4 chunk(s)" in r.stderr, r.stderr
    assert "chunks 0, 1, 2, 3" in r.stderr and "--resend-changed" in r.stderr
    assert access_count(server.log, "/gray/raw/", mark) == 0
    r = ingest_cli(*args, "--resend-changed")
    assert r.returncode == 0, r.stderr
    assert f"{16 - acked + 4} chunk(s) sent" in r.stdout, r.stdout
    assert (read_raw(client, repo, "gray", vol.shape) == vol2).all()
    job = client.get(f"/api/ingest/{job['id']}").json()
    assert job["state"] == "COMPLETE" and job["error"] == ""
    assert [h[0] for h in job["history"]].count("FAILED") == 2


def test_cancel_and_forget(tmp_path: Path, server, client, repo) -> None:
    vol = volume((64, 96, 96), seed=4)
    src = tiff_slices(tmp_path / "slices", vol)
    args = (str(src), server.url, repo, "gray", "--create", "--block-size", "16,16,16",
            "--chunk", "16,16,16", "--workers", "1", "--scheduler", "threads")
    p = start_ingest(*args, log=tmp_path / "client.log")
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            jobs = client.get("/api/ingest").json()
            if jobs and jobs[0]["chunks_done"] >= 5:
                break
            time.sleep(0.01)
        jid = jobs[0]["id"]
        r = client.delete(f"/api/ingest/{jid}")
        assert r.status_code == 200 and "cancelled" in r.text
        rc = p.wait(60)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    out = (tmp_path / "client.log").read_text()
    assert rc == 1 and f"ingest job {jid} was cancelled" in out, out
    job = client.get(f"/api/ingest/{jid}").json()
    assert job["state"] == "CANCELLED" and job["chunks_done"] < job["chunks_total"]
    assert client.post(f"/api/ingest/{jid}/chunks/0", json={
        "crc": 1, "bytes": 4096}).status_code == 400
    # the same command again starts a new job; a finished job is forgotten by DELETE
    r = ingest_cli(*args)
    assert r.returncode == 0 and f"of {job['chunks_total']};" in r.stdout, r.stdout
    new = next(j for j in client.get("/api/ingest").json() if j["id"] != jid)
    assert new["state"] == "COMPLETE"
    assert (read_raw(client, repo, "gray", vol.shape) == vol).all()
    for j in (jid, new["id"]):
        r = client.delete(f"/api/ingest/{j}")
        assert r.status_code == 200 and "forgotten" in r.text
        assert client.get(f"/api/ingest/{j}").status_code == 404
    assert client.get("/api/ingest").json() == []


SECRET = "ingest-test-secret-of-32-bytes-at-least!"


def bearer(user: str) -> str:
    return jwt.encode({"user": user}, SECRET, algorithm="HS256")


def test_auth_token_reaches_every_request(tmp_path: Path) -> None:
    toml = tmp_path / "dvid.toml"
    toml.write_text(f'[store.main]\nengine = "leveldb"\npath = "db"\n\n[auth]\n'
                    f'enforce = "token"\nsecretkey = "{SECRET}"\nadmins = ["root@lab.org"]\n')
    srv = ServerProcess(["--config", str(toml)], tmp_path / "server.log")
    try:
        admin = {"Authorization": f"Bearer {bearer('root@lab.org')}"}
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            root = c.post("/api/repos", json={}, headers=admin).json()["root"]
            assert c.post(f"/api/repo/{root}/permissions", headers=admin, json={
                "grants": {"user:w@lab.org": "write", "user:r@lab.org": "read"}}).is_success
            vol = volume((16, 32, 32))
            src = tiff_slices(tmp_path / "s", vol)
            args = (str(src), srv.url, root, "gray", "--create", "--block-size", "16,16,16",
                    "--scheduler", "threads")
            r = ingest_cli(*args, env={k: v for k, v in os.environ.items()
                                       if k != "DVIDPY_TOKEN"})
            assert r.returncode == 1 and "401" in r.stderr, r.stderr
            r = ingest_cli(*args, "--token", bearer("r@lab.org"))
            assert r.returncode == 1 and "403" in r.stderr, r.stderr
            r = ingest_cli(*args, env={**os.environ, "DVIDPY_TOKEN": bearer("w@lab.org")})
            assert r.returncode == 0, r.stderr
            got = c.get(f"/api/node/{root}/gray/raw/0_1_2/32_32_16/0_0_0", headers=admin)
            assert np.frombuffer(got.content, np.uint8).reshape(vol.shape).tolist() == \
                vol.tolist()
            jobs = c.get("/api/ingest", headers=admin).json()
            assert len(jobs) == 1 and jobs[0]["owner"] == "w@lab.org"
            reader = {"Authorization": f"Bearer {bearer('r@lab.org')}"}
            outsider = {"Authorization": f"Bearer {bearer('x@lab.org')}"}
            assert len(c.get("/api/ingest", headers=reader).json()) == 1
            assert c.get("/api/ingest", headers=outsider).json() == []
            jid = jobs[0]["id"]
            assert c.get(f"/api/ingest/{jid}", headers=outsider).status_code == 403
            assert c.get(f"/api/ingest/{jid}").status_code == 401
            assert c.delete(f"/api/ingest/{jid}", headers=reader).status_code == 403
    finally:
        srv.stop()
