"""Known data for the console's browser tests, loaded into a real server through its API.

:func:`build_world` makes: repo ``console-demo`` with

* ``grayscale`` uint8blk 32^3 blocks, 192 x 160 x 96 voxels of ``(x + 2y + 3z) % 256``, with
  its pyramid ``grayscale_1``, ``grayscale_2`` built by ``downres``;
* ``segmentation`` labelmap 32^3 blocks, MaxDownresLevel 2: label ``1 + x//48 + 4*(y//40)``
  for z < 48 and ``2**40 + 7 + x//64`` for z >= 48 (labels above 2**32 test the 64-bit
  colours);
* ``roi`` (blocks x 1..3, y 1..2 at block z 0..1), ``synapses`` annotation (synced to
  the segmentation) with four points at z = 20;
* the DAG: root (locked) -> m1 on master (locked) -> m2 (open); root -> p1 on branch
  ``proofread`` (label 2 merged into 1, locked) -> p2 (locked); root -> r1 on branch
  ``review`` (open); merge(m1, p2) -> mg (open).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

SHAPE = (96, 160, 192)  # z, y, x
HI = (1 << 40) + 7
ACCESS = re.compile(r"dvidpy\.access: (\S+) (\S+) (\d+) ([0-9.]+)ms")


def gray_volume() -> np.ndarray:
    z, y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1], 0:SHAPE[2]]
    return ((x + 2 * y + 3 * z) % 256).astype(np.uint8)


def label_volume() -> np.ndarray:
    z, y, x = np.mgrid[0:SHAPE[0], 0:SHAPE[1], 0:SHAPE[2]]
    low = 1 + x // 48 + 4 * (y // 40)
    high = HI + x // 64
    return np.where(z < 48, low, high).astype(np.uint64)


@dataclass
class World:
    """The server, its data and what the tests need to know about them."""

    server: Any
    root: str
    nodes: dict[str, str] = field(default_factory=dict)  # name -> UUID
    synapses: list[dict[str, Any]] = field(default_factory=list)
    log_offset: int = 0

    @property
    def url(self) -> str:
        return self.server.url

    def access_lines(self, since: int | None = None) -> list[tuple[str, str, int, float]]:
        """(method, path, status, ms) of the access-log lines written after ``since``
        (bytes into the log; default: after the data was loaded)."""
        text = self.server.log.read_bytes()[self.log_offset if since is None else since:]
        return [(m[1], m[2], int(m[3]), float(m[4]))
                for m in ACCESS.finditer(text.decode(errors="replace"))]

    def log_size(self) -> int:
        return self.server.log.stat().st_size


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r


def build_world(c: httpx.Client, server: Any) -> World:
    """Load the data described in the module docstring through the HTTP API."""
    root = _ok(c.post("/api/repos", json={"alias": "console-demo",
                                          "description": "browser-test data"})).json()["root"]
    inst = f"/api/repo/{root}/instance"
    _ok(c.post(inst, json={"typename": "uint8blk", "dataname": "grayscale",
                           "BlockSize": "32,32,32"}))
    _ok(c.post(inst, json={"typename": "labelmap", "dataname": "segmentation",
                           "BlockSize": "32,32,32", "MaxDownresLevel": "2"}))
    _ok(c.post(inst, json={"typename": "roi", "dataname": "roi", "BlockSize": "32,32,32"}))
    _ok(c.post(inst, json={"typename": "annotation", "dataname": "synapses",
                           "sync": "segmentation"}))
    nz, ny, nx = SHAPE
    node = f"/api/node/{root}"
    _ok(c.post(f"{node}/grayscale/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0",
               content=gray_volume().tobytes()))
    _ok(c.post(f"{node}/grayscale/downres?wait=true&levels=2"))
    _ok(c.post(f"{node}/segmentation/raw/0_1_2/{nx}_{ny}_{nz}/0_0_0",
               content=label_volume().tobytes()))
    _ok(c.post(f"{node}/roi/roi", json=[[z, y, 1, 3] for z in (0, 1) for y in (1, 2)]))
    syn = [{"Pos": [20, 30, 20], "Kind": "PreSyn", "Tags": [], "Prop": {}},
           {"Pos": [60, 30, 20], "Kind": "PostSyn", "Tags": [], "Prop": {}},
           {"Pos": [100, 90, 20], "Kind": "PreSyn", "Tags": [], "Prop": {}},
           {"Pos": [150, 130, 20], "Kind": "PostSyn", "Tags": [], "Prop": {}}]
    _ok(c.post(f"{node}/synapses/elements", json=syn))
    _ok(c.post(f"{node}/commit", json={"note": "ingest", "log": ["loaded test volumes"]}))
    nodes = {"root": root}

    def child(parent: str, kind: str, **body: Any) -> str:
        return _ok(c.post(f"/api/node/{nodes[parent]}/{kind}", json=body)).json()["child"]

    def commit(name: str, note: str) -> None:
        _ok(c.post(f"/api/node/{nodes[name]}/commit", json={"note": note}))

    nodes["m1"] = child("root", "newversion", note="master 1")
    commit("m1", "master edits")
    nodes["p1"] = child("root", "branch", branch="proofread", note="proofreading")
    _ok(c.post(f"/api/node/{nodes['p1']}/segmentation/merge", json=[1, 2]))
    commit("p1", "merged 2 into 1")
    nodes["p2"] = child("p1", "newversion", note="proofread 2")
    commit("p2", "more proofreading")
    nodes["r1"] = child("root", "branch", branch="review", note="review")
    nodes["m2"] = child("m1", "newversion", note="master 2")
    nodes["mg"] = _ok(c.post(f"/api/repo/{root}/merge", json={
        "mergeType": "conflict-free", "parents": [nodes["m1"], nodes["p2"]],
        "note": "merge proofread"})).json()["child"]
    return World(server, root, nodes, syn)


