"""Command line: ``dvidpy serve`` and friends.

``dvidpy serve``                      serve 127.0.0.1:8000 with LevelDB under ./dvid-data
``dvidpy serve --config dvid.toml``   serve with a DVID-style TOML configuration
``dvidpy serve --memory``             everything in memory (throwaway)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dvidpy.config import ConfigError, Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server import create_app

    try:
        if args.config:
            settings = Settings.from_toml(args.config)
        elif args.memory:
            settings = Settings.memory()
        else:
            settings = Settings.default(args.data)
    except ConfigError as e:
        print(f"dvidpy: {e}", file=sys.stderr)
        return 2
    if args.host:
        settings.host = args.host
    if args.port is not None:
        settings.port = args.port
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False,
                log_level="warning", timeout_keep_alive=30)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="dvidpy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the HTTP server")
    s.add_argument("--config", help="TOML configuration file (DVID's shape)")
    s.add_argument("--data", default="dvid-data",
                   help="LevelDB folder when no config is given (default ./dvid-data)")
    s.add_argument("--memory", action="store_true", help="keep everything in memory")
    s.add_argument("--host", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default 8000)")
    s.add_argument("--quiet", action="store_true", help="no per-request log lines")
    s.set_defaults(func=_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dvidpy`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
