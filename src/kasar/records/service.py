"""Single-record operations and listing: the library that the routes call.

The caller owns the transaction (``db.engine.write_transaction``); nothing here commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from kasar.dedup.keys import match_keys_for
from kasar.errors import NotFound, ValidationFailed
from kasar.records import repository as repo
from kasar.records.query import (
    RecordQuery,
    after_cursor,
    build_select,
    count_matching,
    decode_cursor,
    encode_cursor,
)
from kasar.records.render import render
from kasar.records.validation import validate_write
from kasar.schema.model import ObjectDef
from kasar.schema.repository import Workspace
from kasar.schema.types import COMPOUND_TYPES


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    total: int
    next_cursor: str | None

    def to_api(self) -> dict[str, Any]:
        return {"data": self.data, "total": self.total, "nextCursor": self.next_cursor}


def _all_keys(obj: ObjectDef) -> list[str]:
    return obj.all_keys()


def get_record(conn: Connection, ws: Workspace, object_name: str, record_id: str) -> dict[str, Any]:
    """One record with every key, and the full lists of its emails and phones."""
    obj = ws.object(object_name)
    keys = _all_keys(obj)
    stmt, cols = build_select(conn, ws, obj, RecordQuery(keys))
    row = conn.execute(stmt.where(cols.table.c.id == record_id)).mappings().first()
    if row is None:
        raise NotFound(f"No {object_name} record with id '{record_id}'")
    out = render(cols, keys, row)
    compound = [f for f in obj.fields if f.type in COMPOUND_TYPES]
    if compound:
        lists = conn.execute(
            select(*[cols.table.c[f.list_column] for f in compound]).where(
                cols.table.c.id == record_id
            )
        ).one()
        for f, raw in zip(compound, lists, strict=True):
            out[f.list_column] = json.loads(raw) if raw else []
    return out


def create_record(
    conn: Connection, ws: Workspace, object_name: str, data: dict[str, Any]
) -> dict[str, Any]:
    obj = ws.object(object_name)
    prepared = validate_write(obj, data)
    repo.lock_for_write(conn, ws, obj, [(prepared, set())])
    errors = repo.resolve_relations(conn, ws, obj, [prepared])
    if errors:
        raise ValidationFailed(errors[0])
    row = repo.new_row(prepared.values)
    repo.insert_records(conn, ws, obj, [row])
    return get_record(conn, ws, object_name, row["id"])


def update_record(
    conn: Connection, ws: Workspace, object_name: str, record_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    obj = ws.object(object_name)
    if not data:
        raise ValidationFailed("Nothing to update: the body names no field")
    table = ws.table(object_name)
    if conn.execute(select(table.c.id).where(table.c.id == record_id)).first() is None:
        raise NotFound(f"No {object_name} record with id '{record_id}'")
    prepared = validate_write(obj, data, partial=True)
    repo.lock_for_write(conn, ws, obj, [(prepared, match_keys_for(obj, prepared.values))])
    errors = repo.resolve_relations(conn, ws, obj, [prepared])
    if errors:
        raise ValidationFailed(errors[0])
    repo.update_record(conn, ws, obj, record_id, prepared.values)
    return get_record(conn, ws, object_name, record_id)


def delete_record(conn: Connection, ws: Workspace, object_name: str, record_id: str) -> None:
    obj = ws.object(object_name)
    if repo.delete_records(conn, ws, obj, [record_id]) == 0:
        raise NotFound(f"No {object_name} record with id '{record_id}'")


def list_records(
    conn: Connection,
    ws: Workspace,
    object_name: str,
    q: RecordQuery,
    *,
    limit: int,
    cursor: str | None,
) -> Page:
    obj = ws.object(object_name)
    stmt, cols = build_select(conn, ws, obj, q)
    if cursor:
        last_value, last_id = decode_cursor(q, cursor, cols.kind(q.sort_by))
        stmt = stmt.where(after_cursor(cols, q, last_value, last_id))
    rows = conn.execute(stmt.limit(limit + 1)).mappings().all()
    total = count_matching(conn, ws, obj, q.filter)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(q, rows[-1]["_sort"], rows[-1]["_id"])
    return Page([render(cols, q.keys, r) for r in rows], total, next_cursor)


def default_keys(obj: ObjectDef) -> list[str]:
    """The keys a list shows when ``fields`` is not given: every key."""
    return _all_keys(obj)
