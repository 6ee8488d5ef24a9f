"""GCS engine against a real ``gcp-storage-emulator`` process (no mocks).

This module runs its own emulator and wipes it before every test, because the emulator's
writes get slower as it holds more objects. One test uses the shared session fixtures
from ``tests/conftest.py`` to check them too.
"""

from __future__ import annotations

import itertools
import urllib.request
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs

from storage import KeyRange, open_engine
from storage.gcs import GCSEngine
from storage.testing import KVEngineTests, gcs_emulator, run_engine_state_machine

_names = itertools.count()


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with gcs_emulator() as endpoint:
        yield endpoint


def _client(endpoint: str) -> gcs.Client:
    return gcs.Client(
        project="test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


def fresh_bucket(endpoint: str) -> str:
    """Wipe this module's emulator and create an empty bucket without soft delete."""
    with urllib.request.urlopen(endpoint + "/wipe", timeout=30):
        pass
    name = f"kv-{next(_names)}"
    client = _client(endpoint)
    bucket = client.create_bucket(name)
    bucket.soft_delete_policy.retention_duration_seconds = 0
    bucket.patch()
    client.close()
    return name


class TestGCSEngine(KVEngineTests):
    engine_name = "gcs"
    many_keys = 1001  # the emulator serves one listing page anyway; keep writes few
    cas_is_atomic = False  # gcp-storage-emulator ignores generation preconditions
    ops_per_thread = 10

    @pytest.fixture
    def engine_location(self, emulator: str) -> str:
        return fresh_bucket(emulator) + "/some/prefix"

    @pytest.fixture
    def engine_options(self, emulator: str) -> dict[str, object]:
        return {"endpoint": emulator, "threads": 4}


def test_gcs_matches_model(emulator: str) -> None:
    run_engine_state_machine(
        lambda: GCSEngine.open(fresh_bucket(emulator), endpoint=emulator, threads=4),
        max_examples=15,
        stateful_step_count=20,
    )


def test_object_names_are_prefix_plus_hex(emulator: str) -> None:
    bucket = fresh_bucket(emulator)
    client = _client(emulator)
    with GCSEngine.open(f"gs://{bucket}/a/b/", endpoint=emulator) as e:
        assert e.prefix == "a/b/"
        e.put(b"\x00\xff", b"raw")
        e.put(b"\x0a", b"")
        blob = client.bucket(bucket).get_blob("a/b/00ff")
        assert blob is not None
        assert blob.content_type == "application/octet-stream"
        assert blob.content_encoding is None
        assert blob.download_as_bytes() == b"raw"
        # Objects that are not ours (outside the prefix, nested, not hex) are ignored.
        for name in ("a/b/sub/00", "a/b/XYZ", "a/b/0", "a/bc/00", "a/00"):
            client.bucket(bucket).blob(name).upload_from_string(b"foreign")
        assert list(e.scan(KeyRange())) == [(b"\x00\xff", b"raw"), (b"\x0a", b"")]
        assert e.delete_range(KeyRange()) == 2
    names = sorted(b.name for b in client.list_blobs(bucket))
    assert names == ["a/00", "a/b/0", "a/b/XYZ", "a/b/sub/00", "a/bc/00"]
    client.close()


def test_bucket_without_prefix_and_bucket_creation(emulator: str) -> None:
    fresh_bucket(emulator)  # wipes
    with GCSEngine.open("created-on-open", endpoint=emulator) as e:
        assert e.prefix == ""
        e.put(b"k", b"v")
    client = _client(emulator)
    assert [b.name for b in client.list_blobs("created-on-open")] == [b"k".hex()]
    with GCSEngine.open("created-on-open", client=client) as e:  # an existing client
        assert e.get(b"k") == b"v"
    assert client.lookup_bucket("created-on-open") is not None  # not closed by the engine
    client.close()


def test_key_validation(emulator: str) -> None:
    with GCSEngine.open(fresh_bucket(emulator), endpoint=emulator) as e:
        with pytest.raises(ValueError, match="empty key"):
            e.put(b"", b"v")
        with pytest.raises(ValueError, match="too long"):
            e.get(b"x" * 513)
        e.put(b"x" * 512, b"v")
        assert e.get(b"x" * 512) == b"v"
        with pytest.raises(ValueError):
            e.batch().put(b"", b"v")
    with pytest.raises(TypeError, match="unknown gcs options"):
        GCSEngine.open("b", bogus=1)
    with pytest.raises(ValueError):
        GCSEngine.open("gs://", endpoint=emulator)


def test_session_fixtures_and_default_endpoint(gcs_emulator: str, gcs_bucket: str) -> None:
    """The shared fixtures work and the endpoint defaults to ``$STORAGE_EMULATOR_HOST``."""
    with open_engine("gcs", gcs_bucket) as e:
        e.put(b"a", b"1")
        assert e.get_many([b"a", b"b"]) == [b"1", None]
        assert list(e.scan(KeyRange.prefix(b"a"))) == [(b"a", b"1")]
