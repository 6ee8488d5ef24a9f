"""Command line: ``dvidpy serve`` and friends.

``dvidpy serve``                      serve 127.0.0.1:8000 with the data in ./dvid-data (LMDB
                                      for a new folder; a LevelDB folder stays LevelDB), one
                                      process per core over an LMDB folder
``dvidpy serve --workers 1``          one process (``--workers N``: N processes)
``dvidpy serve --config dvid.toml``   serve with a DVID-style TOML configuration
``dvidpy serve --memory``             everything in memory (throwaway)
``dvidpy serve --config dvid.toml --workers 4``   4 processes over shared stores (lmdb,
                                      postgres, ... with shared = true)
``dvidpy push SRC UUID DST``          copy a repo from server SRC to server DST (run by SRC)
``dvidpy pull SRC UUID DST``          the same, run by DST (``--from-dvid``: any DVID)
``dvidpy ingest SRC SERVER UUID NAME``  load slices or a volume as a resumable job
``dvidpy token create --user U``      an API token (``list``, ``revoke``; auth on)
``dvidpy --version``
``dvidpy downsample URL UUID NAME``   build a uint8blk pyramid on a server
``dvidpy diff URL UUID FROM TO``      what changed between two versions of a repo

Every command runs on the base install (HTTP through the standard library).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from dvidpy import __version__
from dvidpy.config import ConfigError, Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from dvidpy.malloc import tune_allocator
    from server import create_app

    tune_allocator()  # block-sized buffers from the heap, not fresh mmaps (see the module)

    def load(shared: bool = False) -> Settings:
        if args.config:
            s = Settings.from_toml(args.config)
        elif args.memory:
            s = Settings.memory()
        else:
            s = Settings.default(args.data, args.engine, shared=shared)
        if args.host:
            s.host = args.host
        if args.port is not None:
            s.port = args.port
        return s

    try:
        settings = load()
        if args.workers is None:
            args.workers = auto_workers(args, settings)
        if not (args.config or args.memory) and (args.workers != 1 or args.reuse_port):
            settings = load(shared=True)  # one of several workers, or their supervisor
    except ConfigError as e:
        print(f"dvidpy: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.workers != 1:
        return _serve_workers(args, settings)
    try:
        app = create_app(settings)
    except Exception as e:  # engines that cannot open: say why instead of a traceback
        print(f"dvidpy: cannot open storage: {e}", file=sys.stderr)
        return 2
    from dvidpy.banner import startup_banner
    from dvidpy.http.protocol import protocol_class

    proto = protocol_class(settings.header_timeout, app.dispatcher.answer_now)
    if args.reuse_port:  # one of --workers N (the supervisor printed the startup block)
        config = uvicorn.Config(app, access_log=False, log_level="warning",
                                timeout_keep_alive=30,
                                http=proto)
        uvicorn.Server(config).run(sockets=[_reuse_port_socket(settings.host, settings.port)])
        return 0
    print(startup_banner(settings), flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False,
                log_level="warning", timeout_keep_alive=30,
                http=proto)
    return 0


def auto_workers(args: argparse.Namespace, settings: Settings) -> int:
    """The number of server processes when ``--workers`` is not given: one per core this
    process may run on (at most 8) for the embedded default over an LMDB folder (a new
    folder is LMDB), which every process opens at once; 1 for a LevelDB folder (one
    process at a time), ``--memory``, a ``--config`` (shared stores are declared there;
    say ``--workers N``), port 0 (the processes must agree on a port), or one core."""
    import os

    if args.config or args.memory or args.reuse_port or not settings.port:
        return 1
    if settings.stores["default"].engine != "lmdb":
        return 1
    return max(1, min(8, len(os.sched_getaffinity(0))))


def _port_free(host: str, port: int) -> str:
    """'' when nothing listens on ``host:port``, else why it cannot be used. (Every
    worker binds with ``SO_REUSEPORT``, which would let a second server's workers join
    the first's and share its connections: a supervisor checks the port first.)"""
    import socket

    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                          socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        probe.bind((host, port))
        return ""
    except OSError as e:
        return f"cannot listen on {host}:{port}: {e.strerror or e}"
    finally:
        probe.close()


def _die_with_parent() -> None:
    """In a worker (before exec): SIGKILL when the supervisor dies, however it dies, so
    no worker outlives it (a SIGKILLed supervisor would leave workers serving the port)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _serve_workers(args: argparse.Namespace, settings: Settings) -> int:
    """``--workers N``: N ``dvidpy serve`` processes on one port (``SO_REUSEPORT``: the
    kernel spreads connections over them), each opening the stores itself, kept running by
    this supervisor (a worker that dies is restarted; SIGTERM/SIGINT stop them all). Every
    store must be shared (an engine that several processes may open at once: lmdb on this
    machine, postgres, gcs, s3): a LevelDB, RocksDB or memory store, or a TOML store
    without ``shared = true``, is refused before anything starts, and so is a
    configuration that does not open (checked once in this process). Without ``--config``
    the data folder must be LMDB's (a new folder is), and the workers share it. Jobs'
    state (downres, transfers, ingest) lives in the metadata store, so every worker
    answers for every job (:mod:`dvidpy.jobrecords`); a worker dies with the supervisor.

    Not uvicorn's own ``--workers``: its workers accept on a socket inherited without its
    protocol number, so asyncio's own event loop never sets ``TCP_NODELAY`` and every
    keep-alive response waits ~40 ms for a delayed ACK (measured: 23 requests/s per
    connection; uvloop happens not to have the problem). Each worker here is an ordinary
    ``dvidpy serve`` (the same protocol, settings and startup checks as one process).
    """
    import signal
    import subprocess
    import time

    from dvidpy.repo import RepoManager
    from storage import EngineUnavailable, engine_class

    if args.workers < 1:
        print("dvidpy: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.memory:
        print("dvidpy: --workers cannot share --memory (each process would hold its own "
              "data); use the default LMDB folder or a --config with shared stores",
              file=sys.stderr)
        return 2
    if not settings.port:
        print("dvidpy: --workers needs a fixed --port", file=sys.stderr)
        return 2
    for alias, spec in settings.stores.items():
        try:
            cls = engine_class(spec.engine)
        except EngineUnavailable as e:  # a missing extra: its install command, no traceback
            print(f"dvidpy: cannot open storage: {e}", file=sys.stderr)
            return 2
        if not (spec.is_shared() and cls.shareable):
            why = ("serves one process at a time" if not cls.shareable
                   else "is not configured 'shared = true'")
            if not args.config:
                print(f"dvidpy: --workers {args.workers}: {spec.location} is a "
                      f"{spec.engine} folder, which {why}; run one worker, or copy the data "
                      f"into a new folder (LMDB, the default for new folders) with dvidpy "
                      f"push", file=sys.stderr)
                return 2
            print(f"dvidpy: --workers {args.workers} needs every store shared by all "
                  f"workers; store {alias!r} ({spec.engine}) {why}. Use lmdb or postgres "
                  f"(or gcs/s3) with shared = true, or run one worker.", file=sys.stderr)
            return 2
    busy = _port_free(settings.host, settings.port)
    if busy:
        print(f"dvidpy: {busy}", file=sys.stderr)
        return 2
    try:
        RepoManager(settings).close()
    except Exception as e:
        print(f"dvidpy: cannot open storage: {e}", file=sys.stderr)
        return 2
    where = ["--config", args.config] if args.config else \
        ["--data", settings.stores["default"].location, "--engine",
         settings.stores["default"].engine]
    cmd = [sys.executable, "-m", "dvidpy.cli", "serve", *where,
           "--host", settings.host, "--port", str(settings.port), "--reuse-port"]
    if args.quiet:
        cmd.append("--quiet")
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from dvidpy.banner import startup_banner

    print(f"{startup_banner(settings)}\n  workers {args.workers} processes on one port "
          "(SO_REUSEPORT)", flush=True)
    procs = [subprocess.Popen(cmd, preexec_fn=_die_with_parent) for _ in range(args.workers)]
    log = logging.getLogger("dvidpy.workers")
    while not stopping:
        time.sleep(0.2)
        for i, p in enumerate(procs):
            if p.poll() is not None and not stopping:
                log.warning("worker pid %d exited with %s; starting another", p.pid,
                            p.returncode)
                procs[i] = subprocess.Popen(cmd, preexec_fn=_die_with_parent)
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    return 0


def _reuse_port_socket(host: str, port: int) -> Any:
    """A listening TCP socket with ``SO_REUSEPORT``, made with ``IPPROTO_TCP`` so that
    asyncio sets ``TCP_NODELAY`` on the connections it accepts."""
    import socket

    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                      socket.SOCK_STREAM, socket.IPPROTO_TCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    s.listen(2048)
    s.set_inheritable(False)
    return s


def _transfer(args: argparse.Namespace) -> int:
    from dvidpy.transfer.cli import run_cli

    return run_cli(args)


def _downsample(args: argparse.Namespace) -> int:
    """Build a uint8blk pyramid on a running server (``POST downres``), with progress.

    Standard library HTTP only (:class:`~dvidpy.transfer.client.Http`), so it runs on
    the base install."""
    import os
    import time
    from urllib.parse import quote, urlencode

    from tqdm import tqdm

    from dvidpy.transfer.client import Http, TransferError

    params: dict[str, str] = {}
    if args.bbox:
        params["bbox"] = args.bbox
    if args.levels:
        params["levels"] = str(args.levels)
    if args.full:
        params["full"] = "true"
    path = f"/api/node/{quote(args.uuid, safe=':~')}/{quote(args.name, safe='')}"
    query = f"?{urlencode(params)}" if params else ""
    try:
        h = Http(args.server.rstrip("/"), timeout=600,
                 token=args.token or os.environ.get("DVIDPY_TOKEN", ""))
        h.json("POST", f"{path}/downres{query}")
        bar = tqdm(total=0, unit="block", desc=f"downres {args.name}", disable=args.quiet)
        try:
            while True:
                st = h.json("GET", f"{path}/downres-status")
                bar.total = st.get("BlocksTotal", 0)
                bar.n = st.get("BlocksDone", 0)
                bar.set_postfix(level=f"{st.get('Level', 0)}/{st.get('Levels', 0)}")
                bar.refresh()
                if st.get("State") != "running":
                    break
                time.sleep(args.poll)
        finally:
            bar.close()
            h.close()
    except TransferError as e:
        print(f"dvidpy downsample: {e.message}", file=sys.stderr)
        return 1
    if st.get("State") == "error":
        print(f"dvidpy downsample: failed: {st.get('Error')}", file=sys.stderr)
        return 1
    print(f"built {st.get('Levels')} level(s), {st.get('BlocksDone')} block(s)")
    return 0


def _diff(args: argparse.Namespace) -> int:
    """Print what changed between two versions (``GET /api/repo/{uuid}/diff/...``), with
    the standard-library client of :mod:`dvidpy.transfer.client` (base install)."""
    import json
    import os
    from urllib.parse import quote, urlencode

    from dvidpy.transfer.client import Http, TransferError

    q = lambda v: quote(v, safe=":~")  # noqa: E731
    path = f"/api/repo/{q(args.uuid)}/diff/{q(args.frm)}/{q(args.to)}"
    if args.data:
        path += "?" + urlencode({"data": args.data})
    try:
        h = Http(args.server.rstrip("/"), timeout=600,
                 token=args.token or os.environ.get("DVIDPY_TOKEN", ""))
        try:
            d = h.json("GET", path)
        finally:
            h.close()
    except TransferError as e:
        print(f"dvidpy diff: {e.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(d))
        return 0
    print(f"diff {d['from']} -> {d['to']}")
    for name, inst in d["instances"].items():
        a, c, x = inst["added"], inst["changed"], inst["deleted"]
        print(f"{name}: {len(a)} added, {len(c)} changed, {len(x)} deleted"
              + (f", {len(inst['conflicts'])} conflicting" if inst.get("conflicts") else ""))
        for mark, keys in (("+", a), ("~", c), ("-", x)):
            for k in keys[:args.limit]:
                print(f"  {mark} {json.dumps(k)}")
            if len(keys) > args.limit:
                print(f"  {mark} ... {len(keys) - args.limit} more")
        if "summary" in inst:
            print(f"  summary: {json.dumps(inst['summary'])[:2000]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="dvidpy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"dvidpy {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP server")
    s.add_argument("--config", help="TOML configuration file (DVID's shape)")
    s.add_argument("--data", default="dvid-data",
                   help="data folder when no config is given (default ./dvid-data)")
    s.add_argument("--engine", choices=("lmdb", "leveldb"), default="",
                   help="engine of a new --data folder (default lmdb; an existing folder "
                   "keeps the engine whose data it holds)")
    s.add_argument("--memory", action="store_true", help="keep everything in memory")
    s.add_argument("--host", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default 8000)")
    s.add_argument("--quiet", action="store_true", help="no per-request log lines")
    s.add_argument("--workers", type=int, default=None,
                   help="server processes (default: one per core, up to 8, over an LMDB "
                   "--data folder; otherwise 1); more than one needs every store shared: "
                   "the default LMDB folder is, a --config needs e.g. lmdb or postgres "
                   "stores with shared = true")
    s.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(func=_serve)
    for cmd, who in (("push", "the source server sends"), ("pull", "the receiving server fetches")):
        t = sub.add_parser(cmd, help=f"copy a repo between servers ({who})")
        t.add_argument("src", metavar="SRC_URL", help="sending server, e.g. http://host:8000")
        t.add_argument("uuid", metavar="UUID", help="a version of the repo (prefix ok)")
        t.add_argument("dst", metavar="DST_URL", help="receiving server")
        t.add_argument("--flatten", action="store_true",
                       help="send only UUID's view as a new single-version repo")
        t.add_argument("--data", help="only these instances (comma-separated)")
        t.add_argument("--roi", help="spatial data only inside this roi instance")
        t.add_argument("--from-dvid", action="store_true",
                       help="(pull) read SRC through DVID's public HTTP API")
        t.add_argument("--no-progress", action="store_true", help="no progress bar")
        t.add_argument("--token", help="credential for the server running the job (default: "
                       "$DVIDPY_TOKEN); peers' credentials are in its [transfer.peerTokens]")
        t.set_defaults(func=_transfer, command=cmd)
    d = sub.add_parser("downsample", help="build a uint8blk 2x/4x/... pyramid on a server")
    d.add_argument("server", help="server address, e.g. http://127.0.0.1:8000")
    d.add_argument("uuid", help="version UUID (prefix or :branch)")
    d.add_argument("name", help="uint8blk instance; levels go to NAME_1, NAME_2, ...")
    d.add_argument("--bbox", help="x0,y0,z0,x1,y1,z1 voxel box (exclusive end); default: "
                   "blocks written since the last downsample")
    d.add_argument("--levels", type=int, help="number of levels (default: to one block)")
    d.add_argument("--full", action="store_true", help="recompute from every stored block")
    d.add_argument("--poll", type=float, default=0.2, help="status poll interval (s)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.add_argument("--token", help="credential (default: $DVIDPY_TOKEN)")
    d.set_defaults(func=_downsample)
    f = sub.add_parser("diff", help="what changed between two versions of a repo")
    f.add_argument("server", help="server address, e.g. http://127.0.0.1:8000")
    f.add_argument("uuid", help="any version of the repo")
    f.add_argument("frm", metavar="FROM", help="the older version (UUID, prefix or :branch)")
    f.add_argument("to", metavar="TO", help="the newer version")
    f.add_argument("--data", help="only these instances (comma-separated)")
    f.add_argument("--json", action="store_true", help="print the server's JSON as is")
    f.add_argument("--limit", type=int, default=20, help="keys shown per list (default 20)")
    f.add_argument("--token", default="", help="API token (default: $DVIDPY_TOKEN)")
    f.set_defaults(func=_diff)
    from dvidpy.auth.cli import add_parser as add_token_parser
    from dvidpy.ingest.cli import add_parser as add_ingest_parser

    add_ingest_parser(sub)
    add_token_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dvidpy`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
