"""The filter language (spec §5): parse the simple or the advanced form into a
``Group`` and compile it to SQL over ``KeyColumns``. Shared by records and export.

Field names are looked up in the object's schema and never reach SQL as text;
values are bound parameters, converted to the field's type first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, false, not_, or_, true

from kasar.db.functions import ci_lower
from kasar.errors import ValidationFailed
from kasar.records.columns import KeyColumns, KeyKind
from kasar.schema.types import NUMERIC_TYPES, FieldType
from kasar.schema.values import InvalidValue, normalise_value
from kasar.settings import get_settings

ALIASES = {
    "equals": "eq",
    "not_equals": "neq",
    "greater_than": "gt",
    "greater_equal": "gte",
    "less_than": "lt",
    "less_equal": "lte",
}
NULL_OPS = {"is_null", "is_not_null"}
ORDER_OPS = {"gt", "gte", "lt", "lte"}
LIKE_OPS = {"contains", "not_contains", "starts_with", "ends_with"}
LIST_OPS = {"in", "not_in"}
DATE_OPS = {"date_before", "date_after"}
ALL_OPS = {"eq", "neq"} | ORDER_OPS | LIKE_OPS | LIST_OPS | NULL_OPS | DATE_OPS
TEXT_TYPES = {
    FieldType.TEXT,
    FieldType.TEXTAREA,
    FieldType.URL,
    FieldType.SELECT,
    FieldType.EMAILS,
    FieldType.PHONES,
}
JSON_TYPES = {FieldType.MULTI_SELECT, FieldType.ADDRESS}


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Group:
    op: str  # "and" | "or"
    items: tuple[Condition | Group, ...]


def canonical_op(op: object) -> str:
    if not isinstance(op, str):
        raise ValidationFailed("A filter operator must be a string")
    name = ALIASES.get(op.strip().lower(), op.strip().lower())
    if name not in ALL_OPS:
        raise ValidationFailed(f"Unknown filter operator '{op}'")
    return name


def parse_filters(
    filter_field: str | None,
    filter_operator: str | None,
    filter_value: str | None,
    filters: str | None,
) -> Group | None:
    """The filter of a request from its query parameters, or None."""
    simple = [p is not None for p in (filter_field, filter_operator, filter_value)]
    if filters is not None and any(simple):
        raise ValidationFailed("Use either filter_field/filter_operator/filter_value or filters")
    if filters is not None:
        try:  # orjson: strict (no lone surrogates, NaN or runaway nesting)
            doc = orjson.loads(filters)
        except (ValueError, RecursionError):
            raise ValidationFailed("'filters' is not valid JSON") from None
        return parse_group(doc)
    if not any(simple):
        return None
    if filter_field is None or filter_operator is None:
        raise ValidationFailed("filter_field and filter_operator go together")
    op = canonical_op(filter_operator)
    if filter_value is None and op not in NULL_OPS:
        raise ValidationFailed(f"Operator '{op}' needs filter_value")
    return Group("and", (Condition(filter_field, op, filter_value),))


def parse_group(doc: object) -> Group:
    settings = get_settings()
    counter = [0]
    group = _parse_node(doc, 1, counter, settings.filter_max_depth, settings.filter_max_conditions)
    if not isinstance(group, Group):
        group = Group("and", (group,))
    return group


def _parse_node(
    doc: object, depth: int, counter: list[int], max_depth: int, max_n: int
) -> Condition | Group:
    if not isinstance(doc, dict):
        raise ValidationFailed("A filter group or condition must be a JSON object")
    if "conditions" in doc:
        if depth > max_depth:
            raise ValidationFailed(f"Filters are nested too deep (at most {max_depth} levels)")
        op = doc.get("operator", doc.get("type", "and"))
        if not isinstance(op, str) or op.lower() not in ("and", "or"):
            raise ValidationFailed("A filter group's operator must be 'and' or 'or'")
        items = doc["conditions"]
        if not isinstance(items, list) or not items:
            raise ValidationFailed("A filter group needs a non-empty 'conditions' list")
        extra = set(doc) - {"operator", "type", "conditions"}
        if extra:
            raise ValidationFailed(f"Unknown key '{sorted(extra)[0]}' in a filter group")
        parsed = tuple(_parse_node(i, depth + 1, counter, max_depth, max_n) for i in items)
        return Group(op.lower(), parsed)
    counter[0] += 1
    if counter[0] > max_n:
        raise ValidationFailed(f"Too many filter conditions (at most {max_n})")
    extra = set(doc) - {"field", "operator", "value"}
    if extra:
        raise ValidationFailed(f"Unknown key '{sorted(extra)[0]}' in a filter condition")
    key = doc.get("field")
    if not isinstance(key, str):
        raise ValidationFailed("A filter condition needs a 'field' string")
    op = canonical_op(doc.get("operator"))
    if op not in NULL_OPS and doc.get("value") is None:
        raise ValidationFailed(f"Operator '{op}' on '{key}' needs a value")
    return Condition(key, op, doc.get("value"))


def compile_filter(cols: KeyColumns, group: Group) -> ColumnElement[bool]:
    parts = [
        compile_filter(cols, item) if isinstance(item, Group) else _condition(cols, item)
        for item in group.items
    ]
    return and_(true(), *parts) if group.op == "and" else or_(false(), *parts)


def convert_value(kind: KeyKind, raw: object, key: str) -> object:
    """A filter value in the key's type; text-like values stay text."""
    ftype = kind.type
    if ftype is None or ftype in TEXT_TYPES or ftype in JSON_TYPES:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise ValidationFailed(f"Filter value for '{key}' must be text")
        if "\x00" in str(raw):
            raise ValidationFailed(f"Filter value for '{key}' must not contain NUL characters")
        return str(raw)
    target = FieldType.FLOAT if ftype in NUMERIC_TYPES or ftype is FieldType.INTEGER else ftype
    try:
        value = normalise_value(target, raw)
    except InvalidValue as exc:
        raise ValidationFailed(f"Filter value for '{key}' {exc}") from None
    if value is None:
        raise ValidationFailed(f"Filter value for '{key}' is empty")
    if ftype is FieldType.DATETIME and isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value


def _values_list(kind: KeyKind, raw: object, key: str) -> list[object]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise ValidationFailed(f"Operator 'in' on '{key}' needs a list or comma-separated values")
    return [convert_value(kind, i.strip() if isinstance(i, str) else i, key) for i in items]


def _allowed(kind: KeyKind, op: str, key: str) -> None:
    ftype = kind.type
    if op in NULL_OPS:
        return
    if ftype in JSON_TYPES:
        ok = op in ("contains", "not_contains")
    elif ftype is None:
        ok = op in ("eq", "neq", "in", "not_in")
    elif ftype in TEXT_TYPES:
        ok = op not in DATE_OPS
    elif ftype is FieldType.BOOLEAN:
        ok = op in ("eq", "neq")
    elif ftype in (FieldType.DATE, FieldType.DATETIME):
        ok = op not in LIKE_OPS
    else:
        ok = op not in LIKE_OPS and op not in DATE_OPS
    if not ok:
        raise ValidationFailed(f"Operator '{op}' does not apply to field '{key}'")


def _like_pattern(value: str, op: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if op == "starts_with":
        return escaped + "%"
    if op == "ends_with":
        return "%" + escaped
    return "%" + escaped + "%"


def _condition(cols: KeyColumns, cond: Condition) -> ColumnElement[bool]:
    kind = cols.kind(cond.key)
    _allowed(kind, cond.op, cond.key)
    col = cols.expr(cond.key)
    op = cond.op
    text_like = kind.type in TEXT_TYPES or kind.type in JSON_TYPES
    if op in NULL_OPS:
        empty = col.is_(None) | (col == "") if text_like else col.is_(None)
        return empty if op == "is_null" else not_(empty)
    if op in LIKE_OPS:
        value = convert_value(kind, cond.value, cond.key)
        assert isinstance(value, str)
        match = ci_lower(col).like(_like_pattern(value, op), escape="\\")
        return or_(col.is_(None), not_(match)) if op == "not_contains" else match
    if op in LIST_OPS:
        values = _values_list(kind, cond.value, cond.key)
        target = col
        if text_like:
            target = ci_lower(col)
            values = [str(v).lower() for v in values]
        inside = target.in_(values)
        return or_(col.is_(None), not_(inside)) if op == "not_in" else inside
    value = convert_value(kind, cond.value, cond.key)
    if kind.type is FieldType.PHONES and isinstance(value, str):
        value = _phone_or_text(value)
    if op in ("eq", "neq"):
        same = (
            ci_lower(col) == value.lower() if isinstance(value, str) and text_like else col == value
        )
        return or_(col.is_(None), not_(same)) if op == "neq" else same
    col = cols.ordered(cond.key)
    return {
        "gt": col > value,
        "gte": col >= value,
        "lt": col < value,
        "lte": col <= value,
        "date_before": col < value,
        "date_after": col > value,
    }[op]


def _phone_or_text(value: str) -> str:
    try:
        phones = normalise_value(
            FieldType.PHONES, value, phone_region=get_settings().default_phone_region
        )
    except InvalidValue:
        return value
    return phones[0] if isinstance(phones, list) and phones else value
