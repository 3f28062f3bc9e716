"""Cross-process locks on match keys, held until the transaction ends.

PostgreSQL: transaction-scoped advisory locks on a 64-bit hash of each key, taken
in sorted order in one statement so that two writers can never deadlock.
SQLite: every write transaction already holds the database's single write lock
(``BEGIN IMMEDIATE``), so there is nothing more to take.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import Connection, text

from kasar.db.engine import is_sqlite


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def lock_keys(conn: Connection, keys: Iterable[str]) -> None:
    if is_sqlite(conn):
        return
    hashes = sorted({key_hash(k) for k in keys})
    if hashes:
        conn.execute(
            text("SELECT count(pg_advisory_xact_lock(h)) FROM unnest(CAST(:hs AS bigint[])) AS h"),
            {"hs": hashes},
        )
