"""All SQL of the job queue: create, read, claim, heartbeat, finish.

A job is claimed by one worker at a time: ``queued`` jobs, and ``running`` jobs
whose worker stopped sending heartbeats (it died), are taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite the write lock of
``BEGIN IMMEDIATE`` serialises claims.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from kasar.db import tables
from kasar.db.cursors import decode_cursor, encode_cursor
from kasar.db.ids import new_id
from kasar.errors import Conflict, NotFound
from kasar.jobs.blobs import UPLOAD, delete_blob
from kasar.schema.repository import now_utc

STATES = ("queued", "running", "completed", "failed", "cancelled")
FINAL_STATES = ("completed", "failed", "cancelled")
COUNTERS = ("rows_read", "created", "updated", "duplicates", "failed")
STALE_AFTER = timedelta(seconds=30)

J = tables.jobs


@dataclass(frozen=True)
class Job:
    row: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def kind(self) -> str:
        return str(self.row["kind"])

    @property
    def state(self) -> str:
        return str(self.row["state"])

    @property
    def object_name(self) -> str:
        return str(self.row["object_name"])

    @property
    def options(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.row["options"])
        return value

    @property
    def last_row(self) -> int:
        return int(self.row["last_row"])

    def to_api(self) -> dict[str, Any]:
        r = self.row
        counters = {c: int(r[c]) for c in COUNTERS}
        elapsed = (
            _seconds(r["started_at"], r["finished_at"] or now_utc()) if r["started_at"] else None
        )
        rate = round(counters["rows_read"] / elapsed, 1) if elapsed else None
        eta = None
        if rate and r["total_rows"] and r["state"] == "running":
            eta = round(max(int(r["total_rows"]) - counters["rows_read"], 0) / rate, 1)
        return {
            "id": r["id"],
            "kind": r["kind"],
            "object": r["object_name"],
            "state": r["state"],
            "options": self.options,
            "counters": counters,
            "total_rows": r["total_rows"],
            "rows_per_second": rate,
            "eta_seconds": eta,
            "created_by": r["created_by"],
            "created_at": iso(r["created_at"]),
            "started_at": iso(r["started_at"]),
            "finished_at": iso(r["finished_at"]),
            "undone_at": iso(r["undone_at"]),
            "error": r["error"],
            "cancel_requested": bool(r["cancel_requested"]),
        }


def _seconds(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 1e-6)


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as the API writes it."""
    return value.isoformat(timespec="microseconds") + "Z" if value else None


def create_job(
    conn: Connection,
    *,
    kind: str,
    object_name: str,
    options: dict[str, Any],
    created_by: str,
    job_id: str | None = None,
) -> Job:
    job_id = job_id or new_id()
    conn.execute(
        insert(J).values(
            id=job_id,
            kind=kind,
            object_name=object_name,
            state="queued",
            options=json.dumps(options),
            created_by=created_by,
            created_at=now_utc(),
        )
    )
    return get_job(conn, job_id)


def get_job(
    conn: Connection, job_id: str, *, kind: str | None = None, for_update: bool = False
) -> Job:
    query = select(J).where(J.c.id == job_id)
    if kind:
        query = query.where(J.c.kind == kind)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"No {kind or ''} job with id '{job_id}'".replace("  ", " "))
    return Job(dict(row))


def list_jobs(
    conn: Connection, *, kind: str, limit: int, before: tuple[datetime, str] | None
) -> list[Job]:
    query = select(J).where(J.c.kind == kind)
    if before:
        stamp, last_id = before
        query = query.where(
            or_(J.c.created_at < stamp, (J.c.created_at == stamp) & (J.c.id < last_id))
        )
    query = query.order_by(J.c.created_at.desc(), J.c.id.desc()).limit(limit)
    return [Job(dict(r)) for r in conn.execute(query).mappings()]


def page_jobs(
    conn: Connection, *, kind: str, limit: int, cursor: str | None
) -> tuple[list[Job], int, str | None]:
    """One page of a kind's jobs, newest first: (jobs, total, nextCursor)."""
    before = decode_cursor(cursor) if cursor else None
    jobs = list_jobs(conn, kind=kind, limit=limit + 1, before=before)
    total = conn.execute(select(func.count()).select_from(J).where(J.c.kind == kind)).scalar_one()
    page = jobs[:limit]
    next_cursor = (
        encode_cursor(page[-1].row["created_at"], page[-1].id) if len(jobs) > limit else None
    )
    return page, int(total), next_cursor


def claim_next(
    conn: Connection, worker_id: str, *, kinds: tuple[str, ...] = ("import", "export")
) -> Job | None:
    """Take the oldest runnable job for this worker, or None."""
    now = now_utc()
    runnable = or_(
        J.c.state == "queued", (J.c.state == "running") & (J.c.heartbeat_at < now - STALE_AFTER)
    )
    candidate = conn.execute(
        select(J.c.id)
        .where(runnable, J.c.kind.in_(kinds))
        .order_by(J.c.created_at, J.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if candidate is None:
        return None
    conn.execute(
        update(J)
        .where(J.c.id == candidate)
        .values(state="running", worker_id=worker_id, heartbeat_at=now, attempts=J.c.attempts + 1)
    )
    conn.execute(
        update(J).where(J.c.id == candidate, J.c.started_at.is_(None)).values(started_at=now)
    )
    return get_job(conn, candidate)


def heartbeat(conn: Connection, job_id: str, worker_id: str) -> bool:
    """Refresh the claim; False when the job is no longer this worker's."""
    done = conn.execute(
        update(J)
        .where(J.c.id == job_id, J.c.worker_id == worker_id, J.c.state == "running")
        .values(heartbeat_at=now_utc())
    )
    return done.rowcount == 1


def add_progress(
    conn: Connection, job_id: str, *, last_row: int | None = None, **deltas: int
) -> None:
    values: dict[str, Any] = {c: J.c[c] + n for c, n in deltas.items() if n}
    if last_row is not None:
        values["last_row"] = last_row
    values["heartbeat_at"] = now_utc()
    conn.execute(update(J).where(J.c.id == job_id).values(**values))


def set_fields(conn: Connection, job_id: str, **values: Any) -> None:
    conn.execute(update(J).where(J.c.id == job_id).values(**values))


def finish(conn: Connection, job_id: str, state: str, error: str | None = None) -> None:
    """The job's final state; its uploaded file goes (an export's output stays)."""
    delete_blob(conn, job_id, UPLOAD)
    conn.execute(
        update(J)
        .where(J.c.id == job_id)
        .values(state=state, error=error, finished_at=now_utc(), worker_id=None)
    )


def request_cancel(conn: Connection, job_id: str, kind: str) -> Job:
    """Cancel a queued job, ask a running one to stop; Conflict for one that ended
    otherwise (a cancelled one is answered as it is)."""
    job = get_job(conn, job_id, kind=kind, for_update=True)
    if job.state in ("completed", "failed"):
        raise Conflict(f"{kind.capitalize()} job '{job_id}' has already {job.state}")
    if job.state == "queued":
        finish(conn, job_id, "cancelled")
    elif job.state == "running":
        set_fields(conn, job_id, cancel_requested=True)
    return get_job(conn, job_id)
