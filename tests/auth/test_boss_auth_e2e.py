"""intern's ``BossRemote`` with auth on (a real server process): ``Authorization: Token <t>``
with an API token of the server or a JWT; groups and permission sets of the Boss mapped
onto dvidpy's grants (``dvidpy.boss.groups``); the ``public`` token is anonymous.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import numpy as np
import pytest
import requests
from credentials import ADMIN, SECRET
from intern.remote.boss import BossRemote
from intern.resource.boss.resource import (
    ChannelResource,
    CollectionResource,
    CoordinateFrameResource,
    ExperimentResource,
)
from servers import ServerProcess

ALICE, BOB = "alice@lab.org", "bob@lab.org"


@pytest.fixture
def secured(tmp_path: Path) -> Any:
    toml = tmp_path / "dvid.toml"
    toml.write_text(f'[store.main]\nengine = "leveldb"\npath = "db"\n\n[auth]\n'
                    f'enforce = "token"\nsecretkey = "{SECRET}"\nadmins = ["{ADMIN}"]\n')
    srv = ServerProcess(["--config", str(toml)], tmp_path / "server.log")
    yield srv
    srv.stop()


def jwt_of(user: str) -> str:
    return jwt.encode({"user": user}, SECRET, algorithm="HS256")


def remote(srv: ServerProcess, token: str) -> BossRemote:
    return BossRemote({"protocol": "http", "host": srv.url.removeprefix("http://"),
                       "token": token})


def status(e: pytest.ExceptionInfo[Any]) -> int:
    return e.value.response.status_code


def test_grants_through_boss_groups_and_permissions(secured: ServerProcess) -> None:
    url = secured.url
    # alice's API token, made by an administrator; intern sends it as "Token dvp_..."
    r = requests.post(f"{url}/api/server/tokens", json={"user": ALICE},
                      headers={"Authorization": f"Bearer {jwt_of(ADMIN)}"})
    assert r.status_code == 200, r.text
    alice = remote(secured, r.json()["token"])
    bob = remote(secured, jwt_of(BOB))
    anon = remote(secured, "public")
    alice.create_project(CollectionResource("lab"))
    alice.create_project(CoordinateFrameResource(
        "f", "", 0, 64, 0, 64, 0, 8, 4, 4, 40, "nanometers"))
    alice.create_project(ExperimentResource("em", "lab", "f"))
    ch = alice.create_project(ChannelResource("img", "lab", "em", datatype="uint8"))
    vol = np.arange(8 * 64 * 64, dtype=np.uint64).astype(np.uint8).reshape(8, 64, 64)
    alice.create_cutout(ch, 0, [0, 64], [0, 64], [0, 8], vol)

    assert bob.list_collections() == []  # nothing bob may read is listed
    with pytest.raises(requests.HTTPError) as e:
        bob.get_cutout(ch, 0, [0, 64], [0, 64], [0, 8])
    assert status(e) == 403
    assert e.value.response.json()["code"] == 3001
    with pytest.raises(requests.HTTPError) as e:
        anon.get_cutout(ch, 0, [0, 64], [0, 64], [0, 8])
    assert status(e) == 401

    # a Boss group with bob in it, read permissions on the channel
    alice.create_group("readers")
    alice.add_group_member("readers", BOB)
    assert alice.list_group_members("readers") == [ALICE, BOB]
    assert bob.get_is_group_member("readers", BOB) is True
    with pytest.raises(requests.HTTPError) as e:  # bob does not maintain it
        bob.add_group_member("readers", "eve@lab.org")
    assert status(e) == 403
    alice.add_permissions("readers", ch, ["read", "read_volumetric_data"])
    assert alice.get_permissions("readers", ch) == ["read", "read_volumetric_data"]
    got = bob.get_cutout(ch, 0, [0, 64], [0, 64], [0, 8])
    assert got.tobytes() == vol.tobytes()
    with pytest.raises(requests.HTTPError) as e:  # read only
        bob.create_cutout(ch, 0, [0, 8], [0, 8], [0, 1], np.ones((1, 8, 8), np.uint8))
    assert status(e) == 403
    with pytest.raises(requests.HTTPError) as e:  # only admins of the channel grant
        bob.add_permissions("readers", ch, ["add_volumetric_data"])
    assert status(e) == 403
    alice.update_permissions("readers", ch, ["read", "add_volumetric_data"])
    assert alice.get_permissions("readers", ch) == [
        "read", "add", "update", "add_volumetric_data", "read_volumetric_data",
        "delete_volumetric_data"]
    bob.create_cutout(ch, 0, [0, 8], [0, 8], [0, 1], np.ones((1, 8, 8), np.uint8))
    sets = alice.list_permissions(group_name="readers")
    assert [(s["collection"], s.get("channel")) for s in sets] == [("lab", "img")]
    alice.delete_permissions("readers", ch)
    with pytest.raises(requests.HTTPError) as e:
        bob.get_cutout(ch, 0, [0, 8], [0, 8], [0, 1])
    assert status(e) == 403

    # the public group: anonymous reads of the experiment
    exp = ExperimentResource("em", "lab")
    alice.add_permissions("public", exp, ["read"])
    assert anon.get_cutout(ch, 0, [0, 8], [0, 8], [0, 1]).tobytes() == \
        np.ones((1, 8, 8), np.uint8).tobytes()
    with pytest.raises(requests.HTTPError) as e:
        alice.add_permissions("public", exp, ["add"])
    assert status(e) == 400
    alice.delete_group("readers")
    assert alice.list_groups() == []
