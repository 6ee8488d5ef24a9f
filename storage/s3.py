"""Amazon S3 (or S3-compatible: MinIO, Ceph RGW, moto) engine: one object per key.

``S3Engine.open("bucket")`` or ``S3Engine.open("bucket/some/prefix")`` (a leading ``s3://``
is accepted). As in :mod:`storage.gcs`, the object for key ``k`` is named
``prefix + k.hex()`` (:mod:`storage.hexnames`), so a key range is a range of object names
and S3's name-ordered listings are key-ordered scans. The bucket is created on open if it
does not exist.

Options (unknown names raise TypeError):

* ``endpoint``: endpoint URL such as ``http://127.0.0.1:9000`` (MinIO, Ceph, moto);
  default AWS (or ``$AWS_ENDPOINT_URL``).
* ``region``: region name (default ``$AWS_REGION`` / ``$AWS_DEFAULT_REGION`` or
  ``us-east-1``).
* ``threads`` (default 16): worker threads for parallel gets, scan value fetches and batch
  commits (also the HTTP connection pool size).
* ``create_bucket`` (default True): create a missing bucket on open.
* ``client``: an existing boto3 S3 client (used as is).

Credentials come only from boto3's usual sources (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles), never
from the TOML; :meth:`S3Engine.describe` shows only the endpoint, bucket and prefix.

Semantics and costs, where they differ from the embedded engines:

* **Batches are not atomic** (``atomic_batches = False``): the last operation per key
  wins; puts run in parallel, deletes go in ``DeleteObjects`` requests of 1000 keys. If
  one fails, part of the batch may be applied.
* **Scans are not snapshots**: names are listed lazily (``ListObjectsV2`` pages of 1000
  with ``Prefix``/``StartAfter``, stopped at the range end), values fetched in parallel
  one page at a time; a key deleted in between is skipped. Reverse scans list the whole
  range first.
* ``compare_and_swap`` reads the object and its ETag, compares the bytes, then writes with
  ``If-Match: ETag`` (or ``If-None-Match: *`` when absent) or deletes with ``If-Match``:
  S3's conditional writes, atomic across servers (``shareable = True``).
* Keys must be non-empty and at most ``(1024 - len(prefix)) / 2`` bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from storage.base import KeyRange
from storage.objectstore import ObjectStoreEngine
from storage.registry import register_engine

_OPTIONS = frozenset({"endpoint", "region", "threads", "create_bucket", "client"})
_PAGE = 1000
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_PRECONDITION = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


@register_engine
class S3Engine(ObjectStoreEngine):
    """Ordered key-value store on an S3 bucket (optionally under a name prefix)."""

    name = "s3"
    scheme = "s3://"
    known_options = _OPTIONS
    page = _PAGE

    def __init__(self, client: Any, bucket: str, prefix: str, *, threads: int = 16,
                 endpoint: str = "") -> None:
        super().__init__(prefix, threads, "s3-kv")
        self._s3 = client
        self.bucket = bucket
        self.endpoint = endpoint

    @classmethod
    def open(cls, location: str, **options: Any) -> S3Engine:
        """Open ``bucket`` or ``bucket/prefix`` (see the module docstring for options).

        Raises ValueError for an empty bucket name and TypeError for unknown options.
        """
        bucket, prefix, threads = cls.parse_open(location, options)
        endpoint = options.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL") or None
        region = (options.get("region") or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        client = options.get("client")
        if client is None:
            cfg = Config(max_pool_connections=threads + 4, region_name=region,
                         retries={"max_attempts": 5, "mode": "standard"})
            client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=cfg)
        if options.get("create_bucket", True):
            _ensure_bucket(client, bucket, region)
        return cls(client, bucket, prefix, threads=threads, endpoint=endpoint or "")

    # ----- single objects ------------------------------------------------------------------

    def _get_name(self, name: str) -> bytes | None:
        try:
            r = self._s3.get_object(Bucket=self.bucket, Key=name)
        except ClientError as e:
            if _code(e) in _MISSING:
                return None
            raise
        return r["Body"].read()

    def _put_name(self, name: str, value: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=name, Body=value,
                            ContentType="application/octet-stream")

    def _delete_names(self, names: Sequence[str]) -> int:
        """Delete up to 1000 objects in one request; returns how many S3 reports deleted."""
        if len(names) == 1:
            self._s3.delete_object(Bucket=self.bucket, Key=names[0])
            return 1
        r = self._s3.delete_objects(Bucket=self.bucket, Delete={
            "Objects": [{"Key": n} for n in names], "Quiet": False})
        if r.get("Errors"):
            err = r["Errors"][0]
            raise RuntimeError(f"s3 delete of {err.get('Key')} failed: {err.get('Code')} "
                               f"{err.get('Message')}")
        return len(r.get("Deleted", []))

    def _list(self, rng: KeyRange) -> Iterator[tuple[bytes, str]]:
        """``(key, name)`` for keys in ``rng``, ascending, listed lazily page by page."""
        start, end, list_prefix = self._names.bounds(rng)
        kw: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": _PAGE}
        if list_prefix:
            kw["Prefix"] = list_prefix
        after = self._names.start_after(start)
        if after is not None:
            kw["StartAfter"] = after
        while True:
            r = self._s3.list_objects_v2(**kw)
            for obj in r.get("Contents", []):
                name = obj["Key"]
                if end is not None and name >= end:
                    return
                if name < start:
                    continue
                key = self._names.key(name)
                if key is not None:
                    yield key, name
            if not r.get("IsTruncated"):
                return
            kw["ContinuationToken"] = r["NextContinuationToken"]
            kw.pop("StartAfter", None)

    def compare_and_swap(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        """S3 conditional write or delete (see the module docstring)."""
        name = self._names.name(bytes(key))
        try:
            r = self._s3.get_object(Bucket=self.bucket, Key=name)
            cur: bytes | None = r["Body"].read()
            etag = r["ETag"]
        except ClientError as e:
            if _code(e) not in _MISSING:
                raise
            cur, etag = None, None
        if cur != expected:
            return False
        try:
            if new is None:
                if etag is not None:
                    self._s3.delete_object(Bucket=self.bucket, Key=name, IfMatch=etag)
            elif etag is None:
                self._s3.put_object(Bucket=self.bucket, Key=name, Body=bytes(new),
                                    IfNoneMatch="*")
            else:
                self._s3.put_object(Bucket=self.bucket, Key=name, Body=bytes(new),
                                    IfMatch=etag)
        except ClientError as e:
            if _code(e) in _PRECONDITION or _code(e) in _MISSING:
                return False
            raise
        return True

    def describe(self) -> str:
        where = f" @ {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"


def _ensure_bucket(client: Any, bucket: str, region: str) -> None:
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as e:
        if _code(e) not in _MISSING and _code(e) != "NoSuchBucket":
            if _code(e) in ("403", "AccessDenied"):
                return  # may use objects but not see the bucket: assume it exists
            raise
    kw: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kw["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kw)
    except ClientError as e:
        if _code(e) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
