"""All SQL that writes records and their match keys; set-based for many rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    select,
    text,
    update,
)

from kasar.db import tables
from kasar.db.bulk import insert_rows
from kasar.db.engine import is_sqlite
from kasar.db.ids import new_id
from kasar.db.locks import lock_keys
from kasar.dedup.keys import lock_names, match_keys_for
from kasar.dedup.normalise import name_key
from kasar.records.validation import PreparedRow, validate_write
from kasar.schema.model import FieldDef, ObjectDef
from kasar.schema.repository import Workspace, now_utc
from kasar.schema.types import FieldType

MatchKey = tuple[str, str]
_CHUNK = 500


def _keys_of(object_name: str, ids: str | Sequence[str]) -> ColumnElement[bool]:
    """The match keys of these records, read from ``ix_match_keys_record_keys``.

    ``object_name`` is compared as ``object_name || ''``: without statistics SQLite
    otherwise picks the primary key, whose first column is ``object_name``, and walks
    every key of the object (630 ms for 900 ids among 1.6 million keys, 14 ms so)."""
    mk = tables.match_keys
    of_object = mk.c.object_name.concat("") == object_name
    if isinstance(ids, str):
        return and_(mk.c.record_id == ids, of_object)
    return and_(mk.c.record_id.in_(ids), of_object)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def find_keys(
    conn: Connection, object_name: str, keys: Iterable[MatchKey]
) -> dict[MatchKey, list[str]]:
    """The records holding each key, oldest first: indexed probes, batched."""
    wanted = sorted(set(keys))
    found: dict[MatchKey, list[str]] = defaultdict(list)
    if conn.dialect.name == "postgresql":
        return _find_keys_pg(conn, object_name, wanted, found)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, value in wanted:
        by_kind[kind].append(value)
    for kind, values in by_kind.items():
        for chunk in _chunks(values, _SQLITE_IN_MAX):
            sql, params = _find_keys_sqlite(object_name, kind, chunk)
            for value, record_id in conn.exec_driver_sql(sql, params):
                found[(kind, value)].append(record_id)
    return found


_SQLITE_IN_MAX = 4096


def _find_keys_sqlite(
    object_name: str, kind: str, values: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    """The records holding these keys of one kind, as SQL text (SQLAlchemy's rendering
    of an expanding ``IN`` cost as much as the probes). The list is padded to a power
    of two with its last value, so that a few statement texts come back: SQLite's
    driver keeps 128 prepared statements, and one per list length held 50 MB. One
    kind at a time: SQLite (3.40) answers a row-value ``(kind, value) IN (...)`` by
    scanning every key of the object."""
    size = 16
    while size < len(values):
        size *= 2
    padded = [*values, *[values[-1]] * (size - len(values))]
    sql = (
        "SELECT value, record_id FROM kasar_match_keys"
        f" WHERE object_name = ? AND kind = ? AND value IN ({', '.join('?' * size)})"
        " ORDER BY record_id"
    )
    return sql, (object_name, kind, *padded)


# The wanted keys travel as two JSON arrays: psycopg writes a text[] parameter in
# Python, element by element (about 1 us each, 7% of an import job's writing).
_FIND_KEYS_PG = text(
    "SELECT w.kind, w.value, m.record_id"
    " FROM ROWS FROM (json_array_elements_text(CAST(:kinds AS json)),"
    " json_array_elements_text(CAST(:values AS json))) AS w(kind, value)"
    " CROSS JOIN LATERAL (SELECT k.record_id FROM kasar_match_keys AS k"
    " WHERE k.object_name = :object AND k.kind = w.kind AND k.value = w.value"
    " OFFSET 0) AS m"
    " ORDER BY m.record_id"
)


def _json(items: Sequence[str]) -> str:
    return orjson.dumps(list(items)).decode()


def _find_keys_pg(
    conn: Connection, object_name: str, wanted: list[MatchKey], found: dict[MatchKey, list[str]]
) -> dict[MatchKey, list[str]]:
    """One index probe per wanted key, whatever the statistics say.

    PostgreSQL plans a long ``(kind, value) IN (...)`` badly (a scan of the whole
    table before ANALYZE, 10x slower after). A plain join on two arrays is fine
    while the statistics are fresh, but a table that an import grew from 95,000 to
    810,000 keys since autovacuum last looked got a merge join sorting every key of
    the object on disk (3.8 s for 5,000 keys, against 55 ms). ``OFFSET 0`` keeps the
    planner from flattening the ``LATERAL`` probe into such a join."""
    for chunk in _chunks(wanted, 5000):
        params = {
            "kinds": _json([k for k, _ in chunk]),
            "values": _json([v for _, v in chunk]),
            "object": object_name,
        }
        for kind, value, record_id in conn.execute(_FIND_KEYS_PG, params):
            found[(kind, value)].append(record_id)
    return found


_KEYS_OF_RECORDS_PG = text(
    "SELECT m.kind, m.value, m.record_id"
    " FROM json_array_elements_text(CAST(:ids AS json)) AS w(id)"
    " CROSS JOIN LATERAL (SELECT k.kind, k.value, k.record_id, k.object_name"
    " FROM kasar_match_keys AS k WHERE k.record_id = w.id OFFSET 0) AS m"
    " WHERE m.object_name = :object"
)


def keys_of_records(
    conn: Connection, object_name: str, ids: Iterable[str]
) -> dict[str, set[MatchKey]]:
    """Every key of these records. On PostgreSQL one index probe per id, whatever
    the statistics (a stale estimate once made this a parallel scan of millions of
    keys, seconds a call); see ``_find_keys_pg``."""
    out: dict[str, set[MatchKey]] = defaultdict(set)
    mk = tables.match_keys
    if conn.dialect.name == "postgresql":
        for chunk in _chunks(sorted(set(ids)), 5000):
            params = {"ids": _json(chunk), "object": object_name}
            for kind, value, record_id in conn.execute(_KEYS_OF_RECORDS_PG, params):
                out[record_id].add((kind, value))
        return out
    for chunk in _chunks(sorted(set(ids))):
        for kind, value, record_id in conn.execute(
            select(mk.c.kind, mk.c.value, mk.c.record_id).where(_keys_of(object_name, chunk))
        ):
            out[record_id].add((kind, value))
    return out


def insert_records(
    conn: Connection,
    ws: Workspace,
    obj: ObjectDef,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[Iterable[MatchKey] | None] | None = None,
) -> None:
    """Insert complete rows (id and timestamps set) and their match keys: ``keys``,
    one per row (``match_keys_for`` of the row) where the caller has them."""
    if not rows:
        return
    insert_rows(conn, ws.table(obj.name), rows)
    given = keys if keys is not None else [None] * len(rows)
    key_rows = [
        {"object_name": obj.name, "kind": kind, "value": value, "record_id": r["id"]}
        for r, row_keys in zip(rows, given, strict=True)
        for kind, value in (match_keys_for(obj, r) if row_keys is None else row_keys)
    ]
    key_rows.sort(key=_index_order)
    insert_rows(conn, tables.match_keys, key_rows)


def _index_order(row: dict[str, Any]) -> tuple[str, str]:
    return row["kind"], row["value"]


def new_row(
    values: dict[str, Any], system: dict[str, Any] | None = None, stamp: datetime | None = None
) -> dict[str, Any]:
    """A complete row to insert: ``values``, then the ``system`` keys an import gave
    (id, created_at, updated_at), the rest filled in. A batch passes one ``stamp``
    for all its rows (they are written at once; ``insert_rows`` converts it once)."""
    stamp = stamp or now_utc()
    row = {"created_at": stamp, "updated_at": stamp, **values}
    if system:
        row.update(system)
        row.setdefault("updated_at", row["created_at"])
    if not row.get("id"):
        row["id"] = new_id()
    return row


def update_record(
    conn: Connection, ws: Workspace, obj: ObjectDef, record_id: str, values: dict[str, Any]
) -> None:
    table = ws.table(obj.name)
    conn.execute(
        update(table).where(table.c.id == record_id).values(**values, updated_at=now_utc())
    )
    stored = conn.execute(select(table).where(table.c.id == record_id)).mappings().one()
    replace_keys(conn, obj, record_id, dict(stored))


def replace_keys(conn: Connection, obj: ObjectDef, record_id: str, values: dict[str, Any]) -> None:
    mk = tables.match_keys
    conn.execute(delete(mk).where(_keys_of(obj.name, record_id)))
    keys = match_keys_for(obj, values)
    insert_rows(
        conn,
        mk,
        [{"object_name": obj.name, "kind": k, "value": v, "record_id": record_id} for k, v in keys],
    )


def delete_records(conn: Connection, ws: Workspace, obj: ObjectDef, ids: Sequence[str]) -> int:
    table = ws.table(obj.name)
    mk = tables.match_keys
    count = 0
    for chunk in _chunks(list(ids)):
        conn.execute(delete(mk).where(_keys_of(obj.name, chunk)))
        count += conn.execute(delete(table).where(table.c.id.in_(chunk))).rowcount
    return count


def existing_ids(conn: Connection, ws: Workspace, object_name: str, ids: Iterable[str]) -> set[str]:
    table = ws.table(object_name)
    found: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        found.update(conn.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars())
    return found


def _can_create_by_name(target: ObjectDef) -> bool:
    """A missing target is created from its name only when the name is all it needs."""
    names = target.name_fields()
    required = {f.name for f in target.fields if f.required}
    return len(names) == 1 and required <= set(names)


def relation_lock_names(ws: Workspace, obj: ObjectDef, rows: Iterable[PreparedRow]) -> list[str]:
    """Lock names for the targets that linking by name may create."""
    out: list[str] = []
    for row in rows:
        for fname, name in row.relation_names.items():
            f = obj.field(fname)
            if f is not None and f.relation and (k := name_key(name)):
                out += lock_names(f.relation, {("name", k)})
    return out


def relations_cannot_fail(ws: Workspace, obj: ObjectDef, rows: Iterable[PreparedRow]) -> bool:
    """Whether ``resolve_relations`` has no error to give for these rows: they link
    by name only (names with a key), to objects whose records a name is enough to
    create. Such rows need no trial run to find the ones that fail."""
    creatable: dict[str, bool] = {}  # per field: links to an object a name can create
    for row in rows:
        if row.relation_ids:
            return False
        for fname, name in row.relation_names.items():
            if (ok := creatable.get(fname)) is None:
                target = f.relation if (f := obj.field(fname)) else None
                ok = target is not None and _can_create_by_name(ws.object(target))
                creatable[fname] = ok
            if not ok or not name_key(name):
                return False
    return True


def resolve_relations(
    conn: Connection,
    ws: Workspace,
    obj: ObjectDef,
    rows: Sequence[PreparedRow | None],
    created: dict[str, list[str]] | None = None,
) -> dict[int, str]:
    """Fill each row's relation columns from the ids or names it gave, for all rows
    at once; a missing target is created when a name is all it needs (a contact's
    ``company_name`` creates the company), and its id added to ``created[object]``.
    Returns an error message per row index."""
    errors: dict[int, str] = {}
    for f in obj.fields:
        if f.type is not FieldType.RELATION or f.relation is None:
            continue
        _resolve_ids(conn, ws, f, rows, errors)
        new_ids = _resolve_names(conn, ws, f, rows, errors)
        if created is not None and new_ids:
            created.setdefault(f.relation, []).extend(new_ids)
    return errors


def _resolve_ids(
    conn: Connection,
    ws: Workspace,
    f: FieldDef,
    rows: Sequence[PreparedRow | None],
    errors: dict[int, str],
) -> None:
    assert f.relation is not None
    wanted = {r.relation_ids[f.name] for r in rows if r and f.name in r.relation_ids}
    found = existing_ids(conn, ws, f.relation, wanted) if wanted else set()
    for i, r in enumerate(rows):
        if r and f.name in r.relation_ids:
            rid = r.relation_ids[f.name]
            if rid in found:
                r.values[f.column] = rid
            else:
                errors.setdefault(
                    i, f"Field '{f.name}_id' must be the id of an existing {f.relation} record"
                )


def _resolve_names(
    conn: Connection,
    ws: Workspace,
    f: FieldDef,
    rows: Sequence[PreparedRow | None],
    errors: dict[int, str],
) -> list[str]:
    """Link by name; the ids of the targets created for it."""
    assert f.relation is not None
    target = ws.object(f.relation)
    wanted: dict[str, str] = {}
    for r in rows:
        if r and f.name in r.relation_names and (k := name_key(r.relation_names[f.name])):
            wanted.setdefault(k, r.relation_names[f.name])
    if not wanted:
        return []
    found = find_keys(conn, target.name, [("name", k) for k in wanted])
    ids = {k: found[("name", k)][0] for k in wanted if found.get(("name", k))}
    missing = [k for k in wanted if k not in ids]
    created: list[dict[str, Any]] = []
    if missing and _can_create_by_name(target):
        name_field = target.name_fields()[0]
        created = [new_row(validate_write(target, {name_field: wanted[k]}).values) for k in missing]
        insert_records(conn, ws, target, created)
        ids.update({k: row["id"] for k, row in zip(missing, created, strict=True)})
    for i, r in enumerate(rows):
        if r and f.name in r.relation_names:
            k = name_key(r.relation_names[f.name])
            if k in ids:
                r.values[f.column] = ids[k]
            else:
                name = r.relation_names[f.name]
                message = f"Field '{f.name}_name': no {f.relation} record named '{name}'"
                errors.setdefault(i, message)
    return [str(row["id"]) for row in created]


def lock_for_write(
    conn: Connection,
    ws: Workspace,
    obj: ObjectDef,
    rows: Iterable[tuple[PreparedRow, set[MatchKey]]],
) -> None:
    if is_sqlite(conn):
        return  # the write transaction holds SQLite's one write lock (``lock_keys``)
    names: list[str] = []
    for prepared, keys in rows:
        names += lock_names(obj.name, keys)
        names += relation_lock_names(ws, obj, [prepared])
    lock_keys(conn, names)


def rows_by_id(
    conn: Connection, ws: Workspace, obj: ObjectDef, ids: Iterable[str], *, for_update: bool = False
) -> dict[str, dict[str, Any]]:
    """Stored rows (every column) by id, batched; ``for_update`` locks them on PostgreSQL
    so that a merge does not overwrite a concurrent edit."""
    table = ws.table(obj.name)
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(ids))):
        stmt = select(table).where(table.c.id.in_(chunk))
        if for_update:
            stmt = stmt.with_for_update()
        out.update({row["id"]: dict(row) for row in conn.execute(stmt).mappings()})
    return out


def update_rows(
    conn: Connection, ws: Workspace, obj: ObjectDef, rows: Sequence[dict[str, Any]]
) -> None:
    """Write complete rows back by id (one ``executemany``) and replace their match keys."""
    if not rows:
        return
    table = ws.table(obj.name)
    columns = [c.name for c in table.columns if c.name != "id"]
    # The SET clause comes from the parameters' keys (SQLAlchemy reserves column names).
    stmt = update(table).where(table.c.id == bindparam("_id"))
    params = [{"_id": r["id"], **{c: r.get(c) for c in columns}} for r in rows]
    for chunk in _chunks(params):
        conn.execute(stmt, list(chunk))
    mk = tables.match_keys
    ids = [r["id"] for r in rows]
    for chunk in _chunks(ids):
        conn.execute(delete(mk).where(_keys_of(obj.name, chunk)))
    key_rows = [
        {"object_name": obj.name, "kind": kind, "value": value, "record_id": r["id"]}
        for r in rows
        for kind, value in match_keys_for(obj, r)
    ]
    insert_rows(conn, mk, key_rows)
