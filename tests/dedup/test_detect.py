"""Duplicate detection over all records, exact and fuzzy, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from kasar.db.engine import read_transaction, write_transaction
from kasar.dedup.detect import detect_duplicates, find_groups
from kasar.errors import InvalidObject, ValidationFailed
from kasar.records.service import create_record
from kasar.schema.repository import load_workspace
from kasar.schema.schemas import ObjectIn
from kasar.schema.service import create_object


def make(engine: Engine, object_name: str, *records: dict[str, Any]) -> list[str]:
    """Store records as they are (the records API does not look for duplicates)."""
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        return [create_record(conn, ws, object_name, r)["id"] for r in records]


def groups(
    engine: Engine, object_name: str = "contacts", **kw: Any
) -> list[tuple[list[str], list[str]]]:
    """(ids, matched_on) of every group."""
    with read_transaction(engine) as conn:
        found = find_groups(conn, load_workspace(conn), object_name, **kw)
    return [(g.ids, g.matched_on) for g in found]


def detect(engine: Engine, object_name: str = "contacts", **kw: Any) -> dict[str, Any]:
    kw.setdefault("keys", ["id", "first_name", "last_name"])
    kw.setdefault("limit", 100)
    with read_transaction(engine) as conn:
        return detect_duplicates(conn, load_workspace(conn), object_name, **kw)


def test_each_strong_key_links_records(engine: Engine) -> None:
    ids = make(
        engine,
        "contacts",
        {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.org"},
        {"first_name": "Annie", "last_name": "L", "email": [" other@x.org", "ANN@example.org"]},
        {"first_name": "Bo", "last_name": "Ek", "phone": "06 12 34 56 78"},
        {"first_name": "Bob", "last_name": "E", "phone": "+33612345678"},
        {"first_name": "Cy", "last_name": "Oh", "linkedin": "https://www.linkedin.com/in/cy-oh/"},
        {"first_name": "C", "last_name": "O", "linkedin": "cy-oh"},
        {"first_name": "Solo", "last_name": "Person", "email": "solo@example.org"},
    )
    assert groups(engine) == [
        ([ids[0], ids[1]], ["email"]),
        ([ids[2], ids[3]], ["phone"]),
        ([ids[4], ids[5]], ["linkedin"]),
    ]


def test_company_name_and_domain(engine: Engine) -> None:
    ids = make(
        engine,
        "companies",
        {"name": "Acme"},
        {"name": "ACME "},
        {"name": "Globex", "domain": "https://www.globex.com/about"},
        {"name": "Globex France", "domain": "globex.com"},
    )
    assert groups(engine, "companies") == [([ids[0], ids[1]], ["name"]), (ids[2:], ["domain"])]


def test_the_homonym_rule(engine: Engine) -> None:
    """Same name, different emails: two people. A third record with that name and no
    email could be either: it joins neither (ambiguous), and never merges the two."""
    ids = make(
        engine,
        "contacts",
        {"first_name": "John", "last_name": "Smith", "email": "john@one.org"},
        {"first_name": "John", "last_name": "Smith", "email": "john@two.org"},
        {"first_name": "John", "last_name": "Smith"},
        {"first_name": "Mary", "last_name": "Jones", "email": "mary@one.org"},
        {"first_name": "MARY", "last_name": "jones"},  # one candidate: a duplicate
        {"first_name": "Mary", "last_name": "Jones", "phone": "0612345678"},
    )
    assert groups(engine) == [([ids[3], ids[4], ids[5]], ["name"])]
    for mode in ("exact", "fuzzy"):
        members = {rid for g, _ in groups(engine, mode=mode) for rid in g}
        assert not {ids[0], ids[1], ids[2]} & members, mode


def test_strong_links_join_through_a_homonym_conflict(engine: Engine) -> None:
    """One person may have two emails: a shared phone ties them even so."""
    ids = make(
        engine,
        "contacts",
        {"first_name": "Eve", "last_name": "Ray", "email": "eve@work.org", "phone": "0611111111"},
        {"first_name": "Eve", "last_name": "Ray", "email": "eve@home.org", "phone": "0611111111"},
    )
    assert groups(engine) == [(ids, ["phone", "name"])]


def test_a_contact_name_needs_first_and_last_name(engine: Engine) -> None:
    make(engine, "contacts", {"first_name": "Bob"}, {"first_name": "bob"})
    assert groups(engine) == groups(engine, mode="fuzzy") == []


def test_fuzzy_mode_finds_what_exact_keys_miss(engine: Engine) -> None:
    ids = make(
        engine,
        "contacts",
        {"first_name": "Robert", "last_name": "Brown", "email": "rb@example.org"},
        {"first_name": "Bob", "last_name": "Brown"},
        {"first_name": "Jonathan", "last_name": "Smith", "email": "js@example.org"},
        {"first_name": "Jonathan", "last_name": "Smtih"},
        {"first_name": "Lee", "last_name": "Chang", "email": "lc@example.org"},
        {"first_name": "Chang", "last_name": "Lee"},
        {"first_name": "Paul", "last_name": "Martin", "email": "pm@example.org"},
        {"first_name": "Pauline", "last_name": "Martin"},
    )
    assert groups(engine) == []
    answer = detect(engine, mode="fuzzy")
    found = {
        tuple(r["id"] for r in g["records"]): (g["matched_on"], g["reasons"])
        for g in answer["duplicate_groups"]
    }
    assert found == {
        (ids[0], ids[1]): (["fuzzy_name"], ["name~0.98", "nickname"]),
        (ids[4], ids[5]): (["fuzzy_name"], ["name~0.98", "swapped names"]),
        (ids[2], ids[3]): (["fuzzy_name"], ["name~0.94"]),
    }
    assert [g["score"] for g in answer["duplicate_groups"]] == [0.98, 0.98, 0.94]
    link = answer["duplicate_groups"][0]["links"][0]
    assert link == {"ids": [ids[0], ids[1]], "score": 0.98, "reasons": ["name~0.98", "nickname"]}


def test_fuzzy_groups_keep_exact_links_and_score(engine: Engine) -> None:
    ids = make(
        engine,
        "contacts",
        {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.org"},
        {"first_name": "Ann", "last_name": "Lee", "email": "ANN@example.org"},
        {"first_name": "Anne", "last_name": "Lee"},
    )
    (group,) = detect(engine, mode="fuzzy")["duplicate_groups"]
    assert [r["id"] for r in group["records"]] == ids
    assert group["matched_on"] == ["email", "name", "fuzzy_name"]
    assert group["score"] == 0.96  # the weakest link that holds the group together


def test_threshold(engine: Engine) -> None:
    make(
        engine,
        "contacts",
        {"first_name": "Jonathan", "last_name": "Smith", "email": "js@example.org"},
        {"first_name": "Jonathan", "last_name": "Smtih"},
    )
    assert len(groups(engine, mode="fuzzy", threshold=0.9)) == 1
    assert groups(engine, mode="fuzzy", threshold=0.95) == []
    with pytest.raises(ValidationFailed, match="threshold"):
        groups(engine, mode="fuzzy", threshold=0.3)
    with pytest.raises(ValidationFailed, match="mode"):
        groups(engine, mode="phonetic")


def test_fuzzy_companies(engine: Engine) -> None:
    ids = make(
        engine,
        "companies",
        {"name": "ACME, Inc.", "domain": "acme.com"},
        {"name": "Acme Corporation"},
        {"name": "Acme Rockets", "domain": "acme-rockets.com"},
    )
    assert groups(engine, "companies", mode="fuzzy") == [([ids[0], ids[1]], ["fuzzy_name"])]
    # another Acme, told apart from the first by its domain: "Acme Corporation" could
    # be either, so it joins neither
    make(engine, "companies", {"name": "Acme", "domain": "acme.org"})
    assert groups(engine, "companies", mode="fuzzy") == []


def test_custom_objects_match_on_emails_and_phones_only(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        fields = [
            {"name": "subject", "label": "Subject", "type": "TEXT"},
            {"name": "requester", "label": "Requester", "type": "EMAILS"},
        ]
        spec = ObjectIn.model_validate({"name": "tickets", "label": "T", "fields": fields})
        create_object(conn, load_workspace(conn), spec)
    ids = make(
        engine,
        "tickets",
        {"subject": "Help", "requester": "a@example.org"},
        {"subject": "Help", "requester": "b@example.org"},
        {"subject": "Other", "requester": "A@example.org"},
    )
    assert groups(engine, "tickets") == groups(engine, "tickets", mode="fuzzy")
    assert groups(engine, "tickets") == [([ids[0], ids[2]], ["email"])]


def test_limit_fields_and_total(engine: Engine) -> None:
    for n in range(3):
        make(
            engine,
            "contacts",
            {"first_name": f"P{n}", "last_name": "X", "email": f"p{n}@example.org"},
            {"first_name": f"Q{n}", "last_name": "Y", "email": f"P{n}@example.org"},
        )
    answer = detect(engine, keys=["email"], limit=2)
    assert answer["total_groups"] == 3 and len(answer["duplicate_groups"]) == 2
    assert answer["duplicate_groups"][0]["records"] == [
        {"email": "p0@example.org"},
        {"email": "P0@example.org"},
    ]
    with pytest.raises(InvalidObject):
        detect(engine, "nope")
