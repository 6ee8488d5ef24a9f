"""Chunk work (read, check, upload, acknowledge) and where it runs: threads or Dask.

:func:`run_chunk` is one chunk's whole work and a plain picklable function of a
:class:`ChunkTask` (everything a worker needs: server, job, source description, geometry)
and the chunk index, so it runs the same on a thread of the client
(:class:`ThreadRunner`), on a ``dask.distributed`` worker of a ``LocalCluster`` started
for the ingest, or on the workers of a running cluster (:class:`DaskRunner`,
``--scheduler tcp://host:8786``; dvidpy and the source's reader must be installed there
and the source path must be readable there). A worker that dies takes its running chunks
with it: Dask runs them again elsewhere, and since every chunk is an overwrite followed by
an acknowledgement with the same checksum, running one twice writes the same voxels.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dvidpy.ingest.jobs import chunk_box
from dvidpy.ingest.sources import MissingReader, SourceError, reopen
from dvidpy.ingest.target import (
    IngestError,
    TargetInfo,
    call_json,
    connection,
    upload,
)

log = logging.getLogger("dvidpy.ingest")
_END = object()


@dataclass
class ChunkTask:
    """Everything one chunk's work needs (sent once to each Dask worker)."""

    server: str
    token: str
    uuid: str
    instance: str
    job: str
    geometry: dict[str, Any]  # the job record's box, chunk, origin, grid, chunks_total
    source: dict[str, Any]  # Source.spec()
    offset: tuple[int, int, int]  # target = source + offset
    target: TargetInfo
    cast: bool = False
    replace: frozenset[int] = field(default_factory=frozenset)
    retries: int = 6


def checksum(arr: np.ndarray) -> int:
    """CRC-32 of the voxels' bytes (C order, native byte order)."""
    return zlib.crc32(memoryview(np.ascontiguousarray(arr)).cast("B"))


def to_target(arr: np.ndarray, dtype: np.dtype, cast: bool, where: str) -> np.ndarray:
    """``arr`` as ``dtype``: a safe conversion, or with ``cast`` one whose values all fit
    (else :class:`SourceError` naming ``where``)."""
    if arr.dtype == dtype:
        return arr
    if np.can_cast(arr.dtype, dtype, "safe") or arr.dtype == np.bool_:
        return arr.astype(dtype)
    if not cast:
        raise SourceError(f"{where}: {arr.dtype} voxels do not fit {dtype} (use --cast to "
                          "convert values that fit)")
    if arr.size:
        info = np.iinfo(dtype) if dtype.kind in "ui" else np.finfo(dtype)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            raise SourceError(f"{where}: values {lo}..{hi} do not fit {dtype}")
        if arr.dtype.kind == "f" and dtype.kind in "ui" and not np.all(np.mod(arr, 1) == 0):
            raise SourceError(f"{where}: fractional values do not fit {dtype}")
    return arr.astype(dtype)


def read_chunk(task: ChunkTask, n: int) -> tuple[list[int], np.ndarray, str]:
    """``(target box, voxels as the target dtype, source fingerprint)`` of chunk ``n``."""
    src = reopen(task.source)
    tb = chunk_box(task.geometry, n)
    o = task.offset
    sb = [tb[0] - o[0], tb[1] - o[1], tb[2] - o[2], tb[3] - o[0], tb[4] - o[1], tb[5] - o[2]]
    arr = src.read(sb)
    arr = to_target(arr, np.dtype(task.target.dtype), task.cast,
                    f"{src.description} chunk {n} (box {sb})")
    return tb, arr, src.fingerprint(sb[2], sb[5])


def run_chunk(task: ChunkTask, n: int) -> tuple[int, int, int]:
    """Read chunk ``n``, write it with ``POST raw``, acknowledge it; ``(n, bytes, crc)``.
    :class:`SourceError` when the source breaks (naming the file); :class:`IngestError`
    when the server refuses or stays unreachable."""
    tb, arr, fp = read_chunk(task, n)
    crc = checksum(arr)
    h = connection(task.server, task.token)
    upload(h, task.uuid, task.instance, task.target, tb, arr, task.retries)
    call_json(h, "POST", f"/api/ingest/{task.job}/chunks/{n}",
              {"crc": crc, "bytes": int(arr.nbytes), "fp": fp, "replace": n in task.replace},
              task.retries)
    return n, int(arr.nbytes), crc


def run_pyramid_task(task: ChunkTask, item: tuple[int, int]) -> tuple[int, int, int]:
    """Ask the server to build pyramid task ``item`` = ``(level, n)`` of the job (see
    :mod:`dvidpy.ingest.jobs`); ``(level, n, blocks written)``. :class:`IngestError` when
    the server refuses or stays unreachable."""
    level, n = item
    h = connection(task.server, task.token)
    r = call_json(h, "POST", f"/api/ingest/{task.job}/pyramid/{level}/{n}", None,
                  task.retries)
    return level, n, int(r["blocks"])


Result = tuple[int, int, int]
#: one unit of work of a runner: ``fn(task, item)``, a module-level (picklable) function
Work = Callable[[ChunkTask, Any], Result]


class ThreadRunner:
    """Chunks on ``workers`` threads of this process (at most ``2 * workers`` queued)."""

    name = "threads"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def run(self, task: ChunkTask, chunks: Sequence[Any], stop: Callable[[], bool],
            fn: Work = run_chunk) -> Iterator[Result | BaseException]:
        """``fn(task, item)`` for each of ``chunks`` (chunk indices; ``(level, n)`` pyramid
        tasks with :func:`run_pyramid_task`): results (or the exception of one) as they
        finish; after an exception, or when ``stop()``, nothing new starts and the running
        ones are waited for."""
        it = iter(chunks)
        pending: set[Future[Result]] = set()
        failed = False
        with ThreadPoolExecutor(self.workers, thread_name_prefix="ingest") as ex:
            while True:
                while not failed and not stop() and len(pending) < 2 * self.workers:
                    n = next(it, _END)
                    if n is _END:
                        break
                    pending.add(ex.submit(fn, task, n))
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    e = f.exception()
                    if e is not None:
                        failed = True
                        yield e
                    else:
                        yield f.result()

    def close(self) -> None:
        """Nothing to release."""


def local_cluster_shape(workers: int, cores: int | None = None) -> tuple[int, int]:
    """``(processes, threads each)`` of the local Dask cluster for ``workers`` chunks in
    flight: one process per core at most (more processes than cores only contend with
    each other and with the server: measured on 2 cores, a 1 GiB ingest with 4 workers
    took 6.5 s as 4 single-threaded processes, less as 2 processes), the threads making up
    ``workers``."""
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    workers = max(1, workers)
    procs = max(1, min(workers, cores))
    return procs, -(-workers // procs)


class DaskRunner:
    """Chunks as ``dask.distributed`` tasks: on a ``LocalCluster`` (one worker process
    per core at most, threads making up ``workers``: :func:`local_cluster_shape`), or on
    the cluster at ``address``."""

    name = "dask"

    def __init__(self, workers: int, address: str | None = None,
                 timeout: float = 30.0) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            from storage.registry import install_command

            raise MissingReader("Dask runs need dask.distributed, which is in the ingest "
                                f"extra: {install_command('dvidpy[ingest]')}") from None
        self.cluster = None
        self._sent: tuple[ChunkTask, Any] | None = None  # the task scattered to workers
        if address is None:
            procs, threads = local_cluster_shape(workers)
            self.cluster = LocalCluster(n_workers=procs, threads_per_worker=threads,
                                        processes=True, dashboard_address=None,
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
            self.where = (f"a local Dask cluster of {procs} worker processes x {threads} "
                          "threads")
        else:
            try:
                self.client = Client(address, timeout=timeout)
            except Exception as e:
                raise IngestError(f"can't reach the Dask scheduler at {address}: {e}") from None
            n = len(self.client.scheduler_info().get("workers", {}))
            self.where = f"the Dask cluster at {address} ({n} workers)"

    def worker_pids(self) -> dict[str, int]:
        """Process ids of the cluster's workers (for tests that kill one)."""
        return self.client.run(os.getpid)

    def run(self, task: ChunkTask, chunks: Sequence[Any], stop: Callable[[], bool],
            fn: Work = run_chunk) -> Iterator[Result | BaseException]:
        # docstring: see ThreadRunner.run
        from dask.distributed import as_completed

        if not chunks:
            return
        if self._sent is None or self._sent[0] is not task:
            # once per task for every run (chunks, then each pyramid level), under a key of
            # its own: the same content scattered again under its hashed key, while the
            # previous run's copy is being released, is lost ("could not find data") and
            # the tasks needing it are cancelled
            self._sent = (task, self.client.scatter(task, broadcast=True, hash=False))
        tf = self._sent[1]
        futs = self.client.map(fn, [tf] * len(chunks), list(chunks), pure=False)
        failed = False
        for f in as_completed(futs):
            if f.cancelled():
                if not failed:  # not cancelled by us: its input was lost
                    failed = True
                    self.client.cancel([g for g in futs if not g.done()])
                    yield IngestError(f"a Dask task was cancelled by the cluster ({f.key})")
                continue
            try:  # waits again for a result lost with its worker (recomputed elsewhere)
                res = f.result()
            except Exception as e:
                if failed and f.cancelled():
                    continue
                if not failed:
                    failed = True
                    self.client.cancel([g for g in futs if not g.done()])
                yield e
                continue
            yield res
            if stop() and not failed:
                failed = True
                self.client.cancel([g for g in futs if not g.done()])

    def close(self) -> None:
        """Stop the client (and the local cluster)."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


#: ``auto`` starts a local Dask cluster only for an upload of at least this many bytes ...
AUTO_DASK_BYTES = 16 << 30
#: ... on a machine with more than this many cores (else threads of the client)
AUTO_DASK_MIN_CORES = 2


def auto_uses_dask(nbytes: int, cores: int | None = None) -> bool:
    """Whether ``--scheduler auto`` runs an upload of ``nbytes`` on a local Dask cluster
    (else on threads of the client): only when it is big (:data:`AUTO_DASK_BYTES`) and the
    machine has more than :data:`AUTO_DASK_MIN_CORES` cores. Starting and stopping a
    ``LocalCluster`` of worker processes costs about 3 s on a 2-core machine (a 1 GiB
    ingest took 8.3 s with it, about 5 s on threads); its processes help only where a
    source's reader holds the GIL (h5py), since the chunk work (memory-mapped or decoded
    reads, CRC, the upload) runs mostly without it; and on 2 cores the server's own
    encoding and commits need the cores the workers would take."""
    if cores is None:
        cores = os.cpu_count() or 1
    return nbytes >= AUTO_DASK_BYTES and cores > AUTO_DASK_MIN_CORES


def make_runner(scheduler: str, workers: int, timeout: float = 30.0,
                nbytes: int = 0) -> ThreadRunner | DaskRunner:
    """``threads``, ``local`` (a Dask ``LocalCluster``), ``auto`` (a local cluster when
    Dask is installed and :func:`auto_uses_dask` says so for ``nbytes`` to upload, else
    threads) or a scheduler address ``tcp://host:port`` (reached within ``timeout``
    seconds, else :class:`IngestError`)."""
    if scheduler == "threads":
        return ThreadRunner(workers)
    if scheduler == "auto":
        if not auto_uses_dask(nbytes):
            return ThreadRunner(workers)
        try:
            import dask.distributed  # noqa: F401
        except ImportError:
            return ThreadRunner(workers)
        return DaskRunner(workers)
    if scheduler == "local":
        return DaskRunner(workers)
    check_scheduler(scheduler)
    return DaskRunner(workers, scheduler, timeout)


def check_scheduler(scheduler: str) -> None:
    """:class:`IngestError` unless ``scheduler`` is ``threads``, ``local``, ``auto`` or
    an address ``SCHEME://HOST:PORT`` (whether it answers is found out when connecting)."""
    if scheduler in ("threads", "local", "auto"):
        return
    scheme, sep, rest = scheduler.partition("://")
    host, _, port = rest.rpartition(":")
    if not (sep and scheme.isalnum() and host and port.isdigit()):
        raise IngestError(f"--scheduler {scheduler!r}: threads, local, auto or a Dask "
                          "scheduler address such as tcp://host:8786")
