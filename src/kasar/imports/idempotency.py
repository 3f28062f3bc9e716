"""``Idempotency-Key`` for ``POST /import/{object}`` and ``POST /import-jobs`` (spec §11).

A key belongs to a scope (the user, the route and the object) and is bound to a
hash of the request (method, path, sorted query and canonical body). The key's
row is inserted by the first statement of the very transaction that does the
work, and the answer is stored by its last: a crash leaves neither, and no key
ever exists without its effect. A second request with the same key meanwhile
waits on that insert (PostgreSQL waits for the unique index entry of an
uncommitted row; SQLite's ``BEGIN IMMEDIATE`` lets one writer in at a time), then
finds the stored answer and replays it with ``Idempotent-Replayed: true``, or
gets 409 CONFLICT if its body differs. Keys older than ``KEEP`` are purged.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from kasar.db import tables
from kasar.db.engine import is_sqlite
from kasar.errors import Conflict, ValidationFailed
from kasar.schema.repository import now_utc

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEEP = timedelta(hours=24)
_VALID = re.compile(r"^[\x21-\x7e]{1,200}$")
T = tables.idempotency


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: Any


def json_digest(body: Any) -> str:
    """The digest of a JSON body, the same whatever its spacing or key order."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def key_from_request(
    request: Request, user_id: str, route: str, object_name: str, body_digest: str
) -> IdempotencyKey | None:
    """The request's key, or None without the header; 400 for a malformed key."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _VALID.match(raw):
        raise ValidationFailed(f"{HEADER} must be 1 to 200 visible ASCII characters")
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))
    parts = (request.method, request.url.path, query, body_digest)
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return IdempotencyKey(f"{user_id}:{route}:{object_name}"[:200], raw, digest)


def claim(conn: Connection, key: IdempotencyKey) -> StoredAnswer | None:
    """Take the key for this transaction (None: go ahead, then ``finish``), or the
    answer stored by the request that used it first. Call it first in the
    transaction, so that it holds no other lock while it waits."""
    conn.execute(delete(T).where(T.c.created_at < now_utc() - KEEP))
    dialect_insert = sqlite.insert if is_sqlite(conn) else postgresql.insert
    values = {
        "scope": key.scope,
        "key": key.key,
        "request_hash": key.request_hash,
        "state": "running",
        "created_at": now_utc(),
    }
    taken = conn.execute(
        dialect_insert(T).values(**values).on_conflict_do_nothing().returning(T.c.key)
    ).first()
    if taken is not None:
        return None
    row = conn.execute(
        select(T.c.request_hash, T.c.state, T.c.status_code, T.c.response).where(
            T.c.scope == key.scope, T.c.key == key.key
        )
    ).one()
    if row.request_hash != key.request_hash:
        raise Conflict(
            f"{HEADER} '{key.key}' was already used with another request; "
            "use a new key for a new request"
        )
    if row.state != "done" or row.status_code is None:
        raise Conflict(f"The request with {HEADER} '{key.key}' is still running; retry later")
    return StoredAnswer(int(row.status_code), json.loads(row.response))


def finish(conn: Connection, key: IdempotencyKey, status: int, body: Any) -> None:
    """Store the answer, in the transaction that did the work."""
    conn.execute(
        update(T)
        .where(T.c.scope == key.scope, T.c.key == key.key)
        .values(state="done", status_code=status, response=orjson.dumps(body).decode())
    )


def replay(answer: StoredAnswer, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        answer.body, status_code=answer.status, headers={**(headers or {}), REPLAYED: "true"}
    )
