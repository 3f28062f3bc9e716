"""Turn one record as a client wrote it into column values, or say what is wrong.

Relations given by name are left for ``repository.resolve_relations``, which
looks them up for many records at once; pipelines are resolved here, in memory.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from kasar.errors import ValidationFailed
from kasar.schema.model import FieldDef, KeyRole, ObjectDef, PipelineDef
from kasar.schema.types import FieldType
from kasar.schema.values import InvalidValue, normalise_value
from kasar.settings import get_settings


@dataclass
class PreparedRow:
    """Column values of one write. ``relation_names`` maps a RELATION field to the
    name it should link to; ``system`` holds id/created_at/updated_at given by an
    import that restores an export."""

    values: dict[str, object] = field(default_factory=dict)
    relation_names: dict[str, str] = field(default_factory=dict)
    relation_ids: dict[str, str] = field(default_factory=dict)
    system: dict[str, object] = field(default_factory=dict)
    # ``dedup.keys.match_keys_for(values)`` once computed (an import needs them
    # twice: to match the row, then to store them with it).
    stored_keys: set[tuple[str, str]] | None = None


def validate_write(
    obj: ObjectDef,
    data: Mapping[str, object],
    *,
    partial: bool = False,
    allow_system: bool = False,
) -> PreparedRow:
    """Raises ``ValidationFailed`` whose message names every problem, e.g.
    "Field 'email' must be a valid email address"."""
    settings = get_settings()
    row = PreparedRow()
    problems: list[str] = []
    pipeline_parts: dict[str, dict[KeyRole, object]] = {}
    for key, raw in data.items():
        ref = obj.key(key) if isinstance(key, str) else None
        if ref is None:
            problems.append(f"Unknown field '{key}'")
            continue
        if ref.role is KeyRole.SYSTEM:
            if not allow_system:
                problems.append(f"Field '{key}' is read-only")
            else:
                _system_value(row, key, raw, problems)
            continue
        f = ref.field
        assert f is not None
        try:
            if ref.role is KeyRole.VALUE:
                _set_value(row, f, raw, settings.default_phone_region, settings.text_max_length)
            elif ref.role is KeyRole.RELATION_ID:
                if raw not in (None, ""):
                    if not isinstance(raw, str) or len(raw) > 36 or "\x00" in raw:
                        raise InvalidValue("must be a record id")
                    row.relation_ids[f.name] = raw
                elif f.name not in row.relation_ids:
                    row.values[f.column] = None
            elif ref.role is KeyRole.RELATION_NAME:
                if raw not in (None, ""):
                    if not isinstance(raw, str):
                        raise InvalidValue("must be text")
                    # checked as the target's name will be: a NUL or an overlong name
                    # fails this record, not the batch (nor the database, on PostgreSQL)
                    _text_value(raw, settings.text_max_length)
                    row.relation_names[f.name] = raw.strip()
                else:
                    row.values.setdefault(f.column, None)
            else:
                pipeline_parts.setdefault(f.name, {})[ref.role] = raw
        except InvalidValue as exc:
            problems.append(f"Field '{key}' {exc}")
    for name in row.relation_ids:
        row.relation_names.pop(name, None)
    for f in obj.fields_by_type.get(FieldType.PIPELINE, ()):
        if f.name in pipeline_parts or not partial:
            try:
                _set_pipeline(row, obj, f, pipeline_parts.get(f.name, {}))
            except InvalidValue as exc:
                problems.append(f"Field '{f.name}' {exc}")
    for f in obj.required_fields:
        if _missing(row, f, partial):
            problems.append(f"Field '{f.name}' is required")
    if problems:
        raise ValidationFailed("; ".join(problems), details=problems if len(problems) > 1 else None)
    return row


def _missing(row: PreparedRow, f: FieldDef, partial: bool) -> bool:
    """A required field is missing when a create leaves it empty, or any write empties it."""
    linked = f.name in row.relation_ids or f.name in row.relation_names
    present = linked or row.values.get(f.column) is not None
    emptied = f.column in row.values and not present
    return emptied or (not partial and not present)


def _set_value(row: PreparedRow, f: FieldDef, raw: object, region: str, max_len: int) -> None:
    value = normalise_value(f.type, raw, options=f.options, phone_region=region, max_length=max_len)
    if f.type in (FieldType.EMAILS, FieldType.PHONES):
        items = value if isinstance(value, list) else []
        row.values[f.column] = items[0] if items else None
        row.values[f.list_column] = _json_list(items) if items else None
    elif f.type in (FieldType.MULTI_SELECT, FieldType.ADDRESS):
        row.values[f.column] = json.dumps(value, ensure_ascii=False) if value else None
    else:
        row.values[f.column] = value


def _json_list(items: list[str]) -> str:
    """``json.dumps(items, ensure_ascii=False)``, without its cost for the usual one
    plain item (an item with a quote, a backslash or a control character goes
    through ``json``)."""
    if len(items) == 1 and (item := items[0]).isprintable() and not ('"' in item or "\\" in item):
        return f'["{item}"]'
    return json.dumps(items, ensure_ascii=False)


def _text_value(raw: str, max_length: int) -> None:
    normalise_value(FieldType.TEXT, raw, max_length=max_length)


def _system_value(row: PreparedRow, key: str, raw: object, problems: list[str]) -> None:
    if raw in (None, ""):
        return
    if key == "id":
        try:
            row.system["id"] = str(uuid.UUID(raw)) if isinstance(raw, str) else None
        except ValueError:
            row.system["id"] = None
        if row.system["id"] is None or len(raw) not in (32, 36):  # type: ignore[arg-type]
            row.system.pop("id")
            problems.append("Field 'id' must be a record id (UUID)")
        return
    try:
        value = normalise_value(FieldType.DATETIME, raw)
    except InvalidValue as exc:
        problems.append(f"Field '{key}' {exc}")
        return
    assert isinstance(value, datetime)
    row.system[key] = value


def _find_pipeline(obj: ObjectDef, parts: dict[KeyRole, object]) -> PipelineDef:
    pid, pname = parts.get(KeyRole.PIPELINE_ID), parts.get(KeyRole.PIPELINE_NAME)
    sid = parts.get(KeyRole.STEP_ID)
    for p in obj.pipelines:
        if pid not in (None, "") and p.id == pid:
            return p
        if isinstance(pname, str) and pname.strip() and p.name.lower() == pname.strip().lower():
            return p
    if pid not in (None, "") or (isinstance(pname, str) and pname.strip()):
        names = ", ".join(p.name for p in obj.pipelines)
        raise InvalidValue(f"must name an existing pipeline ({names})")
    if sid not in (None, ""):
        for p in obj.pipelines:
            if any(s.id == sid for s in p.steps):
                return p
    return obj.pipelines[0]


def _set_pipeline(
    row: PreparedRow, obj: ObjectDef, f: FieldDef, parts: dict[KeyRole, object]
) -> None:
    """Place the record in a pipeline step; with nothing given, the pipeline default:
    the object's first pipeline and its lowest ``order_index`` step."""
    if not obj.pipelines:
        if any(v not in (None, "") for v in parts.values()):
            raise InvalidValue("has no pipeline to use")
        return
    pipeline = _find_pipeline(obj, parts)
    sid, sname = parts.get(KeyRole.STEP_ID), parts.get(KeyRole.STEP_NAME)
    step = None
    if sid not in (None, ""):
        step = next((s for s in pipeline.steps if s.id == sid), None)
    elif isinstance(sname, str) and sname.strip():
        step = next((s for s in pipeline.steps if s.name.lower() == sname.strip().lower()), None)
    else:
        step = min(pipeline.steps, key=lambda s: s.order_index, default=None)
    if step is None:
        names = ", ".join(s.name for s in pipeline.steps)
        raise InvalidValue(f"step must be one of the steps of '{pipeline.name}': {names}")
    row.values[f.column] = pipeline.id
    row.values[f.step_column] = step.id
