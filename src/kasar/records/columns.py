"""SQL expressions for the public keys of an object, with the joins they need.

``KeyColumns`` is shared by record listing and export: it turns a key such as
``company_name`` into ``companies.name`` through an outer join added only when
the key is used, so the output, the filters and the sort all speak in keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table, func

from kasar.db import tables
from kasar.errors import ValidationFailed
from kasar.schema.model import KeyRef, KeyRole, ObjectDef
from kasar.schema.repository import Workspace
from kasar.schema.types import FieldType

_NON_TEXT = frozenset(
    {
        FieldType.NUMBER,
        FieldType.FLOAT,
        FieldType.CURRENCY,
        FieldType.PERCENTAGE,
        FieldType.INTEGER,
        FieldType.BOOLEAN,
        FieldType.DATE,
        FieldType.DATETIME,
    }
)


@dataclass(frozen=True)
class KeyKind:
    """What a key holds, for filtering and formatting: a field type, or 'id'."""

    type: FieldType | None  # None: an id
    role: KeyRole


def name_expression(obj: ObjectDef, table: Any) -> ColumnElement[str]:
    """The display name of a record in SQL, as ``dedup.keys.display_name`` in Python."""
    parts = obj.name_fields()
    if not parts:
        return table.c.id  # type: ignore[no-any-return]
    if len(parts) == 1:
        return table.c[parts[0]]  # type: ignore[no-any-return]
    joined: ColumnElement[str] = func.coalesce(table.c[parts[0]], "")
    for p in parts[1:]:
        joined = joined + " " + func.coalesce(table.c[p], "")
    return func.nullif(func.trim(joined), "")


class KeyColumns:
    def __init__(self, ws: Workspace, obj: ObjectDef, dialect: str) -> None:
        self.ws = ws
        self.dialect = dialect
        self.obj = obj
        self.table: Table = ws.table(obj.name)
        self._joins: dict[str, tuple[Any, ColumnElement[bool]]] = {}

    def ref(self, key: str, *, what: str = "field") -> KeyRef:
        ref = self.obj.key(key)
        if ref is None:
            raise ValidationFailed(f"Unknown {what} '{key}' for object '{self.obj.name}'")
        return ref

    def kind(self, key: str) -> KeyKind:
        ref = self.ref(key)
        if ref.role is KeyRole.SYSTEM:
            return KeyKind(None if key == "id" else FieldType.DATETIME, ref.role)
        assert ref.field is not None
        if ref.role is KeyRole.VALUE:
            return KeyKind(ref.field.type, ref.role)
        if ref.role in (KeyRole.RELATION_NAME, KeyRole.PIPELINE_NAME, KeyRole.STEP_NAME):
            return KeyKind(FieldType.TEXT, ref.role)
        return KeyKind(None, ref.role)

    def expr(self, key: str) -> ColumnElement[Any]:
        ref = self.ref(key)
        t = self.table
        if ref.role is KeyRole.SYSTEM:
            return t.c[key]
        f = ref.field
        assert f is not None
        if ref.role in (KeyRole.VALUE, KeyRole.RELATION_ID, KeyRole.PIPELINE_ID):
            return t.c[f.column]
        if ref.role is KeyRole.STEP_ID:
            return t.c[f.step_column]
        if ref.role is KeyRole.RELATION_NAME:
            assert f.relation is not None
            target_obj = self.ws.object(f.relation)
            alias = self._join(
                f"rel_{f.name}", self.ws.table(f.relation), lambda a: a.c.id == t.c[f.column]
            )
            return name_expression(target_obj, alias)
        if ref.role is KeyRole.PIPELINE_NAME:
            alias = self._join(f"pl_{f.name}", tables.pipelines, lambda a: a.c.id == t.c[f.column])
            return alias.c.name  # type: ignore[no-any-return]
        alias = self._join(
            f"ps_{f.name}", tables.pipeline_steps, lambda a: a.c.id == t.c[f.step_column]
        )
        return alias.c.name  # type: ignore[no-any-return]

    def ordered(self, key: str) -> ColumnElement[Any]:
        """The key's expression for ordering and range comparison: text compares
        by code point on both databases (PostgreSQL's collation would differ)."""
        expr = self.expr(key)
        kind = self.kind(key)
        is_text = kind.type is None or kind.type not in _NON_TEXT
        if self.dialect == "postgresql" and is_text:
            return expr.collate("C")
        return expr

    def _join(self, name: str, target: Table, on: Any) -> Any:
        if name not in self._joins:
            alias = target.alias(name)
            self._joins[name] = (alias, on(alias))
        return self._joins[name][0]

    def from_clause(self) -> FromClause:
        joined: FromClause = self.table
        for alias, on in self._joins.values():
            joined = joined.outerjoin(alias, on)
        return joined
