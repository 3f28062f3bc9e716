"""Merge duplicates into a master record, and undo a merge (spec §7, issue 7).

A merge fills the master's empty fields from the duplicates (in the order given),
adds their emails and phones to the master's lists, re-points every relation that
pointed at a duplicate (any RELATION field, of any object, whose target is this
object) to the master, and deletes the duplicates. What it overwrote is kept in
``kasar_merges``: the master before and after, each duplicate's full row, the
re-pointed relation rows. ``unmerge`` puts all of it back within the retention window
(``KASAR_MERGE_RETENTION_DAYS``), unless the master has since been edited in a field
the merge changed: restoring would then silently drop that edit, so it is a 409.

The caller owns the transaction; a merge or an unmerge is all or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Date, DateTime, Table, bindparam, delete, insert, select, update

from kasar.db import tables
from kasar.db.ids import new_id
from kasar.db.locks import lock_keys
from kasar.dedup.keys import listed, lock_names, match_keys_for
from kasar.dedup.normalise import email_key, phone_key
from kasar.errors import Conflict, NotFound, ValidationFailed
from kasar.records import repository as repo
from kasar.records.service import get_record
from kasar.schema.model import ObjectDef
from kasar.schema.repository import Workspace, now_utc
from kasar.schema.types import FieldType
from kasar.settings import get_settings

MAX_DUPLICATES = 100
_KEY_OF: dict[FieldType, Callable[[str], str | None]] = {
    FieldType.EMAILS: email_key,
    FieldType.PHONES: phone_key,
}


def merge_records(
    conn: Connection,
    ws: Workspace,
    object_name: str,
    master_id: str,
    duplicate_ids: Sequence[str],
    *,
    created_by: str,
) -> dict[str, Any]:
    """Fold ``duplicate_ids`` into ``master_id``; answers ``{merge_id, master, merged_ids}``."""
    obj = ws.object(object_name)
    dups = list(dict.fromkeys(duplicate_ids))
    if not dups:
        raise ValidationFailed("duplicate_ids must name at least one record to merge")
    if len(dups) > MAX_DUPLICATES:
        raise ValidationFailed(f"A merge takes at most {MAX_DUPLICATES} duplicate_ids")
    if master_id in dups:
        raise ValidationFailed(
            f"A record cannot be merged into itself: '{master_id}' is both master_id "
            "and one of duplicate_ids"
        )
    wanted = [master_id, *dups]
    rows = locked_rows(conn, ws, obj, wanted)
    check_found(conn, ws, obj, wanted, rows)
    before, dup_rows = rows[master_id], [rows[d] for d in dups]
    after = fill_master(obj, before, dup_rows, master_id)
    after["updated_at"] = now_utc()
    relations = _repoint(conn, ws, obj, master_id, dups)
    repo.delete_records(conn, ws, obj, dups)
    repo.update_rows(conn, ws, obj, [after])
    snapshot = {
        "master": _encode(before),
        "master_after": _encode(after),
        "duplicates": [_encode(r) for r in dup_rows],
        "relations": relations,
    }
    merge_id = new_id()
    conn.execute(
        insert(tables.merges).values(
            id=merge_id,
            object_name=obj.name,
            master_id=master_id,
            snapshot=json.dumps(snapshot, ensure_ascii=False),
            created_by=created_by,
            created_at=now_utc(),
        )
    )
    _purge_expired(conn)
    master = get_record(conn, ws, obj.name, master_id)
    return {"merge_id": merge_id, "master": master, "merged_ids": dups}


def unmerge(
    conn: Connection, ws: Workspace, merge_id: str, *, object_name: str | None = None
) -> dict[str, Any]:
    """Restore what merge ``merge_id`` changed; answers ``{merge_id, master, restored_ids}``.
    ``object_name``, when given, must be the merge's object."""
    mt = tables.merges
    found = conn.execute(select(mt).where(mt.c.id == merge_id).with_for_update()).mappings()
    merge = found.first()
    if merge is None:
        raise NotFound(f"No merge with id '{merge_id}'")
    if object_name is not None and object_name != merge["object_name"]:
        raise ValidationFailed(
            f"Merge '{merge_id}' merged {merge['object_name']} records, not {object_name}"
        )
    if merge["undone_at"] is not None:
        raise Conflict(f"Merge '{merge_id}' was already undone")
    days = get_settings().merge_retention_days
    if merge["created_at"] < now_utc() - timedelta(days=days):
        raise Conflict(f"Merge '{merge_id}' is older than the {days}-day retention window")
    obj = ws.objects.get(merge["object_name"])
    if obj is None:
        raise Conflict(f"Object '{merge['object_name']}' no longer exists")
    table, master_id = ws.table(obj.name), merge["master_id"]
    snap = json.loads(merge["snapshot"])
    before, after = _decode(table, snap["master"]), _decode(table, snap["master_after"])
    dups = [_decode(table, r) for r in snap["duplicates"]]
    current = locked_rows(conn, ws, obj, [master_id], extra=dups).get(master_id)
    if current is None:
        raise Conflict(f"The master record '{master_id}' was deleted after the merge")
    columns = [c.name for c in table.columns]
    touched = [c for c in columns if c != "updated_at" and before[c] != after[c]]
    if edited := _fields_of(obj, [c for c in touched if current.get(c) != after[c]]):
        raise Conflict(
            "The master was edited after the merge in fields the merge changed; "
            "undoing it would lose those edits",
            details={"fields": edited},
        )
    ids = [d["id"] for d in dups]
    if back := repo.existing_ids(conn, ws, obj.name, ids):
        raise Conflict(f"Record '{sorted(back)[0]}' exists again; the merge cannot be undone")
    stamp = now_utc()
    for row in dups:
        row["updated_at"] = stamp  # they reappear: a sync by updated_at must see them
    _fix_links(conn, ws, obj, dups, set(ids))
    repo.insert_records(conn, ws, obj, dups)
    _restore_pointers(conn, ws, snap["relations"], master_id, stamp)
    repo.update_rows(
        conn, ws, obj, [{**current, **{c: before[c] for c in touched}, "updated_at": stamp}]
    )
    conn.execute(update(mt).where(mt.c.id == merge_id).values(undone_at=stamp))
    master = get_record(conn, ws, obj.name, master_id)
    return {"merge_id": merge_id, "master": master, "restored_ids": ids}


def _fields_of(obj: ObjectDef, columns: list[str]) -> list[str]:
    """The field names of columns ("email_all" is the field "email")."""
    owner = {c: f.name for f in obj.fields for c in (f.column, f.list_column, f.step_column)}
    return list(dict.fromkeys(owner.get(c, c) for c in columns))


def check_found(
    conn: Connection, ws: Workspace, obj: ObjectDef, wanted: list[str], rows: Mapping[str, Any]
) -> None:
    """404 for ids that exist nowhere; 400 for ids of another object (a merge cannot
    fold a company into a contact), naming that object."""
    missing = [rid for rid in wanted if rid not in rows]
    if not missing:
        return
    for other in ws.objects:
        if other != obj.name and (hit := repo.existing_ids(conn, ws, other, missing)):
            rid = next(r for r in missing if r in hit)
            raise ValidationFailed(
                f"Record '{rid}' is a {other} record, not a {obj.name} record: "
                "a merge folds records of one object",
                details={"id": rid, "object_name": other},
            )
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    raise NotFound(
        f"No {obj.name} record with id '{missing[0]}'{more}", details={"missing_ids": missing}
    )


def locked_rows(
    conn: Connection,
    ws: Workspace,
    obj: ObjectDef,
    ids: list[str],
    extra: Iterable[Mapping[str, Any]] = (),
) -> dict[str, dict[str, Any]]:
    """The rows, locked: first the match keys they hold (the import's locks, in the
    import's order: keys, then rows), then the rows themselves."""
    keys: set[tuple[str, str]] = set()
    for row in [*repo.rows_by_id(conn, ws, obj, ids).values(), *extra]:
        keys |= match_keys_for(obj, row)
    lock_keys(conn, lock_names(obj.name, keys))
    return repo.rows_by_id(conn, ws, obj, ids, for_update=True)


def _filled(value: object) -> bool:
    return value is not None and value != ""


def fill_master(
    obj: ObjectDef, master: dict[str, Any], dups: list[dict[str, Any]], master_id: str
) -> dict[str, Any]:
    """The master's new row: empty fields taken from the first duplicate that has them,
    emails and phones appended (one per key), self-relations to a duplicate re-pointed."""
    out = dict(master)
    gone = {d["id"] for d in dups}
    for f in obj.fields:
        if f.type in _KEY_OF:
            items = listed(out, f.column, f.list_column)
            seen = {_KEY_OF[f.type](i) for i in items}
            for d in dups:
                for item in listed(d, f.column, f.list_column):
                    if (k := _KEY_OF[f.type](item)) not in seen:
                        items.append(item)
                        seen.add(k)
            out[f.column] = items[0] if items else None
            out[f.list_column] = json.dumps(items, ensure_ascii=False) if items else None
            continue
        columns = (f.column, f.step_column) if f.type is FieldType.PIPELINE else (f.column,)
        if not _filled(out.get(columns[0])):
            donor = next((d for d in dups if _filled(d.get(columns[0]))), None)
            if donor is not None:
                out.update({c: donor.get(c) for c in columns})
        if f.type is FieldType.RELATION and f.relation == obj.name and out[f.column] in gone:
            out[f.column] = master_id
    return out


def _repoint(
    conn: Connection, ws: Workspace, obj: ObjectDef, master_id: str, dups: list[str]
) -> list[dict[str, Any]]:
    """Point every relation aimed at a duplicate to the master; what was re-pointed."""
    out: list[dict[str, Any]] = []
    stamp = now_utc()
    for other, f in ws.relations_to(obj.name):
        table = ws.table(other.name)
        col = table.c[f.column]
        skip = [master_id, *dups] if other.name == obj.name else []
        where = [col.in_(dups), table.c.id.notin_(skip)] if skip else [col.in_(dups)]
        pointing = [[rid, old] for rid, old in conn.execute(select(table.c.id, col).where(*where))]
        if pointing:
            conn.execute(update(table).where(*where).values({col: master_id, "updated_at": stamp}))
            out.append({"object": other.name, "field": f.name, "rows": pointing})
    return out


def _restore_pointers(
    conn: Connection,
    ws: Workspace,
    relations: list[dict[str, Any]],
    master_id: str,
    stamp: datetime,
) -> None:
    """Point the re-pointed rows back, those that still point at the master (a row
    edited since keeps its new target)."""
    for entry in relations:
        other = ws.objects.get(entry["object"])
        f = other.field(entry["field"]) if other else None
        if other is None or f is None or f.type is not FieldType.RELATION:
            continue
        table = ws.table(other.name)
        col = table.c[f.column]
        stmt = (
            update(table)
            .where(table.c.id == bindparam("_id"), col == master_id)
            .values({col: bindparam("_old"), "updated_at": stamp})
        )
        conn.execute(stmt, [{"_id": rid, "_old": old} for rid, old in entry["rows"]])


def _fix_links(
    conn: Connection, ws: Workspace, obj: ObjectDef, rows: list[dict[str, Any]], restored: set[str]
) -> None:
    """Restored rows must not point at what no longer exists: a vanished relation target
    becomes empty, a vanished pipeline step the object's default step."""
    for f in obj.fields:
        if f.type is FieldType.RELATION and f.relation:
            targets = {r[f.column] for r in rows if r.get(f.column)}
            alive = repo.existing_ids(conn, ws, f.relation, targets) if targets else set()
            if f.relation == obj.name:
                alive |= restored
            for r in rows:
                if r.get(f.column) and r[f.column] not in alive:
                    r[f.column] = None
        elif f.type is FieldType.PIPELINE and obj.pipelines:
            steps = {s.id: p.id for p in obj.pipelines for s in p.steps}
            default = obj.pipelines[0]
            first_step = min(default.steps, key=lambda s: s.order_index, default=None)
            for r in rows:
                if steps.get(r.get(f.step_column) or "") != r.get(f.column):
                    r[f.column] = default.id
                    r[f.step_column] = first_step.id if first_step else None


def _encode(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}


def _decode(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot row as the current table's columns (dropped fields are left out,
    new ones are empty), dates and timestamps parsed back."""
    out: dict[str, Any] = {}
    for c in table.columns:
        value = row.get(c.name)
        if isinstance(value, str) and isinstance(c.type, DateTime):
            value = datetime.fromisoformat(value)
        elif isinstance(value, str) and isinstance(c.type, Date):
            value = date.fromisoformat(value)
        out[c.name] = value
    return out


def _purge_expired(conn: Connection) -> None:
    """Snapshots past the retention window can no longer be used: drop them."""
    cutoff = now_utc() - timedelta(days=get_settings().merge_retention_days)
    conn.execute(delete(tables.merges).where(tables.merges.c.created_at < cutoff))
