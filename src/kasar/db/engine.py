"""Engines and transactions, with the SQLite/PostgreSQL differences kept here.

SQLite runs in WAL mode with a busy timeout and foreign keys on; writes take the
write lock up front (``BEGIN IMMEDIATE``) so that two writers queue instead of
failing half-way with "database is locked".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalise_url(url: str) -> str:
    """Accept the usual ``postgresql://`` spelling and use psycopg 3 for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        dbapi_conn.create_function("kasar_lower", 1, _py_lower, deterministic=True)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("kasar_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _py_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def is_sqlite(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: commits on success, rolls back on any error."""
    with engine.connect() as conn:
        conn = conn.execution_options(kasar_write=True)
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only unit of work that never holds the write lock. On SQLite it sees
    one snapshot; on PostgreSQL (READ COMMITTED) each statement sees what was
    committed when it began: use ``snapshot_transaction`` when statements must agree."""
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def snapshot_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction in which every statement sees the same snapshot.

    SQLite gives that to any transaction; PostgreSQL's default READ COMMITTED
    would let the count and the rows see different data, so ask for REPEATABLE READ.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield conn
