"""Export jobs API (spec §11): create, list, read, cancel and download. A thin HTTP
shell over ``exports.jobs`` and ``jobs.repository``: it checks the JSON body
(``parse_export_job``, every check before the job exists) and serves the stored
file. Every route is admin-only and refuses a member (403) before it reads a byte
of the body.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from kasar.auth.deps import admin_user
from kasar.auth.service import User
from kasar.db.engine import read_transaction, write_transaction
from kasar.errors import ValidationFailed
from kasar.exports.jobs import (
    FORMATS,
    MEDIA_TYPES,
    OPTIONS,
    OUTPUT,
    ExportJobOptions,
    check_downloadable,
    create_export_job,
    export_job_api,
    read_output,
)
from kasar.exports.service import parse_format, parse_request, select_rows
from kasar.jobs import repository as jobs_repo
from kasar.jobs.blobs import blob_size, read_blob
from kasar.schema.repository import Workspace, load_workspace
from kasar.streaming import stream_in_thread
from kasar.web_common import engine_of, errors, read_json_object

router = APIRouter(tags=["export jobs"])
KIND = "export"
_TEXT_OPTIONS = ("filter_field", "filter_operator", "sort_by", "sort_dir")

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["object"],
                    "properties": {
                        "object": {"type": "string"},
                        "format": {"type": "string", "enum": list(FORMATS), "default": "json"},
                        "fields": {
                            "description": "Keys in output order: a list or a comma-separated "
                            "string (default: every field)",
                            "oneOf": [
                                {"type": "array", "items": {"type": "string"}},
                                {"type": "string"},
                            ],
                        },
                        "filter_field": {"type": "string"},
                        "filter_operator": {"type": "string"},
                        "filter_value": {"type": "string"},
                        "filters": {
                            "description": "A FilterGroup (an object, or its JSON text)",
                            "oneOf": [{"type": "object"}, {"type": "string"}],
                        },
                        "sort_by": {"type": "string", "default": "created_at"},
                        "sort_dir": {"type": "string", "enum": ["asc", "desc"]},
                        "limit": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "At most this many records (default: all, no cap)",
                        },
                    },
                    "additionalProperties": False,
                },
                "example": {
                    "object": "contacts",
                    "format": "csv",
                    "fields": ["first_name", "last_name", "email"],
                    "filters": {
                        "operator": "and",
                        "conditions": [{"field": "status", "operator": "eq", "value": "lead"}],
                    },
                },
            }
        },
    }
}


def parse_export_job(conn: Connection, ws: Workspace, body: dict[str, Any]) -> ExportJobOptions:
    """The JSON body of ``POST /export-jobs``: spec §8's parameters (no row cap, so no
    ``limit`` exports every match), ``fields`` also as a list and ``filters`` also as
    an object. The object is checked first, then everything else, filter values
    included, so that a job never fails on what could be refused now."""
    name = body.get("object")
    if not isinstance(name, str) or not name:
        raise ValidationFailed("'object' is required: the name of the object to export")
    obj = ws.object(name)
    unknown = sorted(set(body) - set(OPTIONS))
    if unknown:
        raise ValidationFailed(f"Unknown option '{unknown[0]}'; use {', '.join(OPTIONS)}")
    fmt = parse_format(_text(body, "format"), FORMATS)
    text = {key: _text(body, key) for key in _TEXT_OPTIONS}
    filters, value = _filters(body.get("filters")), _filter_value(body.get("filter_value"))
    req = parse_request(
        ws,
        obj.name,
        fields=_fields(body.get("fields")),
        filter_value=value,
        filters=filters,
        limit=_limit(body.get("limit")),
        default_limit=None,
        max_limit=None,
        **text,
    )
    select_rows(conn, ws, req)  # converts every filter value: a bad one raises now
    return ExportJobOptions(
        object=obj.name,
        format=fmt,
        fields=req.keys,
        filter_field=text["filter_field"],
        filter_operator=text["filter_operator"],
        filter_value=value,
        filters=None if filters is None else json.loads(filters),
        sort_by=req.sort_by,
        sort_dir=req.sort_dir,
        limit=req.limit,
    )


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed(f"'{key}' must be a string")
    return value


def _fields(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if not value:
            raise ValidationFailed("'fields' names no field")
        return ",".join(value)
    raise ValidationFailed("'fields' must be a list of field names or a comma-separated string")


def _filters(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return json.dumps(value)
    raise ValidationFailed("'filters' must be a FilterGroup object (or its JSON text)")


def _filter_value(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise ValidationFailed("'filter_value' must be a string or a number")


def _limit(value: Any) -> str | int | None:
    if value is None or isinstance(value, str | int):
        return value
    raise ValidationFailed("limit must be a positive integer")


@router.post(
    "/export-jobs",
    status_code=202,
    response_model=None,
    responses={202: {"description": "The job, queued"}, **errors(400, 401, 403, 413)},
    openapi_extra=_BODY,
)
async def post_export_job(request: Request, user: User = Depends(admin_user)) -> JSONResponse:
    """Queue an export of every matching record (no 10,000 cap) as CSV, JSON,
    NDJSON or XLSX. Everything is checked before the job is created."""
    body = await read_json_object(request)
    return await run_in_threadpool(_create, engine_of(request), user, body)


def _create(engine: Engine, user: User, body: dict[str, Any]) -> JSONResponse:
    with read_transaction(engine) as conn:
        opts = parse_export_job(conn, load_workspace(conn), body)
    with write_transaction(engine) as conn:
        job = create_export_job(conn, opts, created_by=user.id)
    return JSONResponse(export_job_api(job), status_code=202)


@router.get("/export-jobs", responses=errors(400, 401, 403))
def list_export_jobs(
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, description="nextCursor of the previous page"),
    _: User = Depends(admin_user),
) -> dict[str, Any]:
    """The export jobs, newest first."""
    with read_transaction(engine_of(request)) as conn:
        page, total, next_cursor = jobs_repo.page_jobs(conn, kind=KIND, limit=limit, cursor=cursor)
    return {"data": [export_job_api(j) for j in page], "total": total, "nextCursor": next_cursor}


@router.get("/export-jobs/{job_id}", responses=errors(401, 403, 404))
def get_export_job(job_id: str, request: Request, _: User = Depends(admin_user)) -> dict[str, Any]:
    """The job's state, rows read of ``total_rows``, rows per second and ETA."""
    with read_transaction(engine_of(request)) as conn:
        return export_job_api(jobs_repo.get_job(conn, job_id, kind=KIND))


@router.post("/export-jobs/{job_id}/cancel", responses=errors(401, 403, 404, 409))
def cancel_export_job(
    job_id: str, request: Request, _: User = Depends(admin_user)
) -> dict[str, Any]:
    """A queued job is cancelled at once; a running one within about a second, and
    its partial output is deleted."""
    with write_transaction(engine_of(request)) as conn:
        job = jobs_repo.request_cancel(conn, job_id, KIND)
    return export_job_api(job)


@router.get(
    "/export-jobs/{job_id}/download",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The exported file", "content": {t: {} for t in MEDIA_TYPES.values()}},
        **errors(401, 403, 404, 409),
    },
)
def download_export(job_id: str, request: Request, _: User = Depends(admin_user)) -> Any:
    """The file, streamed from the database, once the job is ``completed``. It is
    stored gzip-compressed: a client that accepts gzip gets it as it is
    (``Content-Encoding: gzip``), any other the plain file."""
    engine = engine_of(request)
    with read_transaction(engine) as conn:
        job = jobs_repo.get_job(conn, job_id, kind=KIND)
        check_downloadable(job)
        gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
        size = blob_size(conn, job.id, OUTPUT) if gzip else None
    fmt = ExportJobOptions.from_stored(job.options).format
    headers = {
        "Content-Disposition": f'attachment; filename="{job.object_name}_export.{fmt}"',
        "Vary": "Accept-Encoding",
    }
    if gzip:
        headers.update({"Content-Encoding": "gzip", "Content-Length": str(size)})
        chunks = read_blob(engine, job.id, OUTPUT)
    else:
        chunks = read_output(engine, job.id)
    body = stream_in_thread(chunks)  # one thread for the whole file, as the export route
    return StreamingResponse(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def accepts_gzip(header: str) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip (``gzip`` or ``*``, q > 0)."""
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False
