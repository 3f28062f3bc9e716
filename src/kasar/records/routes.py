"""Records API (spec §4): thin HTTP shell over ``records.service``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from kasar.auth.deps import current_user
from kasar.auth.service import User
from kasar.db.engine import read_transaction, write_transaction
from kasar.errors import ValidationFailed
from kasar.records import service
from kasar.records.filters import parse_filters
from kasar.records.query import RecordQuery, parse_keys, parse_sort
from kasar.schema.repository import load_workspace
from kasar.web_common import engine_of, errors, read_json_object

router = APIRouter(tags=["records"])
RECORD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": True,
                    "description": "Field name -> value, as GET /schema/{object} lists them",
                }
            }
        },
    }
}


@router.get("/records/{object_name}", responses=errors(400, 401))
def list_records(
    object_name: str,
    request: Request,
    limit: int = Query(20, description="1 to 100"),
    cursor: str | None = Query(None, description="nextCursor of the previous page"),
    sort_by: str | None = Query(None, description="default created_at"),
    sort_dir: str | None = Query(None, description="asc or desc (default)"),
    fields: str | None = Query(None, description="comma-separated keys to return"),
    filter_field: str | None = None,
    filter_operator: str | None = None,
    filter_value: str | None = None,
    filters: str | None = Query(None, description="a JSON-encoded FilterGroup"),
    _: User = Depends(current_user),
) -> dict[str, Any]:
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100")
    with read_transaction(engine_of(request)) as conn:
        ws = load_workspace(conn)
        obj = ws.object(object_name)
        keys = parse_keys(obj, fields, service.default_keys(obj))
        key, direction = parse_sort(obj, sort_by, sort_dir)
        group = parse_filters(filter_field, filter_operator, filter_value, filters)
        q = RecordQuery(keys, group, key, direction)
        return service.list_records(conn, ws, object_name, q, limit=limit, cursor=cursor).to_api()


@router.get("/records/{object_name}/{record_id}", responses=errors(400, 401, 404))
def get_record(
    object_name: str, record_id: str, request: Request, _: User = Depends(current_user)
) -> dict[str, Any]:
    with read_transaction(engine_of(request)) as conn:
        return service.get_record(conn, load_workspace(conn), object_name, record_id)


@router.post(
    "/records/{object_name}",
    status_code=201,
    responses=errors(400, 401, 413),
    openapi_extra=RECORD_BODY,
)
async def create_record(
    object_name: str, request: Request, _: User = Depends(current_user)
) -> dict[str, Any]:
    await run_in_threadpool(_check_object, request, object_name)
    body = await read_json_object(request)

    def run() -> dict[str, Any]:
        with write_transaction(engine_of(request)) as conn:
            return service.create_record(conn, load_workspace(conn), object_name, body)

    return await run_in_threadpool(run)


@router.patch(
    "/records/{object_name}/{record_id}",
    responses=errors(400, 401, 404, 413),
    openapi_extra=RECORD_BODY,
)
async def update_record(
    object_name: str, record_id: str, request: Request, _: User = Depends(current_user)
) -> dict[str, Any]:
    await run_in_threadpool(_check_object, request, object_name)
    body = await read_json_object(request)

    def run() -> dict[str, Any]:
        with write_transaction(engine_of(request)) as conn:
            return service.update_record(conn, load_workspace(conn), object_name, record_id, body)

    return await run_in_threadpool(run)


@router.delete(
    "/records/{object_name}/{record_id}", status_code=204, responses=errors(400, 401, 404)
)
def delete_record(
    object_name: str, record_id: str, request: Request, _: User = Depends(current_user)
) -> Response:
    with write_transaction(engine_of(request)) as conn:
        service.delete_record(conn, load_workspace(conn), object_name, record_id)
    return Response(status_code=204)


def _check_object(request: Request, object_name: str) -> None:
    with read_transaction(engine_of(request)) as conn:
        load_workspace(conn).object(object_name)
