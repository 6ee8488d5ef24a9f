"""Fixtures for auth tests: a real OIDC issuer on 127.0.0.1 and servers in each auth mode."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from credentials import ADMIN, SECRET
from issuer import Issuer
from starlette.testclient import TestClient

from dvidpy.config import Settings
from server import create_app


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    iss = Issuer()
    yield iss
    iss.close()


class AuthServer:
    """An in-process server in one auth mode, with a way to make credentials."""

    def __init__(self, mode: str, issuer: Issuer, tmp: Path, **auth: Any) -> None:
        self.mode = mode
        self.issuer = issuer
        users = auth.pop("users", {"*": "readwrite"})
        transfer = auth.pop("transfer", {})
        server = auth.pop("server", {})
        cfg: dict[str, Any] = {"enforce": mode, "admins": [ADMIN], **auth}
        if mode in ("token", "authfile"):
            cfg.setdefault("secretkey", SECRET)
        if mode == "authfile":
            af = tmp / "users.json"
            af.write_text(json.dumps(users))
            cfg["authfile"] = str(af)
        if mode == "oidc":
            cfg.update(issuer=issuer.url, audience="dvidpy", jwks_min_refresh=0)
        data: dict[str, Any] = {"store": {"main": {"engine": "memory"}}, "auth": cfg,
                                "transfer": transfer, "server": server}
        self.settings = Settings.from_dict(data, base_dir=tmp)
        self.app = create_app(self.settings)
        self.client = TestClient(self.app)
        self.client.__enter__()

    def token(self, user: str, groups: list[str] | None = None) -> str:
        """This mode's native credential for ``user``."""
        if self.mode == "oidc":
            return self.issuer.token(user, groups=groups)
        return jwt.encode({"user": user}, SECRET, algorithm="HS256")

    def headers(self, user: str | None, groups: list[str] | None = None) -> dict[str, str]:
        return {} if user is None else {"Authorization": f"Bearer {self.token(user, groups)}"}

    def close(self) -> None:
        self.client.__exit__(None, None, None)


@pytest.fixture
def auth_server(issuer: Issuer, tmp_path: Path) -> Iterator[Callable[..., AuthServer]]:
    made: list[AuthServer] = []

    def make(mode: str, **auth: Any) -> AuthServer:
        s = AuthServer(mode, issuer, tmp_path / f"s{len(made)}", **auth)
        made.append(s)
        return s

    (tmp_path / "s0").mkdir(exist_ok=True)
    for i in range(1, 4):
        (tmp_path / f"s{i}").mkdir(exist_ok=True)
    yield make
    for s in made:
        s.close()
