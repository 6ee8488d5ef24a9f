"""What ``dvidpy serve`` prints once before serving: where it is and what it serves.

:func:`startup_banner` reads only the settings (it opens nothing), so every way of
starting a server (one process, a supervisor of workers) can print the same block.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from dvidpy import __version__
from dvidpy.config import Settings, StoreSpec

_AUTH = {
    "none": "none: every request is allowed ([auth] enforce)",
    "token": "token: DVID JWTs (HS256)",
    "authfile": "authfile: DVID JWTs, users in {authfile}",
    "oidc": "oidc: tokens of {issuer} for audience {audience!r}",
}


def server_url(settings: Settings) -> str:
    """``http://HOST:PORT`` of the server (IPv6 hosts in brackets)."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def _redact(location: str) -> str:
    """``location`` with the password of a URL (``scheme://user:pw@host/...``) hidden."""
    try:
        u = urlsplit(location)
        if u.password is None:
            return location
        netloc = u.netloc.replace(f":{u.password}@", ":***@", 1)
        return urlunsplit(u._replace(netloc=netloc))
    except ValueError:
        return location


def _where(spec: StoreSpec) -> str:
    if spec.engine == "memory":
        return "in memory (gone when the server stops)"
    if spec.engine in ("gcs", "s3"):
        endpoint = spec.options.get("endpoint") or (
            os.environ.get("STORAGE_EMULATOR_HOST") if spec.engine == "gcs" else "")
        return f"bucket {spec.location}" + (f" at {endpoint}" if endpoint else "")
    return _redact(spec.location)


def startup_banner(settings: Settings) -> str:
    """The startup block: URL, dvidpy's version, each store (engine, path or bucket, the
    backend rules that use it), the config file and the auth mode. Several lines, no
    trailing newline. Engines standing in for another (``substitute``) say so."""
    url = server_url(settings)
    lines = [f"dvidpy {__version__} serving {url}  (console: {url}/console/, "
             f"API: {url}/api/docs)"]
    lines.append(f"  config  {settings.toml_path or 'none (command-line defaults)'}")
    uses: dict[str, list[str]] = {}
    for rule, alias in settings.backend.items():
        uses.setdefault(alias, []).append(rule)
    meta = settings.metadata_store()
    if "metadata" not in settings.backend:
        uses.setdefault(meta, []).append("metadata")
    width = max(len(a) for a in settings.stores)
    ewidth = max(len(s.engine) for s in settings.stores.values())
    for alias, spec in settings.stores.items():
        engine = spec.engine.ljust(ewidth)
        sub = f" (substitute for {spec.substitutes})" if spec.substitutes else ""
        rules = ", ".join(uses.get(alias, [])) or "none"
        lines.append(f"  store   {alias.ljust(width)}  {engine}  {_where(spec)}{sub}"
                     f"  (backend: {rules})")
    a = settings.auth
    auth = _AUTH.get(a.enforce, a.enforce).format(authfile=a.authfile, issuer=a.issuer,
                                                  audience=a.audience)
    if a.on and a.api_tokens:
        auth += ", API tokens"
    lines.append(f"  auth    {auth}")
    if settings.rwmode:
        lines.append(f"  mode    {settings.rwmode}")
    return "\n".join(lines)
