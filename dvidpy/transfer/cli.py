"""``dvidpy push`` / ``dvidpy pull``: start a transfer job on a server and watch it.

``push SRC UUID DST`` asks SRC (``POST /api/transfer/push``) to send to DST; ``pull``
asks DST (``POST /api/transfer/pull``) to fetch from SRC. Both poll
``GET /api/transfer/{id}`` and draw a tqdm bar (records with ETA when the total is known,
bytes and rate). Exit status 0 on success, 1 when the job failed or a server refused. A
transfer that moved nothing says why and what to do (the job's ``note``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from dvidpy.transfer.client import Http, TransferError


def run_cli(args: argparse.Namespace) -> int:
    """Run ``dvidpy push|pull`` from parsed arguments."""
    body: dict[str, Any] = {"uuid": args.uuid, "flatten": args.flatten, "roi": args.roi,
                            "data": [d for d in (args.data or "").split(",") if d] or None}
    if args.command == "push":
        if args.from_dvid:
            print("dvidpy: --from-dvid only applies to pull", file=sys.stderr)
            return 2
        server, body["dst"] = args.src, args.dst
    else:
        server, body["src"], body["from_dvid"] = args.dst, args.src, args.from_dvid
    try:
        h = Http(server, token=args.token or os.environ.get("DVIDPY_TOKEN", ""))
        job = h.json("POST", f"/api/transfer/{args.command}", body)["id"]
        st = _watch(h, job, not args.no_progress)
    except TransferError as e:
        print(f"dvidpy {args.command}: {e.message}", file=sys.stderr)
        return 1
    if st["state"] != "done":
        print(f"dvidpy {args.command}: failed: {st['error']}", file=sys.stderr)
        return 1
    mb = st["bytes"] / 1e6
    secs = max(st.get("seconds", 0.0), 1e-9)
    print(f"{args.command} done: {st['records']} records, {mb:.1f} MB in {secs:.1f} s "
          f"({mb / secs:.1f} MB/s), {len(st.get('versions') or [])} new version(s)")
    if st.get("note"):
        print(st["note"])
    return 0


def _watch(h: Http, job: str, bar: bool) -> dict[str, Any]:
    pbar = None
    if bar:
        from tqdm import tqdm

        pbar = tqdm(unit="rec", dynamic_ncols=True, file=sys.stderr)
    try:
        while True:
            st = h.json("GET", f"/api/transfer/{job}")
            if pbar is not None:
                if st.get("records_total") is not None and pbar.total != st["records_total"]:
                    pbar.total = st["records_total"]
                pbar.n = st.get("records", 0)
                secs = max(st.get("elapsed", 0.0), 1e-9)
                pbar.set_postfix_str(f"{st.get('bytes', 0) / 1e6:.1f} MB, "
                                     f"{st.get('bytes', 0) / 1e6 / secs:.1f} MB/s")
                pbar.refresh()
            if st["state"] != "running":
                return st
            time.sleep(0.3)
    finally:
        if pbar is not None:
            pbar.close()
