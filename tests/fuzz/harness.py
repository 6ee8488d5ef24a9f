"""Fuzzing the whole HTTP surface with schemathesis, from the server's own OpenAPI document.

:func:`fuzz_target` starts a real ``dvidpy serve`` process (LevelDB in a temporary folder,
a small ``maxRequestBytes`` so no generated request can ask for gigabytes), fills it with one
repo holding an instance of every registered datatype and some data in each, commits the
root and opens a child (so both locked and open versions are hit), then writes the server's
``/api/openapi.json`` with every ``uuid`` parameter narrowed to those two UUIDs plus an
unknown one (random strings would only ever test the "unknown UUID" answer).

:func:`run_schemathesis` runs the schemathesis CLI over it and returns what the server
saw: the number of requests (from its access log), the 5xx answers, and schemathesis's
failures. Run by hand::

    python tests/fuzz/harness.py --max-examples 20 [--include-tag-regex labelmap]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BOGUS_UUID = "0123456789abcdef0123456789abcdef"
#: checks run on every response: no 5xx, status codes and media types as declared
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"
#: imageblk types and their voxel dtypes
IMAGEBLK = {"uint8blk": "u1", "uint16blk": "<u2", "uint32blk": "<u4", "uint64blk": "<u8",
            "float32blk": "<f4", "rgba8blk": "<u4"}
_ACCESS = re.compile(r"dvidpy\.access: (\S+) (.*) (\d+) ([0-9.]+)ms$", re.M)


@dataclass
class Target:
    """A running server prepared for fuzzing."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    schema: Path
    folder: Path
    uuids: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 300, (r.request.method, r.request.url, r.status_code, r.text)
    return r


def populate(c: httpx.Client) -> list[str]:
    """One repo with an instance of every datatype and a little data; returns
    ``[open child UUID, committed root UUID]``."""
    root = _ok(c.post("/api/repos", json={"alias": "fuzz"})).json()["root"]
    types = _ok(c.get("/api/server/compiled-types")).json()
    special = {"labelmap": {"BlockSize": "16,16,16"},
               "labelarray": {"BlockSize": "16,16,16"}, "labelblk": {"BlockSize": "16,16,16"},
               "labelvol": {"sync": "labelblk1"},
               "labelsz": {}, "annotation": {},
               "tarsupervoxels": {"Extension": "drc", "sync": "labelmap1"},
               **{t: {"BlockSize": "16,16,16"} for t in IMAGEBLK}}
    made = []
    for t in sorted(types):
        extra = special.get(t, {})
        r = c.post(f"/api/repo/{root}/instance", json={"typename": t, "dataname": f"{t}1",
                                                       **extra})
        if r.status_code == 200:
            made.append(t)
    base = f"/api/node/{root}"
    if "keyvalue" in made:
        _ok(c.post(f"{base}/keyvalue1/key/a", content=b'{"x": 1}'))
    for t, dt in IMAGEBLK.items():
        if t in made:
            vol = np.arange(32 * 32 * 32, dtype=np.uint64).astype(dt).tobytes()
            _ok(c.post(f"{base}/{t}1/raw/0_1_2/32_32_32/0_0_0", content=vol))
    lab = np.repeat(np.arange(1, 5, dtype=np.uint64), 32 * 32 * 8).tobytes()
    for t in ("labelmap", "labelarray", "labelblk"):
        if t in made:
            _ok(c.post(f"{base}/{t}1/raw/0_1_2/32_32_32/0_0_0", content=lab))
    if "roi" in made:
        _ok(c.post(f"{base}/roi1/roi", json=[[0, 0, 0, 1], [1, 0, 0, 1]]))
    if "annotation" in made:
        _ok(c.post(f"{base}/annotation1/elements", json=[
            {"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": ["t"], "Rels": []},
            {"Pos": [5, 6, 7], "Kind": "PostSyn", "Rels": []}]))
    if "neuronjson" in made:
        _ok(c.post(f"{base}/neuronjson1/key/1?u=fuzz", json={"bodyid": 1, "status": "a"}))
        _ok(c.post(f"{base}/neuronjson1/key/2?u=fuzz", json={"bodyid": 2, "tags": ["x"]}))
    if "tarsupervoxels" in made:
        _ok(c.post(f"{base}/tarsupervoxels1/supervoxel/1", content=b"mesh"))
    _ok(c.post(f"{base}/commit", json={"note": "fuzz root"}))
    child = _ok(c.post(f"{base}/newversion", json={})).json()["child"]
    populate_boss(c)
    return [child, root]


def ingest_job(c: httpx.Client, uuid: str) -> str:
    """An ingest job into ``uint8blk1`` at the open version ``uuid``; its id."""
    return _ok(c.post("/api/ingest", json={
        "uuid": uuid, "instance": "uint8blk1", "source": "fuzz", "source_key": "fuzz",
        "dtype": "uint8", "box": [0, 0, 0, 32, 32, 32], "chunk": [16, 16, 16]})).json()["id"]


#: Boss resources :func:`populate_boss` makes: path parameter -> the names that exist
BOSS_NAMES = {"collection": ["fz"], "experiment": ["em"], "frame": ["fz"],
              "channel": ["img", "w16", "seg"], "group": ["fzg"]}


def populate_boss(c: httpx.Client) -> None:
    """A Boss collection, frame and experiment (2 levels, 2 time samples) with a uint8 and
    a uint16 image channel and an annotation channel, some voxels in each, metadata and a
    group."""
    import blosc

    _ok(c.post("/v1/collection/fz", json={"description": "fuzz"}))
    _ok(c.post("/v1/coord/fz", json={
        "x_start": 0, "x_stop": 128, "y_start": 0, "y_stop": 128, "z_start": 0,
        "z_stop": 32, "x_voxel_size": 4, "y_voxel_size": 4, "z_voxel_size": 8,
        "voxel_unit": "nanometers"}))
    _ok(c.post("/v1/collection/fz/experiment/em", json={
        "coord_frame": "fz", "num_hierarchy_levels": 2, "num_time_samples": 2}))
    for name, kind, dt in (("img", "image", "uint8"), ("w16", "image", "uint16"),
                           ("seg", "annotation", "uint64")):
        _ok(c.post(f"/v1/collection/fz/experiment/em/channel/{name}",
                   json={"type": kind, "datatype": dt}))
        vol = (np.arange(16 * 32 * 32, dtype=np.uint64) % 7).astype(dt)
        _ok(c.post(f"/v1/cutout/fz/em/{name}/0/0:32/0:32/0:16/",
                   content=blosc.compress(vol.tobytes(), typesize=vol.dtype.itemsize),
                   headers={"Content-Type": "application/blosc"}))
    _ok(c.post("/v1/meta/fz/em/img?key=k&value=v"))
    _ok(c.post("/v1/groups/fzg"))
    # what the fuzzer's deletes and renames may take: resources called "tmp"
    _ok(c.post("/v1/collection/tmp", json={}))
    _ok(c.post("/v1/coord/tmp", json={
        "x_start": 0, "x_stop": 8, "y_start": 0, "y_stop": 8, "z_start": 0, "z_stop": 8,
        "x_voxel_size": 1, "y_voxel_size": 1, "z_voxel_size": 1, "voxel_unit": "nanometers"}))
    _ok(c.post("/v1/collection/fz/experiment/tmp", json={"coord_frame": "fz"}))
    _ok(c.post("/v1/collection/fz/experiment/em/channel/tmp",
               json={"type": "image", "datatype": "uint8"}))


def narrow_boss_names(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the Boss's name parameters enums of what exists and one unknown name
    (random names would only test "does not exist")."""
    resource = re.compile(r"^/v1/(collection|coord)/")
    for path, item in doc["paths"].items():
        if not path.startswith("/v1/"):
            continue
        deepest = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")][-1:]
        for method, op in item.items():
            # renames and deletes of resources take the sacrificial "tmp" ones only
            sacrifice = method in ("put", "delete") and resource.match(path)
            for p in op.get("parameters", []):
                names = BOSS_NAMES.get(p["name"])
                if names is not None and p["in"] in ("path", "query"):
                    if sacrifice and p["name"] in deepest:
                        names = ["tmp"]
                    p["schema"] = {"type": "string", "enum": [*names, "nope"]}
                elif p["name"] in ("x", "y", "z", "t") and p["in"] == "path":
                    p["schema"] = {"type": "string", "enum": SPANS[p["name"]]}
                elif p["name"] == "resolution":
                    p["schema"] = {"type": "integer", "enum": [0, 1, 2, 7]}
                elif p["name"] in ("xa", "ya", "za"):  # /v1/image: a range or an index
                    p["schema"] = {"type": "string", "enum": [*_XY, "3", "200", "x"]}
                elif p["name"] in ("id", "num_ids"):
                    p["schema"] = {"type": "integer", "enum": [0, 1, 3, 5, 999]}
    return doc


#: ranges the fuzzer picks for the Boss's x0:x1 (inside the frame, at its edge, outside,
#: empty) and t0:t1
_XY = ["0:16", "8:40", "100:128", "120:130", "5:5", "0:1"]
SPANS = {"x": _XY, "y": _XY, "z": ["0:16", "3:9", "30:32", "31:40", "0:1"],
         "t": ["0:1", "1:2", "0:2", "0:3"]}


def narrow_uuids(doc: dict[str, Any], uuids: list[str],
                 jobs: list[str] | None = None) -> dict[str, Any]:
    """``doc`` with every ``uuid`` parameter an enum of ``uuids`` and an unknown UUID, every
    ingest ``job`` one of ``jobs`` or an unknown id, and the mutation streams' ``follow``
    fixed to ``false`` (a live tail never ends)."""
    for path, item in doc["paths"].items():
        for op in item.values():
            for p in op.get("parameters", []):
                if p["name"] == "uuid":
                    p["schema"] = {"type": "string", "enum": [*uuids, BOGUS_UUID]}
                elif p["name"] == "job" and jobs:
                    p["schema"] = {"type": "string", "enum": [*jobs, "0" * 16]}
                if p["name"] == "follow" and path.endswith("/mutations/stream"):
                    p["schema"] = {"type": "string", "enum": ["false"]}
                    p["required"] = True  # never left to the Accept header
    return doc


def fuzz_target(folder: Path, max_request_bytes: int = 8 << 20) -> Target:
    """Start and populate a server for fuzzing (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    toml = folder / "dvid.toml"
    port = _free_port()
    toml.write_text(
        f'[server]\nhttpAddress = "127.0.0.1:{port}"\nmaxRequestBytes = {max_request_bytes}\n'
        "bodyTimeout = 10\n\n[store.main]\nengine = \"leveldb\"\npath = \"db\"\n")
    log = folder / "server.log"
    logf = open(log, "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "dvidpy.cli", "serve", "--config", str(toml)],
                            stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(log.read_text()[-3000:])
        try:
            if httpx.get(url + "/api/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    with httpx.Client(base_url=url, timeout=60) as c:
        uuids = populate(c)
        jobs = [ingest_job(c, uuids[0])]
        doc = _ok(c.get("/api/openapi.json")).json()
    schema = folder / "openapi.json"
    schema.write_text(json.dumps(narrow_boss_names(narrow_uuids(doc, uuids, jobs))))
    return Target(proc, url, log, schema, folder, uuids)


@dataclass
class FuzzResult:
    """What one schemathesis run did to the server."""

    requests: int
    server_errors: list[str]
    slowest_ms: float
    returncode: int
    output: str


def access_lines(log: Path) -> list[tuple[str, str, int, float]]:
    """``(method, path, status, ms)`` of every access-log line."""
    return [(m.group(1), m.group(2), int(m.group(3)), float(m.group(4)))
            for m in _ACCESS.finditer(log.read_text(errors="replace"))]


def run_schemathesis(t: Target, max_examples: int, extra: list[str] | None = None,
                     timeout: float = 1500, seed: int = 1) -> FuzzResult:
    """Run the schemathesis CLI over ``t`` (see the module docstring)."""
    before = len(access_lines(t.log))
    exe = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    cmd = [exe, "run", str(t.schema), "--url", t.url, "--checks", CHECKS,
           "--max-examples", str(max_examples), "--request-timeout", "30",
           "--seed", str(seed), "--no-shrink", "--workers", "2",
           "--generation-database", "none", "--phases", "examples,coverage,fuzzing",
           "--suppress-health-check", "all", "--no-color", *(extra or [])]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "st_hooks",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                          os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=t.folder,
                       env=env)
    lines = access_lines(t.log)[before:]
    errors = [f"{m} {path} -> {st}" for m, path, st, _ in lines if st >= 500]
    slowest = max((ms for *_, ms in lines), default=0.0)
    return FuzzResult(len(lines), errors, slowest, p.returncode, p.stdout + p.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-examples", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the server folder")
    args, extra = ap.parse_known_args()
    folder = Path(tempfile.mkdtemp(prefix="dvidpy-fuzz-"))
    t = fuzz_target(folder)
    try:
        r = run_schemathesis(t, args.max_examples, extra)
        out = r.output
        cut = out.find("FAILURES")  # schemathesis's failures, then the tail
        print(out[cut:cut + 6000] if cut >= 0 else "", out[-3000:], sep="\n")
        print(f"requests: {r.requests}, 5xx: {len(r.server_errors)}, slowest: "
              f"{r.slowest_ms:.0f} ms, schemathesis exit {r.returncode}")
        for e in r.server_errors[:40]:
            print("  5xx:", e)
    finally:
        t.stop()
        if args.keep:
            print("kept", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
