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
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from storage.base import GuardedWriteBatch, KeyRange, KVEngine
from storage.hexnames import HexNames, split_location
from storage.registry import register_engine

_OPTIONS = {"endpoint", "region", "threads", "create_bucket", "client"}
_PAGE = 1000
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_PRECONDITION = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


class S3WriteBatch(GuardedWriteBatch):
    """Collects operations; ``commit`` applies the last one per key (not atomic)."""

    def __init__(self, engine: S3Engine) -> None:
        super().__init__()
        self._engine = engine
        self._ops: dict[bytes, bytes | None] = {}

    def _queue(self, key: bytes, value: bytes | None) -> None:
        key = bytes(key)
        self._engine._names.name(key)  # validate now rather than at commit
        self._ops[key] = value

    def _put(self, key: bytes, value: bytes) -> None:
        self._queue(key, bytes(value))

    def _delete(self, key: bytes) -> None:
        self._queue(key, None)

    def _write(self) -> None:
        ops, self._ops = self._ops, {}
        self._engine._apply(ops)


@register_engine
class S3Engine(KVEngine):
    """Ordered key-value store on an S3 bucket (optionally under a name prefix)."""

    name = "s3"
    atomic_batches = False
    persistent = True
    shareable = True

    def __init__(self, client: Any, bucket: str, prefix: str, *, threads: int = 16,
                 endpoint: str = "") -> None:
        self._s3 = client
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self._names = HexNames(prefix)
        self._threads = max(1, int(threads))
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="s3-kv")
        self._closed = False
        self._close_lock = threading.Lock()

    @classmethod
    def open(cls, location: str, **options: Any) -> S3Engine:
        """Open ``bucket`` or ``bucket/prefix`` (see the module docstring for options).

        Raises ValueError for an empty bucket name and TypeError for unknown options.
        """
        unknown = set(options) - _OPTIONS
        if unknown:
            raise TypeError(f"unknown s3 options {sorted(unknown)}; known: {sorted(_OPTIONS)}")
        bucket, prefix = split_location(location, "s3://")
        threads = int(options.get("threads", 16))
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

    # ----- KVEngine ------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The stored value, or ``None`` when the object does not exist."""
        return self._get_name(self._names.name(bytes(key)))

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order, fetched in parallel (not a snapshot)."""
        names = [self._names.name(bytes(k)) for k in keys]
        if len(names) < 2:
            return [self._get_name(n) for n in names]
        return list(self._pool.map(self._get_name, names))

    def put(self, key: bytes, value: bytes) -> None:
        """Upload ``value`` as the object for ``key``."""
        self._put_name(self._names.name(bytes(key)), bytes(value))

    def delete(self, key: bytes) -> None:
        """Delete the object for ``key``; a missing object is not an error."""
        self._s3.delete_object(Bucket=self.bucket, Key=self._names.name(bytes(key)))

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

    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` in ``rng``; lazy, not a snapshot (see module docstring)."""
        if rng.is_empty():
            return iter(())
        listed: Iterable[tuple[bytes, str]] = self._list(rng)
        if reverse:
            listed = list(listed)
            listed.reverse()
        if keys_only:
            return ((k, b"") for k, _ in listed)
        return self._with_values(iter(listed))

    def _with_values(self, listed: Iterator[tuple[bytes, str]]) -> Iterator[tuple[bytes, bytes]]:
        page = max(64, 4 * self._threads)
        while chunk := list(islice(listed, page)):
            values = list(self._pool.map(self._get_name, [n for _, n in chunk]))
            for (key, _), value in zip(chunk, values, strict=True):
                if value is not None:
                    yield key, value

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every object in ``rng`` (``DeleteObjects`` per listed page); returns how
        many were listed and deleted."""
        if rng.is_empty():
            return 0
        n = 0
        listed = self._list(rng)
        while chunk := [name for _, name in islice(listed, _PAGE)]:
            n += self._delete_names(chunk)
        return n

    def _apply(self, ops: dict[bytes, bytes | None]) -> None:
        dels = [self._names.name(k) for k, v in ops.items() if v is None]
        puts = [(self._names.name(k), v) for k, v in ops.items() if v is not None]
        for i in range(0, len(dels), _PAGE):
            self._delete_names(dels[i:i + _PAGE])
        if len(puts) == 1:
            self._put_name(*puts[0])
        elif puts:
            for _ in self._pool.map(lambda nv: self._put_name(*nv), puts):
                pass

    def batch(self) -> S3WriteBatch:
        """A new (non-atomic) write batch."""
        return S3WriteBatch(self)

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

    def close(self) -> None:
        """Stop the worker threads; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=True)

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
