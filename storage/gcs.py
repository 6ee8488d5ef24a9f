"""Google Cloud Storage engine: one object per key.

``GCSEngine.open("bucket")`` or ``GCSEngine.open("bucket/some/prefix")`` (a leading
``gs://`` is accepted). The object for key ``k`` is named ``prefix + k.hex()`` where
``prefix`` is the path after the bucket with a ``/`` appended (``"some/prefix/"``), or empty.
Lowercase hex keeps unsigned byte order and prefix relations between keys, so a key range
is a range of object names. The bucket is created on open if it does not exist.

Options (unknown names raise TypeError):

* ``client``: an existing :class:`google.cloud.gcs.Client` (used as is, not closed).
* ``project``: project for a new client and for bucket creation.
* ``endpoint``: API endpoint such as ``http://127.0.0.1:9023`` for an emulator; the new
  client then uses anonymous credentials. Defaults to ``$STORAGE_EMULATOR_HOST`` if set.
* ``threads`` (default 16): worker threads for parallel ``get_many``, scan value fetches,
  batch commits and ``delete_range``.
* ``create_bucket`` (default True): create a missing bucket on open.

Semantics and costs, where they differ from the embedded engines:

* **Batches are not atomic** (``atomic_batches = False``). ``commit`` keeps only the last
  operation per key and applies those in parallel; if one fails, an arbitrary subset of
  the others may already be applied. Nothing is written before ``commit``.
* **Scans are not snapshots.** Names are listed lazily page by page (``list_blobs`` with
  ``prefix``/``start_offset``/``end_offset``; results are also filtered client-side, so
  servers that ignore the offsets still give exact results), then values are fetched in
  parallel, one page of names at a time, preserving order. A key deleted between listing
  and fetching is skipped; a key written during the scan may or may not appear.
* **Reverse scans list the whole range first** (GCS lists only in ascending order), so
  they need O(range) memory and one full listing before the first result.
* ``delete_range`` lists then deletes in parallel; it returns the number of objects this
  call actually deleted.
* Keys must be non-empty and at most ``(1024 - len(prefix)) / 2`` bytes long (GCS object
  names are limited to 1024 bytes). Objects under the prefix whose names are not lowercase
  hex (for example nested "folders") are ignored.
* Values are stored as ``application/octet-stream`` without content encoding and read
  with ``raw_download=True``, so they round-trip byte for byte (including ``b""``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from google.api_core.exceptions import Conflict, Forbidden, NotFound, PreconditionFailed
from google.cloud import storage as gcs
from google.cloud.storage.retry import DEFAULT_RETRY

from storage.base import KeyRange, KVEngine
from storage.objectstore import ObjectStoreEngine
from storage.registry import register_engine

_OPTIONS = frozenset({"client", "project", "endpoint", "threads", "create_bucket"})
_LIST_PAGE = 1000  # GCS's maximum page size for objects.list
_CONTENT_TYPE = "application/octet-stream"


@register_engine
class GCSEngine(ObjectStoreEngine):
    """Ordered key-value store on a GCS bucket (optionally under a name prefix)."""

    name = "gcs"
    scheme = "gs://"
    known_options = _OPTIONS

    def __init__(
        self,
        client: gcs.Client,
        bucket: gcs.Bucket,
        prefix: str,
        *,
        threads: int = 16,
        owns_client: bool = False,
    ) -> None:
        super().__init__(prefix, threads, "gcs-kv")
        self._client = client
        self._bucket = bucket
        self.bucket_name: str = bucket.name
        self._owns_client = owns_client

    @classmethod
    def open(cls, location: str, **options: Any) -> GCSEngine:
        """Open ``bucket`` or ``bucket/prefix`` (see the module docstring for options).

        Raises ValueError for an empty bucket name and TypeError for unknown options.
        """
        bucket_name, prefix, threads = cls.parse_open(location, options)
        project = options.get("project")

        client = options.get("client")
        owns = client is None
        if client is None:
            client = _make_client(project, options.get("endpoint"), threads)
        try:
            if options.get("create_bucket", True):
                _ensure_bucket(client, bucket_name, project)
        except BaseException:
            if owns:
                client.close()
            raise
        return cls(client, client.bucket(bucket_name), prefix, threads=threads, owns_client=owns)

    # ----- single-object operations ---------------------------------------------------------

    def _get_name(self, name: str) -> bytes | None:
        try:
            return self._bucket.blob(name).download_as_bytes(raw_download=True)
        except NotFound:
            return None

    def _put_name(self, name: str, value: bytes) -> None:
        self._bucket.blob(name).upload_from_string(
            value, content_type=_CONTENT_TYPE, retry=DEFAULT_RETRY
        )

    def _delete_name(self, name: str) -> bool:
        try:
            self._bucket.delete_blob(name, retry=DEFAULT_RETRY)
        except NotFound:
            return False
        return True

    def _delete_names(self, names: Sequence[str]) -> int:
        if len(names) == 1:
            return int(self._delete_name(names[0]))
        return sum(self._pool.map(self._delete_name, names))

    def _list(self, rng: KeyRange) -> Iterator[tuple[bytes, str]]:
        """``(key, object name)`` for keys in ``rng`` in ascending order, listed lazily."""
        start, end, list_prefix = self._names.bounds(rng)
        blobs = self._client.list_blobs(
            self._bucket,
            prefix=list_prefix or None,
            start_offset=start or None,
            end_offset=end,
            fields="items(name),nextPageToken",
            page_size=_LIST_PAGE,
        )
        for blob in blobs:
            name = blob.name
            if name < start or (end is not None and name >= end):
                continue  # the server ignored the offsets (as some emulators do)
            key = self._names.key(name)
            if key is not None:
                yield key, name

    def compare_and_swap(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        """Conditional write with GCS generation preconditions: read the object and its
        generation, compare, then write or delete ``if_generation_match`` that generation
        (0: "does not exist"). Atomic across servers on real GCS. gcp-storage-emulator
        neither reports generations nor checks preconditions: against it (no generation
        in the download) this is a plain read-compare-write, atomic only within one
        process, so the emulator cannot coordinate several servers."""
        name = self._names.name(bytes(key))
        blob = self._bucket.blob(name)
        try:
            cur: bytes | None = blob.download_as_bytes(raw_download=True)
            gen = blob.generation
        except NotFound:
            cur, gen = None, 0
        if cur != expected:
            return False
        if gen is None:  # a server without generations (the emulator): unconditional
            return KVEngine.compare_and_swap(self, key, expected, new)
        try:
            if new is None:
                if gen:
                    self._bucket.delete_blob(name, if_generation_match=gen)
            else:
                self._bucket.blob(name).upload_from_string(
                    bytes(new), content_type=_CONTENT_TYPE, if_generation_match=gen)
        except (PreconditionFailed, NotFound):
            return False
        return True

    def _close_client(self) -> None:
        if self._owns_client:
            self._client.close()

    def describe(self) -> str:
        return f"gcs://{self.bucket_name}/{self.prefix}"


def _ensure_bucket(client: gcs.Client, name: str, project: str | None) -> None:
    try:
        if client.lookup_bucket(name) is not None:
            return
    except Forbidden:  # may read/write objects but not bucket metadata: assume it exists
        return
    try:
        client.create_bucket(name, project=project)
    except Conflict:  # created concurrently
        pass


def _make_client(project: str | None, endpoint: str | None, threads: int) -> gcs.Client:
    endpoint = endpoint or os.environ.get("STORAGE_EMULATOR_HOST") or None
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        if "://" not in endpoint:
            endpoint = "http://" + endpoint
        client = gcs.Client(
            project=project or "dvidpy",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    else:
        client = gcs.Client(project=project)
    # One HTTP connection per worker thread (requests' default pool keeps only 10).
    from requests.adapters import HTTPAdapter

    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, threads + 2))
    client._http.mount("https://", adapter)
    client._http.mount("http://", adapter)
    return client
