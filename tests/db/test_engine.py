"""The database layer: SQLite settings, writers that queue instead of failing,
migrations that run twice harmlessly, time-ordered ids."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import Engine, inspect, text

from kasar.db import tables
from kasar.db.engine import is_sqlite, read_transaction, write_transaction
from kasar.db.ids import new_id
from kasar.db.migrate import downgrade, upgrade
from kasar.jobs import repository as jobs_repo
from kasar.jobs.blobs import UPLOAD, blob_size, write_blob
from kasar.records import service
from kasar.records.repository import keys_of_records
from kasar.schema.repository import load_workspace


def test_sqlite_pragmas(engine: Engine) -> None:
    if not is_sqlite(engine):
        return
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60_000


def test_migrations_are_idempotent(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)
    with read_transaction(engine) as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version is not None
        assert list(load_workspace(conn).objects) == ["companies", "contacts", "opportunities"]


def test_concurrent_writers_queue_instead_of_failing(engine: Engine) -> None:
    """Eight threads each create 20 records in their own transactions at once: no
    "database is locked", every record stored."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(20):
                with write_transaction(engine) as conn:
                    ws = load_workspace(conn)
                    service.create_record(conn, ws, "contacts", {"first_name": f"w{n}-{i}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with read_transaction(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM obj_contacts")).scalar() == 160


def test_failed_write_transaction_leaves_nothing(engine: Engine) -> None:
    try:
        with write_transaction(engine) as conn:
            ws = load_workspace(conn)
            service.create_record(conn, ws, "contacts", {"first_name": "x", "company_name": "Acme"})
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with read_transaction(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM obj_contacts")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM obj_companies")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM kasar_match_keys")).scalar() == 0


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def _indexes(engine: Engine, table: str) -> dict[str, list[str]]:
    return {
        str(ix["name"]): [str(c) for c in ix["column_names"]]
        for ix in inspect(engine).get_indexes(table)
        if not ix.get("duplicates_constraint")  # PostgreSQL's index of a UNIQUE constraint
    }


def test_migrated_indexes_are_those_the_code_declares(engine: Engine) -> None:
    for table in tables.metadata.sorted_tables:
        declared = {str(ix.name): [c.name for c in ix.columns] for ix in table.indexes}
        assert _indexes(engine, table.name) == declared, table.name


def test_the_covering_key_index_migrates_both_ways_with_keys_stored(engine: Engine) -> None:
    row = {"object_name": "contacts", "kind": "email", "value": "a@x.org", "record_id": "r1"}
    with write_transaction(engine) as conn:
        conn.execute(tables.match_keys.insert(), [row])
    downgrade(engine, "0003")
    assert _indexes(engine, "kasar_match_keys") == {"ix_match_keys_record": ["record_id"]}
    upgrade(engine)
    assert _indexes(engine, "kasar_match_keys") == {
        "ix_match_keys_record_keys": ["record_id", "object_name", "kind", "value"]
    }
    with read_transaction(engine) as conn:
        assert keys_of_records(conn, "contacts", ["r1"]) == {"r1": {("email", "a@x.org")}}


def test_migration_0005_deletes_the_uploads_of_jobs_that_ended(engine: Engine) -> None:
    downgrade(engine, "0004")
    with write_transaction(engine) as conn:
        ids = {}
        for state in ("completed", "failed", "cancelled", "running", "queued"):
            job = jobs_repo.create_job(
                conn, kind="import", object_name="contacts", options={}, created_by="t"
            )
            jobs_repo.set_fields(conn, job.id, state=state)
            write_blob(conn, job.id, UPLOAD, [b"first_name\nAda\n"])
            write_blob(conn, job.id, "output", [b"kept"])
            ids[state] = job.id
    upgrade(engine)
    with read_transaction(engine) as conn:
        uploads = {s: blob_size(conn, i, UPLOAD) for s, i in ids.items()}
        outputs = {s: blob_size(conn, i, "output") for s, i in ids.items()}
    assert uploads == {"completed": 0, "failed": 0, "cancelled": 0, "running": 15, "queued": 15}
    assert set(outputs.values()) == {4}
