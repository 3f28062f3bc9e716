"""All SQL about objects, fields and pipelines.

The workspace schema is loaded from the database and cached per process under the
``schema_version`` stored in ``kasar_meta``: every schema change writes a new
version, so each process sees another's change on its next request.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Table, func, insert, select, update

from kasar.db import tables
from kasar.errors import InvalidObject
from kasar.schema.ddl import build_tables
from kasar.schema.model import FieldDef, ObjectDef, PipelineDef, StepDef
from kasar.schema.types import FieldType

SCHEMA_VERSION_KEY = "schema_version"


@dataclass(frozen=True)
class Workspace:
    version: str
    objects: dict[str, ObjectDef]
    tables: dict[str, Table]

    def object(self, name: str) -> ObjectDef:
        obj = self.objects.get(name)
        if obj is None:
            raise InvalidObject(name)
        return obj

    def table(self, name: str) -> Table:
        self.object(name)
        return self.tables[name]

    def relations_to(self, name: str) -> list[tuple[ObjectDef, FieldDef]]:
        """Every RELATION field, of any object, whose records point at ``name``'s."""
        return [
            (other, f)
            for other in self.objects.values()
            for f in other.fields
            if f.type is FieldType.RELATION and f.relation == name
        ]


_cache: dict[tuple[str, str], Workspace] = {}
_cache_lock = threading.Lock()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def current_version(conn: Connection) -> str:
    value = conn.execute(
        select(tables.meta.c.value).where(tables.meta.c.key == SCHEMA_VERSION_KEY)
    ).scalar_one_or_none()
    return value or "0"


def bump_version(conn: Connection) -> None:
    new = uuid.uuid4().hex
    done = conn.execute(
        update(tables.meta).where(tables.meta.c.key == SCHEMA_VERSION_KEY).values(value=new)
    )
    if done.rowcount == 0:
        conn.execute(insert(tables.meta).values(key=SCHEMA_VERSION_KEY, value=new))


def load_workspace(conn: Connection) -> Workspace:
    version = current_version(conn)
    cache_key = (str(conn.engine.url), version)
    with _cache_lock:
        cached = _cache.get(cache_key)
    if cached is not None:
        return cached
    ws = _read_workspace(conn, version)
    with _cache_lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[cache_key] = ws
    return ws


def _read_workspace(conn: Connection, version: str) -> Workspace:
    steps: dict[str, list[StepDef]] = defaultdict(list)
    for row in conn.execute(
        select(tables.pipeline_steps).order_by(
            tables.pipeline_steps.c.order_index, tables.pipeline_steps.c.name
        )
    ):
        steps[row.pipeline_id].append(StepDef(row.id, row.name, row.order_index))
    pipelines: dict[str, list[PipelineDef]] = defaultdict(list)
    for row in conn.execute(
        select(tables.pipelines).order_by(tables.pipelines.c.position, tables.pipelines.c.name)
    ):
        pipelines[row.object_name].append(
            PipelineDef(row.id, row.name, row.object_name, tuple(steps[row.id]))
        )
    fields: dict[str, list[FieldDef]] = defaultdict(list)
    for row in conn.execute(select(tables.fields).order_by(tables.fields.c.position)):
        fields[row.object_name].append(
            FieldDef(
                name=row.name,
                label=row.label,
                type=FieldType(row.type),
                required=row.required,
                options=tuple(json.loads(row.options)) if row.options else (),
                relation=row.relation_object,
                is_standard=row.is_standard,
            )
        )
    objects: dict[str, ObjectDef] = {}
    for row in conn.execute(select(tables.objects).order_by(tables.objects.c.position)):
        objects[row.name] = ObjectDef(
            name=row.name,
            label=row.label,
            fields=tuple(fields[row.name]),
            is_standard=row.is_standard,
            pipelines=tuple(pipelines[row.name]),
        )
    return Workspace(version, objects, build_tables(objects.values()))


def insert_object(conn: Connection, name: str, label: str, *, is_standard: bool) -> None:
    position = conn.execute(select(func.count()).select_from(tables.objects)).scalar_one()
    conn.execute(
        insert(tables.objects).values(
            name=name, label=label, is_standard=is_standard, position=position, created_at=now_utc()
        )
    )


def insert_field(conn: Connection, object_name: str, f: FieldDef) -> None:
    position = conn.execute(
        select(func.count())
        .select_from(tables.fields)
        .where(tables.fields.c.object_name == object_name)
    ).scalar_one()
    conn.execute(
        insert(tables.fields).values(
            object_name=object_name,
            name=f.name,
            label=f.label,
            type=f.type.value,
            required=f.required,
            options=json.dumps(list(f.options)) if f.options else None,
            relation_object=f.relation,
            position=position,
            is_standard=f.is_standard,
        )
    )


def insert_pipeline(
    conn: Connection, object_name: str, name: str, step_names: list[str], *, ids: list[str]
) -> None:
    """ids: the pipeline id then one id per step (time-ordered ids from the caller)."""
    position = conn.execute(
        select(func.count())
        .select_from(tables.pipelines)
        .where(tables.pipelines.c.object_name == object_name)
    ).scalar_one()
    conn.execute(
        insert(tables.pipelines).values(
            id=ids[0], object_name=object_name, name=name, position=position, created_at=now_utc()
        )
    )
    conn.execute(
        insert(tables.pipeline_steps),
        [
            {"id": step_id, "pipeline_id": ids[0], "name": step, "order_index": i}
            for i, (step_id, step) in enumerate(zip(ids[1:], step_names, strict=True))
        ],
    )


def count_records(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
