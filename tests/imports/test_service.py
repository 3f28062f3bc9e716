"""The import engine as a library, on SQLite and PostgreSQL (spec §6, §7, §11)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, func, select

from kasar.db import tables
from kasar.db.engine import read_transaction, write_transaction
from kasar.errors import InvalidObject, ValidationFailed
from kasar.imports.service import ImportOptions, ImportResult, import_records
from kasar.records import service as records
from kasar.records.query import RecordQuery
from kasar.schema.repository import load_workspace
from kasar.schema.schemas import ObjectIn
from kasar.schema.service import create_object

ALICE = {"first_name": "Alice", "last_name": "Martin", "email": "alice@example.com"}
BOB = {"first_name": "Bob", "last_name": "Dupont", "email": "bob@startup.io"}


def run(engine: Engine, object_name: str, recs: list[Any], **options: Any) -> ImportResult:
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        return import_records(conn, ws, object_name, recs, ImportOptions(**options))


def stored(engine: Engine, object_name: str) -> list[dict[str, Any]]:
    """Every record of the object, oldest first, with every key."""
    with read_transaction(engine) as conn:
        ws = load_workspace(conn)
        q = RecordQuery(records.default_keys(ws.object(object_name)), sort_dir="asc")
        return records.list_records(conn, ws, object_name, q, limit=100, cursor=None).data


def get(engine: Engine, object_name: str, record_id: str) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return records.get_record(conn, load_workspace(conn), object_name, record_id)


def summary(result: ImportResult) -> tuple[int, int, int]:
    return result.created, result.duplicates, result.failed


def one_dup(
    engine: Engine, object_name: str, first: dict[str, Any], second: dict[str, Any]
) -> list[str] | None:
    """Import ``first`` then ``second``; the kinds ``second`` matched on, or None if created."""
    (created,) = run(engine, object_name, [first]).results
    assert created.status == "created", created
    (res,) = run(engine, object_name, [second]).results
    if res.status == "created":
        return None
    assert res.duplicate_of == created.id
    return res.matched_on


# The seed's examples --------------------------------------------------------------


def test_seed_example_with_bob_already_stored(engine: Engine) -> None:
    run(engine, "contacts", [BOB])
    answer = run(engine, "contacts", [ALICE, BOB]).to_api()
    answer.pop("results")
    assert answer == {
        "object_name": "contacts",
        "created": 1,
        "duplicates": 1,
        "failed": 0,
        "errors": [],
    }
    assert [r["email"] for r in stored(engine, "contacts")] == [
        "bob@startup.io",
        "alice@example.com",
    ]


def test_seed_error_example(engine: Engine) -> None:
    answer = run(engine, "contacts", [ALICE, {**BOB, "email": "not-an-email"}]).to_api()
    assert list(answer) == ["object_name", "created", "duplicates", "failed", "errors", "results"]
    answer.pop("results")
    assert answer == {
        "object_name": "contacts",
        "created": 1,
        "duplicates": 0,
        "failed": 1,
        "errors": [
            {
                "index": 1,
                "code": "VALIDATION_ERROR",
                "message": "Field 'email' must be a valid email address",
            }
        ],
    }
    assert [r["first_name"] for r in stored(engine, "contacts")] == ["Alice"]


# Validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("object_name", "record", "message"),
    [
        ("contacts", {"first_name": "A", "nickname": "x"}, "Unknown field 'nickname'"),
        ("contacts", {"last_name": "B"}, "Field 'first_name' is required"),
        (
            "contacts",
            {"first_name": "A", "phone": "12"},
            "Field 'phone' must be a valid phone number",
        ),
        (
            "contacts",
            {"first_name": "A", "status": "vip"},
            "Field 'status' must be one of: lead, qualified, customer, churned",
        ),
        ("contacts", {"first_name": "A", "id": "short"}, "Field 'id' must be a record id (UUID)"),
        (
            "contacts",
            {"first_name": "A", "created_at": "yesterday"},
            "Field 'created_at' must be a date-time (ISO 8601)",
        ),
        (
            "companies",
            {"name": "Acme", "employees": "many"},
            "Field 'employees' must be an integer",
        ),
        (
            "opportunities",
            {"name": "Deal", "pipeline_step": "Nowhere"},
            "Field 'pipeline' step must be one of the steps of 'Sales Pipeline': "
            "Qualification, Discovery, Proposal, Negotiation, Closed Won",
        ),
        (
            "opportunities",
            {"name": "Deal", "contact_id": "00000000-0000-0000-0000-000000000000"},
            "Field 'contact_id' must be the id of an existing contacts record",
        ),
    ],
)
def test_a_bad_record_fails_alone(
    engine: Engine, object_name: str, record: dict[str, Any], message: str
) -> None:
    good = {"name": "Fine"} if object_name != "contacts" else {"first_name": "Fine"}
    result = run(engine, object_name, [good, record, {**good}])
    assert summary(result)[2] == 1
    assert result.errors == [{"index": 1, "code": "VALIDATION_ERROR", "message": message}]
    assert result.results[1].error == {"code": "VALIDATION_ERROR", "message": message}
    assert len(stored(engine, object_name)) == result.created


def test_several_problems_in_one_message(engine: Engine) -> None:
    result = run(engine, "contacts", [{"email": "x", "phone": "y"}])
    assert result.errors[0]["message"] == (
        "Field 'email' must be a valid email address; Field 'phone' must be a valid phone number; "
        "Field 'first_name' is required"
    )


def test_request_level_problems_write_nothing(engine: Engine) -> None:
    with pytest.raises(ValidationFailed, match="Record 1 must be a JSON object"):
        run(engine, "contacts", [ALICE, "Bob"])
    with pytest.raises(ValidationFailed, match="on_duplicate"):
        run(engine, "contacts", [ALICE], on_duplicate="merge")
    with pytest.raises(InvalidObject):
        run(engine, "unicorns", [ALICE])
    assert stored(engine, "contacts") == []


# Defaults and relations ----------------------------------------------------------------


def test_pipeline_defaults_on_every_created_opportunity(engine: Engine) -> None:
    result = run(
        engine, "opportunities", [{"name": "A"}, {"name": "B", "pipeline_step": "proposal"}]
    )
    a, b = (get(engine, "opportunities", r.id or "") for r in result.results)
    assert (a["pipeline"], a["pipeline_step"]) == ("Sales Pipeline", "Qualification")
    assert (b["pipeline"], b["pipeline_step"]) == ("Sales Pipeline", "Proposal")
    assert a["pipeline_id"] == b["pipeline_id"] and a["pipeline_step_id"]


def test_company_name_links_an_existing_company(engine: Engine) -> None:
    (company,) = run(engine, "companies", [{"name": "Société Générale"}]).results
    (res,) = run(
        engine, "contacts", [{"first_name": "A", "company_name": "societe  GENERALE"}]
    ).results
    assert get(engine, "contacts", res.id or "")["company_id"] == company.id
    assert len(stored(engine, "companies")) == 1


def test_company_created_once_for_a_batch(engine: Engine) -> None:
    names = ["Société Générale", "societe generale", " SOCIÉTÉ  GÉNÉRALE "]
    result = run(
        engine,
        "contacts",
        [{"first_name": f"P{i}", "company_name": n} for i, n in enumerate(names)],
    )
    assert summary(result) == (3, 0, 0)
    (company,) = stored(engine, "companies")
    assert company["name"] == "Société Générale"
    assert {r["company_id"] for r in stored(engine, "contacts")} == {company["id"]}


def test_skipped_duplicate_creates_no_company(engine: Engine) -> None:
    run(engine, "contacts", [BOB])
    result = run(engine, "contacts", [{**BOB, "company_name": "NewCo"}])
    assert summary(result) == (0, 1, 0)
    assert stored(engine, "companies") == []


def test_relation_failure_does_not_shadow_later_records(engine: Engine) -> None:
    bad = {**ALICE, "company_id": "00000000-0000-0000-0000-000000000000"}
    result = run(engine, "contacts", [bad, ALICE])
    assert [r.status for r in result.results] == ["failed", "created"]


# Match rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "matched_on"),
    [
        ({"email": "jean@example.com"}, {"email": "  JEAN@Example.COM "}, ["email"]),
        ({"email": "jean@example.com"}, {"email": "ｊｅａｎ@example.com"}, ["email"]),
        (
            {"email": ["a@x.io", "jean@example.com"]},
            {"email": ["jean@EXAMPLE.com", "z@x.io"]},
            ["email"],
        ),
        ({"phone": "06 12 34 56 78"}, {"phone": "+33 6 12 34 56 78"}, ["phone"]),
        ({"phone": "06 12 34 56 78"}, {"phone": "0033612345678"}, ["phone"]),
        (
            {"linkedin": "https://www.linkedin.com/in/jean-dupont/"},
            {"linkedin": "jean-dupont"},
            ["linkedin"],
        ),
        (
            {"linkedin": "linkedin.com/in/Jean-Dupont?trk=x"},
            {"linkedin": "@jean-dupont"},
            ["linkedin"],
        ),
    ],
)
def test_strong_keys_match_across_spellings(
    engine: Engine, first: dict[str, Any], second: dict[str, Any], matched_on: list[str]
) -> None:
    a = {"first_name": "Jean", "last_name": "Dupont", **first}
    b = {"first_name": "Someone", "last_name": "Else", **second}
    assert one_dup(engine, "contacts", a, b) == matched_on


def test_name_rule_for_contacts(engine: Engine) -> None:
    a = {"first_name": "Éloïse", "last_name": "Durand"}
    assert one_dup(engine, "contacts", a, {"first_name": " eloise ", "last_name": "DURAND"}) == [
        "name"
    ]


def test_name_rule_ignores_a_lone_first_name(engine: Engine) -> None:
    assert one_dup(engine, "contacts", {"first_name": "Bob"}, {"first_name": "bob"}) is None


@pytest.mark.parametrize(
    ("first", "second", "duplicate"),
    [
        ({"email": "john@a.io"}, {"email": "john@b.io"}, False),
        ({"phone": "0612345678"}, {"phone": "0698765432"}, False),
        ({"email": "john@a.io", "phone": "0612345678"}, {"email": "john@b.io"}, False),
        ({"email": "john@a.io"}, {}, True),
        ({}, {"phone": "0612345678"}, True),
        ({"email": "john@a.io"}, {"phone": "0612345678"}, True),
    ],
)
def test_homonym_exception(
    engine: Engine, first: dict[str, Any], second: dict[str, Any], duplicate: bool
) -> None:
    a = {"first_name": "John", "last_name": "Smith", **first}
    b = {"first_name": "john", "last_name": "SMITH", **second}
    assert one_dup(engine, "contacts", a, b) == (["name"] if duplicate else None)


def test_company_domain_and_name(engine: Engine) -> None:
    acme = {"name": "Acme", "domain": "https://www.acme.com/about"}
    assert one_dup(engine, "companies", acme, {"name": "Acme Holding", "domain": "ACME.com"}) == [
        "domain"
    ]
    assert run(engine, "companies", [{"name": " ACMÉ "}]).results[0].matched_on == ["name"]
    phoned = run(engine, "companies", [{"name": "Globex", "phone": "0140000000"}])
    other = run(engine, "companies", [{"name": "globex", "phone": "0150000000"}])
    assert (summary(phoned), summary(other)) == ((1, 0, 0), (1, 0, 0))


def test_opportunities_have_no_name_rule(engine: Engine) -> None:
    assert one_dup(engine, "opportunities", {"name": "Renewal"}, {"name": "Renewal"}) is None


def test_custom_object_matches_on_emails_and_phones(engine: Engine) -> None:
    spec = {
        "name": "tickets",
        "fields": [
            {"name": "subject", "type": "TEXT", "required": True},
            {"name": "requester", "type": "EMAILS"},
            {"name": "callback", "type": "PHONES"},
        ],
    }
    with write_transaction(engine) as conn:
        create_object(conn, load_workspace(conn), ObjectIn.model_validate(spec))
    t = {"subject": "Broken", "requester": "a@x.io", "callback": "06 12 34 56 78"}
    assert one_dup(engine, "tickets", t, {"subject": "Other", "requester": "A@X.IO"}) == ["email"]
    assert run(engine, "tickets", [{"subject": "x", "callback": "+33612345678"}]).results[
        0
    ].matched_on == ["phone"]
    assert summary(run(engine, "tickets", [{"subject": "Broken"}])) == (1, 0, 0)


def test_duplicates_within_one_request(engine: Engine) -> None:
    result = run(
        engine,
        "contacts",
        [
            {"first_name": "A", "email": "a@x.io", "phone": "0612345678"},
            {"first_name": "B", "email": "b@x.io", "phone": "+33612345678"},
            {"first_name": "C", "email": "B@X.IO"},
            {"first_name": "D", "email": "d@x.io"},
        ],
    )
    assert summary(result) == (2, 2, 0)
    a, b, c, d = result.results
    assert (b.duplicate_of, b.matched_on) == (a.id, ["phone"])
    assert (c.duplicate_of, c.matched_on) == (a.id, ["email"])
    assert d.status == "created" and d.id != a.id
    assert {r["first_name"] for r in stored(engine, "contacts")} == {"A", "D"}


def test_results_list(engine: Engine) -> None:
    (bob,) = run(engine, "contacts", [BOB]).results
    answer = run(
        engine, "contacts", [ALICE, {**BOB, "email": "BOB@startup.io"}, {"first_name": ""}]
    ).to_api()
    alice_id = stored(engine, "contacts")[1]["id"]
    assert answer["results"] == [
        {"index": 0, "status": "created", "id": alice_id},
        {
            "index": 1,
            "status": "duplicate",
            "duplicate_of": bob.id,
            "matched_on": ["email", "name"],
        },
        {
            "index": 2,
            "status": "failed",
            "error": {"code": "VALIDATION_ERROR", "message": "Field 'first_name' is required"},
        },
    ]


def test_export_shaped_records_import_back_unchanged(engine: Engine) -> None:
    rid = "0190f0a0-0000-7000-8000-000000000001"
    rec = {
        **ALICE,
        "id": rid,
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-06-01T10:00:00Z",
    }
    assert run(engine, "contacts", [rec]).results[0].id == rid
    back = get(engine, "contacts", rid)
    assert (back["created_at"], back["updated_at"]) == (
        "2024-05-01T10:00:00Z",
        "2024-06-01T10:00:00Z",
    )
    again = run(
        engine,
        "contacts",
        [{"first_name": "Renamed", "id": rid}, {"first_name": "X", "id": rid.upper()}],
    )
    assert [(r.duplicate_of, r.matched_on) for r in again.results] == [(rid, ["id"]), (rid, ["id"])]


# Options ------------------------------------------------------------------------------


def test_dry_run_writes_nothing(engine: Engine) -> None:
    run(engine, "contacts", [BOB])
    batch = [ALICE, BOB, {"first_name": "C", "company_name": "NewCo"}, {"email": "bad"}]
    dry = run(engine, "contacts", batch, dry_run=True)
    assert summary(dry) == (2, 1, 1)
    assert len(stored(engine, "contacts")) == 1 and stored(engine, "companies") == []
    with read_transaction(engine) as conn:
        assert conn.execute(select(func.count()).select_from(tables.match_keys)).scalar_one() == 2
    assert summary(run(engine, "contacts", batch)) == summary(dry)


def test_dry_run_with_update_changes_nothing(engine: Engine) -> None:
    (bob,) = run(engine, "contacts", [BOB]).results
    result = run(
        engine, "contacts", [{**BOB, "city": "Paris"}], dry_run=True, on_duplicate="update"
    )
    assert result.updated == 1
    assert get(engine, "contacts", bob.id or "")["city"] is None


def test_on_duplicate_update_fills_empty_fields(engine: Engine) -> None:
    (bob,) = run(engine, "contacts", [{**BOB, "job_title": "CTO"}]).results
    incoming = {
        **BOB,
        "job_title": "CEO",
        "phone": "06 12 34 56 78",
        "company_name": "Startup",
        "city": "",
    }
    result = run(engine, "contacts", [incoming], on_duplicate="update")
    answer = result.to_api()
    assert (answer["duplicates"], answer["updated"]) == (1, 1)
    assert answer["results"][0]["updated"] is True
    after = get(engine, "contacts", bob.id or "")
    assert (after["job_title"], after["phone"], after["company_name"]) == (
        "CTO",
        "+33612345678",
        "Startup",
    )
    assert after["updated_at"] > after["created_at"]
    # The new phone is now a match key of the stored record.
    assert (
        run(engine, "contacts", [{"first_name": "Z", "phone": "+33612345678"}])
        .results[0]
        .duplicate_of
        == bob.id
    )
    # Nothing left to fill: a duplicate, not updated.
    again = run(engine, "contacts", [incoming], on_duplicate="update")
    assert (again.duplicates, again.updated) == (1, 0)


def test_on_duplicate_overwrite_replaces_given_fields(engine: Engine) -> None:
    (bob,) = run(
        engine, "contacts", [{**BOB, "job_title": "CTO", "city": "Lyon", "company_name": "Old"}]
    ).results
    incoming = {
        "first_name": "Robert",
        "email": "bob@startup.io",
        "job_title": "CEO",
        "city": "",
        "company_name": "New",
    }
    result = run(engine, "contacts", [incoming], on_duplicate="overwrite")
    assert (result.duplicates, result.updated, result.created) == (1, 1, 0)
    after = get(engine, "contacts", bob.id or "")
    assert (after["first_name"], after["last_name"], after["job_title"]) == (
        "Robert",
        "Dupont",
        "CEO",
    )
    assert (after["city"], after["company_name"]) == ("Lyon", "New")  # empty values never erase


def test_overwrite_keeps_the_pipeline_step_unless_given(engine: Engine) -> None:
    (deal,) = run(
        engine,
        "opportunities",
        [
            {
                "name": "Deal",
                "pipeline_step": "Proposal",
                "id": "0190f0a0-0000-7000-8000-0000000000aa",
            }
        ],
    ).results
    run(
        engine,
        "opportunities",
        [{"id": deal.id, "name": "Deal", "amount": 10}],
        on_duplicate="overwrite",
    )
    after = get(engine, "opportunities", deal.id or "")
    assert (after["amount"], after["pipeline_step"]) == (10, "Proposal")


def test_update_within_one_request(engine: Engine) -> None:
    batch = [
        {"first_name": "A", "email": "a@x.io"},
        {"first_name": "A", "email": "a@x.io", "city": "Paris"},
        {"first_name": "A", "email": "a@x.io", "city": "Lyon"},
    ]
    result = run(engine, "contacts", batch, on_duplicate="update")
    assert (result.created, result.duplicates, result.updated) == (1, 2, 1)
    assert stored(engine, "contacts")[0]["city"] == "Paris"
    result = run(engine, "contacts", batch[1:], on_duplicate="overwrite")
    assert stored(engine, "contacts")[0]["city"] == "Lyon"


def test_updated_key_only_with_update_or_overwrite(engine: Engine) -> None:
    assert "updated" not in run(engine, "contacts", [ALICE]).to_api()
    assert run(engine, "contacts", [ALICE], on_duplicate="overwrite").to_api()["updated"] == 0


# Cost --------------------------------------------------------------------------------


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def listener(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def batch(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "first_name": f"F{i}",
            "last_name": f"L{i}",
            "email": f"p{i}@x.io",
            "company_name": f"Co{i % 3}",
        }
        for i in range(start, start + n)
    ]


def test_statement_count_does_not_grow_with_batch_or_table(engine: Engine) -> None:
    """The same shape of batch (new records, duplicates, known companies) costs the
    same statements with 5 or 50 records, and with 20 or 420 records stored."""
    run(engine, "contacts", batch(0, 20))
    with count_statements(engine) as small:
        run(engine, "contacts", batch(100, 5) + batch(0, 5))
    run(engine, "contacts", batch(1000, 400))
    with count_statements(engine) as large:
        run(engine, "contacts", batch(200, 45) + batch(1000, 5))
    assert len(large) == len(small), (small, large)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "first_name": st.sampled_from(["Ann", "Bo", ""]),
                "last_name": st.sampled_from(["Lee", "Ng"]),
            },
            optional={
                "email": st.sampled_from(["a@x.io", "A@X.IO", "b@x.io", "bad"]),
                "phone": st.sampled_from(["0612345678", "+33612345678", "0698765432"]),
            },
        ),
        min_size=1,
        max_size=12,
    )
)
def test_counts_add_up(engine: Engine, recs: list[dict[str, Any]]) -> None:
    result = run(engine, "contacts", recs, dry_run=True)
    assert result.created + result.duplicates + result.failed == len(recs)
    assert [r.index for r in result.results] == list(range(len(recs)))


@pytest.mark.parametrize("on_duplicate", ["skip", "update", "overwrite"])
def test_a_created_record_keeps_the_keys_a_later_duplicate_gave_it(
    engine: Engine, on_duplicate: str
) -> None:
    """The keys a row was matched on are stored with it, unless a later row of the
    same batch merged into it: then its keys are those of its final values."""
    batch = [
        {"first_name": "Ada", "last_name": "Lovelace"},
        {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io"},
    ]
    result = run(engine, "contacts", batch, on_duplicate=on_duplicate)
    assert summary(result) == (1, 1, 0)
    rid = result.results[0].id
    with read_transaction(engine) as conn:
        mk = tables.match_keys
        keys = set(conn.execute(select(mk.c.kind, mk.c.value).where(mk.c.record_id == rid)))
    expected = {("name", "ada lovelace")}
    if on_duplicate != "skip":
        expected.add(("email", "ada@x.io"))
    assert keys == expected
    assert get(engine, "contacts", rid or "")["email"] == (
        None if on_duplicate == "skip" else "ada@x.io"
    )
