"""PostgreSQL engine against a real server from Debian's package (started by a fixture)."""

from __future__ import annotations

import itertools

import psycopg
import pytest

from storage import KeyRange, open_engine
from storage.postgres import PostgresEngine
from storage.testing import KVEngineTests, run_engine_state_machine


class TestPostgresEngine(KVEngineTests):
    engine_name = "postgres"

    @pytest.fixture
    def engine_location(self, postgres_dsn: str) -> str:
        return postgres_dsn

    @pytest.fixture
    def engine_options(self, pg_table: str) -> dict[str, object]:
        # small pages: most scans cross pages; >50 rows: the atomic-batch scan is one page
        return {"table": pg_table, "page_rows": 64}


def test_postgres_matches_model(postgres_dsn: str, pg_table: str) -> None:
    n = itertools.count()
    opened: list[str] = []

    def fresh() -> PostgresEngine:
        t = f"{pg_table}_{next(n)}"
        opened.append(t)
        return PostgresEngine.open(postgres_dsn, table=t, page_rows=3)

    try:
        run_engine_state_machine(fresh, max_examples=25, stateful_step_count=25)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as c:
            for t in opened:
                c.execute(f"DROP TABLE IF EXISTS {t}")


def test_bad_options_and_table_names(postgres_dsn: str) -> None:
    with pytest.raises(TypeError, match="unknown postgres options"):
        open_engine("postgres", postgres_dsn, bucket="x")
    with pytest.raises(ValueError, match="needs a dsn"):
        open_engine("postgres", "")
    for bad in ("x; DROP TABLE y", "1abc", "a.b.c", ""):
        with pytest.raises(ValueError, match="bad postgres table name"):
            open_engine("postgres", postgres_dsn, table=bad)


def test_unreachable_server_is_a_clear_error() -> None:
    from storage.testing import _free_port

    dsn = f"postgresql://postgres@127.0.0.1:{_free_port('127.0.0.1')}/postgres"
    with pytest.raises(psycopg.OperationalError):
        open_engine("postgres", dsn, connect_timeout=2)


def test_describe_hides_password(postgres_dsn: str, pg_table: str) -> None:
    dsn = postgres_dsn.replace("postgres@", "postgres:s3cret@")
    with open_engine("postgres", dsn, table=pg_table) as e:  # trust auth ignores it
        assert "s3cret" not in e.describe()
        assert pg_table in e.describe()


def test_batch_is_a_transaction(postgres_dsn: str, pg_table: str) -> None:
    """A batch whose statement fails midway leaves nothing behind."""
    with open_engine("postgres", postgres_dsn, table=pg_table) as e:
        e.put(b"keep", b"1")
        wb = e.batch()
        wb.delete(b"keep")
        for i in range(1500):  # more than one chunk
            wb.put(b"k%05d" % i, b"v")
        wb.put(b"bad", b"x\x00")
        with psycopg.connect(postgres_dsn, autocommit=True) as c:
            c.execute(f"ALTER TABLE {pg_table} ADD CONSTRAINT no_bad CHECK (k <> 'bad'::bytea)")
        with pytest.raises(psycopg.errors.CheckViolation):
            wb.commit()
        assert list(e.scan(KeyRange())) == [(b"keep", b"1")]
