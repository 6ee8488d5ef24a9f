"""Ingest jobs on the server: records in the metadata store, states, acknowledgements and
the pyramid step (see :mod:`dvidpy.ingest` for the protocol).

Stored under the metadata prefix:

``ingest/job/{id}``               the job record (JSON), changed only by compare-and-swap,
                                  so servers sharing one metadata store agree on its state
``ingest/ack/{id}/`` + u32be(n)   chunk ``n`` acknowledged: ``{"crc", "bytes", "fp"}``
``ingest/pyr/{id}/`` + u8(level) + u32be(n)
                                  pyramid task ``n`` of ``level`` done: ``{"blocks"}``

The pyramid: asking for ``DOWNSAMPLING`` stores the job's *plan* (the target datatype's
:meth:`~dvidpy.datatype.Datatype.pyramid_plan` over the job's box: levels, and for each
level the range of its blocks above the box, cut into tasks of a chunk's shape of that
level's voxels). The client then runs every task (``POST /api/ingest/{job}/pyramid/{level}/
{n}``, on its threads or Dask workers), a level after the one below it is done; the server
builds the task's blocks with the datatype's
:meth:`~dvidpy.datatype.Datatype.build_pyramid_blocks` and records the task as done, and
the last task makes the job ``COMPLETE``. A task sent twice builds the same blocks again.

Counts (chunks and bytes acknowledged) are not in the record: they are the acknowledgement
keys, counted once per process and then kept up to date by this process's acks (recounted
on every read in a coordinated deployment, where another server may have acked).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dvidpy import jsonio
from dvidpy.errors import BadRequest, Conflict, NotFound
from dvidpy.jobrecords import JOB_ID, new_job_id
from dvidpy.keys import meta_key, u32be
from storage.base import KeyRange

if TYPE_CHECKING:
    from dvidpy.repo import RepoManager

JOB_PREFIX = "ingest/job/"
ACK_PREFIX = "ingest/ack/"
PYR_PREFIX = "ingest/pyr/"
ACTIVE = ("PREPARING", "UPLOADING", "DOWNSAMPLING")
UNFINISHED = (*ACTIVE, "FAILED")
#: most chunks one job may have (a 16 MiB chunk each: 256 TiB)
MAX_CHUNKS = 1 << 24
INT32 = (-(2**31), 2**31 - 1)
#: states a client may ask for, and the states they may be asked from
CLIENT_TRANSITIONS = {
    "UPLOADING": ("PREPARING", "UPLOADING", "FAILED"),
    "DOWNSAMPLING": ("PREPARING", "UPLOADING", "DOWNSAMPLING"),
    "FAILED": ("PREPARING", "UPLOADING", "DOWNSAMPLING", "FAILED"),
}




def _job_key(jid: str) -> bytes:
    return meta_key(JOB_PREFIX + jid)


def _ack_prefix(jid: str) -> bytes:
    return meta_key(f"{ACK_PREFIX}{jid}/")


def _pyr_prefix(jid: str, level: int | None = None) -> bytes:
    pre = meta_key(f"{PYR_PREFIX}{jid}/")
    return pre if level is None else pre + bytes((level,))


def pyramid_task_box(plan: dict[str, Any], level: int, n: int,
                     ) -> tuple[list[int], list[int]]:
    """``(lo, hi)`` block coordinates (inclusive) of pyramid task ``n`` of ``level`` of a
    job's plan: the tasks of a level cut its block range into boxes of ``per`` blocks,
    numbered x fastest."""
    lo, hi = plan["lo"][level - 1], plan["hi"][level - 1]
    per = plan["per"]
    g = [-(-(hi[i] - lo[i] + 1) // per[i]) for i in range(3)]
    ix, iy, iz = n % g[0], (n // g[0]) % g[1], n // (g[0] * g[1])
    a = [lo[0] + ix * per[0], lo[1] + iy * per[1], lo[2] + iz * per[2]]
    return a, [min(a[i] + per[i] - 1, hi[i]) for i in range(3)]


def chunk_grid(box: list[int], chunk: list[int]) -> tuple[list[int], list[int]]:
    """``(origin, grid)``: the first chunk's corner (the box's low corner rounded down to
    the chunk shape) and the number of chunks along x, y, z covering ``box``
    (``x0, y0, z0, x1, y1, z1``, exclusive end)."""
    origin = [(box[i] // chunk[i]) * chunk[i] for i in range(3)]
    grid = [-(-(box[i + 3] - origin[i]) // chunk[i]) for i in range(3)]
    return origin, grid


def chunk_box(rec: dict[str, Any], n: int) -> list[int]:
    """Voxel box (``x0, y0, z0, x1, y1, z1``) of chunk ``n`` of a job record (chunks are
    numbered x fastest, then y, then z), clipped to the job's box."""
    gx, gy, _ = rec["grid"]
    ix, iy, iz = n % gx, (n // gx) % gy, n // (gx * gy)
    c, o, b = rec["chunk"], rec["origin"], rec["box"]
    lo = [o[0] + ix * c[0], o[1] + iy * c[1], o[2] + iz * c[2]]
    return [max(lo[i], b[i]) for i in range(3)] + [min(lo[i] + c[i], b[i + 3])
                                                   for i in range(3)]


def _int_list(v: Any, n: int, what: str, positive: bool = False) -> list[int]:
    if not isinstance(v, list) or len(v) != n or not all(
            isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise BadRequest(f"{what!r} must be a list of {n} integers")
    for x in v:
        if not INT32[0] <= x <= INT32[1]:
            raise BadRequest(f"{what!r} value {x} is outside the int32 voxel range")
        if positive and x < 1:
            raise BadRequest(f"{what!r} values must be positive, got {v}")
    return list(v)


def _str(body: dict[str, Any], key: str, limit: int, required: bool = True) -> str:
    v = body.get(key, "" if not required else None)
    if not isinstance(v, str) or (required and not v):
        raise BadRequest(f"{key!r} (a string) is required")
    if len(v) > limit:
        raise BadRequest(f"{key!r} is longer than {limit} characters")
    return v


class JobStore:
    """Every ingest job of one server (see the module docstring)."""

    def __init__(self, mgr: RepoManager) -> None:
        self.mgr = mgr
        self.engine = mgr.meta_engine
        self.lock = threading.Lock()
        self.counts: dict[str, list[int]] = {}  # id -> [chunks acked, bytes acked]

    # ----- records ---------------------------------------------------------------------

    def get(self, jid: str) -> dict[str, Any]:
        """The record of job ``jid``; 404 when there is none."""
        if not JOB_ID.fullmatch(jid):  # never build a key from an arbitrary string
            raise NotFound(f"no ingest job {jid[:40]!r}: job ids are 16 hex digits")
        raw = self.engine.get(_job_key(jid))
        if raw is None:
            raise NotFound(f"no ingest job {jid!r}")
        return jsonio.loads(raw, f"stored ingest job {jid}")

    def records(self) -> list[dict[str, Any]]:
        """Every job record, oldest first."""
        out = [jsonio.loads(raw, "stored ingest job")
               for _, raw in self.engine.scan(KeyRange.prefix(meta_key(JOB_PREFIX)))]
        return sorted(out, key=lambda r: r["created"])

    def update(self, jid: str, fn: Callable[[dict[str, Any]], dict[str, Any] | None],
               ) -> dict[str, Any]:
        """Apply ``fn`` to the record (which it changes in place or raises) and store it
        by compare-and-swap, retrying when another writer came first."""
        key = _job_key(jid)
        for _ in range(100):
            raw = self.engine.get(key)
            if raw is None:
                raise NotFound(f"no ingest job {jid!r}")
            rec = jsonio.loads(raw, f"stored ingest job {jid}")
            fn(rec)
            rec["updated"] = time.time()
            new = _dumps(rec)
            if self.engine.compare_and_swap(key, raw, new):
                return rec
        raise Conflict(f"ingest job {jid} is changing too often; try again")

    @staticmethod
    def _set_state(rec: dict[str, Any], state: str, note: str = "") -> None:
        if rec["state"] != state:
            rec["state"] = state
            rec["history"].append([state, time.time(), note][: 3 if note else 2])

    def counts_of(self, jid: str) -> list[int]:
        """``[chunks acknowledged, bytes acknowledged]`` of ``jid``."""
        with self.lock:
            c = self.counts.get(jid)
        if c is not None and not self.mgr.coordinated:
            return list(c)
        n = b = 0
        for _, raw in self.engine.scan(KeyRange.prefix(_ack_prefix(jid))):
            n += 1
            b += int(jsonio.loads(raw, "stored ingest ack")["bytes"])
        with self.lock:
            self.counts[jid] = [n, b]
        return [n, b]

    def view(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The record as the API shows it: with counts and pyramid progress."""
        done, nbytes = self.counts_of(rec["id"])
        out = dict(rec)
        out.pop("key", None)
        out["chunks_done"] = done
        out["bytes_done"] = nbytes
        if rec.get("plan"):
            out["pyramid_progress"] = self.pyramid_progress(rec)
        return out

    # ----- creating and resuming -------------------------------------------------------

    def open_job(self, body: dict[str, Any], owner: str | None,
                 check: Callable[[Any, Any], None]) -> tuple[dict[str, Any], bool]:
        """Create the job ``body`` describes, or find the same job (same version,
        instance, source identity, box, chunk shape) and resume it. ``check(repo, node)``
        authorizes the caller on the target. Returns ``(record, resumed)``."""
        if not isinstance(body, dict):
            raise BadRequest("POST /api/ingest expects a JSON object")
        uuid = _str(body, "uuid", 200)
        name = _str(body, "instance", 500)
        source = _str(body, "source", 2000)
        source_key = _str(body, "source_key", 200)
        dtype = _str(body, "dtype", 40)
        box = _int_list(body.get("box"), 6, "box")
        chunk = _int_list(body.get("chunk"), 3, "chunk", positive=True)
        pyramid = body.get("pyramid", True)
        restart = body.get("restart", False)
        if not isinstance(pyramid, bool) or not isinstance(restart, bool):
            raise BadRequest("'pyramid' and 'restart' must be true or false")
        if any(box[i + 3] <= box[i] for i in range(3)):
            raise BadRequest(f"box {box} is empty (x0,y0,z0,x1,y1,z1 with x1 > x0 ...)")
        repo, node = self.mgr.resolve(uuid)
        check(repo, node)
        node = self.mgr.current(repo, node)
        inst = self.mgr.instance(repo, name)
        if not type(inst).serves("POST", "raw"):
            raise BadRequest(f"instance {name!r} ({inst.type_name}) has no POST raw to "
                             "ingest into")
        if inst.meta.versioned and node.locked:
            raise BadRequest(f"version {node.uuid} is locked: ingest into an open version")
        ext = inst.info(None).get("Extended", {})
        values = ext.get("Values") or [{}]
        want = values[0].get("DataType")
        if len(values) != 1 or want != dtype:
            raise BadRequest(f"instance {name!r} holds {len(values)} x {want} values, "
                             f"not {dtype!r}")
        bs = ext.get("BlockSize") or [1, 1, 1]
        if any(c % b for c, b in zip(chunk, bs, strict=True)):
            raise BadRequest(f"chunk {chunk} is not a multiple of the block size {bs} of "
                             f"{name!r}")
        origin, grid = chunk_grid(box, chunk)
        total = grid[0] * grid[1] * grid[2]
        if total > MAX_CHUNKS:
            raise BadRequest(f"{total} chunks is over the limit of {MAX_CHUNKS}; use a "
                             "bigger --chunk")
        key = "|".join([node.uuid, name, source_key, ",".join(map(str, box)),
                        ",".join(map(str, chunk)), dtype])
        with self.lock:
            for rec in reversed(self.records()):
                if rec.get("key") != key or rec["state"] == "CANCELLED":
                    continue
                if not restart:
                    if rec["state"] in ("PREPARING", "UPLOADING", "FAILED"):
                        rec = self.update(rec["id"], lambda r: self._set_state(
                            r, "PREPARING", "resumed"))
                    return rec, True
                if rec["state"] in ACTIVE or rec["state"] == "FAILED":
                    self.update(rec["id"], lambda r: self._set_state(
                        r, "CANCELLED", "restarted"))
            itemsize = _itemsize(dtype)
            now = time.time()
            rec = {
                "id": new_job_id(), "key": key, "state": "PREPARING",
                "source": source, "uuid": node.uuid, "root": repo.root, "instance": name,
                "type": inst.type_name, "dtype": dtype, "box": box, "chunk": chunk,
                "origin": origin, "grid": grid, "chunks_total": total,
                "bytes_total": (box[3] - box[0]) * (box[4] - box[1]) * (box[5] - box[2])
                * itemsize, "pyramid": pyramid, "error": "", "owner": owner,
                "created": now, "updated": now, "history": [["PREPARING", now]],
            }
            self.engine.put(_job_key(rec["id"]), _dumps(rec))
            self.counts[rec["id"]] = [0, 0]
        return rec, False

    # ----- acknowledgements ------------------------------------------------------------

    def acks(self, jid: str) -> dict[str, list[Any]]:
        """The acknowledged chunks: parallel lists ``chunks``, ``crc``, ``bytes``, ``fp``."""
        self.get(jid)
        out: dict[str, list[Any]] = {"chunks": [], "crc": [], "bytes": [], "fp": []}
        pre = _ack_prefix(jid)
        for k, raw in self.engine.scan(KeyRange.prefix(pre)):
            a = jsonio.loads(raw, "stored ingest ack")
            out["chunks"].append(int.from_bytes(k[len(pre):], "big"))
            out["crc"].append(a["crc"])
            out["bytes"].append(a["bytes"])
            out["fp"].append(a["fp"])
        return out

    def ack(self, jid: str, n: int, body: Any) -> dict[str, Any]:
        """Record chunk ``n`` as written. The same checksum again is a no-op; another
        checksum for an acknowledged chunk is refused (400) unless ``replace`` is true."""
        rec = self.get(jid)
        if not isinstance(body, dict):
            raise BadRequest('an acknowledgement is {"crc", "bytes", "fp"}')
        crc, nbytes, fp = body.get("crc"), body.get("bytes"), body.get("fp", "")
        replace = body.get("replace", False)
        if not isinstance(crc, int) or isinstance(crc, bool) or not 0 <= crc < 2**32:
            raise BadRequest("'crc' must be a CRC-32 (0 .. 2**32-1)")
        if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
            raise BadRequest("'bytes' must be a byte count")
        if not isinstance(fp, str) or len(fp) > 200:
            raise BadRequest("'fp' must be a string of at most 200 characters")
        if not isinstance(replace, bool):
            raise BadRequest("'replace' must be true or false")
        if not 0 <= n < rec["chunks_total"]:
            raise BadRequest(f"chunk {n} is outside 0..{rec['chunks_total'] - 1} of job {jid}")
        b = chunk_box(rec, n)
        want = (b[3] - b[0]) * (b[4] - b[1]) * (b[5] - b[2]) * _itemsize(rec["dtype"])
        if nbytes != want:
            raise BadRequest(f"chunk {n} of job {jid} holds {want} bytes, not {nbytes}")
        key = _ack_prefix(jid) + u32be(n)
        ack = _dumps({"crc": crc, "bytes": nbytes, "fp": fp})
        for _ in range(100):  # compare-and-swap: two acks of one new chunk count it once
            old = self.engine.get(key)
            if old is not None:
                prev = jsonio.loads(old, "stored ingest ack")
                if prev["crc"] == crc:
                    if prev.get("fp") != fp:  # the same voxels from touched files
                        self._put_ack(key, crc, nbytes, fp)
                    return {"chunk": n, "new": False, "chunks_done": self.counts_of(jid)[0]}
                if not replace:
                    raise Conflict(f"chunk {n} of job {jid} was acknowledged with checksum "
                                   f"{prev['crc']:08x}, not {crc:08x}: the source changed")
            if rec["state"] not in ("PREPARING", "UPLOADING", "FAILED"):
                raise Conflict(f"ingest job {jid} is {rec['state']}: it takes no more chunks")
            if self.engine.compare_and_swap(key, old, ack):
                break
        else:
            raise Conflict(f"chunk {n} of job {jid} is changing too often; try again")
        with self.lock:
            c = self.counts.get(jid)
            if c is not None and old is None:
                c[0] += 1
                c[1] += nbytes
        if rec.get("plan"):  # new voxels under pyramid tasks done before: build them again
            self.engine.delete_range(KeyRange.prefix(_pyr_prefix(jid)))
        return {"chunk": n, "new": old is None, "chunks_done": self.counts_of(jid)[0]}

    def _put_ack(self, key: bytes, crc: int, nbytes: int, fp: str) -> None:
        self.engine.put(key, _dumps({"crc": crc, "bytes": nbytes, "fp": fp}))

    # ----- states ----------------------------------------------------------------------

    def request_state(self, jid: str, body: Any) -> dict[str, Any]:
        """A client's state change (see :data:`CLIENT_TRANSITIONS`). ``DOWNSAMPLING`` takes
        ``"task": [x, y, z]``, the voxels of a level each pyramid task builds (whole
        blocks; default the chunk shape; used when the plan is made, the first time)."""
        if not isinstance(body, dict) or not isinstance(body.get("state"), str):
            raise BadRequest('expected {"state": "UPLOADING"|"DOWNSAMPLING"|"FAILED", '
                             '"error": ...}')
        state = body["state"]
        if state not in CLIENT_TRANSITIONS:
            raise BadRequest(f"state {state!r} can't be asked for; one of "
                             f"{', '.join(CLIENT_TRANSITIONS)}")
        error = body.get("error", "")
        if not isinstance(error, str) or len(error) > 4000:
            raise BadRequest("'error' must be a string of at most 4000 characters")
        if state == "FAILED" and not error:
            raise BadRequest("a FAILED job needs an 'error' saying why")
        plan = None
        if state == "DOWNSAMPLING":
            rec = self.get(jid)
            done = self.counts_of(jid)[0]
            if done < rec["chunks_total"] and rec["state"] != "DOWNSAMPLING":
                raise Conflict(f"ingest job {jid} has {done} of {rec['chunks_total']} chunks "
                               "acknowledged: upload the rest first")
            task = body.get("task", rec["chunk"])
            task = _int_list(task, 3, "task", positive=True)
            if rec["state"] in CLIENT_TRANSITIONS[state]:
                plan = rec.get("plan") or self._plan(rec, task)

        def change(rec: dict[str, Any]) -> None:
            if rec["state"] not in CLIENT_TRANSITIONS[state]:
                raise Conflict(f"ingest job {jid} is {rec['state']}: it can't become {state}")
            self._set_state(rec, state, error[:200])
            if state == "FAILED":
                rec["error"] = error
            elif state == "UPLOADING":
                rec["error"] = ""
            elif state == "DOWNSAMPLING":
                rec["error"] = ""
                rec.setdefault("plan", plan)
                if not rec["plan"]["levels"]:  # nothing to build
                    self._set_state(rec, "COMPLETE", rec["plan"]["note"])

        return self.update(jid, change)

    # ----- the pyramid -----------------------------------------------------------------

    def _target(self, rec: dict[str, Any]) -> tuple[Any, Any]:
        """``(instance, context)`` of a job's target, as its owner."""
        repo, node = self.mgr.resolve(rec["uuid"])
        inst = self.mgr.instance(repo, rec["instance"])
        return inst, self.mgr.context(inst, node, rec.get("owner") or "", "ingest")

    def _plan(self, rec: dict[str, Any], task: list[int]) -> dict[str, Any]:
        """The pyramid plan of a job with tasks of ``task`` voxels of a level (whole
        blocks; see the module docstring); the target's datatype makes its level
        instances once the task shape is known good."""
        if not rec["pyramid"]:
            return {"levels": 0, "note": "no pyramid asked for"}
        inst, ctx = self._target(rec)
        p = inst.pyramid_plan(ctx, rec["box"])
        if not p.levels:
            return {"levels": 0, "note": p.note}
        if any(t % b for t, b in zip(task, p.block_size, strict=True)):
            raise BadRequest(f"pyramid task {task} is not a multiple of the block size "
                             f"{list(p.block_size)} of {rec['instance']!r}")
        inst.prepare_pyramid(ctx, p)  # only once the request is known good
        per = [t // b for t, b in zip(task, p.block_size, strict=True)]
        lo, hi, tasks, blocks = [], [], [], []
        for k in range(1, p.levels + 1):
            a, b = p.block_range(rec["box"], k)
            n = [b[i] - a[i] + 1 for i in range(3)]
            lo.append(list(a))
            hi.append(list(b))
            blocks.append(n[0] * n[1] * n[2])
            tasks.append(math.prod(-(-n[i] // per[i]) for i in range(3)))
        return {"levels": p.levels, "factors": list(p.factors), "block": list(p.block_size),
                "per": per, "lo": lo, "hi": hi, "tasks": tasks, "blocks": blocks,
                "note": p.note}

    def _tasks_done(self, jid: str) -> dict[int, dict[int, int]]:
        """``{level: {task: blocks written}}`` of the done pyramid tasks of ``jid``."""
        pre = _pyr_prefix(jid)
        out: dict[int, dict[int, int]] = {}
        for k, raw in self.engine.scan(KeyRange.prefix(pre)):
            level, n = k[len(pre)], int.from_bytes(k[len(pre) + 1:], "big")
            out.setdefault(level, {})[n] = int(jsonio.loads(raw, "stored pyramid task")
                                               ["blocks"])
        return out

    def pyramid_progress(self, rec: dict[str, Any],
                         done: dict[int, dict[int, int]] | None = None) -> dict[str, Any]:
        """``{"level"`` (the first level not done), ``"levels"``, ``"done"``, ``"total"``
        (blocks of the levels' ranges above the box: of done tasks, of all),
        ``"tasks_done"``, ``"tasks_total"``, ``"written"`` (blocks stored)``}``."""
        plan = rec["plan"]
        done = self._tasks_done(rec["id"]) if done is None else done
        levels = int(plan["levels"])
        if not levels:
            return {"level": 0, "levels": 0, "done": 0, "total": 0, "tasks_done": 0,
                    "tasks_total": 0, "written": 0}
        level = next((k for k in range(1, levels + 1)
                      if len(done.get(k, ())) < plan["tasks"][k - 1]), levels)
        nblocks = 0
        for k, tasks in done.items():
            for n in tasks:
                a, b = pyramid_task_box(plan, k, n)
                nblocks += math.prod(b[i] - a[i] + 1 for i in range(3))
        return {"level": level, "levels": levels, "done": nblocks,
                "total": int(sum(plan["blocks"])),
                "tasks_done": sum(len(t) for t in done.values()),
                "tasks_total": int(sum(plan["tasks"])),
                "written": sum(sum(t.values()) for t in done.values())}

    def pyramid_tasks(self, jid: str) -> dict[str, Any]:
        """The plan's task counts and the tasks done: ``{"levels", "tasks": [count per
        level], "done": [[level, task], ...]}`` (``levels`` 0 before ``DOWNSAMPLING``)."""
        rec = self.get(jid)
        plan = rec.get("plan") or {"levels": 0}
        done = self._tasks_done(jid)
        return {"levels": plan["levels"], "tasks": plan.get("tasks", []),
                "done": [[k, n] for k in sorted(done) for n in sorted(done[k])]}

    def run_task(self, jid: str, level: int, n: int) -> dict[str, Any]:
        """Build pyramid task ``n`` of ``level`` of a ``DOWNSAMPLING`` job and record it
        done (409 while a level below has tasks not done); the last task makes the job
        ``COMPLETE``. Answers ``{"level", "task", "blocks" (written), "new",
        "tasks_done", "tasks_total"}``."""
        rec = self.get(jid)
        if rec["state"] != "DOWNSAMPLING":
            raise Conflict(f"ingest job {jid} is {rec['state']}: it builds no pyramid now")
        plan = rec.get("plan") or {"levels": 0}
        if not 1 <= level <= plan["levels"]:
            raise BadRequest(f"ingest job {jid} has pyramid levels 1..{plan['levels']}, "
                             f"not {level}")
        if not 0 <= n < plan["tasks"][level - 1]:
            raise BadRequest(f"level {level} of ingest job {jid} has tasks 0.."
                             f"{plan['tasks'][level - 1] - 1}, not {n}")
        if level > 1:
            below = sum(1 for _ in self.engine.scan(
                KeyRange.prefix(_pyr_prefix(jid, level - 1)), keys_only=True))
            if below < plan["tasks"][level - 2]:
                raise Conflict(f"level {level - 1} of ingest job {jid} has {below} of "
                               f"{plan['tasks'][level - 2]} tasks done: build it first")
        inst, ctx = self._target(rec)
        lo, hi = pyramid_task_box(plan, level, n)
        written = inst.build_pyramid_blocks(ctx, level, lo, hi)
        key = _pyr_prefix(jid, level) + u32be(n)
        new = self.engine.get(key) is None
        self.engine.put(key, _dumps({"blocks": written}))
        done = self._tasks_done(jid)
        prog = self.pyramid_progress(rec, done)
        if prog["tasks_done"] == prog["tasks_total"]:
            note = (f"{rec['instance']}_1 .. _{plan['levels']}: {prog['written']} blocks in "
                    f"{prog['tasks_total']} tasks")
            self.update(jid, lambda r: self._finish(r, "COMPLETE", "", note))
        return {"level": level, "task": n, "blocks": written, "new": new,
                "tasks_done": prog["tasks_done"], "tasks_total": prog["tasks_total"]}

    def cancel(self, jid: str) -> tuple[dict[str, Any] | None, str]:
        """Cancel an unfinished job (``FAILED`` included), or forget a ``COMPLETE`` or
        ``CANCELLED`` one (its record and acknowledgements; the voxels stay written).
        Returns ``(record or None when forgotten, message)``."""
        rec = self.get(jid)
        if rec["state"] in UNFINISHED:
            def change(r: dict[str, Any]) -> None:
                if r["state"] in UNFINISHED:
                    self._set_state(r, "CANCELLED")

            return self.update(jid, change), f"ingest job {jid} cancelled"
        self.engine.delete_range(KeyRange.prefix(_ack_prefix(jid)))
        self.engine.delete_range(KeyRange.prefix(_pyr_prefix(jid)))
        self.engine.delete(_job_key(jid))
        with self.lock:
            self.counts.pop(jid, None)
        return None, f"ingest job {jid} ({rec['state']}) forgotten"

    def _finish(self, rec: dict[str, Any], state: str, error: str, note: str) -> None:
        if rec["state"] != "DOWNSAMPLING":  # cancelled meanwhile: leave it so
            return
        self._set_state(rec, state, note)
        rec["error"] = error


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _itemsize(dtype: str) -> int:
    sizes = {"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4,
             "float32": 4, "uint64": 8, "int64": 8, "float64": 8}
    if dtype not in sizes:
        raise BadRequest(f"unknown voxel type {dtype!r}")
    return sizes[dtype]
