"""What the import API takes in and answers, for the OpenAPI document.

The route checks the body itself (clearer messages, and after the permission and
object checks); these models describe it to clients.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

SEED_EXAMPLE: dict[str, JsonValue] = {
    "records": [
        {"first_name": "Alice", "last_name": "Martin", "email": "alice@example.com"},
        {"first_name": "Bob", "last_name": "Dupont", "email": "bob@startup.io"},
    ]
}


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": SEED_EXAMPLE})
    records: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=50,
        description="1 to 50 records; each maps the object's field names to values",
    )


class ImportErrorItem(BaseModel):
    index: int = Field(description="0-based position of the record in the request")
    code: Literal["VALIDATION_ERROR"]
    message: str = Field(examples=["Field 'email' must be a valid email address"])


class RecordError(BaseModel):
    code: Literal["VALIDATION_ERROR"]
    message: str


class RecordOutcome(BaseModel):
    index: int
    status: Literal["created", "duplicate", "failed", "held"]
    id: str | None = Field(None, description="the created record's id")
    duplicate_of: str | None = Field(None, description="the id of the record it duplicates")
    matched_on: list[str] | None = Field(
        None, description="kinds of key shared: id, email, phone, linkedin, domain, name"
    )
    updated: bool | None = Field(
        None, description="with on_duplicate update|overwrite: the duplicate changed the record"
    )
    error: RecordError | None = None
    review_id: str | None = Field(None, description="held: the review queue entry")
    candidates: list[dict[str, Any]] | None = Field(
        None, description="held: the stored records it may duplicate, with score and reasons"
    )


class ImportAnswer(BaseModel):
    object_name: str
    created: int
    duplicates: int
    failed: int
    updated: int | None = Field(
        None, description="only with on_duplicate update|overwrite; also counted in duplicates"
    )
    held: int | None = Field(
        None, description="only with on_possible_duplicate=hold: records put in the review queue"
    )
    errors: list[ImportErrorItem]
    results: list[RecordOutcome]


QUERY_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "dry_run",
        "in": "query",
        "required": False,
        "description": "Compute the whole answer and write nothing",
        "schema": {"type": "boolean", "default": False},
    },
    {
        "name": "on_duplicate",
        "in": "query",
        "required": False,
        "description": "skip the duplicate, update the stored record's empty fields from it, "
        "or overwrite the fields it gives",
        "schema": {"type": "string", "enum": ["skip", "update", "overwrite"], "default": "skip"},
    },
    {
        "name": "on_possible_duplicate",
        "in": "query",
        "required": False,
        "description": "create a record that only fuzzily matches a stored one, or hold it in "
        "the review queue (GET /api/v1/duplicates/review); the answer then adds 'held'",
        "schema": {"type": "string", "enum": ["create", "hold"], "default": "create"},
    },
]
