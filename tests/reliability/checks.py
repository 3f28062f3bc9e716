"""Checks shared by the reliability battery: the database's integrity (the
engine's own check plus Kasar's invariants), row counts, and error answers."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from kasar.db import tables
from kasar.db.engine import is_sqlite, read_transaction, snapshot_transaction
from kasar.dedup.keys import match_keys_for
from kasar.schema.repository import load_workspace
from kasar.schema.types import FieldType
from support import assert_error_shape

COUNTED = ("kasar_match_keys", "kasar_jobs", "kasar_job_blobs", "kasar_idempotency")


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows in every record table and in the system tables a write would touch."""
    with read_transaction(engine) as conn:
        ws = load_workspace(conn)
        counts = {
            name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for name, t in ws.tables.items()
        }
        for name in COUNTED:
            t = tables.metadata.tables[name]
            counts[name] = int(conn.execute(select(func.count()).select_from(t)).scalar_one())
    return counts


def integrity_problems(engine: Engine) -> list[str]:
    """Everything wrong with the stored data, as sentences (empty: all is well).

    SQLite's own ``integrity_check`` and ``foreign_key_check``; then, on both
    databases: every record has exactly the match keys its values give (no record
    without its keys, no key of a record that is gone or of a value it no longer
    holds), every relation and pipeline id points at an existing row.
    """
    problems: list[str] = []
    # One snapshot: on PostgreSQL the last commit of a server killed a moment ago can
    # land between two statements (its COMMIT was sent), and READ COMMITTED would then
    # see its keys and not its records.
    with snapshot_transaction(engine) as conn:
        if is_sqlite(conn):
            result = conn.exec_driver_sql("PRAGMA integrity_check").scalars().all()
            if result != ["ok"]:
                problems.append(f"integrity_check: {result[:5]}")
            fks = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if fks:
                problems.append(f"foreign_key_check: {fks[:5]}")
        ws = load_workspace(conn)
        mk = tables.match_keys
        ids: dict[str, set[str]] = {}
        for name, obj in ws.objects.items():
            table = ws.tables[name]
            rows = conn.execute(select(table)).mappings().all()
            ids[name] = {r["id"] for r in rows}
            expected = {(k, v, r["id"]) for r in rows for k, v in match_keys_for(obj, r)}
            stored = {
                (k, v, rid)
                for k, v, rid in conn.execute(
                    select(mk.c.kind, mk.c.value, mk.c.record_id).where(mk.c.object_name == name)
                )
            }
            orphans = {s for s in stored if s[2] not in ids[name]}
            if orphans:
                problems.append(f"{name}: {len(orphans)} match keys without their record")
            missing = expected - stored
            if missing:
                problems.append(
                    f"{name}: {len(missing)} records lack keys, e.g. {sorted(missing)[:3]}"
                )
            stale = stored - expected - orphans
            if stale:
                problems.append(f"{name}: {len(stale)} stale keys, e.g. {sorted(stale)[:3]}")
        step_ids = set(conn.execute(select(tables.pipeline_steps.c.id)).scalars())
        pipeline_ids = set(conn.execute(select(tables.pipelines.c.id)).scalars())
        for name, obj in ws.objects.items():
            table = ws.tables[name]
            for f in obj.fields:
                if f.type is FieldType.RELATION:
                    assert f.relation is not None
                    targets = ids[f.relation]
                    refs = conn.execute(
                        select(table.c[f.column]).where(table.c[f.column].isnot(None))
                    )
                    bad = [v for v in refs.scalars() if v not in targets]
                    if bad:
                        problems.append(f"{name}.{f.column}: {len(bad)} orphan relations")
                elif f.type is FieldType.PIPELINE:
                    got = conn.execute(select(table.c[f.column], table.c[f.step_column])).all()
                    bad = [g for g in got if g[0] not in pipeline_ids or g[1] not in step_ids]
                    if bad:
                        problems.append(f"{name}.{f.column}: {len(bad)} bad pipeline places")
    return problems


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The answer is ``status`` with the one error shape and ``code``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert_error_shape(status, body)
    assert body["code"] == code, body
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
