"""Stored values to JSON-ready output values, key by key."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kasar.records.columns import KeyColumns
from kasar.schema.model import KeyRole
from kasar.schema.types import FieldType
from kasar.schema.values import format_value


def output_value(cols: KeyColumns, key: str, value: Any) -> Any:
    if value is None:
        return None
    kind = cols.kind(key)
    if kind.role is KeyRole.SYSTEM and key != "id":
        return format_value(FieldType.DATETIME, value)
    if kind.type in (FieldType.MULTI_SELECT, FieldType.ADDRESS) and isinstance(value, str):
        return json.loads(value)
    if kind.type is FieldType.BOOLEAN:
        return bool(value)
    if kind.type is not None:
        return format_value(kind.type, value)
    return value


def render(cols: KeyColumns, keys: Sequence[str], row: Mapping[Any, Any]) -> dict[str, Any]:
    return {k: output_value(cols, k, row[k]) for k in keys}
