"""Creating objects and fields: metadata rows, record tables and columns together."""

from __future__ import annotations

from sqlalchemy import Connection

from kasar.db.ids import new_id
from kasar.db.locks import lock_keys
from kasar.errors import ValidationFailed
from kasar.schema import repository as repo
from kasar.schema.ddl import add_field_columns, create_object_table
from kasar.schema.model import SYSTEM_KEYS, FieldDef, ObjectDef
from kasar.schema.schemas import FieldIn, ObjectIn
from kasar.schema.standard import SALES_PIPELINE, SALES_STEPS, STANDARD_OBJECTS
from kasar.schema.types import FieldType

SCHEMA_LOCK = "kasar:schema"


def seed_standard_workspace(conn: Connection) -> None:
    """Create the standard objects and the Sales Pipeline (run once, by migration 0001)."""
    created: list[ObjectDef] = []
    for name, label, fields in STANDARD_OBJECTS:
        repo.insert_object(conn, name, label, is_standard=True)
        for f in fields:
            repo.insert_field(conn, name, f)
        obj = ObjectDef(name=name, label=label, fields=tuple(fields), is_standard=True)
        create_object_table(conn, obj, created)
        created.append(obj)
    object_name, pipeline_name = SALES_PIPELINE
    ids = [new_id() for _ in range(len(SALES_STEPS) + 1)]
    repo.insert_pipeline(conn, object_name, pipeline_name, SALES_STEPS, ids=ids)
    repo.bump_version(conn)


def _field_def(ws: repo.Workspace, spec: FieldIn, owner: str) -> FieldDef:
    options: tuple[str, ...] = ()
    if spec.type in (FieldType.SELECT, FieldType.MULTI_SELECT):
        cleaned = [o.strip() for o in spec.options or []]
        if not cleaned or any(not o for o in cleaned):
            raise ValidationFailed(f"Field '{spec.name}': a {spec.type} field needs options")
        if len({o.lower() for o in cleaned}) != len(cleaned):
            raise ValidationFailed(f"Field '{spec.name}': options must be distinct")
        options = tuple(cleaned)
    elif spec.options:
        raise ValidationFailed(f"Field '{spec.name}': only SELECT fields take options")
    relation = spec.relation_target()
    if spec.type is FieldType.RELATION:
        if relation is None or (relation not in ws.objects and relation != owner):
            raise ValidationFailed(f"Field '{spec.name}': 'relation' must name an existing object")
    elif spec.relation is not None:
        raise ValidationFailed(f"Field '{spec.name}': only RELATION fields take 'relation'")
    if spec.type is FieldType.PIPELINE and spec.pipeline is None:
        raise ValidationFailed(f"Field '{spec.name}': a PIPELINE field needs 'pipeline'")
    if spec.type is not FieldType.PIPELINE and spec.pipeline is not None:
        raise ValidationFailed(f"Field '{spec.name}': only PIPELINE fields take 'pipeline'")
    label = spec.label or spec.name.replace("_", " ").capitalize()
    return FieldDef(spec.name, label, spec.type, spec.required, options, relation)


def _check_keys_free(existing: list[FieldDef], new: FieldDef) -> None:
    taken = set(SYSTEM_KEYS)
    for f in existing:
        taken.update(f.keys())
        taken.add(f.name)
        if f.type in (FieldType.EMAILS, FieldType.PHONES):
            taken.add(f.list_column)
    clash = sorted(taken & {*new.keys(), new.name})
    if clash:
        raise ValidationFailed(f"Field '{new.name}' clashes with existing name '{clash[0]}'")
    if new.type is FieldType.PIPELINE and any(f.type is FieldType.PIPELINE for f in existing):
        raise ValidationFailed("An object has at most one PIPELINE field")


def _add_pipeline(conn: Connection, object_name: str, spec: FieldIn) -> None:
    assert spec.pipeline is not None
    steps = [s.strip() for s in spec.pipeline.steps]
    if any(not s for s in steps) or len(set(steps)) != len(steps):
        raise ValidationFailed(f"Field '{spec.name}': pipeline steps must be distinct names")
    ids = [new_id() for _ in range(len(steps) + 1)]
    repo.insert_pipeline(conn, object_name, spec.pipeline.name.strip(), steps, ids=ids)


def create_object(conn: Connection, ws: repo.Workspace, spec: ObjectIn) -> ObjectDef:
    lock_keys(conn, [SCHEMA_LOCK])
    ws = repo.load_workspace(conn)
    if spec.name in ws.objects:
        raise ValidationFailed(f"Object '{spec.name}' already exists")
    fields: list[FieldDef] = []
    for fspec in spec.fields:
        f = _field_def(ws, fspec, spec.name)
        _check_keys_free(fields, f)
        fields.append(f)
    label = spec.label or spec.name.replace("_", " ").capitalize()
    repo.insert_object(conn, spec.name, label, is_standard=False)
    for f in fields:
        repo.insert_field(conn, spec.name, f)
    for fspec in spec.fields:
        if fspec.type is FieldType.PIPELINE:
            _add_pipeline(conn, spec.name, fspec)
    obj = ObjectDef(name=spec.name, label=label, fields=tuple(fields))
    create_object_table(conn, obj, ws.objects.values())
    repo.bump_version(conn)
    return obj


def add_field(conn: Connection, ws: repo.Workspace, object_name: str, spec: FieldIn) -> FieldDef:
    lock_keys(conn, [SCHEMA_LOCK])
    ws = repo.load_workspace(conn)
    obj = ws.object(object_name)
    f = _field_def(ws, spec, object_name)
    _check_keys_free(list(obj.fields), f)
    repo.insert_field(conn, object_name, f)
    if spec.type is FieldType.PIPELINE:
        _add_pipeline(conn, object_name, spec)
    add_field_columns(conn, obj, f)
    repo.bump_version(conn)
    return f
