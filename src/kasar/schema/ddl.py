"""Record tables: one table per object, one real column per field.

See docs/storage.md for why (filters and sorts on real columns, indexes where
look-ups happen, ``ALTER TABLE ADD COLUMN`` being instant on both databases).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

from kasar.db import tables
from kasar.schema.model import FieldDef, ObjectDef
from kasar.schema.types import FieldType

_SCALAR_TYPES: dict[FieldType, Callable[[], TypeEngine[Any]]] = {
    FieldType.TEXT: Text,
    FieldType.TEXTAREA: Text,
    FieldType.URL: Text,
    FieldType.SELECT: Text,
    FieldType.MULTI_SELECT: Text,  # JSON list
    FieldType.ADDRESS: Text,  # JSON object
    FieldType.EMAILS: Text,  # primary value; the list is in the _all column
    FieldType.PHONES: Text,
    FieldType.NUMBER: Double,
    FieldType.FLOAT: Double,
    FieldType.CURRENCY: Double,
    FieldType.PERCENTAGE: Double,
    FieldType.INTEGER: BigInteger,
    FieldType.BOOLEAN: Boolean,
    FieldType.DATE: Date,
    FieldType.DATETIME: DateTime,
}


def field_columns(f: FieldDef) -> list[Column[object]]:
    if f.type is FieldType.RELATION:
        assert f.relation is not None
        target = f"obj_{f.relation}.id"
        return [Column(f.column, String(36), ForeignKey(target, ondelete="SET NULL"))]
    if f.type is FieldType.PIPELINE:
        return [
            Column(f.column, String(36), ForeignKey("kasar_pipelines.id")),
            Column(f.step_column, String(36), ForeignKey("kasar_pipeline_steps.id")),
        ]
    cols: list[Column[object]] = [Column(f.column, _SCALAR_TYPES[f.type]())]
    if f.type in (FieldType.EMAILS, FieldType.PHONES):
        cols.append(Column(f.list_column, Text))
    return cols


def _indexes(obj: ObjectDef) -> list[Index]:
    out = [Index(f"ix_{obj.name}_created", "created_at", "id")]
    out += [
        Index(f"ix_{obj.name}_{f.name}", f.column)
        for f in obj.fields
        if f.type in (FieldType.RELATION, FieldType.PIPELINE)
    ]
    return out


def build_tables(objects: Iterable[ObjectDef]) -> dict[str, Table]:
    """SQLAlchemy tables for the given objects, in one MetaData so that foreign
    keys between objects (and to the pipeline tables) resolve."""
    md = MetaData()
    tables.pipelines.to_metadata(md)
    tables.pipeline_steps.to_metadata(md)
    out: dict[str, Table] = {}
    for obj in objects:
        cols: list[Column[object]] = [
            Column("id", String(36), primary_key=True),
            Column("created_at", DateTime, nullable=False),
            Column("updated_at", DateTime, nullable=False),
        ]
        for f in obj.fields:
            cols.extend(field_columns(f))
        out[obj.name] = Table(obj.table_name, md, *cols, *_indexes(obj))
    return out


def create_object_table(conn: Connection, obj: ObjectDef, others: Iterable[ObjectDef]) -> None:
    """Create the record table of a new object (its relations may point at others)."""
    built = build_tables([*others, obj])
    built[obj.name].create(conn)


def add_field_columns(conn: Connection, obj: ObjectDef, f: FieldDef) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for a new field: instant on both databases."""
    prep = conn.dialect.identifier_preparer
    table = prep.quote(obj.table_name)
    for col in field_columns(f):
        ddl = f"ALTER TABLE {table} ADD COLUMN {prep.quote(col.name)} "
        ddl += col.type.compile(dialect=conn.dialect)
        for fk in col.foreign_keys:
            target_table, target_col = fk.target_fullname.split(".")
            ddl += f" REFERENCES {prep.quote(target_table)} ({prep.quote(target_col)})"
            if fk.ondelete:
                ddl += f" ON DELETE {fk.ondelete}"
        conn.exec_driver_sql(ddl)
    if f.type in (FieldType.RELATION, FieldType.PIPELINE):
        name = prep.quote(f"ix_{obj.name}_{f.name}")
        conn.exec_driver_sql(f"CREATE INDEX {name} ON {table} ({prep.quote(f.column)})")
