"""ROI filtering of annotation values, in-process (no server processes).

The datatype hooks (:meth:`Annotation.tkey_voxel_box`, :meth:`Annotation.roi_filter_value`),
the records :class:`LocalSource` streams for an ROI (emptied lists become tombstones in a
versioned stream and are left out of a flattened one; the keys-only count matches the
versioned stream), and the receiver's invariant that completing an ROI-filtered version
never leaves a value and a tombstone of one key at the same version. The repo is the one
of ``test_roi_push_labelmap_annotation_e2e``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from datatypes.annotation.elements import ElemList, parse_element
from datatypes.annotation.store import block_tkey, label_tkey, tag_tkey
from dvidpy.config import Settings
from dvidpy.keys import MARK_DATA, MARK_TOMBSTONE, SUFFIX_LEN, instance_prefix
from dvidpy.repo import RepoManager
from dvidpy.transfer.client import LocalSink, run_transfer
from dvidpy.transfer.protocol import decode_chunk
from dvidpy.transfer.receiver import Receiver
from dvidpy.transfer.sender import LocalSource
from server import create_app
from storage.base import KeyRange
from tests.transfer.test_roi_push_labelmap_annotation_e2e import (
    A,
    B,
    C,
    D,
    RoiOracle,
    build,
    restricted,
    syn_reads,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def server() -> tuple[RepoManager, TestClient]:
    settings = Settings.memory()
    mgr = RepoManager(settings)
    return mgr, TestClient(create_app(settings, mgr))


@pytest.fixture(scope="module")
def src() -> tuple[RepoManager, TestClient, dict[str, str]]:
    mgr, c = server()
    return mgr, c, build(c)


def records(source: LocalSource, req: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for frame in source.stream(req):
        ch = decode_chunk(frame)
        if not ch.end:
            out.extend(ch.records())
    return out


def test_annotation_hooks(src) -> None:
    mgr, _, v = src
    repo, _ = mgr.resolve(v["root"])
    syn = repo.instances["syn"]
    assert syn.block_size == (64, 64, 64)  # adopted from the synced labelmap
    assert syn.tkey_voxel_box(block_tkey(1, -1, 2)) == ((64, -64, 128), (128, 0, 192))
    for tk in (label_tkey(5), tag_tkey("t1"), bytes((1, 1)) + b"prop\x00"):
        assert syn.tkey_voxel_box(tk) is None

    calls: list[int] = []

    def inside(pts: Any) -> np.ndarray:  # x < 64, vectorized, called once per value
        calls.append(len(pts))
        return np.asarray(pts)[:, 0] < 64

    repo, node = mgr.resolve(v["root"])
    raw = syn.store.get(mgr.context(syn, node), block_tkey(0, 0, 0))
    lst = ElemList.decode(raw)
    assert len(lst) and (lst.pos < 64).all()
    got = syn.roi_filter_value(block_tkey(0, 0, 0), raw, inside)
    assert got is raw and calls == [len(lst)]  # all inside: the very same bytes
    # a block list with A (inside, Rels to B outside) and B: A is kept with its Rels
    ab = ElemList.of([parse_element({"Pos": A, "Kind": "PreSyn",
                                     "Rels": [{"Rel": "PreSynTo", "To": B}]}),
                      parse_element({"Pos": B, "Kind": "PostSyn"})])
    kept = ElemList.decode(syn.roi_filter_value(block_tkey(0, 0, 0), ab.encode(), inside))
    assert kept.pos.tolist() == [A]
    assert b'"Rels":[{"Rel":"PreSynTo","To":[80,10,10]}]' in kept.blob
    only_b = ElemList.of([parse_element({"Pos": B, "Kind": "PostSyn"})]).encode()
    for tk in (block_tkey(1, 0, 0), label_tkey(2), tag_tkey("solo")):
        assert syn.roi_filter_value(tk, only_b, inside) is None
    log = b'{"Action":"x"}'
    assert syn.roi_filter_value(bytes((254, 1)) + b"\x00" * 8, log, inside) is log


def test_stream_tombstones_and_counts(src) -> None:
    mgr, _, v = src
    root, child = v["root"], v["child"]
    source = LocalSource(mgr)
    req = {"uuid": child, "instance": "syn", "versions": [root, child], "roi": "region"}
    recs = records(source, req)
    assert source.count(req) == len(recs)
    made = {(k[:-SUFFIX_LEN], k[-SUFFIX_LEN:-1]) for k, _ in recs if k[-1] == MARK_TOMBSTONE}
    child_idx = (1).to_bytes(4, "big")
    for tk in (label_tkey(2), tag_tkey("solo"), block_tkey(1, 1, 1)):
        assert (tk, child_idx) in made, tk  # emptied at the child: tombstone, not nothing
    assert all(v == b"" for k, v in recs if k[-1] == MARK_TOMBSTONE)
    # only the child wanted (keys listed, values fetched in batches): the same records
    sub = records(source, {**req, "versions": [child]})
    zero = (0).to_bytes(4, "big")
    assert sub == [(k[:-SUFFIX_LEN] + zero + k[-1:], v) for k, v in recs
                   if k[-SUFFIX_LEN:-1] == child_idx]
    # without ROI the child has values for those keys (not tombstones)
    whole = {k for k, _ in records(source, {**req, "roi": None})}
    for tk in (label_tkey(2), tag_tkey("solo"), block_tkey(1, 1, 1)):
        assert tk + child_idx + bytes((MARK_DATA,)) in whole

    # flattened: nothing to hide, emptied lists are simply left out (count: upper bound)
    freq = {"uuid": child, "instance": "syn", "versions": [child], "roi": "region",
            "flatten": True}
    frecs = records(source, freq)
    assert all(k[-1] == MARK_DATA for k, _ in frecs)
    tks = {k[:-SUFFIX_LEN] for k, _ in frecs}
    assert not tks & {label_tkey(2), tag_tkey("solo"), block_tkey(1, 1, 1)}
    assert source.count(freq) >= len(frecs)


def test_completing_roi_push_keeps_one_marker_per_version(src) -> None:
    smgr, a, v = src
    root, child = v["root"], v["child"]
    dmgr, b = server()
    sink, source = LocalSink(Receiver(dmgr, dmgr.settings)), LocalSource(smgr)
    run_transfer(source, sink, root, roi="region")
    oracle = RoiOracle(a, child)
    for u in (root, child):
        assert syn_reads(b, u) == restricted(syn_reads(a, u), oracle), u
    assert C in [e["Pos"] for e in syn_reads(b, root)["all"]]
    assert D not in [e["Pos"] for e in syn_reads(b, root)["all"]]
    run_transfer(source, sink, root)
    for u in (root, child):
        assert syn_reads(b, u) == syn_reads(a, u), u
    repo, _ = dmgr.resolve(root)
    syn = repo.instances["syn"]
    seen: dict[bytes, int] = {}
    for k, _ in dmgr.engines[syn.meta.store].scan(
            KeyRange.prefix(instance_prefix(syn.meta.instance_id)), keys_only=True):
        seen[k[:-1]] = seen.get(k[:-1], 0) + 1
    assert seen and max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]
