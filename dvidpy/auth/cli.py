"""``dvidpy token create|list|revoke``: API tokens, on a running server or offline.

With ``--server URL`` the command asks the server (``/api/server/tokens``), authenticated
by ``DVID_ADMIN_TOKEN`` (sent as ``admintoken=``) or by ``--token`` / ``DVIDPY_TOKEN``
(``Authorization: Bearer``). With ``--config dvid.toml`` it opens the metadata store
directly, for a server that is not running (LevelDB and RocksDB allow one process).
Standard library only, so it runs on the base install.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(s: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600`` -> seconds; ValueError otherwise."""
    m = _DURATION.match(s.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"bad duration {s!r} (e.g. 30d, 12h, 90m, 3600)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _http(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    base = args.server.rstrip("/")
    if "://" not in base:
        base = "http://" + base
    url = base + path
    headers = {"Content-Type": "application/json"}
    token = args.token or os.environ.get("DVIDPY_TOKEN", "")
    admintoken = os.environ.get("DVID_ADMIN_TOKEN", "")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif admintoken:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"admintoken": admintoken})
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:  # the server the user named
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit(
            f"dvidpy token: {e.code} {e.read().decode(errors='replace').strip()}") from None
    except OSError as e:
        raise SystemExit(f"dvidpy token: cannot reach {base}: {e}") from None


def _offline(args: argparse.Namespace) -> Any:
    from dvidpy.auth.stores import TokenStore
    from dvidpy.config import ConfigError, Settings
    from storage import open_engine

    try:
        settings = Settings.from_toml(args.config)
    except ConfigError as e:
        raise SystemExit(f"dvidpy token: {e}") from None
    spec = settings.stores[settings.metadata_store()]
    try:
        engine = open_engine(spec.engine, spec.location, **spec.options)
    except Exception as e:
        raise SystemExit(f"dvidpy token: cannot open the metadata store ({e}); if the server "
                         "is running, use --server URL instead") from None
    return TokenStore(engine), engine


def run(args: argparse.Namespace) -> int:
    """Run ``dvidpy token ...``."""
    if bool(args.server) == bool(args.config):
        print("dvidpy token: give exactly one of --server URL or --config dvid.toml",
              file=sys.stderr)
        return 2
    try:
        ttl = parse_duration(args.expires) if getattr(args, "expires", None) else None
    except ValueError as e:
        print(f"dvidpy token: {e}", file=sys.stderr)
        return 2
    if args.server:
        if args.action == "create":
            out = _http(args, "POST", "/api/server/tokens",
                        {"user": args.user, "note": args.note or "",
                         **({"expires": ttl} if ttl else {})})
        elif args.action == "list":
            out = _http(args, "GET", "/api/server/tokens")
        else:
            out = _http(args, "DELETE", f"/api/server/tokens/{urllib.parse.quote(args.id)}")
    else:
        store, engine = _offline(args)
        try:
            if args.action == "create":
                token, rec = store.create(args.user, ttl, args.note or "")
                out = {"token": token, **{k: v for k, v in rec.items() if k != "sha256"}}
            elif args.action == "list":
                out = store.list()
            else:
                out = store.revoke(args.id)
                if out is None:
                    print(f"dvidpy token: no token {args.id!r}", file=sys.stderr)
                    return 1
        finally:
            engine.close()
    if args.action == "create":
        exp = out.get("expires")
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(exp)) if exp else "never"
        print(out["token"])
        print(f"# id {out['id']}, user {out['user']}, expires {when}; shown only now",
              file=sys.stderr)
    else:
        print(json.dumps(out, indent=1))
    return 0


def add_parser(sub: Any) -> None:
    """The ``token`` sub-command and its actions."""
    t = sub.add_parser("token", help="API tokens: create, list, revoke")
    tsub = t.add_subparsers(dest="action", required=True)
    for name, helptext in (("create", "make a token for a user (printed once)"),
                           ("list", "list token records"), ("revoke", "revoke a token")):
        a = tsub.add_parser(name, help=helptext)
        a.add_argument("--server", help="a running server, e.g. http://127.0.0.1:8000")
        a.add_argument("--config", help="the server's TOML, when it is not running")
        a.add_argument("--token", help="your credential (default $DVIDPY_TOKEN; else "
                       "$DVID_ADMIN_TOKEN is sent as admintoken=)")
        if name == "create":
            a.add_argument("--user", required=True, help="whom the token authenticates")
            a.add_argument("--expires", help="lifetime, e.g. 30d, 12h (default: never)")
            a.add_argument("--note", help="what the token is for")
        if name == "revoke":
            a.add_argument("id", help="token id (from list)")
        a.set_defaults(func=run)
