"""The filter language against a plain-Python reference of the same semantics,
on SQLite and PostgreSQL: every operator on every field type it applies to, then
Hypothesis over random records and random nested filters."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from kasar.db.engine import read_transaction, write_transaction
from kasar.errors import ValidationFailed
from kasar.records import service
from kasar.records.filters import Condition, Group, parse_filters, parse_group
from kasar.records.query import RecordQuery
from kasar.schema.repository import load_workspace
from kasar.schema.schemas import ObjectIn
from kasar.schema.service import create_object

ITEM_FIELDS = [
    {"name": "title", "type": "TEXT"},
    {"name": "score", "type": "NUMBER"},
    {"name": "qty", "type": "INTEGER"},
    {"name": "active", "type": "BOOLEAN"},
    {"name": "due", "type": "DATE"},
    {"name": "at", "type": "DATETIME"},
    {"name": "kind", "type": "SELECT", "options": ["alpha", "beta", "Gamma"]},
    {"name": "mail", "type": "EMAILS"},
]
TYPES = {f["name"]: f["type"] for f in ITEM_FIELDS}
TEXTISH = {"title", "kind", "mail"}


def setup_items(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        create_object(
            conn,
            load_workspace(conn),
            ObjectIn.model_validate({"name": "items", "fields": ITEM_FIELDS}),
        )


def insert_items(engine: Engine, rows: list[dict[str, Any]]) -> list[str]:
    with write_transaction(engine) as conn:
        ws = load_workspace(conn)
        conn.execute(delete(ws.table("items")))
        return [service.create_record(conn, ws, "items", r)["id"] for r in rows]


def query_ids(engine: Engine, group: Group) -> set[str]:
    with read_transaction(engine) as conn:
        ws = load_workspace(conn)
        page = service.list_records(
            conn, ws, "items", RecordQuery(["id"], group), limit=100, cursor=None
        )
        assert page.total == len(page.data)
        return {r["id"] for r in page.data}


# The reference: what each operator means, in plain Python.
def _typed(name: str, raw: Any) -> Any:
    t = TYPES[name]
    if raw is None:
        return None
    if t in ("NUMBER", "INTEGER"):
        return float(raw)
    if t == "BOOLEAN":
        return str(raw).lower() in ("true", "1", "yes")
    if t == "DATE":
        return date.fromisoformat(str(raw)[:10])
    if t == "DATETIME":
        text = str(raw).replace("Z", "+00:00")
        stamp = datetime.fromisoformat(text if "T" in text else text + "T00:00:00")
        return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp
    return str(raw)


def reference(record: dict[str, Any], node: Condition | Group) -> bool:
    if isinstance(node, Group):
        results = [reference(record, i) for i in node.items]
        return all(results) if node.op == "and" else any(results)
    v = record.get(node.key)
    if v == "":
        v = None
    op, name = node.op, node.key
    if op == "is_null":
        return v is None
    if op == "is_not_null":
        return v is not None
    text = name in TEXTISH
    if op in ("in", "not_in"):
        items = node.value.split(",") if isinstance(node.value, str) else node.value
        items = [_typed(name, i.strip() if isinstance(i, str) else i) for i in items]
        if text:
            inside = v is not None and v.lower() in [i.lower() for i in items]
        else:
            inside = v is not None and _typed(name, v) in items
        return inside if op == "in" else not inside
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        needle = str(node.value).lower()
        hay = v.lower() if v is not None else None
        if op == "not_contains":
            return hay is None or needle not in hay
        if hay is None:
            return False
        return {
            "contains": needle in hay,
            "starts_with": hay.startswith(needle),
            "ends_with": hay.endswith(needle),
        }[op]
    value = _typed(name, node.value)
    mine = _typed(name, v)
    if op in ("eq", "neq"):
        same = mine is not None and (mine.lower() == value.lower() if text else mine == value)
        return same if op == "eq" else not same
    if mine is None:
        return False
    return {
        "gt": mine > value,
        "gte": mine >= value,
        "lt": mine < value,
        "lte": mine <= value,
        "date_before": mine < value,
        "date_after": mine > value,
    }[op]


SAMPLE = [
    {
        "title": "Alpha one",
        "score": 1.5,
        "qty": 3,
        "active": True,
        "due": "2025-01-01",
        "at": "2025-01-01T10:00:00Z",
        "kind": "alpha",
        "mail": "a@x.io",
    },
    {
        "title": "ÉLOÏSE 100%",
        "score": -2,
        "qty": 0,
        "active": False,
        "due": "2024-12-31",
        "at": "2024-12-31T23:59:59Z",
        "kind": "Gamma",
        "mail": "B@Y.io",
    },
    {"title": "under_score\\x", "score": 1e6, "qty": -7, "due": "2025-06-15", "kind": "beta"},
    {"title": "alpha two"},
    {"title": "plain"},
]
CASES: list[tuple[str, str, Any]] = [
    ("title", "eq", "alpha one"),
    ("title", "neq", "ALPHA ONE"),
    ("title", "contains", "100%"),
    ("title", "contains", "_"),
    ("title", "contains", "\\"),
    ("title", "contains", "%"),
    ("title", "starts_with", "alpha"),
    ("title", "ends_with", "TWO"),
    ("title", "not_contains", "alpha"),
    ("title", "in", "plain,alpha two"),
    ("title", "not_in", ["plain"]),
    ("title", "gt", "alpha one"),
    ("title", "lte", "plain"),
    ("title", "is_null", None),
    ("title", "eq", "éloïse 100%"),
    ("score", "eq", "1.5"),
    ("score", "gt", 0),
    ("score", "gte", "-2"),
    ("score", "lt", "1.5"),
    ("score", "lte", 1e6),
    ("score", "neq", 1.5),
    ("score", "in", "1.5,-2"),
    ("score", "not_in", [1.5]),
    ("score", "is_null", None),
    ("score", "is_not_null", None),
    ("qty", "eq", 0),
    ("qty", "gt", "-7"),
    ("qty", "in", [3, -7]),
    ("active", "eq", "true"),
    ("active", "neq", "true"),
    ("active", "is_null", None),
    ("due", "eq", "2025-01-01"),
    ("due", "date_before", "2025-01-01"),
    ("due", "date_after", "2024-12-31"),
    ("due", "gte", "2025-01-01"),
    ("due", "in", "2025-01-01,2025-06-15"),
    ("due", "is_not_null", None),
    ("at", "date_after", "2025-01-01"),
    ("at", "date_before", "2025-01-01"),
    ("at", "gte", "2024-12-31T23:59:59Z"),
    ("at", "lt", "2025-01-01T10:00:00+00:00"),
    ("kind", "eq", "GAMMA"),
    ("kind", "in", "alpha,beta"),
    ("kind", "neq", "alpha"),
    ("kind", "is_null", None),
    ("mail", "eq", "b@y.io"),
    ("mail", "contains", "@x"),
]


def test_every_operator_matches_the_reference(engine: Engine) -> None:
    setup_items(engine)
    ids = insert_items(engine, SAMPLE)
    for name, op, value in CASES:
        expected = {
            ids[i] for i, r in enumerate(SAMPLE) if reference(r, Condition(name, op, value))
        }
        got = query_ids(engine, Group("and", (Condition(name, op, value),)))
        assert got == expected, (name, op, value)


def test_like_wildcards_are_literal(engine: Engine) -> None:
    setup_items(engine)
    ids = insert_items(
        engine, [{"title": "100%"}, {"title": "1000"}, {"title": "a_b"}, {"title": "axb"}]
    )
    assert query_ids(engine, Group("and", (Condition("title", "contains", "%"),))) == {ids[0]}
    assert query_ids(engine, Group("and", (Condition("title", "contains", "a_b"),))) == {ids[2]}
    assert query_ids(engine, Group("and", (Condition("title", "starts_with", "_"),))) == set()


@pytest.mark.parametrize(
    ("name", "op", "value", "message"),
    [
        ("nope", "eq", "x", "Unknown field 'nope'"),
        ("score", "contains", "1", "does not apply"),
        ("active", "gt", "true", "does not apply"),
        ("title", "date_before", "2025-01-01", "does not apply"),
        ("score", "eq", "abc", "must be a number"),
        ("due", "eq", "yesterday", "must be a date"),
        ("title", "like", "x", "Unknown filter operator"),
    ],
)
def test_bad_filters_are_400(engine: Engine, name: str, op: str, value: Any, message: str) -> None:
    setup_items(engine)
    with pytest.raises(ValidationFailed, match=message):
        query_ids(engine, parse_group({"field": name, "operator": op, "value": value}))


def test_parse_forms_and_caps() -> None:
    both = parse_group(
        {"type": "OR", "conditions": [{"field": "a", "operator": "equals", "value": 1}]}
    )
    assert both == Group("or", (Condition("a", "eq", 1),))
    assert parse_filters("status", "greater_than", "1", None) == Group(
        "and", (Condition("status", "gt", "1"),)
    )
    assert parse_filters("status", "is_null", None, None) == Group(
        "and", (Condition("status", "is_null"),)
    )
    with pytest.raises(ValidationFailed, match="either"):
        parse_filters("a", "eq", "1", '{"operator":"and","conditions":[]}')
    with pytest.raises(ValidationFailed, match="needs filter_value"):
        parse_filters("a", "eq", None, None)
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        parse_filters(None, None, None, "{oops")
    deep: dict[str, Any] = {"field": "a", "operator": "eq", "value": 1}
    for _ in range(6):
        deep = {"operator": "and", "conditions": [deep]}
    with pytest.raises(ValidationFailed, match="too deep"):
        parse_group(deep)
    many = {
        "operator": "or",
        "conditions": [{"field": "a", "operator": "eq", "value": i} for i in range(51)],
    }
    with pytest.raises(ValidationFailed, match="Too many"):
        parse_group(many)


ALPHABET = st.sampled_from(list("aAbBéÉ%_\\ xZ1"))
# Stored text is trimmed on write, so the reference sees it trimmed too.
texts = st.one_of(
    st.none(), st.text(ALPHABET, min_size=1, max_size=6).map(lambda t: t.strip() or None)
)
records = st.fixed_dictionaries(
    {
        "title": texts,
        "score": st.one_of(st.none(), st.integers(-5, 5).map(float)),
        "qty": st.one_of(st.none(), st.integers(-3, 3)),
        "active": st.one_of(st.none(), st.booleans()),
        "due": st.one_of(
            st.none(), st.dates(date(2024, 12, 29), date(2025, 1, 3)).map(date.isoformat)
        ),
        "kind": st.one_of(st.none(), st.sampled_from(["alpha", "beta", "Gamma"])),
    }
)
conditions = st.one_of(
    st.tuples(
        st.just("title"),
        st.sampled_from(
            [
                "eq",
                "neq",
                "contains",
                "not_contains",
                "starts_with",
                "ends_with",
                "gt",
                "lte",
                "is_null",
                "is_not_null",
            ]
        ),
        st.text(ALPHABET, min_size=1, max_size=3),
    ),
    st.tuples(
        st.just("score"),
        st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "is_null"]),
        st.integers(-5, 5),
    ),
    st.tuples(
        st.just("qty"),
        st.sampled_from(["eq", "neq", "gt", "lt", "in", "not_in"]),
        st.integers(-3, 3).map(str),
    ),
    st.tuples(
        st.just("active"),
        st.sampled_from(["eq", "neq", "is_null"]),
        st.sampled_from(["true", "false"]),
    ),
    st.tuples(
        st.just("due"),
        st.sampled_from(["eq", "date_before", "date_after", "gte", "is_not_null"]),
        st.dates(date(2024, 12, 29), date(2025, 1, 3)).map(date.isoformat),
    ),
    st.tuples(
        st.just("kind"),
        st.sampled_from(["eq", "in", "not_in", "neq"]),
        st.sampled_from(["ALPHA", "beta,gamma", "Gamma"]),
    ),
).map(lambda t: Condition(t[0], t[1], None if t[1] in ("is_null", "is_not_null") else t[2]))
groups = st.recursive(
    conditions,
    lambda inner: st.builds(
        lambda op, items: Group(op, tuple(items)),
        st.sampled_from(["and", "or"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(records, max_size=8), node=groups)
def test_filters_agree_with_reference(
    engine: Engine, rows: list[dict[str, Any]], node: Condition | Group
) -> None:
    with read_transaction(engine) as conn:
        if "items" not in load_workspace(conn).objects:
            conn.rollback()
            setup_items(engine)
    clean = [{k: v for k, v in r.items() if v is not None} for r in rows]
    ids = insert_items(engine, clean)
    group = node if isinstance(node, Group) else Group("and", (node,))
    expected = {ids[i] for i, r in enumerate(clean) if reference(r, group)}
    assert query_ids(engine, group) == expected, json.dumps([clean, str(group)])
