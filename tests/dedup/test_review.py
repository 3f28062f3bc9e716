"""The review queue end to end as a library: hold on import, list, resolve."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kasar.db import tables
from kasar.db.engine import read_transaction, write_transaction
from kasar.dedup import review
from kasar.errors import Conflict, NotFound, ValidationFailed
from kasar.imports.service import ImportOptions, ImportResult, import_records
from kasar.records.service import get_record
from kasar.schema.repository import load_workspace

JOHN = {"first_name": "John", "last_name": "Smith", "email": "john@acme.com"}


def run(engine: Engine, recs: list[Any], object_name: str = "contacts", **kw: Any) -> ImportResult:
    with write_transaction(engine) as conn:
        options = ImportOptions(**kw)
        return import_records(conn, load_workspace(conn), object_name, recs, options)


def listing(engine: Engine, **kw: Any) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return review.list_review(conn, load_workspace(conn), **kw)


def resolve(
    engine: Engine, review_id: str, action: str, target: str | None = None
) -> dict[str, Any]:
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        return review.resolve(conn, ws, review_id, action, target, resolved_by="admin-1")


def get(engine: Engine, record_id: str, object_name: str = "contacts") -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return get_record(conn, load_workspace(conn), object_name, record_id)


def queued(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(tables.review_queue)).scalar_one())


@pytest.fixture
def john(engine: Engine) -> str:
    (res,) = run(engine, [JOHN]).results
    assert res.id is not None
    return res.id


def test_hold_counts_and_queues_possible_duplicates(engine: Engine, john: str) -> None:
    recs = [
        {"first_name": "Jon", "last_name": "Smith", "phone": "0612345678"},  # fuzzy: held
        {"first_name": "john", "last_name": "SMITH", "email": "JOHN@acme.com"},  # exact
        {"first_name": "Zoe", "last_name": "Kimura"},  # new
        {"first_name": "Zoé", "last_name": "Kimora"},  # fuzzy match of the one just created
        {"last_name": "nobody"},  # invalid
        {"first_name": "John", "last_name": "Smith", "email": "john@other.org"},  # homonym
    ]
    result = run(engine, recs, on_possible_duplicate="hold")
    answer = result.to_api()
    assert (answer["created"], answer["duplicates"], answer["failed"], answer["held"]) == (
        2,
        1,
        1,
        2,
    )
    assert sum(answer[k] for k in ("created", "duplicates", "failed", "held")) == len(recs)
    held = [r for r in answer["results"] if r["status"] == "held"]
    assert [r["index"] for r in held] == [0, 3]
    assert held[0]["candidates"] == [{"id": john, "score": 0.96, "reasons": ["name~0.96"]}]
    zoe = answer["results"][2]["id"]
    assert held[1]["candidates"][0]["id"] == zoe
    assert queued(engine) == 2
    # without the option, the answer keeps its documented keys and nothing is held
    plain = run(engine, [{"first_name": "Jhon", "last_name": "Smith"}]).to_api()
    assert "held" not in plain and plain["created"] == 1


def test_dry_run_holds_nothing(engine: Engine, john: str) -> None:
    rec = {"first_name": "Jon", "last_name": "Smith"}
    result = run(engine, [rec], on_possible_duplicate="hold", dry_run=True)
    assert result.held == 1 and result.results[0].review_id is None
    assert queued(engine) == 0


def test_bad_option(engine: Engine) -> None:
    with pytest.raises(
        ValidationFailed, match="on_possible_duplicate must be one of: create, hold"
    ):
        run(engine, [JOHN], on_possible_duplicate="ask")


def test_listing_shows_candidates_and_pages(engine: Engine, john: str) -> None:
    for first in ("Jon", "Jhon", "Johm"):
        run(engine, [{"first_name": first, "last_name": "Smith"}], on_possible_duplicate="hold")
    page = listing(engine, limit=2)
    assert page["total"] == 3 and len(page["data"]) == 2
    entry = page["data"][0]
    assert entry["state"] == "pending" and entry["record"] == {
        "first_name": "Jon",
        "last_name": "Smith",
    }
    (candidate,) = entry["candidates"]
    assert candidate["record"]["email"] == "john@acme.com"
    rest = listing(engine, limit=2, cursor=page["nextCursor"])
    assert [e["record"]["first_name"] for e in rest["data"]] == ["Johm"]
    assert rest["nextCursor"] is None
    assert listing(engine, object_name="companies")["total"] == 0
    assert listing(engine, state="merged")["total"] == 0
    for bad in ({"state": "done"}, {"limit": 0}, {"limit": 101}, {"cursor": "x"}):
        with pytest.raises(ValidationFailed):
            listing(engine, **bad)


def test_resolve_create(engine: Engine, john: str) -> None:
    run(engine, [{"first_name": "Jon", "last_name": "Smith"}], on_possible_duplicate="hold")
    (entry,) = listing(engine)["data"]
    answer = resolve(engine, entry["id"], "create")
    assert answer["state"] == "created"
    created = answer["resolution"]["record_id"]
    assert answer["resolution"] == {"action": "create", "record_id": created, "by": "admin-1"}
    assert get(engine, created)["first_name"] == "Jon" == answer["result"]["first_name"]
    assert listing(engine)["total"] == 0 and listing(engine, state="created")["total"] == 1
    with pytest.raises(Conflict, match="already resolved"):
        resolve(engine, entry["id"], "discard")


def test_resolve_merge_fills_the_candidate(engine: Engine, john: str) -> None:
    held = {
        "first_name": "Jon",
        "last_name": "Smith",
        "phone": "0612345678",
        "job_title": "CTO",
        "company_name": "Acme",
    }
    run(engine, [held], on_possible_duplicate="hold")
    (entry,) = listing(engine)["data"]
    answer = resolve(engine, entry["id"], "merge", john)
    master = get(engine, john)
    assert answer["state"] == "merged" and answer["result"] == master
    assert master["first_name"] == "John"  # filled fields are kept
    assert (master["job_title"], master["phone"], master["company_name"]) == (
        "CTO",
        "+33612345678",
        "Acme",
    )
    assert master["email_all"] == ["john@acme.com"] and master["phone_all"] == ["+33612345678"]


def test_resolve_discard_and_errors(engine: Engine, john: str) -> None:
    run(engine, [{"first_name": "Jon", "last_name": "Smith"}], on_possible_duplicate="hold")
    (entry,) = listing(engine)["data"]
    with pytest.raises(ValidationFailed, match="target_id is required"):
        resolve(engine, entry["id"], "merge")
    with pytest.raises(NotFound, match="No contacts record with id 'nope'"):
        resolve(engine, entry["id"], "merge", "nope")
    with pytest.raises(ValidationFailed, match="action must be one of"):
        resolve(engine, entry["id"], "keep")
    with pytest.raises(NotFound, match="No review entry"):
        resolve(engine, "nope", "discard")
    assert resolve(engine, entry["id"], "discard")["state"] == "discarded"
    assert run(engine, [{"first_name": "Jon", "last_name": "Smith"}]).created == 1


def test_create_refuses_an_exact_duplicate_that_appeared_since(engine: Engine, john: str) -> None:
    run(
        engine,
        [{"first_name": "Jon", "last_name": "Smith", "phone": "0612345678"}],
        on_possible_duplicate="hold",
    )
    (entry,) = listing(engine)["data"]
    (other,) = run(engine, [{"first_name": "X", "last_name": "Y", "phone": "+33612345678"}]).results
    with pytest.raises(Conflict, match="now an exact duplicate") as caught:
        resolve(engine, entry["id"], "create")
    assert caught.value.details == {"duplicate_of": other.id, "matched_on": ["phone"]}
    assert listing(engine)["total"] == 1  # still pending


def test_companies_are_held_on_suffix_and_typo(engine: Engine) -> None:
    run(engine, [{"name": "ACME, Inc."}], object_name="companies")
    recs = [
        {"name": "Acme"},
        {"name": "Acme Corporation"},
        {"name": "Acmee SAS"},
        {"name": "Globex"},
    ]
    result = run(engine, recs, object_name="companies", on_possible_duplicate="hold")
    assert [r.status for r in result.results] == ["held", "held", "held", "created"]
