"""Duplicates API (spec §7, issue 7): a thin HTTP shell over ``dedup``.

``POST /api/v1/duplicates`` dispatches on ``action`` (detect, merge, unmerge); the
review queue has its own two routes. All are admin-only. Checks come in the order
of spec §1: token (401), admin (403, before the body is read), then the object named
in the body (400 INVALID_OBJECT), then the rest of the body (400 VALIDATION_ERROR).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from kasar.auth.deps import admin_user
from kasar.auth.service import User
from kasar.db.engine import read_transaction, write_transaction
from kasar.dedup import review
from kasar.dedup.detect import detect_duplicates
from kasar.dedup.merge import merge_records, unmerge
from kasar.dedup.schemas import (
    DetectAnswer,
    DetectRequest,
    DuplicatesBody,
    MergeAnswer,
    MergeRequest,
    ResolveRequest,
    ReviewEntry,
    ReviewPage,
    UnmergeRequest,
)
from kasar.errors import ValidationFailed
from kasar.records.query import parse_keys
from kasar.records.service import default_keys
from kasar.schema.repository import load_workspace
from kasar.web_common import engine_of, errors, parse_model, read_json_object

router = APIRouter(tags=["duplicates"])
ACTIONS = ("detect", "merge", "unmerge")


def _inline_body(model: type[Any]) -> dict[str, Any]:
    """``openapi_extra`` for a body whose schema has sub-models: ``$defs`` inlined,
    since an operation's schema cannot refer to the model's own definitions."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            # a discriminator's mapping names the definitions, which are now inline
            return {k: inline(v) for k, v in node.items() if k != "mapping"}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/duplicates",
    response_model=None,
    responses={
        200: {"model": DetectAnswer | MergeAnswer, "description": "detect, merge or unmerge"},
        **errors(400, 401, 403, 404, 409, 413),
    },
    openapi_extra=_inline_body(DuplicatesBody),
)
async def duplicates(request: Request, user: User = Depends(admin_user)) -> dict[str, Any]:
    """Detect duplicate groups, merge duplicates into a master, or undo a merge (admin)."""
    body = await read_json_object(request)
    action = body.get("action")
    if action not in ACTIONS:
        raise ValidationFailed("action must be one of: " + ", ".join(ACTIONS))
    name = body.get("object_name")
    if action != "unmerge" or name is not None:
        if not isinstance(name, str) or not name:
            raise ValidationFailed("object_name is required and must be text")
        await run_in_threadpool(_check_object, request, name)
    if action == "detect":
        return await run_in_threadpool(_detect, request, parse_model(DetectRequest, body))
    if action == "merge":
        req = parse_model(MergeRequest, body)

        def merge() -> dict[str, Any]:
            with write_transaction(engine_of(request)) as conn:
                ws = load_workspace(conn)
                return merge_records(
                    conn, ws, req.object_name, req.master_id, req.duplicate_ids, created_by=user.id
                )

        return await run_in_threadpool(merge)
    undo = parse_model(UnmergeRequest, body)

    def run_unmerge() -> dict[str, Any]:
        with write_transaction(engine_of(request)) as conn:
            ws = load_workspace(conn)
            answer = unmerge(conn, ws, undo.merge_id, object_name=undo.object_name)
            return answer

    return await run_in_threadpool(run_unmerge)


def _check_object(request: Request, object_name: str) -> None:
    with read_transaction(engine_of(request)) as conn:
        load_workspace(conn).object(object_name)


def _detect(request: Request, req: DetectRequest) -> dict[str, Any]:
    fields = ",".join(req.fields) if isinstance(req.fields, list) else req.fields
    with read_transaction(engine_of(request)) as conn:
        ws = load_workspace(conn)
        obj = ws.object(req.object_name)
        keys = parse_keys(obj, fields, default_keys(obj))
        return detect_duplicates(
            conn,
            ws,
            req.object_name,
            keys=keys,
            limit=req.limit,
            mode=req.mode,
            threshold=req.threshold,
        )


@router.get(
    "/duplicates/review",
    responses={200: {"model": ReviewPage}, **errors(400, 401, 403)},
)
def list_review(request: Request, user: User = Depends(admin_user)) -> dict[str, Any]:
    """Records held by imports (on_possible_duplicate=hold), with their candidates (admin).
    Query: ``object_name``, ``state`` (pending, created, merged, discarded, all; default
    pending), ``limit`` (1 to 100, default 20), ``cursor``."""
    params = request.query_params
    raw_limit = params.get("limit", "20").strip()
    if not raw_limit.isdigit():
        raise ValidationFailed("limit must be a whole number between 1 and 100")
    with read_transaction(engine_of(request)) as conn:
        return review.list_review(
            conn,
            load_workspace(conn),
            object_name=params.get("object_name") or None,
            state=params.get("state", "pending").strip().lower(),
            limit=int(raw_limit),
            cursor=params.get("cursor") or None,
        )


@router.post(
    "/duplicates/review/{review_id}",
    response_model=None,
    responses={200: {"model": ReviewEntry}, **errors(400, 401, 403, 404, 409, 413)},
    openapi_extra=_inline_body(ResolveRequest),
)
async def resolve_review(
    review_id: str, request: Request, user: User = Depends(admin_user)
) -> dict[str, Any]:
    """Resolve a held record: create it, merge it into ``target_id``, or discard it (admin)."""
    req = parse_model(ResolveRequest, await read_json_object(request))

    def run() -> dict[str, Any]:
        with write_transaction(engine_of(request)) as conn:
            return review.resolve(
                conn,
                load_workspace(conn),
                review_id,
                req.action,
                req.target_id,
                resolved_by=user.id,
            )

    return await run_in_threadpool(run)
