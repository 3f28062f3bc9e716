"""Pipelines (spec §3): list them, move a record to another step."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from kasar.auth.deps import current_user
from kasar.auth.service import User
from kasar.db.engine import read_transaction, write_transaction
from kasar.errors import ValidationFailed
from kasar.records import service as records
from kasar.schema.model import KeyRole
from kasar.schema.repository import load_workspace
from kasar.web_common import engine_of, errors, json_body, parse_model, read_json_object

router = APIRouter(tags=["pipelines"])


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline_step_id: str


@router.get("/pipelines", responses=errors(401))
def list_pipelines(request: Request, _: User = Depends(current_user)) -> dict[str, Any]:
    with read_transaction(engine_of(request)) as conn:
        ws = load_workspace(conn)
        return {"pipelines": [p.to_api() for o in ws.objects.values() for p in o.pipelines]}


@router.put(
    "/pipelines/{object_name}/{record_id}/move",
    responses=errors(400, 401, 404, 413),
    openapi_extra=json_body(MoveIn),
)
async def move(
    object_name: str, record_id: str, request: Request, _: User = Depends(current_user)
) -> dict[str, Any]:
    """Move a record to a step (of any pipeline of its object)."""
    with read_transaction(engine_of(request)) as conn:
        obj = load_workspace(conn).object(object_name)
    body = parse_model(MoveIn, await read_json_object(request))
    step_key = next((k for k in obj.all_keys() if obj.key(k).role is KeyRole.STEP_ID), None)  # type: ignore[union-attr]
    if step_key is None:
        raise ValidationFailed(f"Object '{object_name}' has no pipeline")
    pipeline = next(
        (p for p in obj.pipelines if any(s.id == body.pipeline_step_id for s in p.steps)), None
    )
    if pipeline is None:
        raise ValidationFailed("pipeline_step_id is not a step of this object's pipelines")
    pipeline_key = step_key.removesuffix("_step_id") + "_id"

    def run() -> dict[str, Any]:
        with write_transaction(engine_of(request)) as conn:
            data = {pipeline_key: pipeline.id, step_key: body.pipeline_step_id}
            return records.update_record(conn, load_workspace(conn), object_name, record_id, data)

    return await run_in_threadpool(run)
