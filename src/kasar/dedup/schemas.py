"""What the duplicates API takes in and answers (spec §7, issue 7).

The route reads the body itself, after the permission check, and validates it with
these models (unknown keys are refused, so a misspelt ``threshold`` is never silently
ignored); the OpenAPI document shows them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

MAX_GROUPS = 1000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectRequest(_Body):
    action: Literal["detect"]
    object_name: str
    fields: list[str] | str | None = Field(
        None, description="keys shown for each record (a list or comma-separated); default all"
    )
    limit: int = Field(100, ge=1, le=MAX_GROUPS, description="groups returned, 1 to 1000")
    mode: Literal["exact", "fuzzy"] = Field(
        "exact", description="exact: §7 match keys only; fuzzy: also typos, nicknames, ..."
    )
    threshold: float | None = Field(
        None, ge=0.5, le=1.0, description="fuzzy: lowest pair score kept (KASAR_FUZZY_THRESHOLD)"
    )


class MergeRequest(_Body):
    action: Literal["merge"]
    object_name: str
    master_id: str
    duplicate_ids: list[str] = Field(description="records folded into the master, by priority")


class UnmergeRequest(_Body):
    action: Literal["unmerge"]
    merge_id: str
    object_name: str | None = Field(None, description="optional; checked against the merge's")


DuplicatesRequest = Annotated[
    DetectRequest | MergeRequest | UnmergeRequest, Field(discriminator="action")
]


class DuplicatesBody(RootModel[DuplicatesRequest]):
    """The body of ``POST /api/v1/duplicates``, one of three actions."""


class ResolveRequest(_Body):
    action: Literal["create", "merge", "discard"]
    target_id: str | None = Field(None, description="merge: the record the held one folds into")


class Link(BaseModel):
    ids: list[str]
    score: float
    reasons: list[str] = Field(examples=[["name~0.94", "nickname"]])


class DuplicateGroup(BaseModel):
    records: list[dict[str, Any]]
    matched_on: list[str] = Field(
        description="kinds of key tying the group: id, email, phone, linkedin, domain, name, "
        "fuzzy_name"
    )
    score: float = Field(description="1.0 for exact links; else the weakest link's score")
    reasons: list[str]
    links: list[Link]


class DetectAnswer(BaseModel):
    object_name: str
    mode: str
    duplicate_groups: list[DuplicateGroup]
    total_groups: int


class MergeAnswer(BaseModel):
    merge_id: str
    master: dict[str, Any]
    merged_ids: list[str] | None = None
    restored_ids: list[str] | None = None


class Candidate(BaseModel):
    id: str
    score: float
    reasons: list[str]
    record: dict[str, Any] | None = None


class ReviewEntry(BaseModel):
    id: str
    object_name: str
    job_id: str | None
    state: Literal["pending", "created", "merged", "discarded"]
    record: dict[str, Any]
    candidates: list[Candidate]
    resolution: dict[str, Any] | None
    created_at: str
    resolved_at: str | None
    result: dict[str, Any] | None = None


class ReviewPage(BaseModel):
    data: list[ReviewEntry]
    total: int
    nextCursor: str | None
