"""Undoing an import job: delete the records it created, put back the fields it
updated from their before-images, and leave alone (and report) every record
changed since: one whose ``updated_at`` is later than the job's end, or whose
fields no longer hold what the job wrote.

One transaction, so that an undo is all or nothing and a second one is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, select

from kasar.db import tables
from kasar.errors import Conflict
from kasar.jobs import repository as jobs_repo
from kasar.records import repository as repo
from kasar.schema.model import ObjectDef
from kasar.schema.repository import Workspace, now_utc

PAGE = 1000
SKIPPED_SHOWN = 1000
JR = tables.job_rows
JL = tables.job_linked


def dump_changes(changes: dict[str, tuple[Any, Any]]) -> str:
    """A before-image: ``{"before": {column: value}, "after": {column: value}}``."""
    return json.dumps(
        {
            "before": {c: _encode(before) for c, (before, _) in changes.items()},
            "after": {c: _encode(after) for c, (_, after) in changes.items()},
        }
    )


def load_changes(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    image = json.loads(text)
    before = {c: _decode(v) for c, v in image["before"].items()}
    return before, {c: _decode(v) for c, v in image["after"].items()}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$datetime" in value:
        return datetime.fromisoformat(value["$datetime"])
    if isinstance(value, dict) and "$date" in value:
        return date.fromisoformat(value["$date"])
    return value


@dataclass
class UndoResult:
    deleted: int = 0
    restored: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    deleted_linked: dict[str, int] = field(default_factory=dict)

    def skip(self, record_id: str, reason: str) -> None:
        self.skipped.append({"id": record_id, "reason": reason})

    def to_api(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "restored": self.restored,
            "deleted_linked": self.deleted_linked,
            "skipped": len(self.skipped),
            "skipped_records": self.skipped[:SKIPPED_SHOWN],
        }


def undo_job(conn: Connection, ws: Workspace, job_id: str) -> UndoResult:
    """Raises Conflict for a job that has not ended, a dry run, or a second undo."""
    job = jobs_repo.get_job(conn, job_id, kind="import", for_update=True)
    if job.state not in jobs_repo.FINAL_STATES:
        raise Conflict(f"Import job '{job_id}' is {job.state}; cancel it or wait for its end")
    if job.row["undone_at"] is not None:
        raise Conflict(f"Import job '{job_id}' was already undone")
    if job.options.get("dry_run"):
        raise Conflict(f"Import job '{job_id}' was a dry run: it wrote no records")
    finished: datetime = job.row["finished_at"] or now_utc()
    obj = ws.object(job.object_name)
    out = UndoResult()
    _delete_created(conn, ws, obj, job_id, finished, out)
    _restore_updated(conn, ws, obj, job_id, finished, out)
    _delete_linked(conn, ws, job_id, finished, out)
    jobs_repo.set_fields(conn, job_id, undone_at=now_utc())
    return out


def _delete_created(
    conn: Connection, ws: Workspace, obj: ObjectDef, job_id: str, end: datetime, out: UndoResult
) -> None:
    table = ws.table(obj.name)
    created = select(JR.c.row_number, JR.c.record_id).where(
        JR.c.job_id == job_id, JR.c.status == "created"
    )
    for page in _pages(conn, created, JR.c.row_number, 0):
        ids = _unchanged(conn, table, [str(row[1]) for row in page], end, out)
        out.deleted += repo.delete_records(conn, ws, obj, ids)


def _pages(
    conn: Connection, stmt: Select[Any], key: ColumnElement[Any], start: object
) -> Iterator[Sequence[Sequence[Any]]]:
    """``stmt``'s rows in pages of ``PAGE``, in the order of ``key`` (its first
    column), each page read after the last key of the page before: the caller may
    delete what a page holds before asking for the next."""
    last = start
    while page := conn.execute(stmt.where(key > last).order_by(key).limit(PAGE)).all():
        yield page
        last = page[-1][0]


def _unchanged(
    conn: Connection, table: Table, ids: list[str], end: datetime, out: UndoResult, what: str = ""
) -> list[str]:
    """Those of ``ids`` still stored and not changed since ``end``, locked; the others
    are reported as skipped (``what`` names their object when it is not the job's)."""
    stamps = dict(
        conn.execute(
            select(table.c.id, table.c.updated_at).where(table.c.id.in_(ids)).with_for_update()
        ).all()
    )
    kept = []
    for rid in ids:
        if rid not in stamps:
            out.skip(rid, f"{what}deleted since the import")
        elif stamps[rid] > end:
            out.skip(rid, f"{what}changed since the import")
        else:
            kept.append(rid)
    return kept


def _restore_updated(
    conn: Connection, ws: Workspace, obj: ObjectDef, job_id: str, end: datetime, out: UndoResult
) -> None:
    """Per record the job updated (and did not create): the first before-image of
    each column is restored, if every column still holds the job's last write."""
    mine = (JR.c.job_id == job_id) & (JR.c.status == "updated")
    updated = select(JR.c.record_id).where(mine).group_by(JR.c.record_id)
    for page in _pages(conn, updated, JR.c.record_id, ""):
        ids = [str(rid) for (rid,) in page]
        created = set(
            conn.execute(
                select(JR.c.record_id).where(
                    JR.c.job_id == job_id, JR.c.status == "created", JR.c.record_id.in_(ids)
                )
            ).scalars()
        )
        images: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for rid, image in conn.execute(
            select(JR.c.record_id, JR.c.before_image)
            .where(mine, JR.c.record_id.in_(ids))
            .order_by(JR.c.record_id, JR.c.row_number)
        ):
            if rid in created or image is None:
                continue
            first, latest = images.setdefault(rid, ({}, {}))
            before, after = load_changes(image)
            for column, value in before.items():
                first.setdefault(column, value)
            latest.update(after)
        stored = repo.rows_by_id(conn, ws, obj, list(images), for_update=True)
        restored = []
        for rid, (first, latest) in images.items():
            row = stored.get(rid)
            if row is None:
                out.skip(rid, "deleted since the import")
            elif row["updated_at"] > end or any(row.get(c) != v for c, v in latest.items()):
                out.skip(rid, "changed since the import")
            else:
                restored.append({**row, **first, "updated_at": now_utc()})
        repo.update_rows(conn, ws, obj, restored)
        out.restored += len(restored)


def _delete_linked(
    conn: Connection, ws: Workspace, job_id: str, end: datetime, out: UndoResult
) -> None:
    """The records the job created to link by name (companies), once the job's own
    records are gone: each one unchanged since and that no record links to any more."""
    names = conn.execute(select(JL.c.object_name).where(JL.c.job_id == job_id).distinct()).scalars()
    for name in sorted(names):
        if name not in ws.objects:
            continue  # the object was deleted since, and its records with it
        target = ws.object(name)
        table = ws.table(name)
        linked = select(JL.c.record_id).where(JL.c.job_id == job_id, JL.c.object_name == name)
        for page in _pages(conn, linked, JL.c.record_id, ""):
            ids = [str(rid) for (rid,) in page]
            kept = _unchanged(conn, table, ids, end, out, what=f"{name} record ")
            linked_to = _linked_to(conn, ws, name, kept)
            for rid in kept:
                if rid in linked_to:
                    out.skip(rid, f"{name} record still linked to by other records")
            doomed = [rid for rid in kept if rid not in linked_to]
            if doomed:
                count = repo.delete_records(conn, ws, target, doomed)
                out.deleted_linked[name] = out.deleted_linked.get(name, 0) + count


def _linked_to(conn: Connection, ws: Workspace, name: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` (records of ``name``) a relation field of any record holds."""
    found: set[str] = set()
    if not ids:
        return found
    for other, f in ws.relations_to(name):
        column = ws.table(other.name).c[f.column]
        found.update(str(v) for v in conn.execute(select(column).where(column.in_(ids))).scalars())
    return found
