"""Selecting records: projection, filter, a stable sort, keyset cursors, counts.

Shared by record listing and export. Order is the sort key with empty values
last, then ``id`` in the same direction, so that ties never shuffle.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select

from kasar.errors import ValidationFailed
from kasar.records.columns import KeyColumns, KeyKind
from kasar.records.filters import Group, compile_filter
from kasar.schema.model import SYSTEM_KEYS, ObjectDef
from kasar.schema.repository import Workspace
from kasar.schema.types import NUMERIC_TYPES, FieldType


@dataclass(frozen=True)
class RecordQuery:
    keys: list[str]
    filter: Group | None = None
    sort_by: str = "created_at"
    sort_dir: str = "desc"


def parse_keys(obj: ObjectDef, fields: str | None, default: list[str]) -> list[str]:
    """The comma-separated ``fields`` parameter as keys, in the order asked for."""
    if fields is None or not fields.strip():
        return default
    keys: list[str] = []
    for raw in fields.split(","):
        key = raw.strip()
        if not key:
            continue
        if obj.key(key) is None:
            raise ValidationFailed(f"Unknown field '{key}' for object '{obj.name}'")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise ValidationFailed("'fields' names no field")
    return keys


def parse_sort(obj: ObjectDef, sort_by: str | None, sort_dir: str | None) -> tuple[str, str]:
    key = (sort_by or "created_at").strip()
    if obj.key(key) is None:
        raise ValidationFailed(f"Unknown sort field '{key}' for object '{obj.name}'")
    ref = obj.key(key)
    if ref and ref.field and ref.field.type in (FieldType.MULTI_SELECT, FieldType.ADDRESS):
        raise ValidationFailed(f"Field '{key}' cannot be sorted on")
    direction = (sort_dir or "desc").strip().lower()
    if direction not in ("asc", "desc"):
        raise ValidationFailed("sort_dir must be 'asc' or 'desc'")
    return key, direction


def build_select(
    conn: Connection, ws: Workspace, obj: ObjectDef, q: RecordQuery
) -> tuple[Select[Any], KeyColumns]:
    cols = KeyColumns(ws, obj, conn.dialect.name)
    exprs = [cols.expr(k).label(k) for k in q.keys]
    sort_expr = cols.ordered(q.sort_by).label("_sort") if q.sort_by else None
    where = compile_filter(cols, q.filter) if q.filter else None
    stmt = select(*exprs, cols.table.c.id.label("_id"))
    if sort_expr is not None:
        stmt = stmt.add_columns(sort_expr)
    stmt = stmt.select_from(cols.from_clause())
    if where is not None:
        stmt = stmt.where(where)
    key_expr = cols.ordered(q.sort_by)
    id_col = cols.table.c.id
    # System keys are never empty: "empty last" would only cost the planner an index.
    empty_last = [] if q.sort_by in SYSTEM_KEYS else [key_expr.is_(None)]
    if q.sort_dir == "asc":
        stmt = stmt.order_by(*empty_last, key_expr.asc(), id_col.asc())
    else:
        stmt = stmt.order_by(*empty_last, key_expr.desc(), id_col.desc())
    return stmt, cols


def after_cursor(
    cols: KeyColumns, q: RecordQuery, last_value: Any, last_id: str
) -> ColumnElement[bool]:
    """Rows strictly after (last_value, last_id) in the query's order."""
    key_expr = cols.ordered(q.sort_by)
    id_col = cols.table.c.id
    if last_value is None:
        beyond_id = id_col > last_id if q.sort_dir == "asc" else id_col < last_id
        return and_(key_expr.is_(None), beyond_id)
    if q.sort_dir == "asc":
        return or_(
            key_expr > last_value,
            and_(key_expr == last_value, id_col > last_id),
            key_expr.is_(None),
        )
    return or_(
        key_expr < last_value, and_(key_expr == last_value, id_col < last_id), key_expr.is_(None)
    )


def count_matching(conn: Connection, ws: Workspace, obj: ObjectDef, group: Group | None) -> int:
    cols = KeyColumns(ws, obj, conn.dialect.name)
    where = compile_filter(cols, group) if group else None
    stmt = select(func.count()).select_from(cols.table)
    if where is not None:
        stmt = select(func.count()).select_from(cols.from_clause()).where(where)
    return int(conn.execute(stmt).scalar_one())


def encode_cursor(q: RecordQuery, last_value: Any, last_id: str) -> str:
    if isinstance(last_value, datetime):
        tagged: list[Any] = ["dt", last_value.isoformat()]
    elif isinstance(last_value, date):
        tagged = ["d", last_value.isoformat()]
    else:
        tagged = ["v", last_value]
    doc = {"s": q.sort_by, "d": q.sort_dir, "v": tagged, "i": last_id}
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def decode_cursor(q: RecordQuery, cursor: str, kind: KeyKind) -> tuple[Any, str]:
    """The (sort value, id) a cursor resumes after. A cursor comes back from the
    client: its value must be one the sort key (of ``kind``) can hold, so that a
    tampered cursor is a 400 rather than a type error in the database."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        doc = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        tag, raw = doc["v"]
        last_id = doc["i"]
        if doc["s"] != q.sort_by or doc["d"] != q.sort_dir or not _plain_text(last_id):
            raise ValueError("cursor of another query")
        if not _fits(kind, tag, raw):
            raise ValueError("a value this key cannot hold")
        if tag == "dt":
            return datetime.fromisoformat(raw), last_id
        if tag == "d":
            return date.fromisoformat(raw), last_id
        if tag != "v" or isinstance(raw, dict | list):
            raise ValueError("bad tag")
        return raw, last_id
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise ValidationFailed(
            "Invalid cursor: pass nextCursor from the previous page with the same sort"
        ) from None


def _plain_text(value: object) -> bool:
    return isinstance(value, str) and "\x00" not in value


def _fits(kind: KeyKind, tag: str, raw: object) -> bool:
    """Whether a cursor's tagged value is of the kind ``encode_cursor`` writes for the key."""
    if raw is None:
        return tag == "v"
    ftype = kind.type
    if ftype is FieldType.DATETIME:
        return tag == "dt" and isinstance(raw, str)
    if ftype is FieldType.DATE:
        return tag == "d" and isinstance(raw, str)
    if tag != "v":
        return False
    if ftype is FieldType.BOOLEAN:
        return isinstance(raw, bool)
    integer = isinstance(raw, int) and not isinstance(raw, bool) and -(2**63) <= raw < 2**63
    if ftype is FieldType.INTEGER:
        return integer
    if ftype in NUMERIC_TYPES:
        return integer or isinstance(raw, float)  # orjson reads only finite floats
    return _plain_text(raw)
