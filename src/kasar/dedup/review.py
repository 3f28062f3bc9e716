"""The review queue of possible duplicates: list the held records, resolve each.

An import with ``on_possible_duplicate=hold`` puts a record that only fuzzily matches
stored ones in ``kasar_review_queue`` with its candidates (``dedup.candidates``).
An admin then decides: ``create`` it after all (through the import engine, so that an
exact duplicate that appeared meanwhile is still refused), ``merge`` it into a record
(the record's empty fields are filled from it and its emails and phones are added,
as a merge would), or ``discard`` it. Entries are kept after resolution, with who
decided what, so that the queue doubles as an audit trail.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update

from kasar.db import tables
from kasar.db.cursors import decode_cursor, encode_cursor
from kasar.dedup.detect import render_records
from kasar.dedup.merge import check_found, fill_master, locked_rows
from kasar.errors import Conflict, NotFound, ValidationFailed
from kasar.imports.service import ImportOptions, import_records
from kasar.records import repository as repo
from kasar.records.service import default_keys, get_record
from kasar.records.validation import validate_write
from kasar.schema.repository import Workspace, now_utc
from kasar.schema.types import FieldType
from kasar.schema.values import format_value

STATES = ("pending", "created", "merged", "discarded")
ACTIONS = ("create", "merge", "discard")
MAX_LIMIT = 100


def list_review(
    conn: Connection,
    ws: Workspace,
    *,
    object_name: str | None = None,
    state: str = "pending",
    limit: int = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Queue entries, oldest first, with their candidates as they are now (a candidate
    deleted since shows ``record: null``). ``state`` is one of ``STATES`` or ``all``."""
    if object_name is not None:
        ws.object(object_name)
    if state not in (*STATES, "all"):
        raise ValidationFailed("state must be one of: " + ", ".join((*STATES, "all")))
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}")
    rq = tables.review_queue
    where = []
    if object_name is not None:
        where.append(rq.c.object_name == object_name)
    if state != "all":
        where.append(rq.c.state == state)
    total = conn.execute(select(func.count()).select_from(rq).where(*where)).scalar_one()
    if cursor:
        stamp, last_id = decode_cursor(cursor)
        where.append(
            or_(rq.c.created_at > stamp, and_(rq.c.created_at == stamp, rq.c.id > last_id))
        )
    stmt = select(rq).where(*where).order_by(rq.c.created_at, rq.c.id).limit(limit + 1)
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    page, more = rows[:limit], len(rows) > limit
    entries = [_entry(r) for r in page]
    _attach_candidates(conn, ws, entries)
    last = page[-1] if page and more else None
    return {
        "data": entries,
        "total": total,
        "nextCursor": encode_cursor(last["created_at"], last["id"]) if last else None,
    }


def resolve(
    conn: Connection,
    ws: Workspace,
    review_id: str,
    action: str,
    target_id: str | None = None,
    *,
    resolved_by: str,
) -> dict[str, Any]:
    """Resolve one pending entry; answers the entry and the record it became part of."""
    if action not in ACTIONS:
        raise ValidationFailed("action must be one of: " + ", ".join(ACTIONS))
    rq = tables.review_queue
    row = conn.execute(select(rq).where(rq.c.id == review_id).with_for_update()).mappings().first()
    if row is None:
        raise NotFound(f"No review entry with id '{review_id}'")
    if row["state"] != "pending":
        raise Conflict(f"Review entry '{review_id}' was already resolved ({row['state']})")
    obj = ws.object(row["object_name"])
    held = json.loads(row["record"])
    record_id: str | None = None
    if action == "create":
        record_id, state = _create(conn, ws, obj.name, held), "created"
    elif action == "merge":
        if not target_id:
            raise ValidationFailed("target_id is required to merge a held record")
        record_id, state = _merge_into(conn, ws, obj.name, target_id, held), "merged"
    else:
        state = "discarded"
    resolution = {"action": action, "record_id": record_id, "by": resolved_by}
    stamp = now_utc()
    conn.execute(
        update(rq)
        .where(rq.c.id == review_id)
        .values(state=state, resolution=json.dumps(resolution), resolved_at=stamp)
    )
    entry = _entry(
        {**row, "state": state, "resolution": json.dumps(resolution), "resolved_at": stamp}
    )
    entry["result"] = get_record(conn, ws, obj.name, record_id) if record_id else None
    return entry


def _create(conn: Connection, ws: Workspace, object_name: str, held: dict[str, Any]) -> str:
    result = import_records(conn, ws, object_name, [held], ImportOptions()).results[0]
    if result.status == "failed":
        message = (result.error or {}).get("message", "invalid record")
        raise ValidationFailed(f"The held record cannot be created: {message}")
    if result.status == "duplicate":
        raise Conflict(
            f"The held record is now an exact duplicate of '{result.duplicate_of}'; "
            "merge it into that record or discard it",
            details={"duplicate_of": result.duplicate_of, "matched_on": result.matched_on},
        )
    assert result.id is not None
    return result.id


def _merge_into(
    conn: Connection, ws: Workspace, object_name: str, target_id: str, held: dict[str, Any]
) -> str:
    """Fill the target's empty fields from the held record and add its emails and
    phones; relations are resolved (and created by name) only where they fill a gap."""
    obj = ws.object(object_name)
    data = {k: v for k, v in held.items() if k not in ("id", "created_at", "updated_at")}
    prepared = validate_write(obj, data)
    rows = locked_rows(conn, ws, obj, [target_id], extra=[prepared.values])
    check_found(conn, ws, obj, [target_id], rows)
    target = rows[target_id]
    for name in [*prepared.relation_ids, *prepared.relation_names]:
        f = obj.field(name)
        if f is not None and target.get(f.column) not in (None, ""):
            prepared.relation_ids.pop(name, None)
            prepared.relation_names.pop(name, None)
    if errors := repo.resolve_relations(conn, ws, obj, [prepared]):
        raise ValidationFailed(f"The held record cannot be merged: {errors[0]}")
    after = fill_master(obj, target, [{**prepared.values, "id": ""}], target_id)
    if after != target:
        after["updated_at"] = now_utc()
        repo.update_rows(conn, ws, obj, [after])
    return target_id


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object_name": row["object_name"],
        "job_id": row["job_id"],
        "state": row["state"],
        "record": json.loads(row["record"]),
        "candidates": json.loads(row["candidates"]),
        "resolution": json.loads(row["resolution"]) if row["resolution"] else None,
        "created_at": _iso(row["created_at"]),
        "resolved_at": _iso(row["resolved_at"]),
    }


def _attach_candidates(conn: Connection, ws: Workspace, entries: list[dict[str, Any]]) -> None:
    wanted: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        wanted[e["object_name"]].update(c["id"] for c in e["candidates"])
    shown: dict[str, dict[str, Any]] = {}
    for name, ids in wanted.items():
        if name in ws.objects:
            keys = default_keys(ws.object(name))
            shown.update(render_records(conn, ws, name, keys, sorted(ids)))
    for e in entries:
        for c in e["candidates"]:
            c["record"] = shown.get(c["id"])


def _iso(value: datetime | None) -> str | None:
    return str(format_value(FieldType.DATETIME, value)) if value else None
