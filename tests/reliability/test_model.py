"""A Hypothesis state machine (issue 8): random sequences of import (skip, update,
overwrite), update, delete, merge and export through the API agree with a plain
Python model of contacts after every step, on SQLite and on PostgreSQL; the
stored match keys agree with the records too.

The model is the spec's rules for what these contacts can be: an imported contact
has one email or none, so a shared email makes a duplicate, and a shared name
(first and last) makes one only when one side has no email at all.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, delete

from kasar.db import tables
from kasar.db.engine import write_transaction
from kasar.schema.repository import load_workspace
from reliability.checks import integrity_problems

FIRST = ["Ada", "ada", "Bob", "Cy"]
LAST = ["Lovelace", "Martin", None]
EMAILS = ["a@x.io", "A@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"]
CITIES = ["Paris", "Lyon", None]
TITLES = ["CEO", "CTO", None]
FIELDS = ("first_name", "last_name", "city", "job_title")
EXPORT_KEYS = "id,first_name,last_name,email,city,job_title"

incoming = st.fixed_dictionaries(
    {"first_name": st.sampled_from(FIRST)},
    optional={
        "email": st.sampled_from(EMAILS),
        "last_name": st.sampled_from(LAST),
        "city": st.sampled_from(CITIES),
        "job_title": st.sampled_from(TITLES),
    },
)


@dataclass
class Contact:
    """A stored contact as the model sees it; ``seq`` is its age (ids are time-ordered)."""

    seq: int
    values: dict[str, str | None]
    emails: list[str] = field(default_factory=list)

    def email_keys(self) -> set[str]:
        return {e.lower() for e in self.emails}

    def name_key(self) -> str | None:
        first, last = self.values.get("first_name"), self.values.get("last_name")
        return f"{first} {last}".lower() if first and last else None

    def exported(self, rid: str) -> dict[str, Any]:
        return {"id": rid, **self.values, "email": self.emails[0] if self.emails else None}


@dataclass(frozen=True)
class Entry:
    """What the import's matcher remembers: a target and the keys that lead to it."""

    target: str
    emails: frozenset[str]
    name: str | None
    order: int


def keys_of(rec: dict[str, Any]) -> tuple[frozenset[str], str | None]:
    first, last = rec.get("first_name"), rec.get("last_name")
    name = f"{first} {last}".lower() if first and last else None
    return frozenset({rec["email"].lower()} if rec.get("email") else ()), name


def find(entries: list[Entry], emails: frozenset[str], name: str | None) -> Entry | None:
    """Spec §7: a shared email; else a shared name unless both sides have emails and
    share none. A strong match beats a name match; then the oldest entry."""
    strong = [e for e in entries if e.emails & emails]
    if strong:
        return min(strong, key=lambda e: e.order)
    named = [e for e in entries if name and e.name == name and not (e.emails and emails)]
    return min(named, key=lambda e: e.order) if named else None


class ContactsMachine(RuleBasedStateMachine):
    api: TestClient
    engine: Engine
    headers: dict[str, str]

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, Contact] = {}
        self.seq = itertools.count()
        with write_transaction(self.engine) as conn:
            conn.execute(delete(load_workspace(conn).table("contacts")))
            conn.execute(delete(tables.match_keys))
            conn.execute(delete(tables.merges))

    @initialize()
    def start_empty(self) -> None:
        assert self.export() == {}

    def export(self) -> dict[str, dict[str, Any]]:
        r = self.api.get(
            "/api/v1/export/contacts",
            headers=self.headers,
            params={"fields": EXPORT_KEYS, "limit": "10000", "sort_by": "id"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["records"])
        ids = [x["id"] for x in body["records"]]
        assert len(ids) == len(set(ids)), "a record exported twice"
        return {x["id"]: x for x in body["records"]}

    @rule(
        batch=st.lists(incoming, min_size=1, max_size=6),
        on_duplicate=st.sampled_from(["skip", "update", "overwrite"]),
    )
    def import_batch(self, batch: list[dict[str, Any]], on_duplicate: str) -> None:
        r = self.api.post(
            "/api/v1/import/contacts",
            headers=self.headers,
            params={"on_duplicate": on_duplicate},
            json={"records": batch},
        )
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        entries = [
            Entry(rid, frozenset(c.email_keys()), c.name_key(), c.seq)
            for rid, c in sorted(self.model.items(), key=lambda kv: kv[1].seq)
        ]
        # The batch's own entries come after every stored one, as in the matcher
        # (stored records are older). Counting from len(entries) put them before a
        # stored contact whose seq was higher than the number of contacts left.
        order = itertools.count(max((e.order for e in entries), default=-1) + 1)
        decided: list[tuple[dict[str, Any], str | None]] = []  # record, target (None: new)
        for rec, res in zip(batch, results, strict=True):
            emails, name = keys_of(rec)
            match = find(entries, emails, name)
            if match is None:
                assert res["status"] == "created", (rec, res)
                self.model[res["id"]] = Contact(
                    next(self.seq),
                    {f: rec.get(f) for f in FIELDS},
                    [rec["email"]] if rec.get("email") else [],
                )
                entries.append(Entry(res["id"], emails, name, next(order)))
                decided.append((rec, None))
            else:
                assert res["status"] == "duplicate", (rec, res, match)
                assert res["duplicate_of"] == match.target, (rec, res, match)
                entries.append(Entry(match.target, emails, name, next(order)))
                decided.append((rec, match.target))
        if on_duplicate == "skip":
            return
        for rec, target in decided:
            if target is None:
                continue
            stored = self.model[target]
            for f in FIELDS:
                if rec.get(f) and (on_duplicate == "overwrite" or not stored.values.get(f)):
                    stored.values[f] = rec[f]
            if rec.get("email") and (on_duplicate == "overwrite" or not stored.emails):
                stored.emails = [rec["email"]]

    @precondition(lambda self: self.model)
    @rule(
        data=st.data(),
        changes=st.fixed_dictionaries(
            {},
            optional={
                "first_name": st.sampled_from(FIRST),
                "last_name": st.sampled_from(LAST),
                "city": st.sampled_from(CITIES),
                "email": st.sampled_from([*EMAILS, None]),
            },
        ).filter(bool),
    )
    def update(self, data: st.DataObject, changes: dict[str, Any]) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model)))
        r = self.api.patch(f"/api/v1/records/contacts/{rid}", headers=self.headers, json=changes)
        assert r.status_code == 200, r.text
        stored = self.model[rid]
        for f, value in changes.items():
            if f == "email":
                stored.emails = [value] if value else []
            else:
                stored.values[f] = value

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.model)))
        r = self.api.delete(f"/api/v1/records/contacts/{rid}", headers=self.headers)
        assert r.status_code == 204, r.text
        del self.model[rid]
        again = self.api.delete(f"/api/v1/records/contacts/{rid}", headers=self.headers)
        assert again.status_code == 404

    @precondition(lambda self: len(self.model) >= 2)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        ids = data.draw(
            st.lists(st.sampled_from(sorted(self.model)), min_size=2, max_size=3, unique=True)
        )
        master, dups = ids[0], ids[1:]
        body = {
            "action": "merge",
            "object_name": "contacts",
            "master_id": master,
            "duplicate_ids": dups,
        }
        r = self.api.post("/api/v1/duplicates", headers=self.headers, json=body)
        assert r.status_code == 200, r.text
        kept = self.model[master]
        others = [self.model.pop(d) for d in dups]
        for f in FIELDS:
            if not kept.values.get(f):
                kept.values[f] = next((o.values[f] for o in others if o.values.get(f)), None)
        for other in others:
            for email in other.emails:
                if email.lower() not in kept.email_keys():
                    kept.emails.append(email)
        assert r.json()["master"]["email_all"] == kept.emails

    @rule()
    def export_csv(self) -> None:
        r = self.api.get(
            "/api/v1/export/contacts",
            headers=self.headers,
            params={"format": "csv", "fields": "id", "limit": "10000"},
        )
        assert r.status_code == 200
        assert sorted(r.text.split("\r\n")[1:-1]) == sorted(self.model)

    @invariant()
    def agrees_with_the_model(self) -> None:
        expected = {rid: c.exported(rid) for rid, c in self.model.items()}
        assert self.export() == expected
        assert not integrity_problems(self.engine)


def run_machine(
    api: TestClient, engine: Engine, headers: dict[str, str], examples: int, steps: int
) -> None:
    machine = type(
        "Machine", (ContactsMachine,), {"api": api, "engine": engine, "headers": headers}
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_random_sequences_agree_with_the_model(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    run_machine(api, engine, admin_headers, examples=8, steps=12)


@pytest.mark.slow
def test_long_random_sequences_agree_with_the_model(
    api: TestClient, engine: Engine, admin_headers: dict[str, str]
) -> None:
    run_machine(api, engine, admin_headers, examples=80, steps=30)
