"""The ingest driver: :func:`ingest`, the Python API of ``dvidpy ingest``.

Order of work (every check that can fail does so before the first upload):

1. open the source and check it (:func:`~dvidpy.ingest.sources.open_source`), the box
   (``box``/``z_range`` inside the source) and the target: the instance (made with
   ``create``), its voxel type able to hold the source's (else ``cast``), the chunk shape
   a multiple of its block size;
2. ``POST /api/ingest``: a new job, or the same job found again (resume);
3. acknowledged chunks whose source files changed are read again and their checksums
   compared (a changed one is an error, or re-sent with ``resend_changed``);
4. every chunk not acknowledged is read, written and acknowledged on the runner
   (threads or Dask), with a tqdm bar (bytes, MB/s, ETA, chunks);
5. ``DOWNSAMPLING``: the server plans the pyramid above the job's box; its tasks (one
   chunk-shaped box of blocks of one level each) run on the same runner, a level after
   the one below, with a bar of the levels' blocks, until the job is ``COMPLETE``.

A source file that breaks while its chunk is read makes the job ``FAILED`` with the file
named; acknowledged chunks stay, and the same call again resumes. A server that stops
answering ends the call with an error; the same call again resumes too.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np

from dvidpy.ingest.jobs import chunk_box, pyramid_task_box
from dvidpy.ingest.runner import (
    ChunkTask,
    DaskRunner,
    ThreadRunner,
    check_scheduler,
    checksum,
    make_runner,
    read_chunk,
    run_pyramid_task,
)
from dvidpy.ingest.sources import _OPEN, Source, SourceError, open_source
from dvidpy.ingest.target import (
    CREATE_TYPES,
    IngestError,
    ServerRefused,
    TargetInfo,
    call_json,
    connection,
    create_instance,
    instance_info,
)

XYZ = tuple[int, int, int]


@dataclass
class IngestResult:
    """What one :func:`ingest` call did."""

    job: str
    state: str
    chunks_total: int
    chunks_sent: int  # read and uploaded by this call
    chunks_skipped: int  # already acknowledged (resumed)
    bytes_sent: int
    seconds: float
    upload_seconds: float
    runner: str
    note: str = ""
    changed: list[int] = field(default_factory=list)
    pyramid_seconds: float = 0.0  # running this call's pyramid tasks

    @property
    def mb_per_s(self) -> float:
        """Upload rate of this call (decimal MB per second of uploading)."""
        return self.bytes_sent / 1e6 / self.upload_seconds if self.upload_seconds else 0.0


def parse_ints(text: str | Sequence[int] | None, n: int, what: str) -> list[int] | None:
    """``"a,b,c"`` (or a sequence) as ``n`` ints; :class:`IngestError` otherwise."""
    if text is None:
        return None
    if isinstance(text, str):
        parts = [p for p in text.replace("_", ",").split(",") if p.strip()]
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise IngestError(f"{what} {text!r}: expected {n} comma-separated integers") from None
    else:
        vals = [int(v) for v in text]
    if len(vals) != n:
        raise IngestError(f"{what} {text!r}: expected {n} comma-separated integers")
    return vals


def default_chunk(info: TargetInfo, box: list[int]) -> XYZ:
    """About 16-32 MiB of voxels, whole blocks, no bigger than the box needs."""
    bs = info.block_size
    item = np.dtype(info.dtype).itemsize
    want = (512, 512, 64) if item <= 2 else (256, 256, 64)
    out = []
    for i in range(3):
        extent = box[i + 3] - (box[i] // bs[i]) * bs[i]
        c = max(bs[i], -(-want[i] // bs[i]) * bs[i])
        out.append(min(c, max(bs[i], -(-extent // bs[i]) * bs[i])))
    return out[0], out[1], out[2]


def _levels_for(box: list[int], bs: XYZ) -> int:
    span = max((box[i + 3] - box[i]) / bs[i] for i in range(3))
    return max(0, math.ceil(math.log2(span))) if span > 1 else 0


def ingest(source: str, server: str, uuid: str, instance: str, *,
           glob: str | None = None, dataset: str | None = None,
           z_range: tuple[int, int] | None = None, box: Sequence[int] | str | None = None,
           offset: Sequence[int] | str | None = None, chunk: Sequence[int] | str | None = None,
           create: str | None = None, block_size: Sequence[int] | str | None = None,
           voxel_size: Sequence[float] | None = None, scale_from_source: bool = False,
           workers: int = 4, scheduler: str = "auto", token: str | None = None,
           pyramid: bool = True, restart: bool = False, resend_changed: bool = False,
           cast: bool = False, progress: bool = True, retries: int = 6,
           log: Callable[[str], None] | None = None,
           on_runner: Callable[[Any], None] | None = None,
           pyramid_chunk: Sequence[int] | str | None = None,
           scheduler_timeout: float = 30.0) -> IngestResult:
    """Ingest ``source`` into ``instance`` at version ``uuid`` of the server at ``server``.

    Options as for ``dvidpy ingest`` (see :mod:`dvidpy.cli`): ``glob`` picks slice files;
    ``dataset`` names an HDF5 dataset; ``box`` ``x0,y0,z0,x1,y1,z1`` is the part of the
    source to ingest (source voxels, exclusive end; default all) and ``z_range=(a, b)``
    its z bounds (slices a..b-1); ``offset`` ``x,y,z`` is added to source coordinates to
    give target coordinates; ``chunk`` ``x,y,z`` is the chunk shape (multiples of the
    block size; default about 16 MiB); ``create`` makes the instance when it is missing
    (``"auto"``: the type for the source's dtype, else a type name), with ``block_size``
    and ``voxel_size`` (nm) or, with ``scale_from_source``, the file's resolution (also set
    on an existing instance); ``workers`` parallel uploads on ``scheduler`` ``auto``
    (a Dask ``LocalCluster`` when Dask is installed, the upload is at least 16 GiB and
    the machine has more than 2 cores, else threads; see
    :func:`~dvidpy.ingest.runner.auto_uses_dask`), ``threads``, ``local``
    or ``tcp://host:8786`` (reached within ``scheduler_timeout`` seconds, before the job
    is made); ``token`` (default ``$DVIDPY_TOKEN``) is sent as a bearer
    token; ``pyramid=False`` skips the pyramid; ``pyramid_chunk`` ``x,y,z`` the voxels of
    a level each pyramid task builds (whole blocks; default ``chunk``); ``restart`` starts
    the job afresh;
    ``resend_changed`` uploads acknowledged chunks whose source changed; ``cast`` accepts
    a source dtype the target cannot hold when the values fit; ``retries``: how often a
    request that found the server unreachable (or answering 5xx) is tried again, with
    backoff from 0.5 s to 8 s, before the call gives up (run it again to resume).

    Raises :class:`SourceError` (bad source) or :class:`IngestError` (the server refused,
    the job failed or was cancelled) with a message saying why; nothing is uploaded
    before every check on the source and target has passed.
    """
    say = log or (lambda m: print(m, file=sys.stderr))
    t_start = time.monotonic()
    token = token if token is not None else os.environ.get("DVIDPY_TOKEN", "")
    if workers < 1:
        raise IngestError("--workers must be at least 1")
    check_scheduler(scheduler)  # before the job is made
    src = open_source(source, glob=glob, dataset=dataset)
    try:
        return _ingest(src, server, uuid, instance, z_range, box, offset, chunk, create,
                       block_size, voxel_size, scale_from_source, workers, scheduler,
                       token, pyramid, restart, resend_changed, cast, progress, say,
                       t_start, on_runner, retries, pyramid_chunk, scheduler_timeout)
    finally:
        src.close()


def _source_box(src: Source, box: Any, z_range: tuple[int, int] | None) -> list[int]:
    nz, ny, nx = src.shape
    b = parse_ints(box, 6, "--box") if box is not None else [0, 0, 0, nx, ny, nz]
    assert b is not None
    if z_range is not None:
        b[2], b[5] = z_range  # the box's z bounds
    full = [0, 0, 0, nx, ny, nz]
    if any(b[i + 3] <= b[i] for i in range(3)):
        raise IngestError(f"box {b} is empty (x0,y0,z0,x1,y1,z1 with x1 > x0 ...)")
    if any(b[i] < 0 or b[i + 3] > full[i + 3] for i in range(3)):
        raise IngestError(f"box {b} is outside the source {src.description}: it spans "
                          f"x 0..{nx}, y 0..{ny}, z 0..{nz}")
    return b


def _ingest(src: Source, server: str, uuid: str, instance: str, z_range: Any, box: Any,
            offset: Any, chunk: Any, create: str | None, block_size: Any, voxel_size: Any,
            scale_from_source: bool, workers: int, scheduler: str, token: str,
            pyramid: bool, restart: bool, resend_changed: bool, cast: bool,
            progress: bool, say: Callable[[str], None], t_start: float,
            on_runner: Callable[[Any], None] | None, retries: int,
            pyramid_chunk: Any, scheduler_timeout: float) -> IngestResult:
    sbox = _source_box(src, box, z_range)
    off = parse_ints(offset, 3, "--offset") or [0, 0, 0]
    tbox = [sbox[i] + off[i % 3] for i in range(6)]
    if any(not -(2**31) <= v <= 2**31 - 1 for v in tbox):
        raise IngestError(f"target box {tbox} leaves the int32 voxel space")
    vs = tuple(float(v) for v in voxel_size) if voxel_size else None
    if scale_from_source:
        got = src.voxel_size
        if all(v is None for v in got):
            raise IngestError(f"--scale-from-source: {src.description} records no voxel "
                              "size; give --voxel-size")
        base = vs or (None, None, None)
        known = [g if g is not None else b for g, b in zip(got, base, strict=True)]
        if any(v is None for v in known):
            fill = next(v for v in got if v is not None)
            say(f"note: {src.description} records no voxel size along "
                f"{''.join(a for a, v in zip('xyz', known, strict=True) if v is None)}; "
                f"using {fill:g} nm there (give --voxel-size to choose)")
            known = [v if v is not None else fill for v in known]
        vs = (float(known[0]), float(known[1]), float(known[2]))  # type: ignore[arg-type]
    h = connection(server, token)
    info = instance_info(h, uuid, instance)
    bs_req = parse_ints(block_size, 3, "--block-size")
    if info is None:
        if not create:
            raise IngestError(f"no instance {instance!r} at {uuid} on {server}; add --create "
                              "to make it")
        typename = create if create != "auto" else CREATE_TYPES.get(str(src.dtype))
        if typename is None:
            raise IngestError(f"--create: no image type for {src.dtype} voxels; name one "
                              "(--create labelmap, --create uint8blk, ...)")
        compiled = call_json(h, "GET", "/api/server/compiled-types")
        if typename not in compiled:
            raise IngestError(f"--create {typename}: this server has no such datatype "
                              f"(it has {', '.join(sorted(compiled))})")
        bs = tuple(bs_req) if bs_req else None
        levels = _levels_for(tbox, bs or (64, 64, 64)) if pyramid else 0
        create_instance(h, uuid, instance, typename, bs, vs, levels)  # type: ignore[arg-type]
        info = instance_info(h, uuid, instance)
        assert info is not None
        say(f"created {typename} instance {instance!r} (block size "
            f"{'x'.join(map(str, info.block_size))})")
    else:
        if create and create != "auto" and info.typename != create:
            raise IngestError(f"instance {instance!r} exists as {info.typename}, not {create}")
        if bs_req and tuple(bs_req) != info.block_size:
            raise IngestError(f"instance {instance!r} has block size {info.block_size}, not "
                              f"{tuple(bs_req)}")
        if scale_from_source and vs and info.voxel_size != vs:
            call_json(h, "POST", f"/api/node/{quote(uuid, safe=':~')}/{quote(instance)}/info",
                      {"VoxelSize": ",".join(repr(v) for v in vs)})
    tdt = np.dtype(info.dtype)
    if not (np.can_cast(src.dtype, tdt, "safe") or src.dtype == np.bool_) and not cast:
        raise IngestError(f"{src.description}: {src.dtype} voxels do not fit {instance!r} "
                          f"({info.typename}, {info.dtype}); use --cast to convert values "
                          "that fit, or ingest into another type")
    ch = parse_ints(chunk, 3, "--chunk") or list(default_chunk(info, tbox))
    if any(c <= 0 or c % b for c, b in zip(ch, info.block_size, strict=True)):
        raise IngestError(f"--chunk {ch} must be positive multiples of the block size "
                          f"{list(info.block_size)} of {instance!r}")
    ptask = parse_ints(pyramid_chunk, 3, "--pyramid-chunk") or ch
    if any(c <= 0 or c % b for c, b in zip(ptask, info.block_size, strict=True)):
        raise IngestError(f"--pyramid-chunk {ptask} must be positive multiples of the block "
                          f"size {list(info.block_size)} of {instance!r}")
    body = {"uuid": uuid, "instance": instance, "source": src.description[:2000],
            "source_key": src.identity() + "+" + ",".join(map(str, off)),
            "dtype": info.dtype, "box": tbox, "chunk": ch, "pyramid": pyramid,
            "restart": restart}
    early = None  # a running cluster is reached before the job is made
    if scheduler not in ("threads", "local", "auto"):
        early = make_runner(scheduler, workers, scheduler_timeout)
    try:
        job = call_json(h, "POST", "/api/ingest", body, retries=2)
    except BaseException as e:
        if early is not None:
            early.close()
        if isinstance(e, ServerRefused):
            raise IngestError(f"the server refused the job: {e}") from None
        raise
    jid = job["id"]
    total = int(job["chunks_total"])
    say(f"ingest job {jid}: {src.description} -> {instance} ({info.typename}) box "
        f"{tbox}, {total} chunks of {'x'.join(map(str, ch))}"
        + (" (resumed)" if job.get("resumed") else ""))
    _OPEN[json.dumps(src.spec(), sort_keys=True)] = src  # the threads runner reuses it
    task = ChunkTask(server, token, uuid, instance, jid, job, src.spec(),
                     (off[0], off[1], off[2]), info, cast, retries=retries)
    runner: ThreadRunner | DaskRunner | None = None
    runner_name = "none"

    def get_runner(upload_bytes: int = 0) -> ThreadRunner | DaskRunner:
        nonlocal runner, runner_name
        if runner is None:
            runner = early or make_runner(scheduler, workers, scheduler_timeout, upload_bytes)
            runner_name = runner.where if isinstance(runner, DaskRunner) else (
                f"{workers} threads")
            if on_runner is not None:
                on_runner(runner)
        return runner

    sent = nbytes = 0
    skipped = total
    upload_s = pyramid_s = 0.0
    changed: list[int] = []
    try:
        if job["state"] not in ("DOWNSAMPLING", "COMPLETE"):
            acks = call_json(h, "GET", f"/api/ingest/{jid}/chunks")
            done = set(acks["chunks"])
            changed = _changed_chunks(task, acks, workers, say)
            if changed:
                names = ", ".join(map(str, changed[:10])) + (" ..." if len(changed) > 10
                                                             else "")
                if not resend_changed:
                    _fail(h, jid, f"source changed under {len(changed)} acknowledged "
                          f"chunk(s) ({names})")
                    raise IngestError(f"the source changed since {len(changed)} chunk(s) "
                                      f"were uploaded (chunks {names}): re-run with "
                                      "--resend-changed to upload them again, or --restart "
                                      "for a new job")
                task.replace = frozenset(changed)
                done -= set(changed)
                say(f"re-sending {len(changed)} chunk(s) whose source changed")
            call_json(h, "POST", f"/api/ingest/{jid}/state", {"state": "UPLOADING"})
            todo = [n for n in range(total) if n not in done]
            skipped = total - len(todo)
            r = get_runner(sum(_box_bytes(chunk_box(job, n), info.dtype) for n in todo))
            t0 = time.monotonic()
            sent, nbytes = _upload(r, task, todo, job, done, progress, h)
            upload_s = time.monotonic() - t0
        final = job
        if job["state"] != "COMPLETE":
            final = call_json(h, "POST", f"/api/ingest/{jid}/state",
                              {"state": "DOWNSAMPLING", "task": ptask})
            if final["state"] == "DOWNSAMPLING":
                t1 = time.monotonic()
                _pyramid(get_runner, task, h, progress)
                pyramid_s = time.monotonic() - t1
                final = call_json(h, "GET", f"/api/ingest/{jid}")
    finally:
        if runner is not None:
            runner.close()
        elif early is not None:
            early.close()
    state = final["state"]
    notes = [e[2] for e in final.get("history") or [] if len(e) > 2]
    note = notes[-1] if notes and state == "COMPLETE" else ""
    if state != "COMPLETE":
        raise IngestError(f"ingest job {jid} is {state}: {final.get('error', '')}")
    return IngestResult(jid, state, total, sent, skipped, nbytes,
                        time.monotonic() - t_start, upload_s, runner_name, note, changed,
                        pyramid_s)


def _pyramid(get_runner: Callable[[], ThreadRunner | DaskRunner], task: ChunkTask, h: Any,
             progress: bool) -> None:
    """Run the pyramid tasks not done yet, a level at a time (the tasks of one level in
    parallel on the runner), with a bar of the levels' blocks. A refused task makes the
    job ``FAILED`` (the same call again resumes); then :class:`IngestError`."""
    from tqdm import tqdm

    jid = task.job
    info = call_json(h, "GET", f"/api/ingest/{jid}/pyramid")
    job = call_json(h, "GET", f"/api/ingest/{jid}")
    p = job.get("pyramid_progress") or {}
    done = {(k, n) for k, n in info["done"]}
    bar = tqdm(total=int(p.get("total", 0)), initial=int(p.get("done", 0)), unit="block",
               desc=f"pyramid {task.instance}", disable=not progress, smoothing=0.1)
    runner = get_runner()
    errors: list[BaseException] = []
    try:
        for level in range(1, int(info["levels"]) + 1):
            todo = [(level, n) for n in range(info["tasks"][level - 1])
                    if (level, n) not in done]
            bar.set_postfix_str(f"level {level}/{info['levels']}")
            for r in runner.run(task, todo, lambda: bool(errors), run_pyramid_task):
                if isinstance(r, BaseException):
                    errors.append(r)
                    continue
                a, b = pyramid_task_box(job["plan"], r[0], r[1])
                bar.update(math.prod(b[i] - a[i] + 1 for i in range(3)))
            if errors:
                e = errors[0]
                msg = str(e) or repr(e)
                if isinstance(e, ServerRefused) and f"{jid} is CANCELLED" in msg:
                    raise IngestError(f"ingest job {jid} was cancelled") from None
                if isinstance(e, ServerRefused):
                    _fail(h, jid, f"pyramid level {level}: {msg}")
                    raise IngestError(f"ingest job {jid} FAILED building pyramid level "
                                      f"{level}: {msg} (run the same command again to "
                                      "resume)") from None
                if isinstance(e, IngestError):
                    raise IngestError(f"{msg} (run the same command again to resume)"
                                      ) from None
                raise e
    finally:
        bar.close()


def _fail(h: Any, jid: str, error: str) -> None:
    try:
        call_json(h, "POST", f"/api/ingest/{jid}/state", {"state": "FAILED", "error": error},
                  retries=1)
    except IngestError:
        pass


def _changed_chunks(task: ChunkTask, acks: dict[str, list[Any]], workers: int,
                    say: Callable[[str], None]) -> list[int]:
    """Acknowledged chunks whose voxels differ now (checked only where the source files'
    fingerprint changed)."""
    src_fp: dict[tuple[int, int], str] = {}
    suspects = []
    from dvidpy.ingest.sources import reopen

    src = reopen(task.source)
    o = task.offset
    for n, crc, fp in zip(acks["chunks"], acks["crc"], acks["fp"], strict=True):
        b = chunk_box(task.geometry, n)
        zz = (b[2] - o[2], b[5] - o[2])
        cur = src_fp.get(zz)
        if cur is None:
            cur = src_fp[zz] = src.fingerprint(*zz)
        if cur != fp:
            suspects.append((n, crc))
    if not suspects:
        return []
    say(f"{len(suspects)} acknowledged chunk(s) have changed files: comparing checksums")

    def differs(item: tuple[int, int]) -> int | None:
        n, crc = item
        _, arr, fp = read_chunk(task, n)
        if checksum(arr) != crc:
            return n
        h = connection(task.server, task.token)  # the same voxels: note the new files
        call_json(h, "POST", f"/api/ingest/{task.job}/chunks/{n}",
                  {"crc": crc, "bytes": int(arr.nbytes), "fp": fp})
        return None

    with ThreadPoolExecutor(max(1, workers)) as ex:
        return sorted(n for n in ex.map(differs, suspects) if n is not None)


def _upload(runner: ThreadRunner | DaskRunner, task: ChunkTask, todo: list[int],
            job: dict[str, Any], done: set[int], progress: bool, h: Any) -> tuple[int, int]:
    """Run ``todo``; ``(chunks sent, bytes sent)``. On a broken source the job is FAILED
    (the file named) once the running chunks have finished; then :class:`IngestError`."""
    from tqdm import tqdm

    total = int(job["chunks_total"])
    done_bytes = sum(_box_bytes(chunk_box(job, n), task.target.dtype) for n in done)
    bar = tqdm(total=int(job["bytes_total"]), initial=done_bytes, unit="B", unit_scale=True,
               unit_divisor=1024, desc=f"ingest {task.instance}", disable=not progress,
               smoothing=0.1)
    bar.set_postfix_str(f"{total - len(todo)}/{total} chunks")
    sent = nbytes = 0
    errors: list[BaseException] = []
    try:
        for r in runner.run(task, todo, lambda: bool(errors)):
            if isinstance(r, BaseException):
                errors.append(r)
                continue
            sent += 1
            nbytes += r[1]
            bar.update(r[1])
            bar.set_postfix_str(f"{total - len(todo) + sent}/{total} chunks")
    finally:
        bar.close()
    if errors:
        e = errors[0]
        msg = str(e) or repr(e)
        if isinstance(e, SourceError):
            _fail(h, task.job, msg)
            raise IngestError(f"ingest job {task.job} FAILED: {msg} ({sent} more chunk(s) "
                              "were acknowledged; fix the source and run the same command "
                              "again to resume)") from None
        if isinstance(e, ServerRefused) and f"{task.job} is CANCELLED" in msg:
            raise IngestError(f"ingest job {task.job} was cancelled") from None
        if isinstance(e, IngestError):
            raise IngestError(f"{msg} (run the same command again to resume)") from None
        raise e
    return sent, nbytes


def _box_bytes(b: list[int], dtype: str) -> int:
    return (b[3] - b[0]) * (b[4] - b[1]) * (b[5] - b[2]) * np.dtype(dtype).itemsize
