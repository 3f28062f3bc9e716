"""What the schema API takes in."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kasar.schema.model import NAME_PATTERN
from kasar.schema.types import FieldType


class PipelineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    steps: list[str] = Field(min_length=1, max_length=50)


class FieldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    label: str | None = Field(default=None, max_length=200)
    type: FieldType
    required: bool = False
    options: list[str] | None = Field(default=None, max_length=500)
    relation: str | dict[str, Any] | None = None
    pipeline: PipelineIn | None = None

    @field_validator("name")
    @classmethod
    def _snake_case(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ValueError("must be lowercase snake_case (a-z, 0-9, _), starting with a letter")
        return v

    def relation_target(self) -> str | None:
        if isinstance(self.relation, dict):
            target = self.relation.get("target")
            return target if isinstance(target, str) else None
        return self.relation


class ObjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    label: str | None = Field(default=None, max_length=200)
    fields: list[FieldIn] = Field(default_factory=list, max_length=200)

    @field_validator("name")
    @classmethod
    def _snake_case(cls, v: str) -> str:
        if not NAME_PATTERN.match(v) or len(v) > 50:
            raise ValueError("must be lowercase snake_case (a-z, 0-9, _), at most 50 characters")
        return v
