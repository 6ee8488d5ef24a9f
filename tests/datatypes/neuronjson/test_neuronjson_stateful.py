"""neuronjson against a plain model: random posts (partial, replace, nulls), deletes and
new versions; every read at every version shows the model's fields and ``F_user`` stamps."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app

FIELDS = ("a", "b", "c")
VALUES = st.one_of(st.none(), st.integers(0, 2), st.sampled_from(["x", "y"]),
                   st.lists(st.integers(0, 1), max_size=2))
USERS = st.sampled_from(["u1", "u2"])
BODIES = st.integers(1, 4)

Model = dict[int, tuple[dict, dict]]  # body -> (fields, field -> user stamp)


def model_post(cur: Model, body: int, posted: dict, user: str, replace: bool) -> None:
    old_f, old_s = cur.get(body, ({}, {}))
    fields = {} if replace else dict(old_f)
    stamps = {} if replace else dict(old_s)
    for f, v in posted.items():
        if v is None:
            fields.pop(f, None)
            stamps[f] = user
        elif f not in old_f or old_f[f] != v or type(old_f[f]) is not type(v):
            fields[f] = v
            stamps[f] = user
        else:
            fields[f] = v
            stamps[f] = old_s.get(f, user)
    cur[body] = (fields, stamps)


class NeuronJSONMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.client = TestClient(create_app(Settings.memory()))
        self.client.__enter__()
        self.root = self.client.post("/api/repos", json={}).json()["root"]
        self.client.post(f"/api/repo/{self.root}/instance",
                         json={"typename": "neuronjson", "dataname": "n"})
        self.head = self.root
        self.models: dict[str, Model] = {self.root: {}}

    def teardown(self) -> None:
        self.client.__exit__(None, None, None)

    @rule(body=BODIES, posted=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3),
          user=USERS, replace=st.booleans())
    def post(self, body: int, posted: dict, user: str, replace: bool) -> None:
        q = f"?u={user}" + ("&replace=true" if replace else "")
        r = self.client.post(f"/api/node/{self.head}/n/key/{body}{q}",
                             json={"bodyid": body, **posted})
        assert r.status_code == 200, r.text
        model_post(self.models[self.head], body, posted, user, replace)

    @rule(body=BODIES)
    def delete(self, body: int) -> None:
        assert self.client.delete(f"/api/node/{self.head}/n/key/{body}").status_code == 200
        self.models[self.head].pop(body, None)

    @rule()
    def new_version(self) -> None:
        self.client.post(f"/api/node/{self.head}/commit", json={})
        child = self.client.post(f"/api/node/{self.head}/newversion", json={}).json()["child"]
        self.models[child] = {b: (dict(f), dict(s))
                              for b, (f, s) in self.models[self.head].items()}
        self.head = child

    @invariant()
    def every_version_reads_as_model(self) -> None:
        if not hasattr(self, "client"):
            return
        for uuid, model in self.models.items():
            got = self.client.get(f"/api/node/{uuid}/n/all?show=user").json()
            want = []
            for b in sorted(model):
                fields, stamps = model[b]
                rec = {"bodyid": b, **fields, **{f + "_user": u for f, u in stamps.items()}}
                if len(rec) > 1:
                    want.append(rec)
            assert got == want, uuid
            keys = self.client.get(f"/api/node/{uuid}/n/keys").json()
            assert keys == [str(b) for b in sorted(model)]


NeuronJSONMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestNeuronJSONModel = NeuronJSONMachine.TestCase
