"""Tests of kasar.records.validation: one record as a client wrote it, to columns."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from kasar.records.validation import _json_list, validate_write
from kasar.schema.model import ObjectDef
from kasar.schema.standard import STANDARD_OBJECTS

CONTACTS = next(
    ObjectDef(n, label, tuple(fs)) for n, label, fs in STANDARD_OBJECTS if n == "contacts"
)


# Mostly printable text with JSON's special characters in it, or any text.
TRICKY = st.sampled_from(
    ['"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "\ud800", "é", "a", "@", " "]
)
ITEM = st.one_of(st.text(TRICKY), st.text())


@given(st.lists(ITEM, min_size=1, max_size=2))
def test_a_list_column_is_written_as_json_would_write_it(items: list[str]) -> None:
    assert _json_list(items) == json.dumps(items, ensure_ascii=False)


@given(ITEM)
def test_one_item_is_written_as_json_would_write_it(item: str) -> None:
    assert _json_list([item]) == json.dumps([item], ensure_ascii=False)


def test_emails_and_phones_keep_their_list_beside_the_primary_value() -> None:
    emails = ["Zoë@Example.com", "b@example.com"]
    row = validate_write(
        CONTACTS, {"first_name": "Zoë", "email": emails, "phone": "06 12 34 56 78"}
    )
    assert row.values["email"] == "Zoë@example.com"
    assert row.values["email_all"] == '["Zoë@example.com", "b@example.com"]'
    assert row.values["phone"] == "+33612345678"
    assert row.values["phone_all"] == '["+33612345678"]'
