"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from starlette.testclient import TestClient

# pytest puts ``tests/`` on sys.path (rootdir-less conftest, "prepend" import mode). Without
# the repository root also on sys.path (the ``pytest`` console script does not add the
# working directory), ``import storage`` / ``import datatypes`` would find the test folders
# ``tests/storage`` / ``tests/datatypes`` as namespace packages before the editable-install
# finder is consulted. With the root on sys.path the real, regular packages always win.
_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

# Detailed assertion messages for the conformance suite shipped inside the package.
pytest.register_assert_rewrite("storage.testing")


@pytest.fixture
def c() -> Iterator[TestClient]:
    """An in-process client of an app on in-memory storage (a fresh one per test)."""
    from starlette.testclient import TestClient

    from dvidpy.config import Settings
    from server import create_app

    with TestClient(create_app(Settings.memory())) as client:
        yield client


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:<port>``) of an in-memory GCS emulator.

    One ``gcp-storage-emulator`` process serves the whole session. ``STORAGE_EMULATOR_HOST``
    is set to the endpoint while it runs, so Google clients (and child processes started
    with the inherited environment) talk to it. Give each test its own bucket
    (see ``gcs_bucket``) and keep the object count small: the emulator re-serialises all
    object metadata on every write.
    """
    from storage.testing import gcs_emulator as run_emulator

    with run_emulator() as endpoint:
        old = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = endpoint
        try:
            yield endpoint
        finally:
            if old is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = old


@pytest.fixture
def gcs_bucket(gcs_emulator: str) -> Iterator[str]:
    """Name of a fresh, empty bucket on the session emulator, removed after the test.

    Soft delete is disabled on it, so deleted objects do not linger in the emulator.
    """
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_emulator},
    )
    name = f"test-{uuid.uuid4().hex[:16]}"
    bucket = client.create_bucket(name)
    bucket.soft_delete_policy.retention_duration_seconds = 0
    bucket.patch()
    try:
        yield name
    finally:
        for blob in client.list_blobs(name):
            blob.delete()
        bucket.delete()
        client.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a throwaway PostgreSQL (Debian's package, run as ``postgres``) for the session.

    Give each test its own table (see ``pg_table``).
    """
    from storage.testing import postgres_server

    with postgres_server() as dsn:
        yield dsn


@pytest.fixture
def pg_table(postgres_dsn: str) -> Iterator[str]:
    """A fresh table name on the session PostgreSQL, dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Endpoint URL of moto's S3 server for the session; test credentials are put in the
    environment (inherited by child processes) while it runs."""
    from storage.testing import MOTO_CREDENTIALS, moto_server

    old = {k: os.environ.get(k) for k in MOTO_CREDENTIALS}
    os.environ.update(MOTO_CREDENTIALS)
    try:
        with moto_server() as endpoint:
            yield endpoint
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """Name of a fresh bucket name on the session moto server (created on first open)."""
    return f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a throwaway ``redis-server`` for the session."""
    from storage.testing import redis_server

    with redis_server() as url:
        yield url
