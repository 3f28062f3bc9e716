"""Merge and unmerge as a library, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from kasar.db import tables
from kasar.db.engine import read_transaction, write_transaction
from kasar.dedup.merge import merge_records, unmerge
from kasar.errors import Conflict, NotFound, ValidationFailed
from kasar.imports.service import ImportOptions, import_records
from kasar.records.service import create_record, get_record, update_record
from kasar.schema.repository import load_workspace, now_utc


def make(engine: Engine, object_name: str, record: dict[str, Any]) -> str:
    with write_transaction(engine) as conn:
        return str(create_record(conn, load_workspace(conn), object_name, record)["id"])


def get(engine: Engine, object_name: str, record_id: str) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return get_record(conn, load_workspace(conn), object_name, record_id)


def merge(engine: Engine, object_name: str, master: str, dups: list[str]) -> dict[str, Any]:
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        return merge_records(conn, ws, object_name, master, dups, created_by="admin-1")


def undo(engine: Engine, merge_id: str) -> dict[str, Any]:
    with write_transaction(engine) as conn:
        return unmerge(conn, load_workspace(conn), merge_id)


def exists(engine: Engine, object_name: str, record_id: str) -> bool:
    try:
        get(engine, object_name, record_id)
    except NotFound:
        return False
    return True


@pytest.fixture
def crm(engine: Engine) -> dict[str, str]:
    """Two copies of one company and of one contact, and what points at them."""
    ids = {
        "acme": make(engine, "companies", {"name": "Acme", "city": "Paris"}),
        "acme2": make(
            engine,
            "companies",
            {"name": "ACME Inc", "domain": "acme.com", "phone": "0140000000", "city": "Lyon"},
        ),
    }
    ids["ann"] = make(
        engine,
        "contacts",
        {
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@acme.com",
            "company_id": ids["acme"],
        },
    )
    ids["ann2"] = make(
        engine,
        "contacts",
        {
            "first_name": "Anne",
            "last_name": "Lee",
            "email": ["ann.lee@home.org", "ANN@acme.com"],
            "phone": "0612345678",
            "job_title": "CTO",
            "company_id": ids["acme2"],
        },
    )
    ids["bob"] = make(
        engine, "contacts", {"first_name": "Bob", "last_name": "Ray", "company_id": ids["acme2"]}
    )
    ids["deal"] = make(
        engine,
        "opportunities",
        {"name": "Deal", "contact_id": ids["ann2"], "company_id": ids["acme2"]},
    )
    return ids


def test_merge_fills_adds_repoints_and_deletes(engine: Engine, crm: dict[str, str]) -> None:
    before = get(engine, "contacts", crm["ann"])
    answer = merge(engine, "contacts", crm["ann"], [crm["ann2"]])
    master = answer["master"]
    assert answer["merged_ids"] == [crm["ann2"]]
    assert master["first_name"] == "Ann"  # filled fields are kept
    assert master["job_title"] == "CTO"  # empty ones are filled
    assert master["company_id"] == crm["acme"]
    assert master["email_all"] == ["ann@acme.com", "ann.lee@home.org"]  # one per key
    assert master["phone_all"] == ["+33612345678"]
    assert master["updated_at"] > before["updated_at"]
    assert not exists(engine, "contacts", crm["ann2"])
    assert get(engine, "opportunities", crm["deal"])["contact_id"] == crm["ann"]
    # the master now holds the duplicate's keys: an import of them is a duplicate of it
    with write_transaction(engine) as conn:
        again = {"first_name": "X", "email": "ann.lee@home.org"}
        res = import_records(conn, load_workspace(conn), "contacts", [again], ImportOptions())
    assert res.results[0].duplicate_of == crm["ann"]


def test_merging_companies_repoints_contacts_and_opportunities(
    engine: Engine, crm: dict[str, str]
) -> None:
    master = merge(engine, "companies", crm["acme"], [crm["acme2"]])["master"]
    assert (master["city"], master["domain"], master["phone"]) == (
        "Paris",
        "acme.com",
        "+33140000000",
    )
    for object_name, rid in [
        ("contacts", crm["ann2"]),
        ("contacts", crm["bob"]),
        ("opportunities", crm["deal"]),
    ]:
        assert get(engine, object_name, rid)["company_id"] == crm["acme"]


def test_unmerge_restores_everything(engine: Engine, crm: dict[str, str]) -> None:
    before = {
        k: get(engine, o, crm[k])
        for k, o in [("ann", "contacts"), ("ann2", "contacts"), ("deal", "opportunities")]
    }
    merge_id = merge(engine, "contacts", crm["ann"], [crm["ann2"]])["merge_id"]
    answer = undo(engine, merge_id)
    assert answer["restored_ids"] == [crm["ann2"]]
    after = {
        k: get(engine, o, crm[k])
        for k, o in [("ann", "contacts"), ("ann2", "contacts"), ("deal", "opportunities")]
    }
    for key in before:
        changed = {k for k in before[key] if before[key][k] != after[key][k]}
        assert changed <= {"updated_at"}, (key, changed)
    assert answer["master"] == after["ann"]
    # the keys went back with the records
    with write_transaction(engine) as conn:
        again = {"first_name": "X", "email": "ann.lee@home.org"}
        res = import_records(conn, load_workspace(conn), "contacts", [again], ImportOptions())
    assert res.results[0].duplicate_of == crm["ann2"]
    with pytest.raises(Conflict, match="already undone"):
        undo(engine, merge_id)


def test_unmerge_restores_company_pointers(engine: Engine, crm: dict[str, str]) -> None:
    merge_id = merge(engine, "companies", crm["acme"], [crm["acme2"]])["merge_id"]
    with write_transaction(engine) as conn:  # Bob moves on: his edit is kept
        other = create_record(conn, load_workspace(conn), "companies", {"name": "Globex"})["id"]
        update_record(conn, load_workspace(conn), "contacts", crm["bob"], {"company_id": other})
    undo(engine, merge_id)
    assert get(engine, "contacts", crm["ann2"])["company_id"] == crm["acme2"]
    assert get(engine, "opportunities", crm["deal"])["company_id"] == crm["acme2"]
    assert get(engine, "contacts", crm["bob"])["company_id"] == other
    assert get(engine, "companies", crm["acme"])["domain"] is None


def test_unmerge_refuses_to_lose_edits_of_merged_fields(
    engine: Engine, crm: dict[str, str]
) -> None:
    merge_id = merge(engine, "contacts", crm["ann"], [crm["ann2"]])["merge_id"]
    with write_transaction(engine) as conn:
        edit = {"job_title": "CEO", "email": "ann@acme.com"}  # drops the merged address
        update_record(conn, load_workspace(conn), "contacts", crm["ann"], edit)
    with pytest.raises(Conflict) as caught:
        undo(engine, merge_id)
    assert caught.value.details == {"fields": ["email", "job_title"]}
    assert not exists(engine, "contacts", crm["ann2"])  # nothing happened


def test_unmerge_keeps_edits_of_other_fields(engine: Engine, crm: dict[str, str]) -> None:
    merge_id = merge(engine, "contacts", crm["ann"], [crm["ann2"]])["merge_id"]
    with write_transaction(engine) as conn:
        update_record(conn, load_workspace(conn), "contacts", crm["ann"], {"city": "Nice"})
    undo(engine, merge_id)
    master = get(engine, "contacts", crm["ann"])
    assert (master["city"], master["job_title"], master["email_all"]) == (
        "Nice",
        None,
        ["ann@acme.com"],
    )


def test_unmerge_after_the_retention_window(engine: Engine, crm: dict[str, str]) -> None:
    merge_id = merge(engine, "contacts", crm["ann"], [crm["ann2"]])["merge_id"]
    with write_transaction(engine) as conn:
        old = now_utc() - timedelta(days=31)
        conn.execute(update(tables.merges).values(created_at=old))
    with pytest.raises(Conflict, match="30-day retention window"):
        undo(engine, merge_id)
    merge(engine, "contacts", crm["ann"], [crm["bob"]])  # a new merge purges it
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(tables.merges)).scalar_one() == 1
    with pytest.raises(NotFound):
        undo(engine, merge_id)


def test_unmerge_when_the_master_is_gone(engine: Engine, crm: dict[str, str]) -> None:
    merge_id = merge(engine, "contacts", crm["ann"], [crm["ann2"]])["merge_id"]
    with write_transaction(engine) as conn:
        conn.execute(update(tables.merges).values(master_id="nope"))
    with pytest.raises(Conflict, match="deleted after the merge"):
        undo(engine, merge_id)


def test_bad_merges(engine: Engine, crm: dict[str, str]) -> None:
    with pytest.raises(ValidationFailed, match="at least one record"):
        merge(engine, "contacts", crm["ann"], [])
    with pytest.raises(ValidationFailed, match="cannot be merged into itself"):
        merge(engine, "contacts", crm["ann"], [crm["ann2"], crm["ann"]])
    with pytest.raises(NotFound, match="No contacts record with id 'nope'") as caught:
        merge(engine, "contacts", crm["ann"], ["nope", "nada"])
    assert caught.value.details == {"missing_ids": ["nope", "nada"]}
    with pytest.raises(NotFound, match="'nope'"):
        merge(engine, "contacts", "nope", [crm["ann"]])
    with pytest.raises(ValidationFailed, match="is a companies record, not a contacts record"):
        merge(engine, "contacts", crm["ann"], [crm["acme"]])
    with pytest.raises(NotFound, match="No merge"):
        undo(engine, "nope")
    assert exists(engine, "contacts", crm["ann2"]) and exists(engine, "companies", crm["acme"])
