"""What the server benchmarks share: real ``dvidpy serve`` processes on loopback, the load
average, and a load generator that is not the bottleneck.

The load generator is ``wrk`` (Debian's package: one C thread, keep-alive connections,
requests from a path list through a small Lua script) when installed, else
:func:`asyncio_rps`, a raw-socket asyncio client (no HTTP library). Both count only 200
answers and raise on anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load() -> str:
    """The 1/5/15-minute load averages, as ``load 3.1/2.9/2.5``."""
    a, b, c = os.getloadavg()
    return f"load {a:.1f}/{b:.1f}/{c:.1f}"


def http(url: str, method: str = "GET", body: bytes | None = None,
         timeout: float = 600) -> bytes:
    req = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None,
              timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None else ""
            raise RuntimeError(f"server exited: {tail}")
        try:
            http(url, timeout=2)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


@contextlib.contextmanager
def dvidpy_server(args: Sequence[str], log: Path, port: int = 0,
                  python_args: Sequence[str] = ("-m", "dvidpy.cli")) -> Iterator[str]:
    """A ``dvidpy serve`` process (``python -m dvidpy.cli serve --port P --quiet ARGS``);
    yields its URL; SIGTERM (then SIGKILL) on exit."""
    port = port or free_port()
    with open(log, "ab") as lf:
        p = subprocess.Popen([sys.executable, *python_args, "serve", "--host", "127.0.0.1",
                              "--port", str(port), "--quiet", *args], cwd=ROOT, stdout=lf,
                             stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/api/heartbeat", p, log)
            yield url
        finally:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A ``dvidpy serve --data DATA --quiet`` process on a free loopback port, its output
    discarded, once it answers ``/api/heartbeat``; returns it and its URL (the caller
    terminates it). Raises ``RuntimeError`` if it exits or does not answer in 30 s."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvidpy.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data", str(data), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/api/heartbeat", proc, timeout=30)
    except RuntimeError:
        proc.kill()
        proc.wait()
        raise
    return proc, url


# ----- load generators ------------------------------------------------------------------------


def wrk_rps(url: str, paths: Sequence[str], conns: int, seconds: float,
            threads: int = 1) -> float:
    """Requests/s of ``wrk`` with ``conns`` keep-alive connections cycling through
    ``paths`` (falls back to :func:`asyncio_rps` without wrk). Raises on any non-200."""
    exe = shutil.which("wrk")
    if exe is None:
        return asyncio_rps(url, paths, conns, seconds)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("local paths = {\n")
        for p in paths:
            f.write(f"  {p!r},\n".replace("'", '"'))
        f.write("}\nlocal i = 0\n"
                "request = function()\n  i = i + 1\n"
                "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")
        script = f.name
    try:
        out = subprocess.run([exe, "-t", str(threads), "-c", str(conns), "-d",
                              f"{seconds:.0f}s", "-s", script, url], capture_output=True,
                             text=True, timeout=seconds + 60, check=True).stdout
    finally:
        os.unlink(script)
    if "Non-2xx" in out or re.search(r"Socket errors: connect [1-9]|read [1-9]|write [1-9]",
                                     out):
        raise RuntimeError(f"wrk saw failures:\n{out}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(m.group(1))


async def read_200(r: asyncio.StreamReader) -> None:
    """Reads one HTTP/1.1 answer with a Content-Length body from ``r``, discarding it;
    raises ``RuntimeError`` (with the head) unless its status is 200."""
    head = await r.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))
    j = head.lower().index(b"content-length:")
    await r.readexactly(int(head[j + 15:head.index(b"\r\n", j)]))


async def _client(host: str, port: int, paths: Sequence[bytes], stop: float, i: int,
                  counts: list[int]) -> None:
    r, w = await asyncio.open_connection(host, port)
    k = i
    try:
        while time.perf_counter() < stop:
            w.write(b"GET " + paths[k % len(paths)] + b" HTTP/1.1\r\nHost: b\r\n\r\n")
            k += 7
            await read_200(r)
            counts[i] += 1
    finally:
        w.close()


def asyncio_rps(url: str, paths: Sequence[str], conns: int, seconds: float) -> float:
    """Requests/s of ``conns`` raw-socket keep-alive clients in one asyncio loop."""
    host, port = url.split("//")[1].split(":")
    bpaths = [p.encode() for p in paths]
    counts = [0] * conns

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(*(_client(host, int(port), bpaths, t0 + seconds, i, counts)
                               for i in range(conns)))
        return time.perf_counter() - t0

    dt = asyncio.run(run())
    return sum(counts) / dt


def loadgen_name() -> str:
    return "wrk -t1" if shutil.which("wrk") else "asyncio raw-socket client"
