"""Schema API (spec §3): list and read objects; admins add objects and fields."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from kasar.auth.deps import admin_user, current_user
from kasar.auth.service import User
from kasar.db.engine import read_transaction, write_transaction
from kasar.schema import service
from kasar.schema.repository import count_records, load_workspace
from kasar.schema.schemas import FieldIn, ObjectIn
from kasar.web_common import engine_of, errors, json_body, parse_model, read_json_object

router = APIRouter(tags=["schema"])


@router.get("/schema", responses=errors(401))
def list_objects(request: Request, _: User = Depends(current_user)) -> dict[str, Any]:
    """Every object with its field and record counts."""
    with read_transaction(engine_of(request)) as conn:
        ws = load_workspace(conn)
        return {
            "objects": [
                {
                    "name": o.name,
                    "label": o.label,
                    "fieldCount": len(o.fields),
                    "recordCount": count_records(conn, ws.tables[o.name]),
                }
                for o in ws.objects.values()
            ]
        }


@router.get("/schema/{object_name}", responses=errors(400, 401))
def get_object(
    object_name: str, request: Request, _: User = Depends(current_user)
) -> dict[str, Any]:
    with read_transaction(engine_of(request)) as conn:
        return load_workspace(conn).object(object_name).to_api()


@router.post(
    "/schema/objects",
    status_code=201,
    responses=errors(400, 401, 403, 413),
    openapi_extra=json_body(ObjectIn),
)
async def create_object(request: Request, _: User = Depends(admin_user)) -> dict[str, Any]:
    """Create a custom object, optionally with its first fields."""
    spec = parse_model(ObjectIn, await read_json_object(request))

    def run() -> dict[str, Any]:
        with write_transaction(engine_of(request)) as conn:
            return service.create_object(conn, load_workspace(conn), spec).to_api()

    return await run_in_threadpool(run)


@router.post(
    "/schema/{object_name}/fields",
    status_code=201,
    responses=errors(400, 401, 403, 413),
    openapi_extra=json_body(FieldIn),
)
async def add_field(
    object_name: str, request: Request, _: User = Depends(admin_user)
) -> dict[str, Any]:
    """Add one field to an object (standard or custom)."""
    with read_transaction(engine_of(request)) as conn:
        load_workspace(conn).object(object_name)
    spec = parse_model(FieldIn, await read_json_object(request))

    def run() -> dict[str, Any]:
        with write_transaction(engine_of(request)) as conn:
            return service.add_field(conn, load_workspace(conn), object_name, spec).to_api()

    return await run_in_threadpool(run)
