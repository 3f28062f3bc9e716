"""Cross-process locks on match keys, held until the transaction ends.

PostgreSQL: transaction-scoped advisory locks on a 64-bit hash of each key, taken
in sorted order so that two writers can never deadlock. Each writer first takes a
lock on every object it touches: *shared* when it then locks that object's keys one
by one, *exclusive* when it has more than ``BULK_KEYS`` keys of the object (a job's
chunk): one lock instead of thousands, since PostgreSQL's lock table holds only
``max_locks_per_transaction`` x connections entries.
SQLite: every write transaction already holds the database's single write lock
(``BEGIN IMMEDIATE``), so there is nothing more to take.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, text

from kasar.db.engine import is_sqlite

BULK_KEYS = 1000


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def lock_keys(conn: Connection, keys: Iterable[str]) -> None:
    """Lock names are ``object<US>kind<US>value`` (``dedup.keys.lock_names``)."""
    if is_sqlite(conn):
        return
    by_object: dict[str, set[str]] = defaultdict(set)
    for k in keys:
        by_object[k.split("\x1f", 1)[0]].add(k)
    if not by_object:
        return
    objects = sorted((key_hash("\x1e" + o), len(ks) > BULK_KEYS) for o, ks in by_object.items())
    conn.execute(
        text(
            "SELECT count(CASE WHEN e THEN pg_advisory_xact_lock(h)"
            " ELSE pg_advisory_xact_lock_shared(h) END)"
            " FROM unnest(CAST(:hs AS bigint[]), CAST(:es AS boolean[])) AS t(h, e)"
        ),
        {"hs": [h for h, _ in objects], "es": [e for _, e in objects]},
    )
    # Keys of an object locked whole need no hash (a chunk of a job has thousands).
    hashes = sorted({key_hash(k) for ks in by_object.values() if len(ks) <= BULK_KEYS for k in ks})
    if hashes:
        conn.execute(
            text("SELECT count(pg_advisory_xact_lock(h)) FROM unnest(CAST(:hs AS bigint[])) AS h"),
            {"hs": hashes},
        )
