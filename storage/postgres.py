"""PostgreSQL engine (psycopg 3): ordered byte keys in one table, shareable by many servers.

``PostgresEngine.open("postgresql://USER@HOST:PORT/DB", table="dvid_kv")``. The table is
``(k bytea PRIMARY KEY, v bytea NOT NULL)``, created on open if missing. PostgreSQL compares
``bytea`` byte by byte as unsigned values, shorter first on a common prefix: exactly the
engine contract's order, so a key range is an index range scan.

Options (unknown names raise TypeError):

* ``table`` (default ``"dvid_kv"``): table name, optionally ``schema.table``; letters,
  digits and ``_`` only.
* ``pool_size`` (default 16): most connections kept open; more threads than this wait.
* ``page_rows`` (default 256): rows per scan page with values (keys-only pages hold 16x).
* ``create_table`` (default True): create a missing table on open.
* ``connect_timeout`` (default 10): seconds.

Credentials come from the DSN or libpq's environment (``PGPASSWORD``, ``~/.pgpass``);
:meth:`PostgresEngine.describe` never shows a password.

Semantics and costs:

* **Batches are transactions** (``atomic_batches = True``): all or nothing, visible at once.
  ``commit`` keeps the last operation per key, then runs one ``DELETE ... = ANY`` and
  ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE`` per chunk of at most
  1000 rows / 32 MiB, inside one transaction.
* **Scans page by key** (keyset pagination: ``WHERE k > last ORDER BY k LIMIT n``), so a
  scan holds at most one page in memory and no connection between pages: abandoned
  iterators leak nothing and deleting while scanning is fine. A scan that fits in one page
  is a snapshot; a longer one sees each page as of when it was fetched.
* ``delete_range`` is one ``DELETE`` statement; ``get_many`` one ``SELECT ... = ANY``.
* ``compare_and_swap`` is one conditional statement (``INSERT ... ON CONFLICT DO
  NOTHING`` / ``UPDATE ... WHERE v = expected`` / ``DELETE ... WHERE v = expected``),
  atomic across every server on the database (``shareable = True``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from storage.base import GuardedWriteBatch, KeyRange, KVEngine
from storage.registry import register_engine

_DEFAULTS: dict[str, Any] = {
    "table": "dvid_kv",
    "pool_size": 16,
    "page_rows": 256,
    "create_table": True,
    "connect_timeout": 10,
}
_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?\Z")
_CHUNK_ROWS = 1000
_CHUNK_BYTES = 32 << 20


class PostgresWriteBatch(GuardedWriteBatch):
    """Queues operations; ``commit`` applies the last one per key in one transaction."""

    def __init__(self, engine: PostgresEngine) -> None:
        super().__init__()
        self._engine = engine
        self._ops: dict[bytes, bytes | None] = {}

    def _put(self, key: bytes, value: bytes) -> None:
        self._ops[bytes(key)] = bytes(value)

    def _delete(self, key: bytes) -> None:
        self._ops[bytes(key)] = None

    def _write(self) -> None:
        ops, self._ops = self._ops, {}
        self._engine._apply(ops)


@register_engine
class PostgresEngine(KVEngine):
    """Ordered key-value store in one PostgreSQL table."""

    name = "postgres"
    atomic_batches = True
    persistent = True
    shareable = True
    shared_by_default = True

    def __init__(self, dsn: str, options: dict[str, Any]) -> None:
        self.dsn = dsn
        self.options = options
        self._pool_size = max(1, int(options["pool_size"]))
        self._page = max(1, int(options["page_rows"]))
        self._idle: list[psycopg.Connection[Any]] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        parts = str(options["table"]).split(".")
        t = sql.Identifier(*parts)
        self._sql = {
            "get": sql.SQL("SELECT v FROM {} WHERE k = %s").format(t),
            "get_many": sql.SQL("SELECT k, v FROM {} WHERE k = ANY(%s)").format(t),
            "put": sql.SQL("INSERT INTO {} (k, v) VALUES (%s, %s) ON CONFLICT (k) "
                           "DO UPDATE SET v = EXCLUDED.v").format(t),
            "put_many": sql.SQL("INSERT INTO {} (k, v) SELECT * FROM unnest(%s::bytea[], "
                                "%s::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
                                ).format(t),
            "delete": sql.SQL("DELETE FROM {} WHERE k = %s").format(t),
            "delete_many": sql.SQL("DELETE FROM {} WHERE k = ANY(%s)").format(t),
            "insert_new": sql.SQL("INSERT INTO {} (k, v) VALUES (%s, %s) "
                                  "ON CONFLICT (k) DO NOTHING").format(t),
            "update_if": sql.SQL("UPDATE {} SET v = %s WHERE k = %s AND v = %s").format(t),
            "delete_if": sql.SQL("DELETE FROM {} WHERE k = %s AND v = %s").format(t),
            "create": sql.SQL("CREATE TABLE IF NOT EXISTS {} "
                              "(k bytea PRIMARY KEY, v bytea NOT NULL)").format(t),
        }
        self._table = t

    @classmethod
    def open(cls, location: str, **options: Any) -> PostgresEngine:
        """Connect to the DSN ``location`` (see the module docstring for options).

        Raises ValueError for an empty DSN or a bad table name, TypeError for unknown
        options and ``psycopg.OperationalError`` when the server cannot be reached.
        """
        unknown = set(options) - set(_DEFAULTS)
        if unknown:
            raise TypeError(f"unknown postgres options {sorted(unknown)}; "
                            f"known: {sorted(_DEFAULTS)}")
        if not location:
            raise ValueError("postgres engine needs a dsn such as postgresql://USER@HOST/DB")
        opts = {**_DEFAULTS, **options}
        if not _TABLE_RE.match(str(opts["table"])):
            raise ValueError(f"bad postgres table name {opts['table']!r}")
        eng = cls(location, opts)
        try:
            with eng._conn() as c:
                if opts["create_table"]:
                    try:
                        c.execute(eng._sql["create"])
                    except psycopg.errors.UniqueViolation:  # created concurrently
                        pass
        except BaseException:
            eng.close()
            raise
        return eng

    # ----- connections ---------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True,
                               connect_timeout=int(self.options["connect_timeout"]))

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a pooled connection; a connection that failed is discarded."""
        with self._cond:
            if self._closed:
                raise RuntimeError("postgres engine is closed")
            while not self._idle and self._count >= self._pool_size:
                self._cond.wait()
            conn = self._idle.pop() if self._idle else None
            if conn is None:
                self._count += 1
        if conn is None:
            try:
                conn = self._connect()
            except BaseException:
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
                raise
        ok = False
        try:
            yield conn
            ok = True
        finally:
            with self._cond:
                if ok and not conn.closed and not self._closed:
                    self._idle.append(conn)
                else:
                    self._count -= 1
                    conn.close()
                self._cond.notify()

    # ----- KVEngine ------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The stored value or ``None``."""
        with self._conn() as c, c.cursor(binary=True) as cur:
            cur.execute(self._sql["get"], (bytes(key),))
            row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values for ``keys`` in order, one query per 10,000 distinct keys (a snapshot
        when there are at most that many)."""
        keys = [bytes(k) for k in keys]
        if len(keys) < 2:
            return [self.get(k) for k in keys]
        found: dict[bytes, bytes] = {}
        distinct = list(dict.fromkeys(keys))
        with self._conn() as c, c.cursor(binary=True) as cur:
            for i in range(0, len(distinct), 10_000):
                cur.execute(self._sql["get_many"], (distinct[i:i + 10_000],))
                for k, v in cur:
                    found[bytes(k)] = bytes(v)
        return [found.get(k) for k in keys]

    def put(self, key: bytes, value: bytes) -> None:
        """Upsert ``value`` under ``key``."""
        with self._conn() as c:
            c.execute(self._sql["put"], (bytes(key), bytes(value)))

    def delete(self, key: bytes) -> None:
        """Remove ``key``; a missing key is not an error."""
        with self._conn() as c:
            c.execute(self._sql["delete"], (bytes(key),))

    def _where(self, start: bytes, end: bytes | None, after: bytes | None,
               reverse: bool) -> tuple[sql.Composable, list[bytes]]:
        conds: list[sql.Composable] = []
        args: list[bytes] = []
        if after is not None and not reverse:
            conds.append(sql.SQL("k > %s"))
            args.append(after)
        elif start:
            conds.append(sql.SQL("k >= %s"))
            args.append(start)
        upper = after if (after is not None and reverse) else end
        if upper is not None:
            conds.append(sql.SQL("k < %s"))
            args.append(upper)
        where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")
        return where, args

    def scan(
        self, rng: KeyRange, *, keys_only: bool = False, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield ``(key, value)`` in ``rng``, one page of rows per query (module docstring).

        An empty or inverted range yields nothing.
        """
        if rng.is_empty():
            return iter(())
        return self._scan(rng, keys_only, reverse)

    def _scan(self, rng: KeyRange, keys_only: bool,
              reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        cols = sql.SQL("k") if keys_only else sql.SQL("k, v")
        order = sql.SQL(" ORDER BY k DESC") if reverse else sql.SQL(" ORDER BY k")
        limit = self._page * 16 if keys_only else self._page
        after: bytes | None = None
        while True:
            where, args = self._where(rng.start, rng.end, after, reverse)
            q = sql.SQL("SELECT {} FROM {}").format(cols, self._table) + where + order + \
                sql.SQL(" LIMIT {}").format(sql.Literal(limit))
            with self._conn() as c, c.cursor(binary=True) as cur:
                cur.execute(q, args)
                rows = cur.fetchall()
            for row in rows:
                yield (bytes(row[0]), b"") if keys_only else (bytes(row[0]), bytes(row[1]))
            if len(rows) < limit:
                return
            after = bytes(rows[-1][0])

    def delete_range(self, rng: KeyRange) -> int:
        """Delete every key in ``rng`` in one statement; returns how many were deleted."""
        if rng.is_empty():
            return 0
        where, args = self._where(rng.start, rng.end, None, False)
        with self._conn() as c:
            cur = c.execute(sql.SQL("DELETE FROM {}").format(self._table) + where, args)
            return max(0, cur.rowcount)

    def _apply(self, ops: dict[bytes, bytes | None]) -> None:
        if not ops:
            return
        dels = [k for k, v in ops.items() if v is None]
        puts = [(k, v) for k, v in ops.items() if v is not None]
        with self._conn() as c, c.transaction():
            for i in range(0, len(dels), 10_000):
                c.execute(self._sql["delete_many"], (dels[i:i + 10_000],))
            chunk: list[tuple[bytes, bytes]] = []
            size = 0
            for kv in puts:
                chunk.append(kv)
                size += len(kv[0]) + len(kv[1])
                if len(chunk) >= _CHUNK_ROWS or size >= _CHUNK_BYTES:
                    self._put_chunk(c, chunk)
                    chunk, size = [], 0
            if chunk:
                self._put_chunk(c, chunk)

    def _put_chunk(self, c: psycopg.Connection[Any], chunk: list[tuple[bytes, bytes]]) -> None:
        if len(chunk) == 1:
            c.execute(self._sql["put"], chunk[0])
        else:
            c.execute(self._sql["put_many"], ([k for k, _ in chunk], [v for _, v in chunk]))

    def batch(self) -> PostgresWriteBatch:
        """A new write batch (one transaction on commit)."""
        return PostgresWriteBatch(self)

    def compare_and_swap(self, key: bytes, expected: bytes | None, new: bytes | None) -> bool:
        """Atomic across every client of the database (one conditional statement)."""
        key = bytes(key)
        with self._conn() as c:
            if expected is None:
                if new is None:
                    cur = c.execute(self._sql["get"], (key,))
                    return cur.fetchone() is None
                cur = c.execute(self._sql["insert_new"], (key, bytes(new)))
            elif new is None:
                cur = c.execute(self._sql["delete_if"], (key, bytes(expected)))
            else:
                cur = c.execute(self._sql["update_if"], (bytes(new), key, bytes(expected)))
            return cur.rowcount == 1

    def close(self) -> None:
        """Close every pooled connection; idempotent. Borrowed ones close when returned."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for c in idle:
            c.close()

    def describe(self) -> str:
        """``postgres://user@host:port/db/table`` (never the password)."""
        try:
            d = conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError:
            d = {}
        host = d.get("host", "")
        port = f":{d['port']}" if d.get("port") else ""
        user = f"{d['user']}@" if d.get("user") else ""
        return f"postgres://{user}{host}{port}/{d.get('dbname', '')}/{self.options['table']}"
