"""A per-token rate limit: a fixed one-minute window counted in the database, so
that every server process shares the same count.

On SQLite the count waits at most a moment for the write lock: when a big import
holds it, the request is let through uncounted rather than stalled behind it
(a rate limiter that fails open beats one that makes reads wait on writes).
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from kasar.db import tables
from kasar.db.engine import SQLITE_BUSY_TIMEOUT_MS, is_sqlite
from kasar.errors import RateLimited

WINDOW_SECONDS = 60
SQLITE_WAIT_MS = 200


def _count(conn: Connection, subject: str, window: int) -> int:
    t = tables.rate_limits
    dialect_insert = sqlite.insert if is_sqlite(conn) else postgresql.insert
    stmt = dialect_insert(t).values(subject=subject, window_start=window, hits=1)
    upsert = stmt.on_conflict_do_update(
        index_elements=[t.c.subject, t.c.window_start], set_={"hits": t.c.hits + 1}
    ).returning(t.c.hits)
    hits = int(conn.execute(upsert).scalar_one())
    if hits == 1:  # first hit of a window: forget the old ones
        conn.execute(delete(t).where(t.c.subject == subject, t.c.window_start < window))
    return hits


def _busy_timeout(conn: Connection, ms: int) -> None:
    """Set on the driver connection directly: outside any SQLAlchemy transaction."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    dbapi.execute(f"PRAGMA busy_timeout={int(ms)}")


def count_hit(conn: Connection, subject: str, *, now: float | None = None) -> int:
    """Count one request for ``subject`` in the caller's write transaction (on
    PostgreSQL the token check's); pass the answer to ``enforce`` once committed."""
    if not is_sqlite(conn):
        # A count lost to a crash is harmless; waiting for the log flush on every
        # request is not (about 1 ms per request).
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
    return _count(conn, subject, _window(time.time() if now is None else now))


def enforce(hits: int, limit: int, *, now: float | None = None) -> None:
    """Raise RateLimited (429) when ``hits`` in this window are past ``limit``."""
    if limit <= 0 or hits <= limit:
        return
    now = time.time() if now is None else now
    raise RateLimited(retry_after=max(1, _window(now) + WINDOW_SECONDS - int(now)))


def _window(now: float) -> int:
    return int(now) // WINDOW_SECONDS * WINDOW_SECONDS


def check_rate(engine: Engine, subject: str, limit: int, *, now: float | None = None) -> None:
    """Count one request for ``subject`` in its own transaction; raise RateLimited
    (429) past ``limit`` a minute. For SQLite, whose write lock it waits for only
    briefly (a request is let through uncounted rather than stalled)."""
    if limit <= 0:
        return
    try:
        with engine.connect() as raw:
            if is_sqlite(raw):
                _busy_timeout(raw, SQLITE_WAIT_MS)
            try:
                conn = raw.execution_options(kasar_write=True)
                with conn.begin():
                    hits = count_hit(conn, subject, now=now)
            finally:
                if is_sqlite(raw):
                    _busy_timeout(raw, SQLITE_BUSY_TIMEOUT_MS)
    except OperationalError:
        if is_sqlite(engine):
            return
        raise
    enforce(hits, limit, now=now)
