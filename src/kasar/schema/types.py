"""The field types of the spec (§3)."""

from __future__ import annotations

from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "TEXT"
    TEXTAREA = "TEXTAREA"
    NUMBER = "NUMBER"
    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    CURRENCY = "CURRENCY"
    PERCENTAGE = "PERCENTAGE"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"
    DATETIME = "DATETIME"
    SELECT = "SELECT"
    MULTI_SELECT = "MULTI_SELECT"
    EMAILS = "EMAILS"
    PHONES = "PHONES"
    URL = "URL"
    ADDRESS = "ADDRESS"
    RELATION = "RELATION"
    PIPELINE = "PIPELINE"


NUMERIC_TYPES = frozenset(
    {FieldType.NUMBER, FieldType.FLOAT, FieldType.CURRENCY, FieldType.PERCENTAGE}
)
TEXT_LIKE_TYPES = frozenset(
    {
        FieldType.TEXT,
        FieldType.TEXTAREA,
        FieldType.SELECT,
        FieldType.EMAILS,
        FieldType.PHONES,
        FieldType.URL,
    }
)
COMPOUND_TYPES = frozenset({FieldType.EMAILS, FieldType.PHONES})
