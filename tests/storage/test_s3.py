"""S3 engine against moto's standalone S3 server (a real HTTP server process)."""

from __future__ import annotations

import itertools
import logging
import uuid

import boto3
import pytest

from storage import KeyRange, open_engine
from storage.s3 import S3Engine
from storage.testing import KVEngineTests, run_engine_state_machine


class TestS3Engine(KVEngineTests):
    engine_name = "s3"
    many_keys = 1001
    ops_per_thread = 40

    @pytest.fixture
    def engine_location(self, s3_bucket: str) -> str:
        return f"s3://{s3_bucket}/some/prefix"

    @pytest.fixture
    def engine_options(self, s3_endpoint: str) -> dict[str, object]:
        return {"endpoint": s3_endpoint, "threads": 4}


def test_s3_matches_model(s3_endpoint: str) -> None:
    n = itertools.count()
    run = uuid.uuid4().hex[:8]
    run_engine_state_machine(
        lambda: S3Engine.open(f"sm-{run}-{next(n)}", endpoint=s3_endpoint, threads=4),
        max_examples=12, stateful_step_count=20)


def test_object_names_and_foreign_objects(s3_endpoint: str, s3_bucket: str) -> None:
    with S3Engine.open(f"{s3_bucket}/a/b/", endpoint=s3_endpoint) as e:
        assert e.prefix == "a/b/"
        e.put(b"\x00\xff", b"raw")
        e.put(b"\x0a", b"")
        c = boto3.client("s3", endpoint_url=s3_endpoint)
        names = sorted(o["Key"] for o in c.list_objects_v2(Bucket=s3_bucket)["Contents"])
        assert names == ["a/b/00ff", "a/b/0a"]
        for foreign in ("a/b/xyz", "a/b/0", "a/b/sub/00", "a/c00", "a/b/0A"):
            c.put_object(Bucket=s3_bucket, Key=foreign, Body=b"?")
        assert list(e.scan(KeyRange())) == [(b"\x00\xff", b"raw"), (b"\x0a", b"")]
        assert e.delete_range(KeyRange()) == 2


def test_start_bounds_between_hex_digits(s3_endpoint: str, s3_bucket: str) -> None:
    """StartAfter is exclusive: the listing must still include a key equal to start."""
    with S3Engine.open(s3_bucket, endpoint=s3_endpoint) as e:
        keys = [b"\x00", b"\x01", b"\x10", b"\x1f", b"\x20", b"\xa0", b"\xaf\x00", b"\xff"]
        for k in keys:
            e.put(k, k)
        for k in keys:
            assert [x for x, _ in e.scan(KeyRange(k))] == [x for x in keys if x >= k]


def test_bad_options_and_empty_key(s3_endpoint: str) -> None:
    with pytest.raises(TypeError, match="unknown s3 options"):
        open_engine("s3", "bkt-x", endpoint=s3_endpoint, dsn="x")
    with pytest.raises(ValueError, match="bucket name"):
        open_engine("s3", "s3:///", endpoint=s3_endpoint)
    with S3Engine.open("bkt-empty-key", endpoint=s3_endpoint) as e, \
            pytest.raises(ValueError, match="empty key"):
        e.put(b"", b"x")


def test_credentials_never_logged(s3_endpoint: str, caplog: pytest.LogCaptureFixture,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials come from the environment; not even debug logging shows the secret."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sekrit-7f3a9")
    with caplog.at_level(logging.DEBUG), S3Engine.open("bkt-log", endpoint=s3_endpoint) as e:
        e.put(b"k", b"v")
        assert e.get(b"k") == b"v"
        assert "sekrit" not in e.describe()
    assert caplog.text  # botocore did log at debug level
    assert "sekrit-7f3a9" not in caplog.text
