"""A push that moves nothing says why (already present, filtered out) and what to do."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.transfer.test_transfer_e2e import cli, ok

pytestmark = pytest.mark.e2e


def test_push_that_moves_nothing_says_why(make_server) -> None:
    src, dst = make_server("leveldb"), make_server("leveldb")
    with httpx.Client(base_url=src.url, timeout=60) as a:
        root = ok(a.post("/api/repos", json={})).json()["root"]
        for t, n in (("keyvalue", "kv"), ("uint8blk", "grayscale"), ("roi", "region")):
            ok(a.post(f"/api/repo/{root}/instance", json={"typename": t, "dataname": n}))
        ok(a.post(f"/api/node/{root}/kv/key/k", content=b"v"))
        ok(a.post(f"/api/node/{root}/region/roi", json=[[10, 10, 10, 12]]))  # far away
        r = cli("push", src.url, root, dst.url)
        assert r.returncode == 0 and "Nothing moved" not in r.stdout, r.stdout

        # again, the version still open on the source: already there, and why later
        # writes to it do not travel
        ok(a.post(f"/api/node/{root}/kv/key/k2", content=b"later"))
        r = cli("push", src.url, root, dst.url)
        assert r.returncode == 0, r.stderr
        assert "0 records" in r.stdout
        assert f"Nothing moved: the receiver already holds every instance at all 1 " \
               f"version(s) of repo {root}" in r.stdout, r.stdout
        assert f"Version(s) {root} are still open on the source" in r.stdout
        assert "newversion" in r.stdout

        # flattened, one instance, version committed: up to date
        ok(a.post(f"/api/node/{root}/commit", json={}))
        r = cli("push", src.url, root, dst.url, "--flatten", "--data", "kv")
        assert r.returncode == 0, r.stderr
        assert "already holds instance(s) kv (--data; left out: grayscale, region) at the " \
               f"flattened version {root}" in r.stdout, r.stdout
        assert "up to date" in r.stdout and "still open" not in r.stdout
        r = cli("pull", src.url, root, dst.url)  # run by the receiver: the same answer
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("pull done: 0 records") and "already holds every " \
            "instance at all 1 version(s)" in r.stdout and "up to date" in r.stdout, r.stdout

        # a new version, nothing written to it yet: the version arrives first with
        # --data region; then kv and grayscale (left out, so still to come) carry nothing
        v1 = ok(a.post(f"/api/node/{root}/newversion", json={})).json()["child"]
        r = cli("push", src.url, v1, dst.url, "--data", "region")
        assert r.returncode == 0 and "1 new version(s)" in r.stdout, r.stdout
        r = cli("push", src.url, v1, dst.url, "--data", "kv")
        assert r.returncode == 0, r.stderr
        assert f"Nothing moved: nothing was written to instance(s) kv at version(s) {v1}" \
            in r.stdout, r.stdout
        r = cli("push", src.url, v1, dst.url, "--data", "grayscale", "--roi", "region")
        assert r.returncode == 0, r.stderr
        assert f"Nothing moved: no record of instance(s) grayscale at version(s) {v1} lies " \
            "inside roi 'region'" in r.stdout, r.stdout
        assert "push without --roi" in r.stdout

        # and the job says so too (GET /api/transfer/{id})
        jid = ok(a.post("/api/transfer/push", json={"uuid": v1, "dst": dst.url,
                                                     "data": ["region"]})).json()["id"]
        for _ in range(200):
            st = ok(a.get(f"/api/transfer/{jid}")).json()
            if st["state"] != "running":
                break
            time.sleep(0.05)
        assert st["state"] == "done" and st["note"].startswith("Nothing moved"), st

        # written after kv at v1 was sent (empty): the open version is named
        ok(a.post(f"/api/node/{v1}/kv/key/k3", content=b"v1"))
        r = cli("push", src.url, v1, dst.url, "--data", "kv")
        assert r.returncode == 0, r.stderr
        assert "already holds instance(s) kv (--data; left out: grayscale, region) at all 2 " \
            "version(s)" in r.stdout, r.stdout
        assert f"Version(s) {v1} are still open on the source" in r.stdout
