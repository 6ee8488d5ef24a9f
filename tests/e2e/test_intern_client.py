"""Contract test: the ``intern`` client's DVID remote (JHU/APL's Python client) works
unchanged against a real dvidpy server process."""

from __future__ import annotations

import intern.remote.dvid as intern_remote
import intern.resource.dvid as intern_resource
import numpy as np


def test_intern_creates_repo_instance_and_round_trips_cutouts(server) -> None:
    host = server.url.removeprefix("http://")
    rmt = intern_remote.DVIDRemote({"protocol": "http", "host": host})
    res = intern_resource.DataInstanceResource(
        "grayscale", UUID=None, type="uint8blk", alias="intern", description="contract")
    uuid = rmt.create_project(res)  # creates the repo and the instance in one go
    assert len(uuid) == 32
    rng = np.random.default_rng(5)
    vol = rng.integers(0, 255, (40, 50, 70), dtype=np.uint8)  # z, y, x
    rmt.create_cutout(res, 0, [10, 80], [-5, 45], [3, 43], vol)
    got = rmt.get_cutout(res, 0, [10, 80], [-5, 45], [3, 43])
    assert np.array_equal(got, vol)
    part = rmt.get_cutout(res, 0, [20, 30], [0, 10], [10, 12])
    assert np.array_equal(part, vol[7:9, 5:15, 10:20])
