"""What an object and its fields are, and how each field maps to columns and keys.

A field is read and written under one or more *keys* (the names used by records,
filters, sorts and CSV headers): most fields have one key, their name; a RELATION
``company`` has ``company_id`` and ``company_name``; a PIPELINE ``pipeline`` has
``pipeline_id``, ``pipeline_step_id``, ``pipeline`` and ``pipeline_step``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from kasar.schema.types import FieldType

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SYSTEM_KEYS = ("id", "created_at", "updated_at")


class KeyRole(StrEnum):
    SYSTEM = "system"
    VALUE = "value"
    RELATION_ID = "relation_id"
    RELATION_NAME = "relation_name"
    PIPELINE_ID = "pipeline_id"
    STEP_ID = "step_id"
    PIPELINE_NAME = "pipeline_name"
    STEP_NAME = "step_name"


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    type: FieldType
    required: bool = False
    options: tuple[str, ...] = ()
    relation: str | None = None
    is_standard: bool = False

    def keys(self) -> dict[str, KeyRole]:
        """The public keys of this field, in display order."""
        if self.type is FieldType.RELATION:
            return {
                f"{self.name}_id": KeyRole.RELATION_ID,
                f"{self.name}_name": KeyRole.RELATION_NAME,
            }
        if self.type is FieldType.PIPELINE:
            return {
                f"{self.name}_id": KeyRole.PIPELINE_ID,
                f"{self.name}_step_id": KeyRole.STEP_ID,
                self.name: KeyRole.PIPELINE_NAME,
                f"{self.name}_step": KeyRole.STEP_NAME,
            }
        return {self.name: KeyRole.VALUE}

    def export_keys(self) -> list[str]:
        """The keys a default export shows: names rather than ids, so that a file
        imports back into another workspace."""
        if self.type is FieldType.RELATION:
            return [f"{self.name}_name"]
        if self.type is FieldType.PIPELINE:
            return [self.name, f"{self.name}_step"]
        return [self.name]

    @cached_property  # asked for several times per imported row
    def column(self) -> str:
        """The main column: the value, the primary email/phone, or the related id."""
        if self.type in (FieldType.RELATION, FieldType.PIPELINE):
            return f"{self.name}_id"
        return self.name

    @cached_property
    def list_column(self) -> str:
        """EMAILS and PHONES keep their full list as JSON beside the primary value."""
        return f"{self.name}_all"

    @cached_property
    def step_column(self) -> str:
        return f"{self.name}_step_id"

    def to_api(self) -> dict[str, object]:
        out: dict[str, object] = {
            "name": self.name,
            "label": self.label,
            "type": self.type.value,
            "required": self.required,
        }
        if self.options:
            out["options"] = list(self.options)
        if self.relation:
            out["relation"] = {
                "type": "BELONGS_TO_ONE",
                "target": self.relation,
                "foreign_key": f"{self.name}_id",
            }
        return out


@dataclass(frozen=True)
class KeyRef:
    key: str
    role: KeyRole
    field: FieldDef | None  # None for system keys


@dataclass(frozen=True)
class StepDef:
    id: str
    name: str
    order_index: int


@dataclass(frozen=True)
class PipelineDef:
    id: str
    name: str
    object_name: str
    steps: tuple[StepDef, ...]

    def to_api(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "objectName": self.object_name,
            "steps": [
                {"id": s.id, "name": s.name, "order_index": s.order_index} for s in self.steps
            ],
        }


@dataclass(frozen=True)
class ObjectDef:
    name: str
    label: str
    fields: tuple[FieldDef, ...]
    is_standard: bool = False
    pipelines: tuple[PipelineDef, ...] = ()
    _keys: dict[str, KeyRef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        keys: dict[str, KeyRef] = {"id": KeyRef("id", KeyRole.SYSTEM, None)}
        for f in self.fields:
            for key, role in f.keys().items():
                keys[key] = KeyRef(key, role, f)
        for key in SYSTEM_KEYS[1:]:
            keys[key] = KeyRef(key, KeyRole.SYSTEM, None)
        self._keys.update(keys)

    @property
    def table_name(self) -> str:
        return f"obj_{self.name}"

    def key(self, key: str) -> KeyRef | None:
        return self._keys.get(key)

    def all_keys(self) -> list[str]:
        return list(self._keys)

    def default_export_keys(self) -> list[str]:
        keys = ["id"]
        for f in self.fields:
            keys.extend(f.export_keys())
        return [*keys, "created_at", "updated_at"]

    def field(self, name: str) -> FieldDef | None:
        return self._by_name.get(name)

    # Computed once: asked for several times per imported row.
    @cached_property
    def _by_name(self) -> dict[str, FieldDef]:
        return {f.name: f for f in reversed(self.fields)}  # the first wins

    @cached_property
    def fields_by_type(self) -> dict[FieldType, tuple[FieldDef, ...]]:
        """The fields of each type, in schema order (validation and match keys ask
        for a few types per row; walking every field each time was a tenth of it)."""
        out: dict[FieldType, list[FieldDef]] = {}
        for f in self.fields:
            out.setdefault(f.type, []).append(f)
        return {t: tuple(fs) for t, fs in out.items()}

    @cached_property
    def required_fields(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields if f.required)

    def name_fields(self) -> tuple[str, ...]:
        """The fields whose values make a record's display name."""
        return self._name_fields

    @cached_property
    def _name_fields(self) -> tuple[str, ...]:
        names = {f.name for f in self.fields}
        if {"first_name", "last_name"} <= names:
            return ("first_name", "last_name")
        if "name" in names:
            return ("name",)
        first_text = next((f.name for f in self.fields if f.type is FieldType.TEXT), None)
        return (first_text,) if first_text else ()

    def to_api(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "fields": [f.to_api() for f in self.fields],
        }
