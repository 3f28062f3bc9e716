"""The duplicate rules of spec §7 as pure functions: no database needed."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from kasar.dedup.matcher import Matcher, record_keys, shared_kinds
from kasar.schema.model import FieldDef, ObjectDef
from kasar.schema.standard import STANDARD_OBJECTS
from kasar.schema.types import FieldType

OBJECTS = {name: ObjectDef(name, label, tuple(fields)) for name, label, fields in STANDARD_OBJECTS}
CONTACTS, COMPANIES, OPPORTUNITIES = (
    OBJECTS[n] for n in ("contacts", "companies", "opportunities")
)
TICKETS = ObjectDef(
    "tickets",
    "Tickets",
    (
        FieldDef("subject", "Subject", FieldType.TEXT),
        FieldDef("requester", "Requester", FieldType.EMAILS),
        FieldDef("callback", "Callback", FieldType.PHONES),
    ),
)


def contact(
    first: str | None = None, last: str | None = None, **kw: object
) -> set[tuple[str, str]]:
    values: dict[str, object] = {"first_name": first, "last_name": last}
    for name in ("email", "phone"):
        items = kw.pop(name, None)
        if items is not None:
            items = items if isinstance(items, list) else [items]
            values[name], values[f"{name}_all"] = items[0], json.dumps(items)
    values.update(kw)
    return record_keys(CONTACTS, values, None)


def test_strong_keys_are_normalised() -> None:
    assert ("email", "jean@example.com") in contact("J", email=" JEAN@Example.COM ")
    assert ("email", "jean@example.com") in contact("J", email="ｊｅａｎ@example.com")
    assert ("phone", "+33612345678") in contact("J", phone="+33612345678")
    assert ("linkedin", "in/jean-dupont") in contact(
        "J", linkedin="https://www.linkedin.com/in/Jean-Dupont/?trk=x"
    )
    assert ("linkedin", "in/jean-dupont") in contact("J", linkedin="jean-dupont")


def test_contact_name_needs_first_and_last_name() -> None:
    assert ("name", "eloise durand") in contact("  Éloïse ", "DURAND ")
    assert not any(kind == "name" for kind, _ in contact("Bob"))


def test_name_key_only_for_objects_with_the_name_rule() -> None:
    assert ("name", "acme") in record_keys(COMPANIES, {"name": "ACME"}, None)
    assert record_keys(OPPORTUNITIES, {"name": "Renewal"}, None) == set()
    assert record_keys(TICKETS, {"subject": "Broken"}, None) == set()


def test_custom_objects_match_on_emails_and_phones() -> None:
    keys = record_keys(
        TICKETS, {"subject": "x", "requester": "a@b.io", "callback": "+33612345678"}, None
    )
    assert keys == {("email", "a@b.io"), ("phone", "+33612345678")}


def test_company_domain_is_a_strong_key() -> None:
    a = record_keys(COMPANIES, {"name": "Acme", "domain": "https://www.acme.com/about"}, None)
    b = record_keys(COMPANIES, {"name": "Acme Holding", "domain": "acme.com"}, None)
    assert shared_kinds("companies", a, b) == ("domain",)


def test_a_given_id_is_a_key() -> None:
    assert ("id", "abc") in record_keys(CONTACTS, {"first_name": "A"}, "abc")


def test_shared_kinds_lists_every_kind_in_order() -> None:
    a = contact("Jean", "Dupont", email="j@x.io", phone="+33612345678")
    b = contact("jean", "dupont", email="J@X.IO", phone="+33612345678")
    assert shared_kinds("contacts", a, b) == ("email", "phone", "name")


def test_name_alone_matches_when_nothing_contradicts_it() -> None:
    assert shared_kinds("contacts", contact("John", "Smith"), contact("john", "smith")) == ("name",)
    with_email = contact("John", "Smith", email="a@x.io")
    assert shared_kinds("contacts", with_email, contact("John", "Smith")) == ("name",)
    # Emails on one side, phones on the other: nothing to compare, the name decides.
    with_phone = contact("John", "Smith", phone="+33612345678")
    assert shared_kinds("contacts", with_email, with_phone) == ("name",)


def test_homonyms_with_different_emails_or_phones_are_two_people() -> None:
    a = contact("John", "Smith", email="john@a.io")
    assert shared_kinds("contacts", a, contact("John", "Smith", email="john@b.io")) == ()
    p = contact("John", "Smith", phone="+33612345678")
    assert shared_kinds("contacts", p, contact("John", "Smith", phone="+33698765432")) == ()
    # Different emails veto even when phones are absent on one side.
    both = contact("John", "Smith", email="john@a.io", phone="+33612345678")
    assert shared_kinds("contacts", both, contact("John", "Smith", email="john@b.io")) == ()


def test_companies_homonym_exception_on_phones() -> None:
    a = record_keys(COMPANIES, {"name": "Acme", "phone": "+33140000000"}, None)
    b = record_keys(COMPANIES, {"name": "ACME", "phone": "+33150000000"}, None)
    assert shared_kinds("companies", a, b) == ()
    assert shared_kinds("companies", a, record_keys(COMPANIES, {"name": "acme"}, None)) == ("name",)


def test_matcher_prefers_strong_then_oldest() -> None:
    stored = {
        "0002": contact("Jean", "Dupont"),
        "0003": contact("Other", "Person", email="j@x.io"),
        "0001": contact("Jean", "Dupont", phone="+33612345678"),
    }
    matcher = Matcher("contacts", stored)
    found = matcher.find(contact("Jean", "Dupont", email="j@x.io"))
    assert found is not None and (found.target, found.matched_on) == ("0003", ("email",))
    found = matcher.find(contact("Jean", "Dupont"))
    assert found is not None and (found.target, found.matched_on) == ("0001", ("name",))


def test_matcher_remembers_the_batch() -> None:
    matcher = Matcher("contacts")
    first = contact("A", "B", email="a@x.io", phone="+33612345678")
    assert matcher.find(first) is None
    matcher.add("new-1", first)
    second = contact("C", "D", email="c@x.io", phone="+33612345678")
    found = matcher.find(second)
    assert found is not None and (found.target, found.matched_on) == ("new-1", ("phone",))
    matcher.add(found.target, second)
    # Matches the second record's own email; it folds into the same target.
    found = matcher.find(contact("E", "F", email="c@x.io"))
    assert found is not None and (found.target, found.matched_on) == ("new-1", ("email",))


keys = st.sets(
    st.tuples(st.sampled_from(["email", "phone", "linkedin", "name"]), st.sampled_from("abc")),
    max_size=5,
)


@given(keys, keys)
def test_shared_kinds_is_symmetric_and_needs_a_shared_key(
    a: set[tuple[str, str]], b: set[tuple[str, str]]
) -> None:
    kinds = shared_kinds("contacts", a, b)
    assert kinds == shared_kinds("contacts", b, a)
    assert bool(kinds) <= bool(a & b)
    if any(k != "name" for k, _ in a & b):
        assert kinds
